"""The one local stack a run uses, with the cost meter on and every Lambda handler timed.

Only one ``LocalStack`` may run per process (it sets ``os.environ``), so every section
that needs the service shares this harness.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import yaml
from batchplane import metering
from botocore.config import Config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
TERMINAL = ("SUCCEEDED", "FAILED")
STARTED = ("RUNNING", *TERMINAL)  # a trivial job may go STARTING -> SUCCEEDED unseen
# One request per call: a retried call would hide a slow or failed one.
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=16)

QUEUE = "bench-q"
CE = "bench-ce"
TRUE_JOB = "bench-true"  # `true`: the cheapest possible job
RETRY_JOB = "bench-retry"  # exits 1 on attempt 1, 0 on attempt 2 (retryStrategy attempts 2)
MAX_VCPUS = 4096  # never the bottleneck: 1-vCPU jobs, at most a few hundred at once


# -- the template, read like local mode reads it ---------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub ...)."""


_CfnLoader.add_multi_constructor("!", lambda *_: None)


def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def function_folders() -> dict[str, str]:
    """functions/<folder> -> logical id of the function built from it."""
    return {
        str((res.get("Properties") or {}).get("CodeUri", "")).rstrip("/").rsplit("/", 1)[-1]: lid
        for lid, res in (template().get("Resources") or {}).items()
        if res.get("Type") == "AWS::Serverless::Function"
    }


def schedules() -> dict[str, float]:
    """Functions the template runs periodically, and every how many seconds."""
    units = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400,
             "days": 86400, "second": 1, "seconds": 1}
    out = {}
    for lid, res in (template().get("Resources") or {}).items():
        for ev in ((res.get("Properties") or {}).get("Events") or {}).values():
            props = ev.get("Properties") or {}
            rate = str(props.get("Schedule") or props.get("ScheduleExpression") or "")
            if ev.get("Type") in ("Schedule", "ScheduleV2") and rate.startswith("rate("):
                n, unit = rate[5:-1].split()
                out[lid] = int(n) * units[unit]
    return out


def function_memory_mb() -> dict[str, int]:
    """MemorySize of each function as deployed (Globals, then the function's own)."""
    doc = template()
    default = int(((doc.get("Globals") or {}).get("Function") or {}).get("MemorySize", 128))
    return {
        lid: int((res.get("Properties") or {}).get("MemorySize", default))
        for lid, res in (doc.get("Resources") or {}).items()
        if res.get("Type") == "AWS::Serverless::Function"
    }


def table_shape(table_name: str) -> dict[str, metering.TableShape]:
    """The table's key and index attributes from template.yaml, for the meter."""
    props = template()["Resources"]["Table"]["Properties"]
    key = tuple(k["AttributeName"] for k in props["KeySchema"])
    indexes = tuple(tuple(k["AttributeName"] for k in gsi["KeySchema"])
                    for gsi in props.get("GlobalSecondaryIndexes", []))
    return {table_name: metering.TableShape(key=key, indexes=indexes)}


# -- Lambda invocations -----------------------------------------------------------------


@dataclass
class Invocations:
    count: int = 0
    seconds: float = 0.0  # handler wall time
    billed_ms: int = 0  # Lambda bills each invocation rounded up to the millisecond
    cpu_seconds: float = 0.0  # CPU time of the handler's own thread (not moto's)


