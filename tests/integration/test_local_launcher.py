"""Local mode's task launcher: it answers DescribeTasks as ECS would (the tick's reconcile),
and no attempt it is given can be stranded: whatever the job prints and whatever it asks
for, the attempt ends with a STOPPED task event, leaves no process and no working
directory behind, and the stack's shutdown ends every process it started."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from batchplane.adapters.ecs import LOG_GROUP
from batchplane.local import launcher as launcher_module
from batchplane.local.launcher import LocalProcessLauncher
from batchplane.ports import CapacityUnavailable, LaunchRequest, log_stream_name, started_by
from moto import mock_aws

if TYPE_CHECKING:
    from collections.abc import Iterator

# CloudWatch Logs' largest event, less the 26 bytes PutLogEvents counts for each one.
MAX_EVENT_BYTES = 262_144 - 26


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=LOG_GROUP)
        yield client


@pytest.fixture
def workdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp folder attempts make their working directories in, this test's own."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """Exceptions that escaped any thread during the test (a dead launcher thread)."""
    errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


class Events:
    """A publish callback that records the launcher's ECS events."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.stopped = threading.Event()

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if event["detail"]["lastStatus"] == "STOPPED":
            self.stopped.set()

    def wait_stopped(self, timeout: float = 30) -> dict[str, Any]:
        assert self.stopped.wait(timeout), f"no STOPPED event within {timeout}s; events: {self.statuses()}"
        return self.events[-1]["detail"]

    def statuses(self) -> list[str]:
        return [e["detail"]["lastStatus"] for e in self.events]


def _request(command: list[str], environment: dict[str, str] | None = None) -> LaunchRequest:
    job = {"jobId": "job-1", "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/hello:1",
           "container": {"command": command, "resourceRequirements": [
               {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]}}
    ce = {"computeEnvironmentName": "ce", "type": "MANAGED", "computeResources": {
        "type": "EC2", "maxvCpus": 4, "instanceTypes": ["m5.large"]}}
    return LaunchRequest(job=job, attempt=1, run=1, queue_name="q", compute_environment=ce,
                         environment={"AWS_BATCH_JOB_ID": "job-1", **(environment or {})})


def _messages(logs: Any, stream: str) -> list[str]:
    """Every message of the stream, oldest first, over all of GetLogEvents' pages."""
    messages: list[str] = []
    token: str | None = None
    while True:
        page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True,
                                   **({"nextToken": token} if token else {}))
        messages += [e["message"] for e in page["events"]]
        if not page["events"] or page["nextForwardToken"] == token:
            return messages
        token = page["nextForwardToken"]


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.02)


def _pid_in(path: Path, timeout: float = 10) -> int:
    _wait_for(lambda: path.exists() and path.read_text().strip(), timeout, f"no pid in {path}")
    return int(path.read_text())


def test_describe_reports_a_task_as_its_last_event_did_and_unknown_tasks_as_missing(logs: Any) -> None:
    events = Events()
    launcher = LocalProcessLauncher(events, logs)
    arn = launcher.launch(_request(["sh", "-c", "exit 3"]))
    events.wait_stopped()
    unknown = arn.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
    tasks, missing = launcher.describe([arn, unknown])
    assert missing == [unknown]
    assert tasks == [events.events[-1]["detail"]]
    assert tasks[0]["lastStatus"] == "STOPPED" and tasks[0]["containers"][0]["exitCode"] == 3
    assert tasks[0]["startedBy"] == started_by(1)


