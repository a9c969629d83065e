"""Runs attempts as processes on this machine and reports them exactly as ECS would:
ECS Task State Change events (RUNNING, then STOPPED with the exit code) delivered through
the local event router, and stdout/stderr in CloudWatch Logs (``/aws/batch/job``).

Nothing an attempt does may strand it: whatever it prints, whatever its command and
environment hold, and whatever goes wrong in the launcher, the attempt ends with a STOPPED
event. Each attempt is a process group in a working directory of its own, as a container
is a PID namespace with its own filesystem: when its main process exits, what it left
running is killed and the directory removed; stopping it signals the whole group. Its
output goes to a file, which the launcher tails into the log stream.

With a state directory (local mode on a data directory) attempts outlive the launcher, as
ECS tasks outlive their control plane. Each has a directory there: ``task.json`` (what
describes and reports it), ``output``, ``shipped`` (how much of the output is in its log
stream) and ``exit``, the exit status a small sh wrapper writes when the command ends. A
launcher started again on the directory (``adopt()``) reports the attempts that ended
meanwhile with their exit codes, follows those still running as its own, and ships what
their output holds beyond what was shipped, before the scheduler's ``recover()`` asks it
which tasks it knows.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import errno
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .. import aws, clock
from ..adapters.ecs import LOG_GROUP
from ..config import settings
from ..domain import capacity, compute
from ..ports import CONTAINER, CapacityUnavailable, LaunchRequest, log_stream_name, started_by
from .instances import DevicePool, VirtualFleet
from .metadata import MetadataEndpoint

if TYPE_CHECKING:
    from collections.abc import Callable

# What a local attempt inherits from this machine; everything else comes from the job.
_PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
FLUSH_SECONDS = 0.2  # the most a line read from the output waits before it is sent to CloudWatch Logs
TAIL_SECONDS = 0.1  # how often an output file is read for what was added, and an adopted attempt looked at
READ_BYTES = 1 << 16
# After SIGKILL at the stack's shutdown, how long the attempts may take to read the rest of
# their output and report STOPPED.
DRAIN_SECONDS = 2.0
SHIP_SECONDS = 30.0  # how long sending the rest of the output may take before STOPPED goes anyway
SHUTDOWN_GRACE_SECONDS = 2.0  # SIGTERM to SIGKILL when the stack stops
STACK_STOPPED = "batchplane local stack stopped"
# An adopted attempt whose process is gone without an exit status: it was killed with the
# stack that started it (a process-group kill, a reboot), as a host goes away under a task.
DIED_WITH_STACK = "batchplane local stack died: the job's process ended with it"
REASON_LIMIT = 255  # characters of a container's reason, as ECS and AWS Batch keep

# An attempt's files in the state directory.
TASK_FILE = "task.json"
OUTPUT_FILE = "output"
SHIPPED_FILE = "shipped"
EXIT_FILE = "exit"
SAVE_SHIPPED_SECONDS = 1.0  # how often a running attempt's shipped offset is saved, at most
# A task's directory is removed this long after its STOPPED event was published: publishing
# only queues the event for the handlers, and until the store has recorded the end, the
# directory is what lets a restarted launcher report it again (the handlers ignore a repeat).
FORGET_SECONDS = 10.0
# A stopped task is described (and its run's launch answered with it) for this long, then
# forgotten, as ECS shows stopped tasks for about an hour: the launcher's memory stays
# that of an hour of attempts, not of every attempt since the stack started (a 100,000-
# child array). The tick reconciles an attempt within minutes of its end.
STOPPED_TASK_SECONDS = 3600.0

# The command with its exit status written to the file named by $0 when it ends: the one
# thing a launcher started again cannot learn otherwise, the command being no child of its.
# sh only waits (about 1 ms of CPU per attempt). It ignores the SIGTERM a stop sends its
# group (a trap, which the command does not inherit), so that the status is the command's;
# its own stderr goes to /dev/null so that its reports ("Killed") stay out of the job's log.
_WRAPPER = 'trap : TERM; exec 3>&2 2>/dev/null; ( exec "$@" 2>&3 3>&- ); s=$?; echo $s > "$0"; exit $s'
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # the variables sh passes on to a command

# PutLogEvents' limits as Docker's awslogs driver counts them: 26 bytes per event on top of
# its message, 1 MiB and 10,000 events per request, 256 KiB per event, and one request's
# events within 24 hours.
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 262_144 - EVENT_OVERHEAD
MAX_BATCH_BYTES = 1_048_576
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000 - 1
# CloudWatch Logs refuses an empty message. Docker's awslogs driver sends no event for an
# empty line; local mode keeps the line, as the smallest message there is.
EMPTY_LINE = " "

log = logging.getLogger(__name__)


def cluster_arn(ce: dict[str, Any]) -> str:
    """The ECS cluster of a local compute environment: the one it was given, or a new one
    named as AWS Batch names them (``<name>_Batch_<part of its uuid>``)."""
    if ce.get("ecsClusterArn"):
        return ce["ecsClusterArn"]
    s = settings()
    name = ce["computeEnvironmentName"]
    if ce.get("uuid"):
        name = f"{name}_Batch_{ce['uuid'].replace('-', '')[:24]}"
    return f"arn:aws:ecs:{s.region}:{s.account_id}:cluster/{name}"


def _now() -> float:
    """Seconds on batchplane's clock, which tests move forward; job times must agree with it."""
    return clock.now_ms() / 1000


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Task:
    def __init__(self, arn: str, request: LaunchRequest, started: float) -> None:
        self.arn = arn
        self.request = request
        self.started = started
        self.process: subprocess.Popen[bytes] | None = None  # the main process, when it is a child of ours
        self.pid: int | None = None  # the main process's id, once it started: its group's too
        # Its start time, from /proc: an adopted attempt's process is signalled only while
        # the process with its id is still it, not one that got the id later.
        self.start_ticks: int | None = None
        self.adopted = False  # started by an earlier launcher on the state directory
        self.dir: Path | None = None  # its directory in the state directory
        self.output: BinaryIO | None = None  # its output file, open for reading
        self.shipped = 0  # bytes at the output's start that are in its log stream
        self.workdir: str | None = None
        self.stop_reason: str | None = None
        self.stop_code = "UserInitiated"  # of a stop asked for with stop_reason
        self.timed_out = False
        self.killed = False  # SIGKILL was sent to its group
        self.exited = threading.Event()  # the main process has exited, and its group was ended
        # Held while the process group is signalled or its leader reaped: once reaped, its
        # process id may be reused, and no signal may reach what has it then.
        self.lock = threading.Lock()
        self.reaped = False
        self.done = threading.Event()
        self.reported = threading.Event()  # its STOPPED event has been published
        self.instance = ""
        self.instance_type: str | None = None
        self.address = "127.0.0.1"  # its instance's private IPv4 address
        self.devices: list[str] = []  # the machine's GPUs it was given (DevicePool)
        self.detail: dict[str, Any] | None = None  # of the last event it reported