@dataclass
class Ledger:
    """Every handler invocation, by scope (function, and for the API its operation)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    scopes: dict[str, Invocations] = field(default_factory=dict)
    active: int = 0
    last_activity: float = field(default_factory=time.monotonic)

    def snapshot(self) -> dict[str, Invocations]:
        with self.lock:
            return {k: Invocations(v.count, v.seconds, v.billed_ms, v.cpu_seconds)
                    for k, v in self.scopes.items()}

    def busy(self) -> bool:
        with self.lock:
            return self.active > 0

    def quiet_for(self) -> float:
        with self.lock:
            return 0.0 if self.active else time.monotonic() - self.last_activity


def diff(after: dict[str, Invocations], before: dict[str, Invocations]) -> dict[str, Invocations]:
    out = {}
    for k, v in after.items():
        b = before.get(k, Invocations())
        d = Invocations(v.count - b.count, v.seconds - b.seconds, v.billed_ms - b.billed_ms,
                        v.cpu_seconds - b.cpu_seconds)
        if d.count:
            out[k] = d
    return out


def scope_of(function: str, event: dict[str, Any]) -> str:
    """Who made the calls: the function, and what it was invoked for (an API operation,
    a stream batch, a periodic tick)."""
    if "httpMethod" in event and "path" in event:
        return f"{function}:{str(event['path']).rstrip('/').rsplit('/', 1)[-1]}"
    if event.get("detail-type") == "Scheduled Event":
        return f"{function}:tick"
    if "Records" in event:
        return f"{function}:stream"
    return function


def _timed(function: str, handler: Callable[..., Any], ledger: Ledger) -> Callable[..., Any]:
    def run(event: dict[str, Any], context: Any) -> Any:
        scope = scope_of(function, event)
        with ledger.lock:
            ledger.active += 1
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            with metering.scope(scope):
                return handler(event, context)
        finally:
            elapsed = time.perf_counter() - start
            cpu = time.thread_time() - cpu
            with ledger.lock:
                ledger.active -= 1
                ledger.last_activity = time.monotonic()
                inv = ledger.scopes.setdefault(scope, Invocations())
                inv.count += 1
                inv.seconds += elapsed
                inv.billed_ms += max(1, math.ceil(elapsed * 1000))
                inv.cpu_seconds += cpu

    return run


# -- the harness ------------------------------------------------------------------------


class Harness:
    def __init__(self, store: str = "sqlite") -> None:
        self.store = store  # the stack's store: the embedded default, or "dynamodb" on moto
        self.stack: Any = None
        self.ledger = Ledger()
        self.batch: Any = None
        self.table_name = ""

    def start(self) -> Harness:
        from batchplane.local.stack import TABLE_NAME, LocalStack  # noqa: PLC0415 - local mode (moto, which hooks into botocore on import) only once a stack starts

        self.table_name = TABLE_NAME
        # On before any client exists: aws.client() instruments the clients it creates.
        metering.enable(table_shape(TABLE_NAME))
        self.stack = LocalStack(port=0, store=self.store).start()
        for name, fn in self.stack.router.functions.items():
            fn.handler = _timed(name, fn.handler, self.ledger)
        self.batch = client("batch", self.stack.endpoint)
        self._resources()
        return self

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
            self.stack = None
        metering.disable()

    def _resources(self) -> None:
        b = self.batch
        b.create_compute_environment(
            computeEnvironmentName=CE, type="MANAGED", state="ENABLED",
            computeResources={
                "type": "EC2", "minvCpus": 0, "maxvCpus": MAX_VCPUS, "instanceTypes": ["optimal"],
                "subnets": ["subnet-bench"], "securityGroupIds": ["sg-bench"],
                "instanceRole": "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole",
            },
        )
        b.create_job_queue(jobQueueName=QUEUE, priority=1, state="ENABLED",
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": CE}])
        resources = [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]
        b.register_job_definition(
            jobDefinitionName=TRUE_JOB, type="container",
            containerProperties={"image": "public.ecr.aws/docker/library/busybox:latest",
                                 "command": ["true"], "resourceRequirements": resources},
        )
        b.register_job_definition(
            jobDefinitionName=RETRY_JOB, type="container", retryStrategy={"attempts": 2},
            containerProperties={
                "image": "public.ecr.aws/docker/library/busybox:latest",
                "command": ["sh", "-c", 'test "$AWS_BATCH_JOB_ATTEMPT" = 2'],
                "resourceRequirements": resources,
            },
        )

    # -- jobs -------------------------------------------------------------------------

    def submit(self, definition: str = TRUE_JOB, name: str = "bench", **extra: Any) -> str:
        out = self.batch.submit_job(jobName=name, jobQueue=QUEUE, jobDefinition=definition, **extra)
        return str(out["jobId"])

    def describe(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(ids)
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 100):
            for job in self.batch.describe_jobs(jobs=ids[i:i + 100])["jobs"]:
                found[job["jobId"]] = job
        return found

    def wait(self, ids: Iterable[str], statuses: tuple[str, ...] = TERMINAL, *,
             timeout: float = 60.0, pause: float = 0.1) -> dict[str, dict[str, Any]]:
        """Poll DescribeJobs until every job is in one of ``statuses`` (or the deadline);
        returns the last document of each job."""
        pending = set(ids)
        docs: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            found = self.describe(pending)
            docs.update(found)
            pending = {j for j in pending if docs.get(j, {}).get("status") not in statuses}
            if pending:
                time.sleep(pause)
        return docs

    def table_items(self) -> int:
        """Items in the table now (moto's GSI queries scan them all: local latency grows)."""
        if self.stack.store is not None:
            return self.stack.store.item_count()
        ddb = self.stack.router.clients["dynamodb"]
        return int(ddb.describe_table(TableName=self.table_name)["Table"]["ItemCount"])

    def settle(self, quiet: float = 0.4, timeout: float = 15.0) -> bool:
        """Wait until no handler has run for ``quiet`` seconds: the last stream records
        and events of a job arrive after DescribeJobs already shows it finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ledger.quiet_for() >= quiet:
                return True
            time.sleep(0.05)
        return False


def client(service: str, endpoint: str, config: Config = NO_RETRY) -> Any:
    """The unmodified boto3 client, pointed at ``endpoint``."""
    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="local", aws_secret_access_key="local", config=config,  # the default key
    )
