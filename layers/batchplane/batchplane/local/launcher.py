"""Runs attempts as processes on this machine and reports them exactly as ECS would:
ECS Task State Change events (RUNNING, then STOPPED with the exit code) delivered through
the local event router, and stdout/stderr in CloudWatch Logs (``/aws/batch/job``)."""

from __future__ import annotations

import contextlib
import copy
import os
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
FLUSH_SECONDS = 0.2


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
        self.stop_reason: str | None = None
        self.timed_out = False
        self.done = threading.Event()
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

    # -- TaskLauncher -----------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> str:
        key = (request.job["jobId"], request.run)
        with self._lock:
            if key in self._by_run:  # idempotent, like RunTask's clientToken
                return self._by_run[key]
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
        self.publish(event)

    def instance_of(self, job_id: str) -> str | None:
        """The virtual instance running the job's current attempt, if it runs."""
        with self._lock:
            for task in self._tasks.values():
                if task.request.job["jobId"] == job_id and not task.done.is_set():
                    return task.instance
        return None

    def running(self) -> list[str]:
        return [arn for arn, t in self._tasks.items() if not t.done.is_set()]

    def shutdown(self) -> None:
        for task in list(self._tasks.values()):
            if not task.done.is_set():
                task.stop_reason = "batchplane local stack stopped"
                self._terminate(task, grace=2.0)

    def _terminate(self, task: _Task, grace: float | None = None) -> None:
        proc = task.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        wait = self.kill_grace if grace is None else grace

        def kill_later() -> None:
            if not task.done.wait(wait):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

        threading.Thread(target=kill_later, daemon=True).start()

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
        request = task.request
        job = request.job
        command = job["container"].get("command") or []
        stream = log_stream_name(job["jobDefinition"], task.arn)
        env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
        env.update(self.extra_env)
        env.update(request.environment)
        started = _now()
        if not command:
            self._stopped(task, started, stop_code="TaskFailedToStart", exit_code=None,
                          reason=(f"CannotStartContainerError: job has no command and local mode "
                                  f"cannot run the image {job['container'].get('image')}'s default"))
            return
        workdir = tempfile.mkdtemp(prefix=f"batchplane-{job['jobId'][:8]}-")
        try:
            task.process = subprocess.Popen(
                command, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as e:
            self._stopped(task, started, stop_code="TaskFailedToStart", exit_code=None,
                          reason=f"CannotStartContainerError: {e.strerror}: {command[0]}")
            return
        self._create_stream(stream)
        self._report(task, "RUNNING", startedAt=_iso(started), createdAt=_iso(started))
        timer = self._arm_timeout(task)
        self._pump(task.process, stream)
        code = task.process.wait()
        if timer:
            timer.cancel()
        exit_code = code if code >= 0 else 128 - code  # killed by signal N -> 128+N, as Docker
        if task.timed_out:
            self._stopped(task, started, stop_code="EssentialContainerExited", exit_code=exit_code,
                          reason=None, timed_out=True)
        elif task.stop_reason:
            self._stopped(task, started, stop_code="UserInitiated", exit_code=exit_code,
                          reason=None, stopped_reason=task.stop_reason)
        else:
            self._stopped(task, started, stop_code="EssentialContainerExited", exit_code=exit_code,
                          reason=None)

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
        task.done.set()
        self._report(task, "STOPPED", **detail)

    # -- logs -------------------------------------------------------------------------

    def _create_stream(self, stream: str) -> None:
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)

    def _pump(self, proc: subprocess.Popen[bytes], stream: str) -> None:
        """Copy the attempt's output to its log stream, a batch every FLUSH_SECONDS."""
        assert proc.stdout is not None
        batch: list[dict[str, Any]] = []
        last = time.monotonic()
        for raw in iter(proc.stdout.readline, b""):
            batch.append({"timestamp": clock.now_ms(),
                          "message": raw.decode("utf-8", "replace").rstrip("\n")})
            if time.monotonic() - last > FLUSH_SECONDS or len(batch) >= 1000:
                self._put(stream, batch)
                batch, last = [], time.monotonic()
        if batch:
            self._put(stream, batch)

    def _put(self, stream: str, events: list[dict[str, Any]]) -> None:
        self.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events)


class LocalProvisioner:
    """Local compute environments need no cluster: attempts run as processes here. The
    ARN names the virtual cluster the local tasks report as theirs."""

    def create_environment(self, ce: dict[str, Any]) -> dict[str, Any]:
        s = settings()
        return {"ecsClusterArn": f"arn:aws:ecs:{s.region}:{s.account_id}:cluster/{ce['computeEnvironmentName']}"}

    def delete_environment(self, ce: dict[str, Any]) -> None:
        return None
