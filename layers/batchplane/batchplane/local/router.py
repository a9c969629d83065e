"""Delivers events to the Lambda handlers in-process, the way AWS would:
EventBridge rules (matched with moto's own pattern matcher), the DynamoDB stream
(read from the emulator, filtered like an event source mapping, one batch at a time),
and schedules. The triggers are read from template.yaml, so local wiring is deployed
wiring."""

from __future__ import annotations

import base64
import copy
import importlib.util
import itertools
import json
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moto.events.models import EventPattern

from .. import clock
from ..config import settings
from . import patterns
from .emulator import Activity

if TYPE_CHECKING:
    from ..store.sqlite import SqliteStore
    from .template import FunctionSpec, Template

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any], Any], Any]
# With the emulator's wake-ups, an idle poller still looks this often (a message whose
# visibility timeout ran out, say).
IDLE_WAKE_SECONDS = 0.5
TTL_SWEEP_SECONDS = 60.0
_RATE = re.compile(r"rate\((\d+) (minute|minutes|second|seconds|hour|hours)\)")


@dataclass
class LambdaContext:
    """What the powertools decorators read from Lambda's context object."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        s = settings()
        return f"arn:aws:lambda:{s.region}:{s.account_id}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_handler(spec: FunctionSpec) -> Handler:
    module_name, attr = spec.handler.rsplit(".", 1)
    path = spec.code_uri / f"{module_name.replace('.', '/')}.py"
    mod_spec = importlib.util.spec_from_file_location(f"batchplane_fn_{spec.logical_id}", path)
    assert mod_spec and mod_spec.loader
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return getattr(module, attr)


class Function:
    """One Lambda function: its handler, invoked like Lambda invokes it."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.handler = load_handler(spec)
        self.invocations = 0
        self.errors = 0

    def invoke(self, event: dict[str, Any]) -> Any:
        self.invocations += 1
        ctx = LambdaContext(function_name=self.spec.logical_id, aws_request_id=str(uuid.uuid4()))
        try:
            return self.handler(event, ctx)
        except Exception:
            self.errors += 1
            log.exception("%s failed", self.spec.logical_id)
            raise