def test_a_stopped_task_is_forgotten_after_a_while_as_ecs_forgets_it(
    logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack that ran 100,000 attempts keeps an hour of them, not all: a task stopped
    longer ago than STOPPED_TASK_SECONDS is missing to DescribeTasks, as ECS's are."""
    events = Events()
    launcher = LocalProcessLauncher(events, logs)
    monkeypatch.setattr(launcher_module, "STOPPED_TASK_SECONDS", 0.0)
    first = launcher.launch(_request(["true"]))
    events.wait_stopped()
    assert launcher.describe([first])[0], "described until the next launch looks"
    events.stopped.clear()
    request = _request(["true"])
    request.job = {**request.job, "jobId": "job-2"}
    second = launcher.launch(request)
    assert launcher.describe([first]) == ([], [first])
    assert launcher.task_metadata(first.rsplit("/", 1)[-1]) is None
    events.wait_stopped()
    assert launcher.describe([second])[0][0]["lastStatus"] == "STOPPED"


# -- whatever the job prints, it ends with its exit code and its log ----------------------

# Empty lines, lines longer than CloudWatch Logs takes in one event (ASCII, and two-byte
# characters that must not be cut in half), bytes that are not UTF-8, 100,000 lines, and
# a last line without its newline.
NOISY_JOB = r"""
printf 'first\n\n\nafter two empty lines\n'
head -c 300000 /dev/zero | tr '\0' x; echo
yes é | head -n 150000 | tr -d '\n'; echo
printf 'bad \377\376 bytes\n'
seq 1 100000
printf 'no newline at the end'
exit 3
"""


def noisy_job_log() -> list[str]:
    """NOISY_JOB's log as CloudWatch Logs holds it: an empty line is one space, a long line
    is split into events of at most MAX_EVENT_BYTES at a character boundary, and each
    invalid byte is U+FFFD, as Docker's awslogs driver and CloudWatch Logs do."""
    return [
        "first", " ", " ", "after two empty lines",
        "x" * MAX_EVENT_BYTES, "x" * (300_000 - MAX_EVENT_BYTES),
        "é" * (MAX_EVENT_BYTES // 2), "é" * (150_000 - MAX_EVENT_BYTES // 2),
        "bad \ufffd\ufffd bytes",
        *(str(n) for n in range(1, 100_001)),
        "no newline at the end",
    ]


def test_any_output_ends_with_the_exit_code_and_the_whole_log(logs: Any) -> None:
    events = Events()
    launcher = LocalProcessLauncher(events, logs)
    arn = launcher.launch(_request(["sh", "-c", NOISY_JOB]))
    detail = events.wait_stopped(60)
    assert detail["containers"][0]["exitCode"] == 3, detail
    assert detail["stopCode"] == "EssentialContainerExited"
    assert launcher.running() == []

    messages = _messages(logs, log_stream_name(_request([]).job["jobDefinition"], arn))
    assert all(0 < len(m.encode()) <= MAX_EVENT_BYTES for m in messages)
    expected = noisy_job_log()
    assert len(messages) == len(expected)
    assert messages == expected


def test_a_log_that_cannot_be_shipped_does_not_stop_the_attempt_from_ending(logs: Any) -> None:
    events = Events()
    logs.delete_log_group(logGroupName=LOG_GROUP)  # every CreateLogStream and PutLogEvents fails
    launcher = LocalProcessLauncher(events, logs)
    launcher.launch(_request(["sh", "-c", "seq 1 20000; echo; exit 4"]))
    detail = events.wait_stopped()
    assert events.statuses() == ["RUNNING", "STOPPED"]
    assert detail["containers"][0]["exitCode"] == 4


# -- whatever the job asks for, the attempt ends with a reason ----------------------------


@pytest.mark.parametrize(("command", "environment", "error"), [
    (["sh", "-c", "true"], {"BAD": "a\x00b"}, "ValueError: embedded null byte"),
    (["sh", "-c", "echo a\x00b"], {}, "ValueError: embedded null byte"),
    (["sh", "-c", "true"], {"BAD": "lone \ud800 surrogate"}, "UnicodeEncodeError: "),
    (["sh", "-c", "echo \ud800"], {}, "UnicodeEncodeError: "),
    (["sh", "-c", "true"], {"A=B": "x"}, "ValueError: illegal environment variable name"),
    (["/nonexistent/command"], {}, "No such file or directory: /nonexistent/command"),
], ids=["nul-in-env", "nul-in-command", "surrogate-in-env", "surrogate-in-command", "equals-in-env-name",
        "no-such-command"])
def test_an_attempt_that_cannot_start_stops_with_the_reason(
    logs: Any, workdirs: Path, thread_errors: list[BaseException | None],
    command: list[str], environment: dict[str, str], error: str,
) -> None:
    events = Events()
    launcher = LocalProcessLauncher(events, logs)
    arn = launcher.launch(_request(command, environment))
    detail = events.wait_stopped(10)
    assert events.statuses() == ["STOPPED"]
    assert detail["stopCode"] == "TaskFailedToStart"
    assert detail["stoppedReason"].startswith(f"CannotStartContainerError: {error}"), detail["stoppedReason"]
    assert len(detail["stoppedReason"]) <= 255
    assert detail["stoppedReason"].isprintable()
    container = detail["containers"][0]
    assert "exitCode" not in container and container["reason"] == detail["stoppedReason"]
    assert launcher.running() == [] and launcher.instance_of("job-1") is None
    assert launcher.describe([arn])[0] == [detail]
    assert list(workdirs.iterdir()) == []
    assert thread_errors == []


# -- nothing outlives the attempt, nothing outlives the stack -----------------------------


def test_an_attempt_leaves_no_working_directory(logs: Any, workdirs: Path) -> None:
    events = Events()
    launcher = LocalProcessLauncher(events, logs)
    arn = launcher.launch(_request(["sh", "-c", "pwd; touch made-by-the-job"]))
    events.wait_stopped()
    stream = log_stream_name(_request([]).job["jobDefinition"], arn)
    [cwd] = _messages(logs, stream)
    assert Path(cwd).parent == workdirs and Path(cwd).name.startswith("batchplane-")
    assert list(workdirs.iterdir()) == []


def test_what_the_main_process_leaves_running_ends_with_it(logs: Any, tmp_path: Path) -> None:
    """As when a container's main process exits: the attempt ends at once with its exit
    code, and the processes it started in the background are killed."""
    events = Events()
    launcher = LocalProcessLauncher(events, logs)
    pidfile = tmp_path / "pid"
    launcher.launch(_request(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo started; exit 5"]))
    detail = events.wait_stopped(10)
    assert detail["containers"][0]["exitCode"] == 5
    _wait_for(lambda: not _alive(_pid_in(pidfile)), 5, "the background sleep still runs")


def test_output_held_open_by_an_escaped_process_does_not_hold_the_attempt(logs: Any, tmp_path: Path) -> None:
    events = Events()
    launcher = LocalProcessLauncher(events, logs)
    pidfile = tmp_path / "pid"
    # It leaves the attempt's process group and session, and keeps the output pipe open.
    launcher.launch(_request(["sh", "-c", f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' & "
                                          f"until [ -s {pidfile} ]; do sleep 0.01; done"]))
    try:
        detail = events.wait_stopped(15)
        assert detail["containers"][0]["exitCode"] == 0
    finally:
        escaped = _pid_in(pidfile)
        if _alive(escaped):
            os.kill(escaped, signal.SIGKILL)


def test_stop_signals_the_whole_process_group(logs: Any, tmp_path: Path) -> None:
    events = Events()
    launcher = LocalProcessLauncher(events, logs, kill_grace_seconds=0.5)
    pidfile = tmp_path / "pid"
    # The shell and its child ignore SIGTERM: only the SIGKILL after the grace ends them.
    arn = launcher.launch(_request(["sh", "-c", f"trap '' TERM; sleep 300 & echo $! > {pidfile}; wait"]))
    child = _pid_in(pidfile)
    launcher.stop(arn, "Terminated by the test")
    detail = events.wait_stopped(10)
    assert detail["stopCode"] == "UserInitiated" and detail["stoppedReason"] == "Terminated by the test"
    assert detail["containers"][0]["exitCode"] == 137
    _wait_for(lambda: not _alive(child), 5, "the child still runs")


def test_shutdown_ends_every_attempt_within_seconds(
    logs: Any, tmp_path: Path, workdirs: Path, thread_errors: list[BaseException | None],
) -> None:
    closed = threading.Event()
    published: list[dict[str, Any]] = []

    def publish(event: dict[str, Any]) -> None:
        if closed.is_set():  # what the router's pool says once it has shut down
            raise RuntimeError("cannot schedule new futures after shutdown")
        published.append(event)

    launcher = LocalProcessLauncher(publish, logs)  # a 30 s grace, as the stack's default
    pids = []
    for n in range(3):
        pidfile = tmp_path / f"pid-{n}"
        request = _request(["sh", "-c", f"trap '' TERM; sleep 300 & echo $! > {pidfile}; wait"])
        request.job["jobId"] = f"job-{n}"
        launcher.launch(request)
        pids.append(_pid_in(pidfile))

    began = time.monotonic()
    launcher.shutdown()
    took = time.monotonic() - began
    closed.set()

    assert took < 8, f"shutdown took {took:.1f}s"
    assert [pid for pid in pids if _alive(pid)] == []
    assert launcher.running() == []
    stopped = [e["detail"] for e in published if e["detail"]["lastStatus"] == "STOPPED"]
    assert len(stopped) == 3
    # The host went away under the attempts: the jobs retry per their retryStrategy, as
    # they would if their instance were terminated, rather than fail as if terminated.
    assert {d["stopCode"] for d in stopped} == {"TerminationNotice"}
    assert {d["stoppedReason"] for d in stopped} == {"batchplane local stack stopped"}
    assert list(workdirs.iterdir()) == []
    late = _request(["true"])
    late.job["jobId"] = "job-after-shutdown"
    with pytest.raises(CapacityUnavailable, match="stopping"):
        launcher.launch(late)
    assert thread_errors == []