class LocalProcessLauncher:
    """A TaskLauncher for local mode. ``publish`` receives each ECS-shaped event.
    ``state_dir``: where attempts keep what lets them outlive this launcher (see the
    module's docstring); None, they end with it."""

    def __init__(
        self,
        publish: Callable[[dict[str, Any]], None],
        logs: Any,
        *,
        extra_env: dict[str, str] | None = None,
        kill_grace_seconds: float = 30.0,
        timeout_scale: float = 1.0,
        state_dir: Path | None = None,
        gpus: DevicePool | None = None,
    ) -> None:
        self.publish = publish
        self.logs = logs
        self.extra_env = extra_env or {}
        self.kill_grace = kill_grace_seconds
        self.timeout_scale = timeout_scale  # tests shrink attemptDurationSeconds with it
        self.state_dir = state_dir
        self._tasks: dict[str, _Task] = {}
        # The virtual instances of each compute environment (see instances.py); an
        # interruption removes one, as a Spot reclaim would.
        self.fleet = VirtualFleet()
        # The machine's GPUs, each attempt given its own (none: GPU jobs run without devices).
        self.gpus = gpus or DevicePool([])
        self._by_run: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._forget: collections.deque[tuple[float, Path]] = collections.deque()  # (when, task directory)
        self._stopped_tasks: collections.deque[tuple[float, str]] = collections.deque()  # (when, task ARN)
        self._ids: dict[str, str] = {}  # task id -> task ARN, for the metadata endpoint
        self.metadata = MetadataEndpoint(self.task_metadata, state_dir)

    # -- TaskLauncher -----------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> str:
        key = (request.job["jobId"], request.run)
        with self._lock:
            if key in self._by_run:  # idempotent, like RunTask's clientToken
                return self._by_run[key]
            if self._closing:
                raise CapacityUnavailable("the local stack is stopping: it starts no more attempts")
            self._forget_stopped_tasks()
            task_id = uuid.uuid4().hex
            ce = request.compute_environment["computeEnvironmentName"]
            s = settings()
            arn = f"arn:aws:ecs:{s.region}:{s.account_id}:task/{ce}/{task_id}"
            task = _Task(arn, request, _now())
            # A node of a multi-node parallel job runs alone on its instance, as on AWS.
            instance = self.fleet.place(request.compute_environment, arn, capacity.Shape.of(request.job["container"]),
                                        exclusive="nodeDetails" in request.job)
            if instance is None:
                raise CapacityUnavailable(f"no instance of compute environment {ce} has room for the task, "
                                          "and it has maxvCpus of instances already")
            wanted = capacity.Shape.of(request.job["container"]).gpus
            if wanted and self.gpus.devices:
                devices = self.gpus.take(arn, wanted)
                if devices is None:
                    self.fleet.release(arn)
                    raise CapacityUnavailable(
                        f"the job needs {wanted} GPUs and {len(self.gpus.free())} of this machine's "
                        f"{len(self.gpus.devices)} are free: it waits for a GPU job to end")
                task.devices = devices
            task.instance = instance.instance_id
            task.instance_type = instance.type.name if instance.type else None
            task.address = instance.address
            if self.state_dir is not None:
                task.dir = self.state_dir / task_id
            self._tasks[arn] = task
            self._by_run[key] = arn
            self._ids[task_id] = arn
        threading.Thread(target=self._run, args=(task,), name=f"task-{task_id[:8]}", daemon=True).start()
        return arn

    def stop(self, task_arn: str, reason: str) -> None:
        task = self._tasks.get(task_arn)
        if task is None or task.done.is_set():
            return
        task.stop_reason = reason
        self._terminate(task)

    def attempts_on_instance(self, instance_id: str, clusters: list[str]) -> list[tuple[str, int]]:  # noqa: ARG002 - the TaskLauncher port's signature: ECS's launcher needs the clusters
        with self._lock:
            found = [(t.request.job["jobId"], t.request.run) for t in self._tasks.values()
                     if t.instance == instance_id and not t.done.is_set()]
            self.fleet.remove(instance_id)  # the next attempts land on other instances
        return found

    def describe(self, task_arns: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        found, missing = [], []
        with self._lock:
            for arn in task_arns:
                task = self._tasks.get(arn)
                if task is None:
                    missing.append(arn)
                else:
                    found.append(copy.deepcopy(task.detail or self._event(task, "PENDING")["detail"]))
        return found, missing

    # -- what a container sees of ECS ------------------------------------------------

    def _container_env(self, task: _Task) -> dict[str, str]:
        """The variables the ECS agent sets in every container of a task: where it runs
        (AWS_EXECUTION_ENV, as the AWS SDKs and Metaflow read it), its region and its
        metadata endpoint."""
        s = settings()
        fargate = compute.is_fargate(task.request.compute_environment)
        env = {
            "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE" if fargate else "AWS_ECS_EC2",
            "AWS_REGION": s.region,
            "AWS_DEFAULT_REGION": s.region,
            **self.metadata.environment(task.arn.rsplit("/", 1)[-1]),
        }
        if self.gpus.devices:
            # Its own GPUs only, as ECS exposes a task's: none to a job that asked for none.
            visible = ",".join(task.devices)
            env.update({"CUDA_VISIBLE_DEVICES": visible, "NVIDIA_VISIBLE_DEVICES": visible or "void"})
        return env

    def task_metadata(self, task_id: str) -> dict[str, Any] | None:
        """What the task metadata endpoint (v3/v4) answers at ``/task`` for a task of this
        launcher, or None."""
        with self._lock:
            task = self._tasks.get(self._ids.get(task_id, ""))
            if task is None:
                return None
            known = (task.detail or {}).get("lastStatus", "PENDING")
        s = settings()
        job = task.request.job
        family, _, revision = job["jobDefinition"].rsplit("/", 1)[-1].partition(":")
        cluster = cluster_arn(task.request.compute_environment)
        shape = capacity.Shape.of(job["container"])
        started = _iso(task.started)
        stream = log_stream_name(job["jobDefinition"], task.arn)
        container = {
            "DockerId": task_id,
            "Name": CONTAINER,
            "DockerName": f"ecs-{family}-{revision}-{CONTAINER}-{task_id[:20]}",
            "Image": job["container"].get("image", ""),
            "ImageID": "",
            "Labels": {
                "com.amazonaws.ecs.cluster": cluster,
                "com.amazonaws.ecs.container-name": CONTAINER,
                "com.amazonaws.ecs.task-arn": task.arn,
                "com.amazonaws.ecs.task-definition-family": family,
                "com.amazonaws.ecs.task-definition-version": revision,
            },
            "DesiredStatus": "STOPPED" if known == "STOPPED" else "RUNNING",
            "KnownStatus": known,
            "Limits": {"CPU": shape.mvcpus * 1024 // 1000, "Memory": shape.memory_mib},
            "CreatedAt": started,
            "StartedAt": started,
            "Type": "NORMAL",
            "LogDriver": "awslogs",
            "LogOptions": {"awslogs-group": LOG_GROUP, "awslogs-region": s.region, "awslogs-stream": stream},
            "ContainerARN": f"arn:aws:ecs:{s.region}:{s.account_id}:container/{task_id}",
            "Networks": [{"NetworkMode": "awsvpc" if "nodeDetails" in job else "host",
                          "IPv4Addresses": [task.address]}],
        }
        return {
            "Cluster": cluster,
            "TaskARN": task.arn,
            "Family": family,
            "Revision": revision,
            "DesiredStatus": container["DesiredStatus"],
            "KnownStatus": known,
            "Limits": {"CPU": shape.mvcpus / 1000, "Memory": shape.memory_mib},
            "PullStartedAt": started,
            "PullStoppedAt": started,
            "AvailabilityZone": f"{s.region}a",
            "LaunchType": "FARGATE" if compute.is_fargate(task.request.compute_environment) else "EC2",
            "Containers": [container],
        }

    # -- after a restart --------------------------------------------------------------

    def adopt(self) -> int:
        """Take over the attempts an earlier launcher on the state directory left, as the
        ECS agent reports its tasks when it is back: one whose process ended meanwhile is
        reported STOPPED with its exit code, one still running is followed (its output,
        stop, timeout, its end) as if started here, and one whose process was killed with
        the stack is reported STOPPED as TerminationNotice, to be retried. Each ships the
        output its log stream lacks first. Call it before anything asks describe() about
        them; returns how many it took over."""
        if self.state_dir is None:
            return 0
        self.state_dir.mkdir(parents=True, exist_ok=True)
        adopted = []
        for path in sorted(self.state_dir.iterdir()):
            task = self._load(path) if path.is_dir() else None
            if task is None:
                continue
            key = (task.request.job["jobId"], task.request.run)
            with self._lock:
                if task.arn in self._tasks or key in self._by_run:  # adopted already
                    if task.output:
                        task.output.close()
                    continue
                self._tasks[task.arn] = task
                self._by_run[key] = task.arn
                self._ids[task.arn.rsplit("/", 1)[-1]] = task.arn
                self.fleet.adopt(task.request.compute_environment, task.arn,
                                 capacity.Shape.of(task.request.job["container"]), task.instance, task.instance_type)
                if task.devices:
                    self.gpus.adopt(task.arn, task.devices)
            adopted.append(task)
        for task in adopted:
            threading.Thread(target=self._resume, args=(task,), name=f"task-{task.arn[-32:-24]}",
                             daemon=True).start()
        if adopted:
            log.warning("adopted %d attempts left by the previous local stack", len(adopted))
        return len(adopted)

    def _load(self, path: Path) -> _Task | None:
        """The attempt a task directory describes, or None (and the directory removed) if it
        describes none: the launcher died before it recorded the attempt's process, which
        its job's reconciliation then finds lost."""
        try:
            doc = json.loads((path / TASK_FILE).read_text())
            request = LaunchRequest(job=doc["job"], attempt=doc["attempt"], run=doc["run"],
                                    queue_name=doc["queueName"], compute_environment=doc["computeEnvironment"],
                                    environment=doc["environment"])
            task = _Task(doc["taskArn"], request, doc["startedAt"])
            task.pid, task.start_ticks = doc["pid"], doc["pidStartTime"]
            task.instance, task.instance_type = doc["instance"], doc.get("instanceType")
            task.workdir = doc.get("workdir")
            task.devices = list(doc.get("devices") or [])
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("task directory %s describes no attempt that can be adopted (%s): removed", path, e)
            shutil.rmtree(path, ignore_errors=True)
            return None
        task.adopted = True
        task.dir = path
        if task.pid is None:  # the launcher died as it started the process, if it did
            task.pid, task.start_ticks = _find_wrapper(path / EXIT_FILE) or (None, None)
        with contextlib.suppress(OSError):
            task.output = open(path / OUTPUT_FILE, "rb")  # noqa: SIM115 - closed by _pump
        task.shipped = _read_number(path / SHIPPED_FILE) or 0
        # What it is until it is known to have ended.
        task.detail = self._event(task, "RUNNING", startedAt=_iso(task.started), createdAt=_iso(task.started))["detail"]
        return task

    def _resume(self, task: _Task) -> None:
        try:
            # The process first, then its exit status: had it ended after the status was
            # looked for, it would seem killed.
            alive = _same_process(task.pid, task.start_ticks)
            assert task.dir is not None
            code = _read_number(task.dir / EXIT_FILE)
            if code is None and alive:
                self._follow(task)
                return
            with task.lock:
                task.reaped = True  # its id is not its own any more: nothing signals it
            task.exited.set()
            self._pump(task, self._stream(task))
            self._end(task, code, None, None)
        except Exception as e:  # noqa: BLE001 - a launcher fault must end the attempt, not strand it
            log.exception("task %s (job %s): the launcher failed", task.arn, task.request.job.get("jobId"))
            self._abandon(task, e)

    def _follow(self, task: _Task) -> None:
        """An adopted attempt still running, from now to STOPPED."""
        stream = self._stream(task)
        timer = self._arm_timeout(task, elapsed=_now() - task.started)
        reader = threading.Thread(target=self._pump, args=(task, stream), name=f"logs-{task.arn[-8:]}",
                                  daemon=True)
        reader.start()
        self._end(task, self._await_exit(task), timer, reader)

    def _await_exit(self, task: _Task) -> int | None:
        """Wait for an adopted attempt's main process to end, and end what it left running;
        its exit status, or None if it wrote none. It is no child of ours, so its exit file
        and its process are looked at every TAIL_SECONDS."""
        assert task.dir is not None and task.pid is not None
        while True:
            alive = _same_process(task.pid, task.start_ticks)
            code = _read_number(task.dir / EXIT_FILE)
            if code is not None or not alive:
                break
            time.sleep(TAIL_SECONDS)
        with task.lock:
            # What it left running ends with it. Once the main process is gone its id stays
            # unused while its group has members, so the signal reaches those or nothing
            # (unless, within TAIL_SECONDS, a new process got the id and made it its group's).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(task.pid, signal.SIGKILL)
            task.reaped = True
        task.exited.set()
        if code is None and task.killed:  # killed by a stop of ours: as Docker reports it
            code = 128 + signal.SIGKILL
        return code

    # -- inside -----------------------------------------------------------------------

    def _report(self, task: _Task, last_status: str, **detail: Any) -> bool:
        """Publish the task's event; whether it was handed on."""
        event = self._event(task, last_status, **detail)
        task.detail = event["detail"]
        try:
            self.publish(event)
        except Exception as e:  # noqa: BLE001 - e.g. the router has stopped; describe() still tells
            log.warning("task %s: its %s event was not delivered: %s", task.arn, last_status, e)
            return False
        return True

    def instance_of(self, job_id: str) -> str | None:
        """The virtual instance running the job's current attempt, if it runs."""
        with self._lock:
            for task in self._tasks.values():
                if task.request.job["jobId"] == job_id and not task.done.is_set():
                    return task.instance
        return None

    def running(self) -> list[str]:
        with self._lock:
            return [arn for arn, t in self._tasks.items() if not t.done.is_set()]

    def shutdown(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop every attempt still running and start no more: SIGTERM to each attempt's
        process group, SIGKILL to what is left after ``grace`` seconds. Returns once they
        have ended and reported STOPPED (a few seconds at most), so that no job process
        outlives the stack. The host goes away under them (stopCode TerminationNotice), so
        their jobs retry per their retryStrategy instead of failing as if terminated."""
        with self._lock:
            self._closing = True
            tasks = [t for t in self._tasks.values() if not t.done.is_set()]
        for task in tasks:
            if task.stop_reason is None:
                task.stop_code, task.stop_reason = "TerminationNotice", STACK_STOPPED
            self._signal(task, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for task in tasks:
            task.reported.wait(max(0.0, deadline - time.monotonic()))
        for task in tasks:
            if not task.done.is_set():
                self._signal(task, signal.SIGKILL)
        deadline = time.monotonic() + DRAIN_SECONDS + 1.0
        for task in tasks:
            if not task.reported.wait(max(0.0, deadline - time.monotonic())):
                log.warning("task %s did not end within the stack's shutdown", task.arn)
        self.metadata.close()

    def _signal(self, task: _Task, sig: int) -> None:
        """Send ``sig`` to the attempt's process group, unless its leader is reaped already
        (or, adopted, is no longer the process it was)."""
        with task.lock:
            if task.pid is None or task.reaped:
                return
            if task.process is None and not _same_process(task.pid, task.start_ticks):
                return
            task.killed = task.killed or sig == signal.SIGKILL
            # EPERM: on some systems, a group left with only zombies.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(task.pid, sig)

    def _terminate(self, task: _Task, grace: float | None = None) -> None:
        """SIGTERM to the attempt's process group, SIGKILL if it has not ended after the grace."""
        self._signal(task, signal.SIGTERM)
        wait = self.kill_grace if grace is None else grace

        def kill_later() -> None:
            if not task.done.wait(wait):
                self._signal(task, signal.SIGKILL)

        threading.Thread(target=kill_later, name=f"kill-{task.arn[-8:]}", daemon=True).start()

    def _event(self, task: _Task, last_status: str, **detail: Any) -> dict[str, Any]:
        s = settings()
        env = [{"name": k, "value": v} for k, v in task.request.environment.items()]
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "ECS Task State Change",
            "source": "aws.ecs",
            "account": s.account_id,
            "time": _iso(_now()),
            "region": s.region,
            "resources": [task.arn],
            "detail": {
                "clusterArn": cluster_arn(task.request.compute_environment),
                "taskArn": task.arn,
                "containerInstanceArn": f"arn:aws:ecs:{s.region}:{s.account_id}:container-instance/"
                + f"{task.request.compute_environment['computeEnvironmentName']}/{task.instance}",
                "lastStatus": last_status,
                "desiredStatus": "STOPPED" if last_status == "STOPPED" else "RUNNING",
                "startedBy": started_by(task.request.run),
                "launchType": "LOCAL",
                "overrides": {"containerOverrides": [{"name": CONTAINER, "environment": env}]},
                **detail,
            },
        }

    @staticmethod
    def _network(task: _Task) -> dict[str, Any]:
        """A node's container's network interface, as an awsvpc task's ECS event has it:
        its instance's address (the other nodes find the main node there)."""
        if "nodeDetails" not in task.request.job:
            return {}
        return {"networkInterfaces": [{"attachmentId": f"eni-attachment-{task.arn.rsplit('/', 1)[-1][:12]}",
                                       "privateIpv4Address": task.address}]}

    def _stream(self, task: _Task) -> _LogStream:
        stream = _LogStream(self.logs, log_stream_name(task.request.job["jobDefinition"], task.arn))
        stream.create()
        return stream

    def _run(self, task: _Task) -> None:
        """The attempt from start to STOPPED. Whatever fails here, the attempt still ends:
        its processes are killed and it reports STOPPED with the reason."""
        try:
            self._attempt(task)
        except Exception as e:  # noqa: BLE001 - a launcher fault must end the attempt, not strand it
            log.exception("task %s (job %s): the launcher failed", task.arn, task.request.job.get("jobId"))
            self._abandon(task, e)

    def _attempt(self, task: _Task) -> None:
        request = task.request
        job = request.job
        command = job["container"].get("command") or []
        env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
        env.update(self.extra_env)
        env.update(self._container_env(task))
        env.update(request.environment)
        if not command:
            self._stopped(task, stop_code="TaskFailedToStart", exit_code=None,
                          reason=(f"CannotStartContainerError: job has no command and local mode "
                                  f"cannot run the image {job['container'].get('image')}'s default"))
            return
        try:
            task.workdir = tempfile.mkdtemp(prefix=f"batchplane-{job['jobId'][:8]}-")
            self._start(task, command, env)
        except Exception as e:  # noqa: BLE001 - any command or environment must end in a reason
            if task.output:
                task.output.close()
            self._stopped(task, stop_code="TaskFailedToStart", exit_code=None,
                          reason=f"CannotStartContainerError: {_cannot_start(e, command)}")
            return
        if self._closing or task.stop_reason:  # stopped while it was starting
            self._terminate(task, grace=SHUTDOWN_GRACE_SECONDS if self._closing else None)
        stream = self._stream(task)
        self._report(task, "RUNNING", startedAt=_iso(task.started), createdAt=_iso(task.started),
                     containers=[{"name": CONTAINER, "lastStatus": "RUNNING", **self._network(task)}])
        timer = self._arm_timeout(task)
        reader = threading.Thread(target=self._pump, args=(task, stream), name=f"logs-{task.arn[-8:]}",
                                  daemon=True)
        reader.start()
        self._end(task, _exit_code(self._wait(task)), timer, reader)

    def _start(self, task: _Task, command: list[Any], env: dict[str, str]) -> None:
        """Start the attempt's process, its output going to a file; in the state directory
        (with its exit status, and task.json describing it) when there is one."""
        assert task.workdir is not None
        if task.dir is None:
            argv = command
            # A file without a name: nothing to remove, gone once closed.
            task.output = writer = tempfile.TemporaryFile(prefix="batchplane-output-")  # noqa: SIM115
        else:
            # sh would say the command is not found only as exit status 127, in the log.
            argv = _wrapped(command, env, task.workdir, task.dir / EXIT_FILE)
            task.dir.mkdir(parents=True)
            writer = open(task.dir / OUTPUT_FILE, "ab")  # type: ignore[assignment]  # noqa: SIM115 - a file either way
            task.output = open(task.dir / OUTPUT_FILE, "rb")  # noqa: SIM115 - closed by _pump
            # Before it starts, too: the store may know its task already, and a launcher
            # that dies before it records the process's id leaves what finds it (_load).
            self._save_task(task)
        try:
            process = subprocess.Popen(
                argv, env=env, cwd=task.workdir, stdout=writer, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            if writer is not task.output:
                writer.close()
        with task.lock:
            task.process, task.pid = process, process.pid
        if task.dir is not None:
            stat = _stat(process.pid)  # a zombie's too: a quick command may have exited already
            task.start_ticks = stat[1] if stat else None
            self._save_task(task)

    def _save_task(self, task: _Task) -> None:
        """task.json: what a launcher started again needs to describe, follow and report the
        attempt. Without it the attempt still runs, but cannot be adopted."""
        assert task.dir is not None
        r = task.request
        doc = {"taskArn": task.arn, "job": r.job, "attempt": r.attempt, "run": r.run, "queueName": r.queue_name,
               "computeEnvironment": r.compute_environment, "environment": r.environment,
               "instance": task.instance, "instanceType": task.instance_type, "startedAt": task.started,
               "pid": task.pid, "pidStartTime": task.start_ticks, "workdir": task.workdir, "devices": task.devices}
        try:
            _write_atomically(task.dir / TASK_FILE, json.dumps(doc, default=json_default))
        except (OSError, TypeError, ValueError) as e:
            log.warning("task %s: %s not written, the attempt cannot be adopted after a restart: %s",
                        task.arn, TASK_FILE, e)

    def _end(self, task: _Task, exit_code: int | None, timer: threading.Timer | None,
             reader: threading.Thread | None) -> None:
        """Report the attempt STOPPED once its main process has exited (and its output been
        read), as what ended it says."""
        if timer:
            timer.cancel()
        if reader:
            reader.join(DRAIN_SECONDS + SHIP_SECONDS)
        if task.timed_out:
            self._stopped(task, stop_code="EssentialContainerExited", exit_code=exit_code,
                          reason=None, timed_out=True)
        elif task.stop_reason:
            self._stopped(task, stop_code=task.stop_code, exit_code=exit_code,
                          reason=None, stopped_reason=task.stop_reason)
        elif exit_code is None:  # adopted, and killed with the stack that started it
            self._stopped(task, stop_code="TerminationNotice", exit_code=None, reason=None,
                          stopped_reason=DIED_WITH_STACK)
        else:
            self._stopped(task, stop_code="EssentialContainerExited", exit_code=exit_code,
                          reason=None)

    def _wait(self, task: _Task) -> int:
        """Wait for the main process to exit, then end what it left running in its group, as
        a container's processes end with its main one; returns its wait status."""
        process = task.process
        assert process is not None
        if hasattr(os, "waitid"):  # waits without reaping: the group's id stays ours meanwhile
            with contextlib.suppress(ChildProcessError):
                os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        else:  # reaps, and from then on the id could be reused: rare enough to accept here
            process.wait()
        with task.lock:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            code = process.wait()
            task.reaped = True
        task.exited.set()
        return code

    def _abandon(self, task: _Task, error: Exception) -> None:
        """End an attempt the launcher failed in the middle of: kill its processes and
        report it STOPPED with the error as the reason."""
        if task.done.is_set():
            return
        exit_code = None
        process = task.process
        if process is not None:
            with task.lock:
                if not task.reaped:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(process.pid, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        exit_code = _exit_code(process.wait(timeout=5))
                        task.reaped = True
        else:  # adopted: no child of ours to reap
            self._signal(task, signal.SIGKILL)
            with task.lock:
                task.reaped = True
        task.exited.set()
        why = f"batchplane's launcher failed: {type(error).__name__}: {error}"
        if task.detail is None:  # it never reported RUNNING
            self._stopped(task, stop_code="TaskFailedToStart", exit_code=exit_code,
                          reason=f"CannotStartContainerError: {why}")
        else:
            self._stopped(task, stop_code="EssentialContainerExited", exit_code=exit_code,
                          reason=f"InternalError: {why}")

    def _arm_timeout(self, task: _Task, elapsed: float = 0.0) -> threading.Timer | None:
        """The attempt's attemptDurationSeconds, of which ``elapsed`` seconds have passed."""
        seconds = (task.request.job.get("timeout") or {}).get("attemptDurationSeconds")
        if not seconds:
            return None

        def expire() -> None:
            task.timed_out = True
            self._terminate(task)

        timer = threading.Timer(max(0.0, seconds * self.timeout_scale - elapsed), expire)
        timer.daemon = True
        timer.start()
        return timer

    def _stopped(self, task: _Task, *, stop_code: str, exit_code: int | None,
                 reason: str | None, stopped_reason: str | None = None, timed_out: bool = False) -> None:
        reason = _printable(reason) if reason else None
        container: dict[str, Any] = {"name": CONTAINER, "lastStatus": "STOPPED", **self._network(task)}
        if exit_code is not None:
            container["exitCode"] = exit_code
        if reason:
            container["reason"] = reason
        now = _now()
        detail: dict[str, Any] = {
            "stopCode": stop_code,
            "stoppedReason": stopped_reason or (
                "Essential container in task exited" if stop_code == "EssentialContainerExited"
                else reason or stop_code
            ),
            "containers": [container],
            "createdAt": _iso(task.started),
            "stoppedAt": _iso(now),
        }
        if task.pid is not None:
            detail["startedAt"] = _iso(task.started)
        if timed_out:
            detail["timedOut"] = True
        with self._lock:
            self.fleet.release(task.arn)
            self.gpus.release(task.arn)
        if task.workdir:  # the container's filesystem goes with it
            shutil.rmtree(task.workdir, ignore_errors=True)
        task.done.set()
        with self._lock:
            self._stopped_tasks.append((time.monotonic() + STOPPED_TASK_SECONDS, task.arn))
        published = self._report(task, "STOPPED", **detail)
        task.reported.set()
        if published and task.dir is not None:
            self._forget_later(task.dir)

    def _forget_stopped_tasks(self) -> None:
        """Drop the tasks stopped more than STOPPED_TASK_SECONDS ago. Called with the lock held."""
        now = time.monotonic()
        while self._stopped_tasks and self._stopped_tasks[0][0] <= now:
            task = self._tasks.pop(self._stopped_tasks.popleft()[1], None)
            if task is not None:
                self._by_run.pop((task.request.job["jobId"], task.request.run), None)
                self._ids.pop(task.arn.rsplit("/", 1)[-1], None)

    def _forget_later(self, path: Path) -> None:
        """Remove the task directory FORGET_SECONDS from now (along with those due by then)."""
        now = time.monotonic()
        due = []
        with self._lock:
            self._forget.append((now + FORGET_SECONDS, path))
            while self._forget and self._forget[0][0] <= now:
                due.append(self._forget.popleft()[1])
        for old in due:
            shutil.rmtree(old, ignore_errors=True)

    # -- logs -------------------------------------------------------------------------

    def _pump(self, task: _Task, stream: _LogStream) -> None:
        """Copy the attempt's output file to its log stream as it grows, until the main
        process has exited and the file is read to the end it had then. A failure here
        loses output, never the attempt: nothing waits for the file to be read."""
        out = task.output
        if out is None:
            return
        try:
            self._copy(task, out.fileno(), stream)
        except Exception:  # noqa: BLE001 - the attempt must still end; its output is lost
            log.exception("task %s: its output could not be copied to %s", task.arn, stream.name)
        finally:
            out.close()

    def _copy(self, task: _Task, fd: int, stream: _LogStream) -> None:
        at = task.shipped  # the next byte to read
        pending = b""  # a line not ended yet
        end: int | None = None  # how long the output is, once the attempt's processes are gone
        saved, saved_offset = time.monotonic(), task.shipped  # when the offset was saved, and which
        while end is None or at < end:
            if end is None and task.exited.is_set():
                # All the attempt wrote is in the file now. A process that left its group
                # may write on: that is not waited for.
                end = os.fstat(fd).st_size
            chunk = os.pread(fd, READ_BYTES if end is None else min(READ_BYTES, end - at), at)
            if chunk:
                at += len(chunk)
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    stream.add(line)
                # Docker's copier hands a line longer than the driver takes on in parts.
                while len(pending) > MAX_EVENT_BYTES:
                    cut = _boundary(pending, MAX_EVENT_BYTES)
                    stream.add(pending[:cut])
                    pending = pending[cut:]
            elif end is None:
                task.exited.wait(TAIL_SECONDS)
            else:
                break
            if stream.flush_if_due():
                task.shipped = at - len(pending)
            # Saved now and then, not at each request: a launcher started again after this
            # one died re-ships the lines shipped since the last save (up to a second's
            # worth), rather than lose them.
            if (task.dir is not None and task.shipped != saved_offset
                    and time.monotonic() - saved >= SAVE_SHIPPED_SECONDS):
                self._save_shipped(task)
                saved, saved_offset = time.monotonic(), task.shipped
        if pending:
            stream.add(pending)
        stream.flush()
        task.shipped = at
        if task.dir is not None:
            self._save_shipped(task)  # all of it: a report of it again ships nothing

    @staticmethod
    def _save_shipped(task: _Task) -> None:
        assert task.dir is not None
        with contextlib.suppress(OSError):  # the next save, or a re-ship, makes up for it
            _write_atomically(task.dir / SHIPPED_FILE, f"{task.shipped}\n")


class _LogStream:
    """An attempt's stream in CloudWatch Logs, fed line by line as Docker's awslogs driver
    feeds it: an event per line, a line longer than an event in several, requests within
    PutLogEvents' limits. A request CloudWatch Logs refuses is dropped and logged here:
    losing log lines must never stop the attempt."""

    def __init__(self, logs: Any, name: str) -> None:
        self.logs = logs
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.bytes = 0
        self.oldest = 0.0  # monotonic time the first pending event was read
        self.last_ms = 0  # a request's events must be in order of time
        self.failures = 0

    def create(self) -> None:
        try:
            self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=self.name)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        except Exception as e:  # noqa: BLE001 - the attempt runs without its log
            log.warning("log stream %s could not be created: %s", self.name, e)

    def add(self, line: bytes) -> None:
        timestamp = self.last_ms = max(clock.now_ms(), self.last_ms)
        for message, size in _messages(line):
            if self.events and (len(self.events) >= MAX_BATCH_EVENTS
                                or self.bytes + size + EVENT_OVERHEAD > MAX_BATCH_BYTES
                                or timestamp - self.events[0]["timestamp"] > MAX_BATCH_SPAN_MS):
                self.flush()
            if not self.events:
                self.oldest = time.monotonic()
            self.events.append({"timestamp": timestamp, "message": message})
            self.bytes += size + EVENT_OVERHEAD

    def flush_if_due(self) -> bool:
        """Send what waits if the oldest of it has waited FLUSH_SECONDS; whether it did."""
        if self.events and time.monotonic() - self.oldest >= FLUSH_SECONDS:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        if not self.events:
            return
        events, self.events, self.bytes = self.events, [], 0
        try:
            self._put(events)
        except Exception as e:  # noqa: BLE001 - see the class's docstring
            self.failures += 1
            if self.failures == 1 or self.failures % 100 == 0:
                log.warning("log stream %s: %d events not delivered (%d requests so far): %s",
                            self.name, len(events), self.failures, e)

    def _put(self, events: list[dict[str, Any]]) -> None:
        try:
            self.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=self.name, logEvents=events)
        except self.logs.exceptions.ResourceNotFoundException:
            self.create()  # created late, or deleted meanwhile
            self.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=self.name, logEvents=events)


def _messages(line: bytes) -> list[tuple[str, int]]:
    """The CloudWatch Logs messages of one line of output, each with its size in bytes.
    Invalid UTF-8 becomes U+FFFD, as CloudWatch Logs would make it; a line longer than an
    event is split at character boundaries, as the awslogs driver splits it."""
    if not line:
        return [(EMPTY_LINE, len(EMPTY_LINE))]
    text = line.decode("utf-8", "replace")
    data = text.encode()
    if len(data) <= MAX_EVENT_BYTES:
        return [(text, len(data))]
    parts = []
    start = 0
    while len(data) - start > MAX_EVENT_BYTES:
        end = _boundary(data, start + MAX_EVENT_BYTES)
        parts.append((data[start:end].decode(), end - start))
        start = end
    parts.append((data[start:].decode(), len(data) - start))
    return parts


def _boundary(data: bytes, limit: int) -> int:
    """The largest offset at most ``limit`` (an index into ``data``) that does not cut a
    UTF-8 character in two; ``limit`` itself if the bytes there are no UTF-8 anyway."""
    for cut in range(limit, max(limit - 4, 0), -1):
        if data[cut] & 0xC0 != 0x80:  # noqa: PLR2004 - not a continuation byte (10xxxxxx)
            return cut
    return limit


def _exit_code(status: int) -> int:
    return status if status >= 0 else 128 - status  # killed by signal N -> 128+N, as Docker


def _cannot_start(error: Exception, command: list[Any]) -> str:
    """Why the process could not start, for a person: what the OS said and about what, or
    what was wrong with the command or environment (a NUL byte, a lone surrogate, '=' in a
    variable's name, ...)."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename or command[0]}"
    return f"{type(error).__name__}: {error}"


def _printable(text: str) -> str:
    """``text`` as something any store and any client can hold: no lone surrogates, no
    control characters, at most REASON_LIMIT characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


def _wrapped(command: list[Any], env: dict[str, str], cwd: str, exit_path: Path) -> list[str]:
    """The command run by _WRAPPER. Its program is looked up here, so that one not found
    cannot start (as when exec fails), and sh runs that file rather than a builtin of its
    own of the same name (echo, printf, test, ...)."""
    argv = [_find(command[0], env.get("PATH", os.defpath), cwd), *command[1:]]
    if not all(_SHELL_NAME.match(name) for name in env):
        # sh passes on only the variables it could name; env(1) passes on every one, as Docker does.
        argv = [shutil.which("env", path=os.defpath) or "/usr/bin/env", "-i",
                *(f"{name}={value}" for name, value in env.items()), *argv]
    return ["/bin/sh", "-c", _WRAPPER, str(exit_path), *argv]


def _find(program: str, path: str, cwd: str) -> str:
    """The file execvp would run as ``program`` from the working directory ``cwd`` (where a
    relative name or PATH entry is looked up), as an absolute path; or the OSError exec
    would fail with."""
    if "\0" in program:
        raise ValueError("embedded null byte")  # as Popen says it (shutil.which finds nothing)
    if "/" in program:
        found = shutil.which(str(Path(cwd, program)))
    else:
        found = shutil.which(program, path=os.pathsep.join(str(Path(cwd, d)) for d in path.split(os.pathsep)))
    if found is not None:
        return found
    if "/" in program and Path(cwd, program).exists():
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """A process's state letter, start time (clock ticks after boot) and process group,
    from /proc; None if there is no such process, or no /proc to tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command's name, which may hold anything
    return fields[0], int(fields[19]), int(fields[2])


def _find_wrapper(exit_path: Path) -> tuple[int, int] | None:
    """The id and start time of the running _WRAPPER that writes ``exit_path``, found by
    its command line (which names the attempt's own directory)."""
    wanted = [b"/bin/sh", b"-c", _WRAPPER.encode(), os.fsencode(exit_path)]
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            stat = _stat(int(entry.name)) if args[:4] == wanted else None
            # The group's leader: its subshell has the same command line until it execs.
            if stat is not None and stat[0] not in ("Z", "X") and stat[2] == int(entry.name):
                return int(entry.name), stat[1]
    return None


def _same_process(pid: int | None, start_ticks: int | None) -> bool:
    """Whether the process that started at ``start_ticks`` with id ``pid`` still runs: an id
    may be another process's later, a start time is not. Unknown means no."""
    if pid is None or start_ticks is None:
        return False
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X") and stat[1] == start_ticks


def _read_number(path: Path) -> int | None:
    """The number in a file written as a whole line (by _WRAPPER, or _write_atomically); None
    if it is not there, or not whole yet."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return int(text) if text.endswith("\n") and text.strip().isdigit() else None


def _write_atomically(path: Path, text: str) -> None:
    """Write the file whole or not at all, should this process die meanwhile."""
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    part.replace(path)


def json_default(value: Any) -> Any:
    """json.dumps' default for job documents."""
    if isinstance(value, Decimal):  # a number as the DynamoDB store gives it back
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class LocalProvisioner:
    """Local attempts run as processes here, so a compute environment needs no cluster to
    run them; yet, as on AWS, its ``ecsClusterArn`` names an ECS cluster that exists: one
    of that name in the emulated ECS, which ListClusters and DescribeClusters show and the
    local tasks report as theirs. Deleting the environment deletes it."""

    def __init__(self, ecs: Any | None = None) -> None:
        self._ecs = ecs

    @property
    def ecs(self) -> Any:
        if self._ecs is None:
            self._ecs = aws.client("ecs")
        return self._ecs

    def create_environment(self, ce: dict[str, Any]) -> dict[str, Any]:
        arn = cluster_arn(ce)
        self.ecs.create_cluster(
            clusterName=arn.rsplit("/", 1)[-1],
            tags=[{"key": "batchplane:compute-environment", "value": ce["computeEnvironmentArn"]}],
        )
        return {"ecsClusterArn": arn}

    def delete_environment(self, ce: dict[str, Any]) -> None:
        if ce.get("ecsClusterArn"):
            with contextlib.suppress(self.ecs.exceptions.ClusterNotFoundException):
                self.ecs.delete_cluster(cluster=ce["ecsClusterArn"])
