"""A deterministic world around the real handlers: the integration setup (moto's
DynamoDB, ECS, Step Functions, EventBridge, CloudWatch Logs, in-process) plus what AWS
does between the handlers, played step by step from one seed:

- the table's stream: read from moto's DynamoDB stream, filtered and batched per event
  source mapping of template.yaml (BatchSize, FilterCriteria, MaximumRetryAttempts,
  ReportBatchItemFailures), at least once: a batch may come twice, or with the records of
  different items in another order (each item's own records keep theirs, as on AWS);
- EventBridge's ECS Task State Change events: the world plays the ECS container agent
  on moto's tasks (a task RUNNING, then exited with the code its command asks for, or
  stopped by StopTask), and delivers each event up to three times (EventBridge's
  asynchronous invoke: one try and MaximumRetryAttempts 2), sometimes twice, in any order;
- Step Functions: moto records each StartExecution of the array fan-out machine; the
  world runs the machine's states (statemachines/array.asl.json: the Map's chunks in any
  order, each Task with its Retry, then Settle, Catch to Failed) by invoking the arrays
  function, sometimes running a chunk twice (a Lambda task retried after a lost answer);
- the scheduler's tick, every 60 s of the batchplane clock, which the world moves;
- a client: the API function invoked with the sample API Gateway event, retried with the
  same amz-sdk-invocation-id on a 5xx or a failed invocation, as botocore does.

The fault injector (injector.py) makes AWS calls inside the handlers fail. Nothing in the
product is replaced: the clock is frozen (it only moves when the world moves it), uuid4
is drawn from the seed, and the scheduler's launch pool has one worker so that calls
happen in one order.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from batchplane import aws, clock, config, wiring
from batchplane.domain import jobs as rules
from batchplane.local import moto_fixes
from batchplane.local.router import Function, _as_lambda_json, _Mapping
from batchplane.local.stack import create_resources
from batchplane.local.template import Template
from batchplane.service import scheduler as scheduler_module
from batchplane.store import dynamodb as dynamodb_module
from batchplane.store.dynamodb import Item
from moto import mock_aws
from moto.core.config import default_user_config
from moto.dynamodb.models import dynamodb_backends
from moto.ecs.models import ecs_backends
from moto.moto_api import state_manager
from moto.moto_api._internal import mock_random
from moto.stepfunctions.models import stepfunctions_backends

from .injector import Injector

ROOT = Path(__file__).resolve().parents[2]
TABLE = "batchplane-faults"
ACCOUNT, REGION = "123456789012", "us-east-1"
TICK_SECONDS = 60
EVENTBRIDGE_TRIES = 3  # the events function's rules: MaximumRetryAttempts 2
CLIENT_TRIES = 8  # aws.py's botocore retries: max_attempts 8

ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
    "BATCHPLANE_TABLE": TABLE, "BATCHPLANE_LAUNCHER": "ecs",
    "BATCHPLANE_PASSABLE_ROLES": f"arn:aws:iam::{ACCOUNT}:instance-profile/ecsInstanceRole",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "CRITICAL",
}


def load_event(path: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / path).read_text())


_loaded: tuple[Template, dict[str, Function]] | None = None


def _functions() -> tuple[Template, dict[str, Function]]:
    """template.yaml and its functions, loaded once per process (each run rebuilds the
    services they use: wiring.reset)."""
    global _loaded  # noqa: PLW0603 - loaded once a process, as the docstring says
    if _loaded is None:
        template = Template.load(ROOT / "template.yaml")
        _loaded = template, {lid: Function(spec) for lid, spec in template.functions().items()}
    return _loaded


class _FrozenTime:
    """What batchplane.clock reads as ``time``: a wall clock that stands still (the
    world moves batchplane's clock with clock.advance)."""

    def __init__(self, real: Any, at_ns: int) -> None:
        self._real, self._at = real, at_ns

    def time_ns(self) -> int:
        return self._at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _NoSleep:
    """A module's ``time`` whose sleep returns at once."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def sleep(self, seconds: float) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@dataclass
class Task:
    """One ECS task as the world's container agent sees it."""

    arn: str
    cluster: str
    job_id: str
    run: int
    attempt: int
    command: list[str]
    detail: dict[str, Any]
    state: str = "PROVISIONING"  # -> RUNNING -> STOPPED
    started_step: int | None = None
    stopped_step: int | None = None
    exit_code: int | None = None


@dataclass
class Execution:
    """One Step Functions execution of the fan-out machine, run a state at a time."""

    name: str
    payload: dict[str, Any]
    todo: list[dict[str, Any]]  # Map items not yet done (the rest of the chunks)
    phase: str = "chunks"  # -> settle -> (failed) -> done
    tries: int = 0
    error: dict[str, Any] | None = None
    recorded: bool = False  # the Failed state recorded the failure on the parent


@dataclass
class Delivery:
    """An EventBridge event on its way to a target, with the tries it has left."""

    function: str
    event: dict[str, Any]
    tries_left: int = EVENTBRIDGE_TRIES


@dataclass
class Stats:
    deliveries: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    reorders: int = 0
    dropped_batches: int = 0
    dropped_events: int = 0
    client_retries: int = 0
    ticks: int = 0


class World:
    def __init__(self, seed: int, injector: Injector | None = None, *, chaos: bool = True) -> None:
        self.seed = seed
        self.rng = random.Random(f"world/{seed}")
        self.injector = injector or Injector(seed)
        self.chaos = chaos  # duplicate and reorder deliveries
        self.stats = Stats()
        self.step = 0
        self.tasks: dict[str, Task] = {}
        self.pending_events: list[Delivery] = []
        self.executions: dict[str, Execution] = {}
        self.mapping_queues: dict[str, list[dict[str, Any]]] = {}
        self.last_batch: dict[str, list[dict[str, Any]]] = {}
        self.history: dict[str, list[tuple[str | None, str | None]]] = defaultdict(list)  # job -> status moves
        self._saved: list[tuple[Any, str, Any]] = []
        self.asl = json.loads((ROOT / "statemachines" / "array.asl.json").read_text())

    # -- set-up and tear-down -----------------------------------------------------------

    def __enter__(self) -> World:
        self._saved_env = {k: os.environ.get(k) for k in [*ENV, "AWS_ENDPOINT_URL", "BATCHPLANE_ARRAY_STATE_MACHINE"]}
        os.environ.update(ENV)
        os.environ.pop("AWS_ENDPOINT_URL", None)
        rng = random.Random(f"uuid/{self.seed}")
        self._patch(uuid, "uuid4", lambda: uuid.UUID(int=rng.getrandbits(128), version=4))
        self._patch(clock, "time", _FrozenTime(clock.time, 1_767_225_600_000_000_000))  # 2026-01-01
        # The ticks advance batchplane's clock; what runs after the world in this process
        # gets it back as it was (CloudWatch Logs refuses events hours in the future).
        self._patch(clock, "_offset_ms", clock._offset_ms)
        self._patch(scheduler_module, "LAUNCH_WORKERS", 1)
        self._patch(scheduler_module, "LAUNCH_RETRY_PAUSES", (0.0, 0.0))
        # No pauses between the scheduler's launch retries and the store's busy retries.
        self._patch(scheduler_module, "time", _NoSleep(scheduler_module.time))
        self._patch(dynamodb_module, "time", _NoSleep(dynamodb_module.time))
        sfn_config = default_user_config.setdefault("stepfunctions", {})
        self._saved_sfn = sfn_config.get("execute_state_machine")
        sfn_config["execute_state_machine"] = False  # the world runs the machine itself
        moto_fixes.install()
        self._mock = mock_aws()
        self._mock.start()
        mock_random.seed(self.seed)
        # moto moves a task one status on at each DescribeTasks: here the agent does.
        state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
        config.settings.cache_clear()
        aws.use_transport(self._attach)
        wiring.reset()
        self.template, self.functions = _functions()
        create_resources(self.template, boto3.client("dynamodb"), boto3.client("logs"), TABLE)
        self.ddb = boto3.client("dynamodb")  # the world's own clients: never faulted
        self.sfn = boto3.client("stepfunctions")
        definition = json.dumps(self.asl).replace("${ArraysFunctionArn}",
                                                  f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ArraysFunction")
        self.state_machine = self.sfn.create_state_machine(
            name="ArrayFanOut", definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn")["stateMachineArn"]
        os.environ["BATCHPLANE_ARRAY_STATE_MACHINE"] = self.state_machine
        self._mappings = []
        for fn in self.functions.values():
            for name, ev in fn.spec.events.items():
                if ev.get("Type") == "DynamoDB":
                    m = _Mapping(fn, ev.get("Properties", {}), name)
                    self._mappings.append(m)
                    self.mapping_queues[m.consumer] = []
        self._open_stream()
        self._resources()
        return self

    def __exit__(self, *exc: Any) -> None:
        aws.use_transport(None)
        wiring.reset()
        self._mock.stop()
        state_manager.unset_transition("ecs::task")
        default_user_config["stepfunctions"]["execute_state_machine"] = self._saved_sfn
        for target, name, value in reversed(self._saved):
            setattr(target, name, value)
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        config.settings.cache_clear()

    def _patch(self, target: Any, name: str, value: Any) -> None:
        self._saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def _attach(self, client: Any) -> None:
        self.injector.attach(client)

    def _resources(self) -> None:
        """An EC2 environment of 4 vCPUs with one container instance, a queue, and the
        job definitions of the workload, created without faults."""
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # A multi-node job's nodes are awsvpc tasks: moto names their ENIs only in a VPC
        # with DNS hostnames (and fails RunTask without).
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        enabled, self.injector.enabled = self.injector.enabled, False
        try:
            self.api("createcomputeenvironment", {
                "computeEnvironmentName": "ec2", "type": "MANAGED",
                "computeResources": {"type": "EC2", "minvCpus": 0, "maxvCpus": 4, "instanceTypes": ["m5"],
                                     "subnets": [subnet], "instanceRole": "ecsInstanceRole"},
            })
            ce = self.api("describecomputeenvironments", {"computeEnvironments": ["ec2"]})
            self.cluster = ce["computeEnvironments"][0]["ecsClusterArn"]
            instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                         InstanceType="m5.xlarge")["Instances"][0]
            boto3.client("ecs").register_container_instance(
                cluster=self.cluster, instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]}))
            self.api("createjobqueue", {"jobQueueName": "q", "priority": 1,
                                        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ec2"}]})
            for name, command, attempts in (("ok", ["true"], 1), ("fail", ["false"], 2),
                                            ("flaky", ["fail-until-attempt", "3"], 3), ("sleep", ["sleep"], 1)):
                self.api("registerjobdefinition", {
                    "jobDefinitionName": name, "type": "container",
                    "retryStrategy": {"attempts": attempts},
                    "containerProperties": {"image": "busybox", "command": command,
                                            "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                                     {"type": "MEMORY", "value": "512"}]},
                })
            # Multi-node parallel jobs of 3 nodes: the main node's command, the others sleep
            # until stopped; "mnp-retry" fails its first attempt.
            needs = [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]
            for name, main, attempts in (("mnp", ["true"], 1), ("mnp-retry", ["fail-until-attempt", "2"], 2)):
                ranges = [{"targetNodes": "0", "container": {"image": "busybox", "command": main,
                                                             "resourceRequirements": needs}},
                          {"targetNodes": "1:", "container": {"image": "busybox", "command": ["sleep"],
                                                              "resourceRequirements": needs}}]
                self.api("registerjobdefinition", {
                    "jobDefinitionName": name, "type": "multinode", "retryStrategy": {"attempts": attempts},
                    "nodeProperties": {"numNodes": 3, "mainNode": 0, "nodeRangeProperties": ranges},
                })
            self.settle_quietly()
        finally:
            self.injector.enabled = enabled

    def settle_quietly(self) -> None:
        """Deliver what set-up wrote, without chaos."""
        chaos, self.chaos = self.chaos, False
        while self._deliver_any_stream():
            pass
        self.chaos = chaos

    # -- invoking handlers ----------------------------------------------------------------

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        token = self.injector.begin(function)
        try:
            self.stats.deliveries[function] += 1
            return self.functions[function].invoke(event)
        finally:
            self.injector.end(token)

    def api(self, operation: str, body: dict[str, Any], *, allow_error: bool = False) -> dict[str, Any]:
        """One client call, retried as botocore retries: same invocation id, on a 5xx or a
        failed invocation. A 4xx is the answer."""
        event = load_event("api/submitjob.json")
        event["path"] = f"/v1/{operation}"
        event["requestContext"]["path"] = f"/prod/v1/{operation}"
        event["pathParameters"] = {"proxy": operation}
        event["body"] = json.dumps(body)
        invocation_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        event["headers"]["amz-sdk-invocation-id"] = invocation_id
        event["multiValueHeaders"]["amz-sdk-invocation-id"] = [invocation_id]
        last: Any = None
        for attempt in range(CLIENT_TRIES):
            if attempt:
                self.stats.client_retries += 1
            try:
                out = self.invoke("ApiFunction", copy.deepcopy(event))
            except Exception as e:  # noqa: BLE001 - the client sees a 502 from API Gateway
                last = e
                continue
            status = out["statusCode"]
            answer = json.loads(out["body"] or "{}")
            if status < 400:
                return answer
            if status < 500:
                if allow_error:
                    return {"error": answer, "status": status}
                raise AssertionError(f"{operation} {body} -> {status} {answer}")
            last = answer
        raise AssertionError(f"{operation} failed {CLIENT_TRIES} times: {last!r}")

    # -- the stream -------------------------------------------------------------------------

    def _open_stream(self) -> None:
        """The table's stream, read from moto's shard (what GetRecords returns, without
        serializing every poll: the world looks at it before every step)."""
        self.stream_arn = self.ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        self._table = dynamodb_backends[ACCOUNT][REGION].get_table(TABLE)
        self.position = 0

    def read_stream(self) -> None:
        """Everything new on the stream, handed to each mapping whose filters pass it."""
        shard = self._table.stream_shard
        if len(shard.items) <= self.position:
            return
        fresh = [r.to_json() for r in shard.items[self.position:]]
        self.position = len(shard.items)
        raw = json.loads(json.dumps(fresh, default=_as_lambda_json))
        for r in raw:
            r.update(eventSourceARN=self.stream_arn, awsRegion=REGION, eventSource="aws:dynamodb")
            keys = r["dynamodb"]["Keys"]
            if keys.get("sk", {}).get("S") == "JOB":
                old = (r["dynamodb"].get("OldImage") or {}).get("status", {}).get("S")
                new = (r["dynamodb"].get("NewImage") or {}).get("status", {}).get("S")
                if old != new:
                    self.history[keys["pk"]["S"].removeprefix("JOB#")].append((old, new))
        for m in self._mappings:
            self.mapping_queues[m.consumer] += [r for r in raw if m.passes(r)]

    def _deliver_any_stream(self) -> bool:
        self.read_stream()
        for m in self._mappings:
            if self.mapping_queues[m.consumer]:
                self.deliver_stream(m)
                return True
        return False

    def stream_ready(self) -> list[_Mapping]:
        self.read_stream()
        return [m for m in self._mappings if self.mapping_queues[m.consumer]]

    def deliver_stream(self, m: _Mapping) -> None:
        """One batch of a mapping, as Lambda's poller delivers it: retried from its first
        failed record, dropped after MaximumRetryAttempts (the tick recovers those)."""
        queue = self.mapping_queues[m.consumer]
        size = self.rng.randint(1, m.batch_size) if self.chaos and self.rng.random() < 0.5 else m.batch_size
        batch, self.mapping_queues[m.consumer] = queue[:size], queue[size:]
        if self.chaos and len(batch) > 1 and self.rng.random() < 0.25:
            batch = self._reorder(batch)
            self.stats.reorders += 1
        if self.chaos and self.last_batch.get(m.consumer) and self.rng.random() < 0.15:
            # At least once: an earlier batch comes again in front of this one.
            batch = copy.deepcopy(self.last_batch[m.consumer]) + batch
            self.stats.duplicates += 1
        self.last_batch[m.consumer] = copy.deepcopy(batch)
        retries = 0
        while batch:
            try:
                result = self.invoke(m.fn.spec.logical_id, {"Records": copy.deepcopy(batch)}) or {}
                failed = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
            except Exception:  # noqa: BLE001 - the whole batch again
                failed = [batch[0]["dynamodb"]["SequenceNumber"]]
            if not failed:
                return
            first = next((i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failed), 0)
            batch = batch[first:]
            if 0 <= m.max_retries <= retries:
                self.stats.dropped_batches += 1
                return
            retries += 1

    def _reorder(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records of different items in another order; each item's keep theirs."""
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in batch:
            by_key[json.dumps(r["dynamodb"]["Keys"], sort_keys=True)].append(r)
        keys = list(by_key)
        out = []
        while keys:
            k = self.rng.choice(keys)
            out.append(by_key[k].pop(0))
            if not by_key[k]:
                keys.remove(k)
        return out

    # -- the ECS agent ----------------------------------------------------------------------

    def _backend(self) -> Any:
        return ecs_backends[ACCOUNT][REGION]

    def scan_tasks(self) -> None:
        """Note the tasks RunTask started since the last look."""
        for cluster, tasks in self._backend().tasks.items():
            for arn, t in tasks.items():
                if arn in self.tasks:
                    continue
                override = (t.overrides.get("containerOverrides") or [{}])[0]
                env = {e["name"]: e["value"] for e in override.get("environment", [])}
                self.tasks[arn] = Task(
                    arn=arn, cluster=cluster, job_id=env.get("AWS_BATCH_JOB_ID", ""),
                    run=int(t.started_by.rsplit("/", 1)[-1]), attempt=int(env.get("AWS_BATCH_JOB_ATTEMPT", 0)),
                    command=list(override.get("command") or []),
                    detail={"overrides": copy.deepcopy(t.overrides), "startedBy": t.started_by,
                            "clusterArn": t.cluster_arn, "taskDefinitionArn": t.task_definition_arn,
                            "containerInstanceArn": t.container_instance_arn},
                )

    def agent_ready(self) -> list[Task]:
        self.scan_tasks()
        backend = self._backend()
        out = []
        for task in self.tasks.values():
            if task.state == "STOPPED":
                continue
            model = backend.tasks[task.cluster][task.arn]
            if task.state == "PROVISIONING" or model.desired_status == "STOPPED" or task.command != ["sleep"]:
                out.append(task)
        return out

    def agent_step(self, task: Task) -> None:
        """The task moves one status on: it starts, or it ends (its command's exit code,
        or stopped by StopTask), and ECS emits the event."""
        model = self._backend().tasks[task.cluster][task.arn]
        stop_requested = model.desired_status == "STOPPED"
        now = datetime.fromtimestamp(clock.now_ms() / 1000, UTC)
        if task.state == "PROVISIONING" and not stop_requested:
            task.state, task.started_step = "RUNNING", self.step
            model.started_at = now
            self._emit(task, "RUNNING")
            return
        if stop_requested:
            code, stop_code, reason = (143 if task.state == "RUNNING" else None), "UserInitiated", \
                model.stopped_reason or "Task stopped by user"
        else:
            code, stop_code, reason = self._exit_code(task), "EssentialContainerExited", rules.ESSENTIAL_EXITED
            self._backend().stop_task(task.cluster, task.arn, reason)  # frees the instance's resources
        ran = task.state == "RUNNING"
        task.state, task.stopped_step, task.exit_code = "STOPPED", self.step, code
        model.last_status, model.desired_status = "STOPPED", "STOPPED"
        model.stopped_reason, model.stop_code, model.stopped_at = reason, stop_code, now
        if code is not None:
            model.containers[0].exitCode = code
        self._emit(task, "STOPPED", stop_code=stop_code, reason=reason, exit_code=code, ran=ran)

    @staticmethod
    def _exit_code(task: Task) -> int:
        if task.command[:1] == ["fail-until-attempt"]:
            return 0 if task.attempt >= int(task.command[1]) else 1
        return 1 if task.command == ["false"] else 0

    def _emit(self, task: Task, status: str, *, stop_code: str | None = None, reason: str | None = None,
              exit_code: int | None = None, ran: bool = True) -> None:
        event = load_event(f"events/ecs-task-{status.lower()}.json")
        stamp = datetime.fromtimestamp(clock.now_ms() / 1000, UTC).isoformat().replace("+00:00", "Z")
        detail = {**event["detail"], **copy.deepcopy(task.detail), "taskArn": task.arn, "lastStatus": status,
                  "desiredStatus": "STOPPED" if status == "STOPPED" else "RUNNING",
                  "launchType": "EC2", "updatedAt": stamp}
        detail.pop("capacityProviderName", None)
        detail["containers"] = [{"name": "default", "lastStatus": status, "taskArn": task.arn,
                                 **({"exitCode": exit_code} if exit_code is not None else {})}]
        if status == "RUNNING" or ran:
            detail["startedAt"] = stamp
        else:
            detail.pop("startedAt", None)
        if status == "STOPPED":
            detail.update(stopCode=stop_code, stoppedReason=reason, stoppedAt=stamp)
        else:
            for k in ("stopCode", "stoppedReason", "stoppedAt", "stoppingAt", "executionStoppedAt"):
                detail.pop(k, None)
        event.update(id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), detail=detail, time=stamp,
                     resources=[task.arn])
        self.pending_events.append(Delivery("EventsFunction", event))
        if self.chaos and self.rng.random() < 0.15:
            self.pending_events.append(Delivery("EventsFunction", copy.deepcopy(event)))
            self.stats.duplicates += 1

    def deliver_event(self) -> None:
        """One EventBridge delivery: any pending event (they are not ordered)."""
        i = self.rng.randrange(len(self.pending_events)) if self.chaos else 0
        if i:
            self.stats.reorders += 1
        delivery = self.pending_events.pop(i)
        try:
            self.invoke(delivery.function, copy.deepcopy(delivery.event))
        except Exception:  # noqa: BLE001 - EventBridge tries again, a few times
            delivery.tries_left -= 1
            if delivery.tries_left:
                self.pending_events.append(delivery)
            else:
                self.stats.dropped_events += 1

    # -- Step Functions ---------------------------------------------------------------------

    def scan_executions(self) -> None:
        machine = stepfunctions_backends[ACCOUNT][REGION].describe_state_machine(self.state_machine)
        for e in machine.executions:
            if e.name in self.executions:
                continue
            payload = json.loads(e.execution_input)
            chunks = list(payload["chunks"])
            if self.chaos:
                self.rng.shuffle(chunks)  # the Map runs up to 8 at once: any order
            self.executions[e.name] = Execution(e.name, payload, chunks)

    def executions_ready(self) -> list[Execution]:
        self.scan_executions()
        return [e for e in self.executions.values() if e.phase != "done"]

    def _retry(self, state: dict[str, Any]) -> int:
        return max(r.get("MaxAttempts", 3) for r in state.get("Retry", [{}]))

    def execution_step(self, ex: Execution) -> None:
        """One Task state of the execution (with its Retry and Catch)."""
        states = self.asl["States"]
        p = ex.payload
        if ex.phase == "chunks":
            if not ex.todo:
                ex.phase, ex.tries = "settle", 0
                return
            item = ex.todo[0]
            state = states["Chunks"]["ItemProcessor"]["States"]["Chunk"]
            event = {"parentId": p["parentId"], "action": p["action"], "start": item["start"], "count": item["count"]}
        elif ex.phase == "settle":
            state = states["Settle"]
            event = {"parentId": p["parentId"], "action": p["action"], "phase": "done"}
        else:
            state = states["Failed"]
            event = {"parentId": p["parentId"], "action": p["action"], "phase": "failed", "error": ex.error}
        try:
            self.invoke("ArraysFunction", event)
            if self.chaos and ex.phase == "chunks" and self.rng.random() < 0.1:
                self.invoke("ArraysFunction", event)  # the task ran again after a lost answer
                self.stats.duplicates += 1
        except Exception as e:  # noqa: BLE001 - States.TaskFailed: Retry, then Catch
            ex.tries += 1
            if ex.tries <= self._retry(state):
                return
            if ex.phase == "failed":
                self._end(ex, "FAILED")  # FanOutFailed: the execution fails
                return
            ex.phase, ex.tries = "failed", 0
            ex.error = {"Error": "States.TaskFailed", "Cause": json.dumps({"errorMessage": str(e)})}
            return
        ex.tries = 0
        if ex.phase == "chunks":
            ex.todo.pop(0)
        elif ex.phase == "settle":
            self._end(ex, "SUCCEEDED")
        elif ex.phase == "failed":
            ex.recorded = True
            self._end(ex, "FAILED")  # the Failed state goes on to FanOutFailed

    def _end(self, ex: Execution, status: str) -> None:
        """The execution is over: Step Functions says so to DescribeExecution."""
        ex.phase = "done"
        machine = stepfunctions_backends[ACCOUNT][REGION].describe_state_machine(self.state_machine)
        (execution,) = [e for e in machine.executions if e.name == ex.name]
        execution.status = status

    # -- time -------------------------------------------------------------------------------

    def tick(self) -> None:
        clock.advance(TICK_SECONDS)
        self.stats.ticks += 1
        event = load_event("scheduler/tick.json")
        event["time"] = clock.now_iso()
        try:
            self.invoke("SchedulerFunction", event)
        except Exception:  # noqa: BLE001 - the next tick comes anyway
            pass

    # -- reading the truth (never faulted) ---------------------------------------------------

    def items(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": TABLE, "ConsistentRead": True}
        while True:
            page = self.ddb.scan(**kwargs)
            out += page["Items"]
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def jobs(self) -> dict[str, Item]:
        return {i["pk"]["S"].removeprefix("JOB#"): Item.from_dynamo(i) for i in self.items()
                if i["sk"]["S"] == "JOB"}

    def trace_digest(self) -> str:
        return hashlib.sha256("\n".join(self.injector.trace).encode()).hexdigest()[:16]


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()
