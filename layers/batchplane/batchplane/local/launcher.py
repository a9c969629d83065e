"""Runs attempts as processes on this machine and reports them exactly as ECS would:
ECS Task State Change events (RUNNING, then STOPPED with the exit code) delivered through
the local event router, and stdout/stderr in CloudWatch Logs (``/aws/batch/job``).

Nothing an attempt does may strand it: whatever it prints, whatever its command and
environment hold, and whatever goes wrong in the launcher, the attempt ends with a STOPPED
event. Each attempt is a process group in a working directory of its own, as a container
is a PID namespace with its own filesystem: when its main process exits, what it left
running is killed and the directory removed; stopping it signals the whole group.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .. import clock
from ..adapters.ecs import LOG_GROUP
from ..config import settings
from ..domain import capacity
from ..ports import CapacityUnavailable, LaunchRequest, started_by
from ..service.tasks import CONTAINER, log_stream_name
from .instances import VirtualFleet

# What a local attempt inherits from this machine; everything else comes from the job.
_PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
FLUSH_SECONDS = 0.2  # the most a line waits before it is sent to CloudWatch Logs
# After the main process exits, how long its output may take to reach its end: a process
# that left the attempt's group (setsid) may hold the pipe open, and must not hold the attempt.
DRAIN_SECONDS = 2.0
LATE_BYTES = 1 << 20  # but what the pipe already holds then is still read, up to this much
SHIP_SECONDS = 30.0  # then, how long sending what was read may take before STOPPED goes anyway
SHUTDOWN_GRACE_SECONDS = 2.0  # SIGTERM to SIGKILL when the stack stops
STACK_STOPPED = "batchplane local stack stopped"
REASON_LIMIT = 255  # characters of a container's reason, as ECS and AWS Batch keep

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


def _now() -> float:
    """Seconds on batchplane's clock, which tests move forward; job times must agree with it."""
    return clock.now_ms() / 1000


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Task:
    def __init__(self, arn: str, request: LaunchRequest) -> None:
        self.arn = arn
        self.request = request
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir: str | None = None
        self.stop_reason: str | None = None
        self.stop_code = "UserInitiated"  # of a stop asked for with stop_reason
        self.timed_out = False
        self.exited_at: float | None = None  # monotonic time the main process exited
        # Held while the process group is signalled or its leader reaped: once reaped, its
        # process id may be reused, and no signal may reach what has it then.
        self.lock = threading.Lock()
        self.reaped = False
        self.done = threading.Event()
        self.reported = threading.Event()  # its STOPPED event has been published
        self.instance = ""
        self.detail: dict[str, Any] | None = None  # of the last event it reported


