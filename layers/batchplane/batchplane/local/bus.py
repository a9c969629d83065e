"""Local mode's EventBridge rules and EventBridge Scheduler, on top of moto.

EventBridge. moto's events backend matches rules and delivers to SQS targets: that is how
S3 "Object Created" notifications (a bucket with EventBridgeConfiguration), the
publisher's PutEvents and a user's own rules work locally. It cannot invoke a handler
running in this process, though. So for every EventBridgeRule that template.yaml attaches
to a function, the bus creates the same rule (same pattern) on moto's default bus with an
SQS queue as target, and polls that queue: what arrives is exactly what the rule matched
on moto's bus. Each event goes to the function like an asynchronous invocation: deleted
after success, tried three times in all, then sent to the function's OnFailure
destination (EventInvokeConfig) if it has one, as Lambda would.

The launcher's own ECS events still take the router's in-process path (Router.publish);
the bus adds what arrives on moto's bus from anyone else.

moto fills two fields of S3's events with the constants of AWS's documentation example
(``id`` and ``detail.object.sequencer``), which S3 makes unique per write. The bus
replaces them with values derived from the SQS message id (stable if the message is
delivered again), so two writes of the same key are two events, as on AWS.

Scheduler. moto stores schedules but never fires them. The bus lists the schedules of
the stack's schedule group, computes their firings with domain.schedules on the service's
clock (batchplane.clock, which tests move forward: ``LocalBus.advance`` moves it and fires
what became due) and invokes their target function with the Input placeholders
substituted, as EventBridge Scheduler does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import clock
from ..config import settings
from ..domain import schedules
from ..errors import ClientException
from .emulator import Activity
from .router import IDLE_WAKE_SECONDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from .router import Function, Router
    from .template import Template

log = logging.getLogger(__name__)
GROUP = "batchplane"  # the local stack's schedule group
MAX_ATTEMPTS = 3  # an asynchronous invocation and Lambda's two retries
CLOCK_NOISE_SECONDS = 0.005  # moves of the clock below it are reading noise
BUS_GATHER_SECONDS = 0.05  # after a wake-up, how long the rules' poller lets events gather
RELIST_SECONDS = 10.0  # the schedules are listed at least this often (see _current_schedules)
MAX_CATCH_UP = 100  # firings of one schedule fired in one pass after the clock jumps
_MOTO_S3_EVENT_ID = "17793124-05d4-b198-2fde-7ededc63b103"
_MOTO_S3_SEQUENCER = "617f08299329d189"
_SETTINGS_PREFIX = "BATCHPLANE_SCHEDULE_"


class LocalClock:
    """The service's one clock (batchplane.clock: real time plus an offset that tests move
    forward with ``clock.advance``), as the local scheduler reads it.

    moto records schedule creation in real time; ``at`` maps such a real timestamp to what
    the clock read at that moment, from the offsets seen so far (every scheduler pass looks,
    and ``advance`` here records its own moves), so a schedule keeps its place on the clock
    however the clock moved since it was created. A move made elsewhere is dated just after
    the last look that did not see it: a schedule created after a test moved the clock
    starts on the moved clock.
    """

    def __init__(
        self,
        now_ms: Callable[[], int] = clock.now_ms,
        move: Callable[[float], None] = clock.advance,
    ) -> None:
        self._now_ms = now_ms
        self._move = move
        self._lock = threading.Lock()
        self._changes: list[tuple[float, float]] = [(float("-inf"), self._offset())]
        self._looked = time.time()

    def _offset(self) -> float:
        return self._now_ms() / 1000 - time.time()

    def observe(self) -> None:
        """Note a move of the clock made elsewhere (moves below 5 ms are reading noise)."""
        looking = time.time()
        offset = self._offset()
        with self._lock:
            if abs(offset - self._changes[-1][1]) > CLOCK_NOISE_SECONDS:
                self._changes.append((self._looked, offset))
            self._looked = looking

    def now(self) -> float:
        return self._now_ms() / 1000

    def at(self, real: float) -> float:
        with self._lock:
            offset = next(o for t, o in reversed(self._changes) if t <= real)
        return real + offset

    def advance(self, seconds: float) -> None:
        self.observe()
        self._move(seconds)
        self.observe()


@dataclass
class _Rule:
    name: str
    queue_url: str
    function: Function
    on_failure: str | None  # queue URL of the function's OnFailure destination


@dataclass
class _Schedule:
    modified: float
    definition: dict[str, Any]
    expression: schedules.Expression
    zone: Any
    anchor: float
    cursor: float  # firings up to here (clock time) are done


class LocalBus:
    def __init__(
        self,
        template: Template,
        router: Router,
        clients: dict[str, Any],
        set_env: Callable[[dict[str, str]], None],
        clock: LocalClock | None = None,
        activity: Activity | None = None,
    ) -> None:
        self.template = template
        self.router = router
        self.events = clients["events"]
        self.sqs = clients["sqs"]
        self.scheduler = clients["scheduler"]
        self.set_env = set_env
        self.clock = clock or LocalClock()
        self.rules: list[_Rule] = []
        self.fired: list[dict[str, Any]] = []  # every schedule firing, for inspection
        self._schedules: dict[str, _Schedule] = {}
        self.activity = activity
        self._summaries: list[dict[str, Any]] | None = None
        self._listed: tuple[int | None, float] = (None, 0.0)  # (schedule_writes, when) at the last listing
        self._lock = threading.RLock()  # one scheduler pass at a time
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bus")

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> LocalBus:
        self.set_env(self._schedule_settings())
        with contextlib.suppress(self.scheduler.exceptions.ConflictException):
            self.scheduler.create_schedule_group(Name=GROUP)  # restored, on a restart
        for fn in self.router.functions.values():
            for event_name, ev in fn.spec.events.items():
                if ev.get("Type") == "EventBridgeRule":
                    self.rules.append(self._mirror(fn, event_name, ev["Properties"]))
        for name, target in (
            ("bus-events", self._poll_rules),
            ("bus-scheduler", self._run_scheduler),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._pool.shutdown(wait=True)

    # -- template wiring --------------------------------------------------------------

    def _arn(self, logical_id: str) -> str:
        """The local ARN of a template resource (functions are named by logical id)."""
        s = settings()
        kind = self.template.resources[logical_id]["Type"]
        if kind == "AWS::Serverless::Function":
            return f"arn:aws:lambda:{s.region}:{s.account_id}:function:{logical_id}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{s.account_id}:role/{logical_id}"
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{s.region}:{s.account_id}:{logical_id}"
        raise ValueError(f"local mode has no ARN for {logical_id} ({kind})")

    def _resolve(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Ref" in value:
            if value["Ref"] == "EventSource":  # the template parameter, as local mode sets it
                return settings().event_source
            kind = self.template.resources[value["Ref"]]["Type"]
            if kind == "AWS::Scheduler::ScheduleGroup":
                return GROUP
            raise ValueError(f"local mode cannot resolve Ref {value['Ref']} ({kind})")
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            logical_id, attribute = target.split(".", 1) if isinstance(target, str) else target
            if attribute != "Arn":
                raise ValueError(
                    f"local mode resolves only Fn::GetAtt <resource>.Arn, not {target}"
                )
            return self._arn(logical_id)
        raise ValueError(f"local mode cannot resolve {value!r}")

    def _pattern(self, pattern: Any) -> Any:
        """An event pattern with its intrinsics (``!Ref EventSource``) resolved."""
        if isinstance(pattern, list):
            return [self._pattern(v) for v in pattern]
        if isinstance(pattern, dict):
            if "Ref" in pattern or "Fn::GetAtt" in pattern:
                return self._resolve(pattern)
            return {k: self._pattern(v) for k, v in pattern.items()}
        return pattern

    def _schedule_settings(self) -> dict[str, str]:
        """The API function's BATCHPLANE_SCHEDULE_* variables, resolved to local names."""
        props = self.template.resources["ApiFunction"]["Properties"]
        variables = (props.get("Environment") or {}).get("Variables") or {}
        return {k: self._resolve(v) for k, v in variables.items() if k.startswith(_SETTINGS_PREFIX)}

    def _queue(self, name: str) -> tuple[str, str]:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return url, arn

    def _mirror(self, fn: Function, event_name: str, props: dict[str, Any]) -> _Rule:
        name = f"batchplane-{fn.spec.logical_id}-{event_name}"[:64]
        url, arn = self._queue(name)
        self.events.put_rule(
            Name=name,
            EventPattern=json.dumps(self._pattern(props["Pattern"])),
            State="ENABLED",
            Description=f"local mode: {fn.spec.logical_id} {event_name}",
        )
        self.events.put_targets(Rule=name, Targets=[{"Id": "local-bus", "Arn": arn}])
        resource = self.template.resources[fn.spec.logical_id]["Properties"]
        destination = (
            (resource.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}
        ).get("OnFailure") or {}
        on_failure = None
        if destination.get("Type") == "SQS" and destination.get("Destination"):
            on_failure = self._queue(self._resolve(destination["Destination"]).rsplit(":", 1)[-1])[
                0
            ]
        return _Rule(name, url, fn, on_failure)

    # -- EventBridge rules ------------------------------------------------------------

    def _poll_rules(self) -> None:
        idle = 0.005
        while not self._stop.is_set():
            got = 0
            for rule in self.rules:
                if not _holds_messages(rule.name):
                    continue
                try:
                    out = self.sqs.receive_message(
                        QueueUrl=rule.queue_url,
                        MaxNumberOfMessages=10,
                        WaitTimeSeconds=0,
                        VisibilityTimeout=30,
                        MessageSystemAttributeNames=["ApproximateReceiveCount"],
                    )
                except Exception:  # noqa: BLE001 - the emulator is stopping
                    if self._stop.is_set():
                        return
                    log.exception("local bus: receiving from %s failed", rule.name)
                    continue
                for message in out.get("Messages", []):
                    got += 1
                    self._pool.submit(self._deliver, rule, message)
            if got:
                idle = 0.005
                self._stop.wait(idle)
            elif self.router.activity is not None:
                self.router.activity.wait(Activity.BUS, IDLE_WAKE_SECONDS)  # until an event may have come
                # Then gather what else comes: every PutEvents and S3 request wakes this,
                # and a round of receives per event was a fifth of local mode's CPU.
                self._stop.wait(BUS_GATHER_SECONDS)
            else:
                idle = min(idle * 2, 0.05)
                self._stop.wait(idle)

    def _deliver(self, rule: _Rule, message: dict[str, Any]) -> None:
        event = _with_unique_s3_fields(json.loads(message["Body"]), message["MessageId"])
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            rule.function.invoke(event)
        except Exception:  # noqa: BLE001 - logged by Function; retried like an async invoke
            if attempt < MAX_ATTEMPTS:
                self.sqs.change_message_visibility(
                    QueueUrl=rule.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=1,
                )
                return
            log.error(
                "local bus: %s failed %d times on an event of rule %s; giving up",
                rule.function.spec.logical_id,
                attempt,
                rule.name,
            )
            if rule.on_failure:
                self.sqs.send_message(QueueUrl=rule.on_failure, MessageBody=json.dumps(event))
        self.sqs.delete_message(QueueUrl=rule.queue_url, ReceiptHandle=message["ReceiptHandle"])

    # -- EventBridge Scheduler --------------------------------------------------------

    def advance(self, seconds: float) -> list[dict[str, Any]]:
        """Move the clock forward and fire what became due; returns those firings (the
        background pass cannot take them: the clock moves under the pass lock)."""
        with self._lock:
            self.clock.advance(seconds)
            return self.run_schedules()

    def _run_scheduler(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_schedules()
            except Exception:  # noqa: BLE001 - keep the scheduler alive
                if self._stop.is_set():
                    return
                log.exception("local bus: scheduler pass failed")
            self._wake.wait(0.25)
            self._wake.clear()

    def run_schedules(self) -> list[dict[str, Any]]:
        """One pass: fire every enabled schedule's firings up to the clock's now."""
        with self._lock:
            self.clock.observe()
            now = self.clock.now()
            fired: list[dict[str, Any]] = []
            seen: set[str] = set()
            for summary in self._current_schedules():
                name = summary["Name"]
                seen.add(name)
                state = self._refresh(name, summary)
                if state is None:
                    continue
                if state.definition["State"] != "ENABLED":
                    state.cursor = now  # a disabled schedule catches nothing up later
                    continue
                for _ in range(MAX_CATCH_UP):
                    due = schedules.next_after(
                        state.expression, state.cursor, anchor=state.anchor, zone=state.zone
                    )
                    if due is None or due > now:
                        break
                    fired.append(self._fire(state.definition, due))
                    state.cursor = due
                else:
                    state.cursor = now
            for gone in set(self._schedules) - seen:
                del self._schedules[gone]
            self.fired += fired
            return fired

    def _current_schedules(self) -> list[dict[str, Any]]:
        """The schedules' summaries: listed again when the emulator served a request that
        may have changed one, and at least every RELIST_SECONDS (a pass every 0.25 s
        listing them through boto3 was a twentieth of local mode's CPU under load)."""
        writes = self.activity.schedule_writes if self.activity is not None else None
        if (writes is None or writes != self._listed[0] or self._summaries is None
                or time.monotonic() - self._listed[1] > RELIST_SECONDS):
            self._summaries = self._list_schedules()
            self._listed = (writes, time.monotonic())
        return self._summaries

    def _list_schedules(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"GroupName": GROUP}
        while True:
            page = self.scheduler.list_schedules(**kwargs)
            out += page.get("Schedules", [])
            if not page.get("NextToken"):
                return out
            kwargs["NextToken"] = page["NextToken"]

    def _refresh(self, name: str, summary: dict[str, Any]) -> _Schedule | None:
        modified = summary["LastModificationDate"].timestamp()
        state = self._schedules.get(name)
        if state is not None and state.modified == modified:
            return state
        definition = self.scheduler.get_schedule(Name=name, GroupName=GROUP)
        try:
            expression = schedules.parse(definition["ScheduleExpression"])
            zone = schedules.time_zone(definition.get("ScheduleExpressionTimezone"))
        except ClientException as e:
            log.warning("local bus: schedule %s cannot fire locally: %s", name, e.message)
            return None
        start = definition.get("StartDate") or definition["CreationDate"]
        anchor = self.clock.at(start.timestamp())
        # A rate schedule without StartDate fires at once, then every period (as on AWS).
        cursor = state.cursor if state is not None else anchor - 0.001
        fresh = _Schedule(modified, definition, expression, zone, anchor, cursor)
        self._schedules[name] = fresh
        return fresh

    def _fire(self, definition: dict[str, Any], due: float) -> dict[str, Any]:
        target = definition["Target"]
        scheduled = datetime.fromtimestamp(int(due), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        payload = target.get("Input") or "{}"
        for placeholder, value in {
            "<aws.scheduler.scheduled-time>": scheduled,
            "<aws.scheduler.execution-id>": str(uuid.uuid4()),
            "<aws.scheduler.schedule-arn>": definition["Arn"],
            "<aws.scheduler.attempt-number>": "1",
        }.items():
            payload = payload.replace(placeholder, value)
        function = self.router.functions.get(target["Arn"].rsplit(":function:", 1)[-1])
        record: dict[str, Any] = {"schedule": definition["Name"], "scheduledTime": scheduled}
        if function is None:
            log.error(
                "local bus: schedule %s targets %s, which is no function of the template",
                definition["Name"],
                target["Arn"],
            )
            return {**record, "error": "unknown target"}
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return {**record, "result": function.invoke(json.loads(payload))}
            except Exception as e:  # noqa: BLE001 - logged by Function; retried as Lambda would
                if attempt == MAX_ATTEMPTS:
                    return {**record, "error": str(e)}
        raise AssertionError("unreachable")


def _holds_messages(queue_name: str) -> bool:
    """Whether the emulator's queue of that name holds any message, looked up in this
    process without a request. Every PutEvents wakes the poller, and most (the
    publisher's job events) match no rule of the template: a ReceiveMessage per rule each
    time was a quarter of local mode's CPU. When in doubt, True."""
    try:
        from moto.sqs.models import sqs_backends  # noqa: PLC0415 - moto's internals, inside the try: if they moved, receive as before

        s = settings()
        queue = sqs_backends[s.account_id][s.region].queues.get(queue_name)
        return queue is None or bool(queue._messages)  # visible or in flight
    except Exception:  # noqa: BLE001 - moto's internals moved: just receive
        return True


def _with_unique_s3_fields(event: dict[str, Any], message_id: str) -> dict[str, Any]:
    """Replace moto's constant S3 event id and sequencer (see the module docstring)."""
    if event.get("source") != "aws.s3":
        return event
    digest = hashlib.sha256(message_id.encode()).hexdigest()
    obj = (event.get("detail") or {}).get("object") or {}
    if obj.get("sequencer") == _MOTO_S3_SEQUENCER:
        obj["sequencer"] = digest[:16].upper()
    if "eTag" in obj and "etag" not in obj:
        obj["etag"] = obj.pop("eTag")  # S3 spells it etag in EventBridge events
    if event.get("id") == _MOTO_S3_EVENT_ID:
        event["id"] = str(uuid.UUID(digest[:32]))
    return event