class Router:
    def __init__(self, template: Template, table_name: str, clients: dict[str, Any],
                 activity: Activity | None = None, store: SqliteStore | None = None,
                 sqs: Any = None) -> None:
        self.template = template
        self.sqs = sqs  # for the stream mappings' OnFailure queues
        self.activity = activity
        self.store = store  # the embedded store, whose own stream replaces DynamoDB's
        self.table_name = table_name
        self.clients = clients
        self.functions = {lid: Function(spec) for lid, spec in template.functions().items()}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="eventbridge")
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._rules: list[tuple[EventPattern, Function]] = []
        for fn in self.functions.values():
            for ev in fn.spec.events.values():
                if ev.get("Type") in ("EventBridgeRule", "CloudWatchEvent"):
                    self._rules.append((_pattern(ev["Properties"]["Pattern"]), fn))

    # -- EventBridge ------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        """Put one event on the (local) default bus: every matching rule's target runs."""
        for pattern, fn in self._rules:
            if patterns.matches(pattern, event):
                self._pool.submit(self._safe_invoke, fn, event)

    def _safe_invoke(self, fn: Function, event: dict[str, Any]) -> None:
        try:
            fn.invoke(event)
        except Exception:  # noqa: BLE001 - logged by Function; EventBridge would retry
            pass

    # -- background sources -----------------------------------------------------------

    def start(self, elsewhere: Collection[str] = ()) -> None:
        """Every trigger of the template: stream mappings, schedules, the TTL sweep.
        ``elsewhere``: functions whose stream mappings a worker process runs (see
        local/worker.py) rather than this one."""
        if self.store is not None:
            self.start_streams([lid for lid in self.functions if lid not in elsewhere])
        mappings: list[_Mapping] = []
        for fn in self.functions.values():
            for name, ev in fn.spec.events.items():
                kind = ev.get("Type")
                props = ev.get("Properties", {})
                if kind == "DynamoDB" and self.store is None:
                    mapping = _Mapping(fn, props, name)
                    mappings.append(mapping)
                    self._spawn(f"stream-{name}", self._consume, mapping)
                elif kind in ("Schedule", "ScheduleV2"):
                    self._spawn(f"schedule-{name}", self._tick, fn, props)
        if mappings:
            self._spawn("stream-reader", self._read_stream, mappings)
        if self.store is not None:
            self._spawn("ttl", self._expire)

    def start_streams(self, functions: Collection[str]) -> None:
        """The embedded stream's mappings of ``functions`` alone: a worker process's part."""
        assert self.store is not None
        for logical_id in functions:
            fn = self.functions[logical_id]
            for name, ev in fn.spec.events.items():
                if ev.get("Type") == "DynamoDB":
                    self._spawn(f"stream-{name}", self._consume_store, _Mapping(fn, ev.get("Properties", {}), name))

    @property
    def consumers(self) -> list[str]:
        """The names under which the embedded stream's consumers keep their place."""
        return [_Mapping.consumer_name(fn, name) for fn in self.functions.values()
                for name, ev in fn.spec.events.items() if ev.get("Type") == "DynamoDB"]

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _tick(self, fn: Function, props: dict[str, Any]) -> None:
        match = _RATE.match(props.get("ScheduleExpression") or props.get("Schedule") or "")
        if not match:
            log.warning("local mode runs rate() schedules only: %s", props)
            return
        n, unit = int(match.group(1)), match.group(2)
        seconds = n * {"s": 1, "m": 60, "h": 3600}[unit[0]]
        while not self._stop.wait(seconds):
            event = {
                "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                "source": "aws.scheduler", "account": settings().account_id,
                "time": clock.now_iso(),
                "region": settings().region, "resources": [], "detail": {},
            }
            self._safe_invoke(fn, event)

    def _read_stream(self, mappings: list[_Mapping]) -> None:
        """Read the table's stream once for every event source mapping. On AWS each mapping
        reads the shard itself; here one reader hands each mapping the records its filters
        pass, in order, which is what each would have read, for a third of the requests."""
        ddb = self.clients["dynamodb"]
        streams = self.clients["dynamodbstreams"]
        stream_arn = ddb.describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
        last: str | None = None  # the sequence number of the last record handed out

        def iterator_after_last() -> str:
            where = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last} if last
                     else {"ShardIteratorType": "TRIM_HORIZON"})
            return streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"], **where)["ShardIterator"]

        iterator = iterator_after_last()
        for m in mappings:
            m.stream_arn = stream_arn
        idle = 0.005
        while not self._stop.is_set():
            try:
                out = streams.get_records(ShardIterator=iterator, Limit=1000)
            except Exception:  # noqa: BLE001 - as Lambda's poller: retry, never lose the place
                log.warning("GetRecords failed; retrying after the last record read", exc_info=True)
                if self._stop.wait(1.0):
                    return
                try:
                    iterator = iterator_after_last()
                except Exception:  # noqa: BLE001 - the next round retries this too
                    log.warning("GetShardIterator failed", exc_info=True)
                continue
            iterator = out["NextShardIterator"]
            if out["Records"]:
                last = out["Records"][-1]["dynamodb"]["SequenceNumber"]
            raw = json.loads(json.dumps(out["Records"], default=_as_lambda_json))
            for m in mappings:
                records = [r for r in raw if m.passes(r)]
                if records:
                    m.pending.put(records)
            if raw:
                idle = 0.005
            elif self.activity is not None:
                self.activity.wait(Activity.STREAM, IDLE_WAKE_SECONDS)  # until the table is written
            else:
                self._stop.wait(idle)
                idle = min(idle * 2, 0.05)

    def _consume_store(self, mapping: _Mapping) -> None:
        """One event source mapping on the embedded store's stream: batches of up to
        BatchSize records after its checkpoint, filtered, delivered, then the checkpoint
        moved past them. A record is delivered at least once, across restarts too; the
        handlers make a repeat change nothing."""
        store = self.store
        assert store is not None
        woken = store.listen()
        region, account = settings().region, settings().account_id
        mapping.stream_arn = f"arn:aws:dynamodb:{region}:{account}:table/{self.table_name}/stream/local"
        after = store.checkpoint(mapping.consumer)
        if after is None:  # a new mapping: where its StartingPosition says
            after = store.last_sequence() if mapping.starting == "LATEST" else 0
            store.save_checkpoint(mapping.consumer, after)
        while not self._stop.is_set():
            woken.clear()
            read = store.records(after, mapping.batch_size)
            if not read:
                woken.wait(IDLE_WAKE_SECONDS)
                continue
            read = self._fill_window(mapping, woken, read)
            batch = [record for _, record in read if mapping.passes(record)]
            if batch:
                self._deliver_batch(mapping, batch)
                if self._stop.is_set():
                    return  # not delivered in full: the next start delivers it again
            after = read[-1][0]
            store.save_checkpoint(mapping.consumer, after)

    def _fill_window(self, mapping: _Mapping, woken: threading.Event,
                     read: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        """MaximumBatchingWindowInSeconds: records that follow the first within the window
        join its batch, until BatchSize."""
        assert self.store is not None
        deadline = time.monotonic() + mapping.window
        while len(read) < mapping.batch_size and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            woken.clear()
            more = self.store.records(read[-1][0], mapping.batch_size - len(read))
            if more:
                read += more
            else:
                woken.wait(left)
        return read

    def _expire(self) -> None:
        """DynamoDB's TTL process for the embedded store: expired items go (with their
        REMOVE records), and stream records every consumer has handled are forgotten."""
        assert self.store is not None
        while not self._stop.wait(TTL_SWEEP_SECONDS):
            try:
                self.expire()
            except Exception:  # noqa: BLE001 - the next sweep tries again
                log.exception("TTL sweep failed")

    def expire(self) -> int:
        """One TTL sweep now; how many items expired."""
        assert self.store is not None
        expired = self.store.expire()
        self.store.trim_stream(self.consumers)
        return expired

    def _consume(self, mapping: _Mapping) -> None:
        """One mapping's poller: batches of up to BatchSize, one at a time, in order."""
        while not self._stop.is_set():
            try:
                records = mapping.pending.get(timeout=0.1)
            except queue.Empty:
                continue
            deadline = time.monotonic() + mapping.window
            while len(records) < mapping.batch_size:  # what else arrives within the window
                try:
                    records += mapping.pending.get(timeout=max(0.0, deadline - time.monotonic())) \
                        if mapping.window else mapping.pending.get_nowait()
                except queue.Empty:
                    break
            for batch in _chunks(records, mapping.batch_size):
                # Each function gets its own copies, as from its own GetRecords.
                self._deliver_batch(mapping, copy.deepcopy(batch))

    def _deliver_batch(self, mapping: _Mapping, batch: list[dict[str, Any]]) -> None:
        """Invoke the mapping's function until the batch went through: after a failure the
        whole batch again, after a partial one from its first failed record; after
        MaximumRetryAttempts retries what is left is dropped and noted in the mapping's
        OnFailure queue, as Lambda does."""
        for r in batch:
            r.setdefault("eventSourceARN", mapping.stream_arn)
            r.setdefault("awsRegion", settings().region)
            r.setdefault("eventSource", "aws:dynamodb")
        retries = 0
        while batch and not self._stop.is_set():
            try:
                result = mapping.fn.invoke({"Records": batch}) or {}
                failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
            except Exception:  # noqa: BLE001 - the whole batch is retried, as Lambda does
                failures = [batch[0]["dynamodb"]["SequenceNumber"]]
            if not failures:
                return
            first = next(i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failures)
            batch = batch[first:]
            if 0 <= mapping.max_retries <= retries:
                self._drop(mapping, batch, retries)
                return
            retries += 1
            self._stop.wait(0.2)

    def _drop(self, mapping: _Mapping, batch: list[dict[str, Any]], retries: int) -> None:
        """What Lambda sends a stream mapping's OnFailure destination: where the batch was,
        not its records."""
        log.error("%s: %d stream records dropped after %d retries", mapping.consumer, len(batch), retries)
        if mapping.on_failure is None or self.sqs is None:
            return
        numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
        note = {
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": retries + 1,
                               "functionArn": LambdaContext(mapping.fn.spec.logical_id).invoked_function_arn},
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": clock.now_iso(),
            "DDBStreamBatchInfo": {"shardId": "local", "startSequenceNumber": numbers[0],
                                   "endSequenceNumber": numbers[-1], "batchSize": len(batch),
                                   "streamArn": mapping.stream_arn},
        }
        try:
            url = self.sqs.create_queue(QueueName=mapping.on_failure)["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(note))
        except Exception:  # noqa: BLE001 - the records are dropped either way; the tick recovers
            log.exception("%s: the OnFailure note was not sent", mapping.consumer)


def _pattern(pattern: str | dict[str, Any]) -> EventPattern:
    """An event pattern as the template writes it (JSON text or YAML mapping)."""
    return EventPattern.load(pattern if isinstance(pattern, str) else json.dumps(pattern))


def _as_lambda_json(value: Any) -> Any:
    """Lambda receives stream records as JSON: times as epoch seconds, binary attributes
    as base64 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value.timestamp()


class _Mapping:
    """A DynamoDB event source mapping: its function, filters, batch size and the records
    read for it but not yet delivered."""

    def __init__(self, fn: Function, props: dict[str, Any], name: str) -> None:
        self.fn = fn
        self.consumer = self.consumer_name(fn, name)
        self.starting = str(props.get("StartingPosition", "LATEST"))
        self.max_retries = int(props.get("MaximumRetryAttempts", -1))  # -1: until it goes through
        # The OnFailure queue's logical id (the local queue of that name).
        target = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            target = target["Fn::GetAtt"]
        self.on_failure = (target.split(".")[0] if isinstance(target, str) else target[0]) if target else None
        self.patterns = [_pattern(f["Pattern"]) for f in (props.get("FilterCriteria") or {}).get("Filters", [])]
        self.batch_size = int(props.get("BatchSize", 100))
        self.window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        self.pending: queue.Queue[list[dict[str, Any]]] = queue.Queue()
        self.stream_arn = ""

    @staticmethod
    def consumer_name(fn: Function, event_name: str) -> str:
        return f"{fn.spec.logical_id}.{event_name}"

    def passes(self, record: dict[str, Any]) -> bool:
        return not self.patterns or any(patterns.matches(p, record) for p in self.patterns)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    it = iter(items)
    return list(iter(lambda: list(itertools.islice(it, size)), []))