class LocalProcessLauncher:
    """A TaskLauncher for local mode. ``publish`` receives each ECS-shaped event."""

    def __init__(
        self,
        publish: Callable[[dict[str, Any]], None],
        logs: Any,
        *,
        extra_env: dict[str, str] | None = None,
        kill_grace_seconds: float = 30.0,
        timeout_scale: float = 1.0,
    ) -> None:
        self.publish = publish
        self.logs = logs
        self.extra_env = extra_env or {}
        self.kill_grace = kill_grace_seconds
        self.timeout_scale = timeout_scale  # tests shrink attemptDurationSeconds with it
        self._tasks: dict[str, _Task] = {}
        # The virtual instances of each compute environment (see instances.py); an
        # interruption removes one, as a Spot reclaim would.
        self.fleet = VirtualFleet()
        self._by_run: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self._closing = False

    # -- TaskLauncher -----------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> str:
        key = (request.job["jobId"], request.run)
        with self._lock:
            if key in self._by_run:  # idempotent, like RunTask's clientToken
                return self._by_run[key]
            if self._closing:
                raise CapacityUnavailable("the local stack is stopping: it starts no more attempts")
            task_id = uuid.uuid4().hex
            ce = request.compute_environment["computeEnvironmentName"]
            s = settings()
            arn = f"arn:aws:ecs:{s.region}:{s.account_id}:task/{ce}/{task_id}"
            task = _Task(arn, request)
            instance = self.fleet.place(request.compute_environment, arn, capacity.Shape.of(request.job["container"]))
            if instance is None:
                raise CapacityUnavailable(f"no instance of compute environment {ce} has room for the task, "
                                          "and it has maxvCpus of instances already")
            task.instance = instance.instance_id
            self._tasks[arn] = task
            self._by_run[key] = arn
        threading.Thread(target=self._run, args=(task,), name=f"task-{task_id[:8]}", daemon=True).start()
        return arn

    def stop(self, task_arn: str, reason: str) -> None:
        task = self._tasks.get(task_arn)
        if task is None or task.done.is_set():
            return
        task.stop_reason = reason
        self._terminate(task)

    def attempts_on_instance(self, instance_id: str, clusters: list[str]) -> list[tuple[str, int]]:
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

    # -- inside -----------------------------------------------------------------------

    def _report(self, task: _Task, last_status: str, **detail: Any) -> None:
        event = self._event(task, last_status, **detail)
        task.detail = event["detail"]
        try:
            self.publish(event)
        except Exception as e:  # noqa: BLE001 - e.g. the router has stopped; describe() still tells
            log.warning("task %s: its %s event was not delivered: %s", task.arn, last_status, e)

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

    def _signal(self, task: _Task, sig: int) -> None:
        """Send ``sig`` to the attempt's process group, unless its leader is reaped already."""
        with task.lock:
            if task.process is None or task.reaped:
                return
            # EPERM: on some systems, a group left with only zombies.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(task.process.pid, sig)

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
                "clusterArn": f"arn:aws:ecs:{s.region}:{s.account_id}:cluster/"
                + task.request.compute_environment["computeEnvironmentName"],
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

    def _run(self, task: _Task) -> None:
        """The attempt from start to STOPPED. Whatever fails here, the attempt still ends:
        its processes are killed and it reports STOPPED with the reason."""
        started = _now()
        try:
            self._attempt(task, started)
        except Exception as e:  # noqa: BLE001 - a launcher fault must end the attempt, not strand it
            log.exception("task %s (job %s): the launcher failed", task.arn, task.request.job.get("jobId"))
            self._abandon(task, started, e)

    def _attempt(self, task: _Task, started: float) -> None:
        request = task.request
        job = request.job
        command = job["container"].get("command") or []
        stream = _LogStream(self.logs, log_stream_name(job["jobDefinition"], task.arn))
        env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
        env.update(self.extra_env)
        env.update(request.environment)
        if not command:
            self._stopped(task, started, stop_code="TaskFailedToStart", exit_code=None,
                          reason=(f"CannotStartContainerError: job has no command and local mode "
                                  f"cannot run the image {job['container'].get('image')}'s default"))
            return
        try:
            task.workdir = tempfile.mkdtemp(prefix=f"batchplane-{job['jobId'][:8]}-")
            process = subprocess.Popen(
                command, env=env, cwd=task.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except Exception as e:  # noqa: BLE001 - any command or environment must end in a reason
            self._stopped(task, started, stop_code="TaskFailedToStart", exit_code=None,
                          reason=f"CannotStartContainerError: {_cannot_start(e, command)}")
            return
        with task.lock:
            task.process = process
        if self._closing or task.stop_reason:  # stopped while it was starting
            self._terminate(task, grace=SHUTDOWN_GRACE_SECONDS if self._closing else None)
        stream.create()
        self._report(task, "RUNNING", startedAt=_iso(started), createdAt=_iso(started))
        timer = self._arm_timeout(task)
        reader = threading.Thread(target=self._pump, args=(task, stream), name=f"logs-{task.arn[-8:]}",
                                  daemon=True)
        reader.start()
        code = self._wait(task)
        if timer:
            timer.cancel()
        reader.join(DRAIN_SECONDS + SHIP_SECONDS)
        exit_code = _exit_code(code)
        if task.timed_out:
            self._stopped(task, started, stop_code="EssentialContainerExited", exit_code=exit_code,
                          reason=None, timed_out=True)
        elif task.stop_reason:
            self._stopped(task, started, stop_code=task.stop_code, exit_code=exit_code,
                          reason=None, stopped_reason=task.stop_reason)
        else:
            self._stopped(task, started, stop_code="EssentialContainerExited", exit_code=exit_code,
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
        task.exited_at = time.monotonic()
        with task.lock:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            code = process.wait()
            task.reaped = True
        return code

    def _abandon(self, task: _Task, started: float, error: Exception) -> None:
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
        why = f"batchplane's launcher failed: {type(error).__name__}: {error}"
        if task.detail is None:  # it never reported RUNNING
            self._stopped(task, started, stop_code="TaskFailedToStart", exit_code=exit_code,
                          reason=f"CannotStartContainerError: {why}")
        else:
            self._stopped(task, started, stop_code="EssentialContainerExited", exit_code=exit_code,
                          reason=f"InternalError: {why}")

    def _arm_timeout(self, task: _Task) -> threading.Timer | None:
        seconds = (task.request.job.get("timeout") or {}).get("attemptDurationSeconds")
        if not seconds:
            return None

        def expire() -> None:
            task.timed_out = True
            self._terminate(task)

        timer = threading.Timer(seconds * self.timeout_scale, expire)
        timer.daemon = True
        timer.start()
        return timer

    def _stopped(self, task: _Task, started: float, *, stop_code: str, exit_code: int | None,
                 reason: str | None, stopped_reason: str | None = None, timed_out: bool = False) -> None:
        reason = _printable(reason) if reason else None
        container: dict[str, Any] = {"name": CONTAINER, "lastStatus": "STOPPED"}
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
            "createdAt": _iso(started),
            "stoppedAt": _iso(now),
        }
        if task.process is not None:
            detail["startedAt"] = _iso(started)
        if timed_out:
            detail["timedOut"] = True
        with self._lock:
            self.fleet.release(task.arn)
        if task.workdir:  # the container's filesystem goes with it
            shutil.rmtree(task.workdir, ignore_errors=True)
        task.done.set()
        self._report(task, "STOPPED", **detail)
        task.reported.set()

    # -- logs -------------------------------------------------------------------------

    def _pump(self, task: _Task, stream: _LogStream) -> None:
        """Copy the attempt's output to its log stream until the output ends, or until
        DRAIN_SECONDS after the main process exited. It always reads on, even when nothing
        can be shipped: a process blocked on a full pipe would never exit."""
        assert task.process is not None and task.process.stdout is not None
        out = task.process.stdout
        try:
            self._copy(task, out.fileno(), stream)
        except Exception:  # noqa: BLE001 - the attempt must still end; its output is lost
            log.exception("task %s: its output could not be copied to %s", task.arn, stream.name)
            with contextlib.suppress(Exception):
                self._copy(task, out.fileno(), None)
        finally:
            out.close()

    @staticmethod
    def _copy(task: _Task, fd: int, stream: _LogStream | None) -> None:
        pending = b""  # a line not ended yet
        late = 0  # bytes read after DRAIN_SECONDS: what the pipe still held, if sending was slow
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                overdue = task.exited_at is not None and time.monotonic() > task.exited_at + DRAIN_SECONDS
                if overdue and late >= LATE_BYTES:
                    break
                if selector.select(0 if overdue else FLUSH_SECONDS):
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        break
                    late += len(chunk) if overdue else 0
                    if stream is None:
                        continue
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        stream.add(line)
                    # Docker's copier hands a line longer than the driver takes on in parts.
                    while len(pending) > MAX_EVENT_BYTES:
                        cut = _boundary(pending, MAX_EVENT_BYTES)
                        stream.add(pending[:cut])
                        pending = pending[cut:]
                elif overdue:
                    break
                if stream is not None:
                    stream.flush_if_due()
        if stream is not None:
            if pending:
                stream.add(pending)
            stream.flush()


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

    def flush_if_due(self) -> None:
        if self.events and time.monotonic() - self.oldest >= FLUSH_SECONDS:
            self.flush()

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
        if data[cut] & 0xC0 != 0x80:  # not a continuation byte
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


class LocalProvisioner:
    """Local compute environments need no cluster: attempts run as processes here. The
    ARN names the virtual cluster the local tasks report as theirs."""

    def create_environment(self, ce: dict[str, Any]) -> dict[str, Any]:
        s = settings()
        return {"ecsClusterArn": f"arn:aws:ecs:{s.region}:{s.account_id}:cluster/{ce['computeEnvironmentName']}"}

    def delete_environment(self, ce: dict[str, Any]) -> None:
        return None
