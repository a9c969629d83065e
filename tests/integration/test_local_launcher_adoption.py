"""The local launcher on a state directory: its attempts outlive it, as ECS tasks outlive
their control plane, and a launcher started again on the directory takes them over. Each
first launcher here is a process of its own, killed with SIGKILL as a stack dies; what it
shipped to its log stream and published is recorded in files so the test can tell what
the second launcher adds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from batchplane.local import launcher as launcher_module
from batchplane.local.launcher import DIED_WITH_STACK, LocalProcessLauncher
from batchplane.ports import log_stream_name

from .test_local_launcher import Events, _alive, _messages, _request, _wait_for, logs, thread_errors, workdirs

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["logs", "thread_errors", "workdirs"]  # fixtures, imported for pytest

# The first launcher: launches one attempt, prints its task ARN, and runs until killed.
FIRST_LAUNCHER = textwrap.dedent("""
    import json, sys, threading
    from pathlib import Path
    from batchplane.local.launcher import LocalProcessLauncher
    from batchplane.ports import LaunchRequest

    state_dir, shipped, published = (Path(p) for p in sys.argv[1:4])
    timeout_scale = float(sys.argv[4])

    class Logs:  # what it ships, one message a line
        class exceptions:
            ResourceAlreadyExistsException = ResourceNotFoundException = type("E", (Exception,), {})
        def create_log_stream(self, **kw): pass
        def put_log_events(self, logEvents, **kw):
            with shipped.open("a") as f:
                f.writelines(json.dumps(e["message"]) + "\\n" for e in logEvents)

    def publish(event):
        with published.open("a") as f:
            f.write(json.dumps(event["detail"]) + "\\n")

    launcher = LocalProcessLauncher(publish, Logs(), state_dir=state_dir, timeout_scale=timeout_scale)
    print(launcher.launch(LaunchRequest(**json.loads(sys.stdin.read()))), flush=True)
    threading.Event().wait()
""")


class First:
    """The first launcher, in a process of its own."""

    def __init__(self, tmp_path: Path, workdirs: Path) -> None:
        self.state_dir = tmp_path / "tasks"
        self.shipped = tmp_path / "shipped-by-first"
        self.published = tmp_path / "published-by-first"
        self.workdirs = workdirs
        self.process: subprocess.Popen[str] | None = None
        self.arn = ""
        self.pid = 0  # of the attempt's main process (sh), its group's id

    def launch(self, command: list[str], timeout_scale: float = 1.0, **job: Any) -> str:
        request = _request(command)
        request.job.update(job)
        self.process = subprocess.Popen(
            [sys.executable, "-c", FIRST_LAUNCHER, str(self.state_dir), str(self.shipped), str(self.published),
             str(timeout_scale)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "TMPDIR": str(self.workdirs)},
        )
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(asdict(request)))
        self.process.stdin.close()
        self.arn = self.process.stdout.readline().strip()
        assert self.arn.startswith("arn:aws:ecs:"), self.arn
        _wait_for(lambda: "RUNNING" in self.statuses(), 10, "the first launcher reported no RUNNING")
        self.pid = self.task()["pid"]
        return self.arn

    @property
    def task_dir(self) -> Path:
        return self.state_dir / self.arn.rsplit("/", 1)[1]

    def task(self) -> dict[str, Any]:
        return json.loads((self.task_dir / "task.json").read_text())

    def statuses(self) -> list[str]:
        if not self.published.exists():
            return []
        return [json.loads(line)["lastStatus"] for line in self.published.read_text().splitlines()]

    def shipped_messages(self) -> list[str]:
        if not self.shipped.exists():
            return []
        return [json.loads(line) for line in self.shipped.read_text().splitlines()]

    def wait_shipped_saved(self, size: int) -> None:
        """Until the first launcher has saved that it shipped ``size`` bytes of output."""
        path = self.task_dir / "shipped"
        _wait_for(lambda: path.exists() and path.read_text() == f"{size}\n", 10,
                  f"the first launcher did not save {size} bytes as shipped")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def first(tmp_path: Path, workdirs: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[First]:
    monkeypatch.setattr(launcher_module, "FORGET_SECONDS", 0.0)  # task directories go as soon as reported
    launcher = First(tmp_path, workdirs)
    try:
        yield launcher
    finally:
        launcher.kill()
        if launcher.pid and _alive(launcher.pid):
            os.killpg(launcher.pid, signal.SIGKILL)


def _stream(arn: str) -> str:
    return log_stream_name(_request([]).job["jobDefinition"], arn)


def _go(tmp_path: Path) -> tuple[Path, str]:
    """A file the test creates to let the job go on, and the shell that waits for it."""
    go = tmp_path / "go"
    return go, f"until [ -e {go} ]; do sleep 0.02; done"


def test_an_attempt_that_ended_while_no_launcher_ran_is_reported_with_its_exit_code_and_its_log_once(
    logs: Any, tmp_path: Path, first: First, workdirs: Path, thread_errors: list[BaseException | None],
) -> None:
    go, wait = _go(tmp_path)
    arn = first.launch(["sh", "-c", f"echo before; {wait}; echo after; exit 3"])
    first.wait_shipped_saved(len("before\n"))
    pid = first.pid
    first.kill()
    go.touch()
    _wait_for(lambda: not _alive(pid), 10, "the attempt did not end without its launcher")
    assert (first.task_dir / "exit").read_text() == "3\n"

    events = Events()
    second = LocalProcessLauncher(events, logs, state_dir=first.state_dir)
    assert second.adopt() == 1
    detail = events.wait_stopped()
    assert events.statuses() == ["STOPPED"]
    assert detail["taskArn"] == arn
    assert detail["stopCode"] == "EssentialContainerExited" and detail["containers"][0]["exitCode"] == 3
    assert second.describe([arn]) == ([detail], [])
    # Each line reached the log stream once: before its first launcher died, or after.
    assert first.shipped_messages() == ["before"]
    assert _messages(logs, _stream(arn)) == ["after"]
    assert second.running() == [] and second.instance_of("job-1") is None
    _wait_for(lambda: not first.task_dir.exists(), 5, "its task directory is still there")
    assert list(workdirs.iterdir()) == []  # its working directory went with it
    assert thread_errors == []


def test_a_running_attempt_is_adopted_and_reported_when_it_ends(
    logs: Any, tmp_path: Path, first: First, thread_errors: list[BaseException | None],
) -> None:
    go, wait = _go(tmp_path)
    arn = first.launch(["sh", "-c", f"echo before; {wait}; echo after; exit 4"])
    first.wait_shipped_saved(len("before\n"))
    instance = first.task()["instance"]
    first.kill()

    events = Events()
    second = LocalProcessLauncher(events, logs, state_dir=first.state_dir)
    assert second.adopt() == 1
    [task], missing = second.describe([arn])
    assert missing == [] and task["lastStatus"] == "RUNNING"
    assert second.running() == [arn] and second.instance_of("job-1") == instance
    # RunTask stays idempotent per (job, run): the adopted task is the one.
    assert second.launch(_request(["true"])) == arn
    assert second.fleet.instances["ce"][0].instance_id == instance
    assert list(second.fleet.instances["ce"][0].tasks) == [arn]

    go.touch()
    detail = events.wait_stopped()
    assert detail["stopCode"] == "EssentialContainerExited" and detail["containers"][0]["exitCode"] == 4
    assert first.shipped_messages() == ["before"]
    assert _messages(logs, _stream(arn)) == ["after"]
    assert second.running() == [] and second.fleet.instances["ce"][0].tasks == {}
    _wait_for(lambda: not first.task_dir.exists(), 5, "its task directory is still there")
    assert thread_errors == []


def test_an_adopted_attempt_is_stopped_as_its_whole_group(logs: Any, tmp_path: Path, first: First) -> None:
    pidfile = tmp_path / "pid"
    arn = first.launch(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"])
    child = int(_wait_for_text(pidfile))
    first.kill()

    events = Events()
    second = LocalProcessLauncher(events, logs, state_dir=first.state_dir)
    second.adopt()
    second.stop(arn, "Terminated by the test")
    detail = events.wait_stopped()
    assert detail["stopCode"] == "UserInitiated" and detail["stoppedReason"] == "Terminated by the test"
    assert detail["containers"][0]["exitCode"] == 143  # the shell died of SIGTERM, as it would have before
    _wait_for(lambda: not _alive(child), 5, "the job's child still runs")


def test_an_adopted_attempt_times_out_from_when_it_started(logs: Any, first: First) -> None:
    # The first launcher's timeouts are 100 times longer: it would not time it out.
    arn = first.launch(["sh", "-c", "sleep 300"], timeout_scale=100, timeout={"attemptDurationSeconds": 1})
    first.kill()
    events = Events()
    second = LocalProcessLauncher(events, logs, state_dir=first.state_dir)
    second.adopt()
    detail = events.wait_stopped(10)
    assert detail["taskArn"] == arn and detail.get("timedOut") is True
    assert detail["containers"][0]["exitCode"] == 143


def test_an_attempt_killed_with_its_launcher_is_reported_as_terminated(
    logs: Any, first: First,
) -> None:
    arn = first.launch(["sh", "-c", "echo before; sleep 300"])
    first.wait_shipped_saved(len("before\n"))
    pid = first.pid
    first.kill()
    os.killpg(pid, signal.SIGKILL)  # as when the stack's whole process group is killed
    _wait_for(lambda: not _alive(pid), 5, "the attempt still runs")

    events = Events()
    second = LocalProcessLauncher(events, logs, state_dir=first.state_dir)
    assert second.adopt() == 1
    detail = events.wait_stopped()
    assert detail["taskArn"] == arn
    # As a host that went away: the job retries per its retryStrategy.
    assert detail["stopCode"] == "TerminationNotice" and detail["stoppedReason"] == DIED_WITH_STACK
    assert "exitCode" not in detail["containers"][0]
    assert _messages(logs, _stream(arn)) == []  # shipped already, by the first launcher
    _wait_for(lambda: not first.task_dir.exists(), 5, "its task directory is still there")


def test_a_process_that_got_the_attempts_id_later_is_not_adopted(
    logs: Any, first: First,
) -> None:
    arn = first.launch(["sh", "-c", "sleep 300"])
    first.kill()
    os.killpg(first.pid, signal.SIGKILL)
    # Another process now has the id the attempt's process had: it started later.
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        doc = first.task()
        doc["pid"] = other.pid
        (first.task_dir / "task.json").write_text(json.dumps(doc))

        events = Events()
        second = LocalProcessLauncher(events, logs, state_dir=first.state_dir)
        assert second.adopt() == 1
        detail = events.wait_stopped()
        assert detail["taskArn"] == arn and detail["stopCode"] == "TerminationNotice"
        second.stop(arn, "too late")
        second.shutdown()
        assert other.poll() is None, "a process that is not the attempt's was signalled"
    finally:
        other.kill()
        other.wait()


def test_an_attempt_whose_launcher_died_before_recording_its_process_is_found(
    logs: Any, tmp_path: Path, first: First,
) -> None:
    """task.json is written before the process starts, then again with its id: a launcher
    killed in between leaves an attempt that is found by its command line."""
    go, wait = _go(tmp_path)
    arn = first.launch(["sh", "-c", f"{wait}; exit 5"])
    first.kill()
    doc = first.task()
    doc["pid"] = doc["pidStartTime"] = None
    (first.task_dir / "task.json").write_text(json.dumps(doc))

    events = Events()
    second = LocalProcessLauncher(events, logs, state_dir=first.state_dir)
    assert second.adopt() == 1
    assert second.describe([arn])[0][0]["lastStatus"] == "RUNNING"
    go.touch()
    detail = events.wait_stopped()
    assert detail["stopCode"] == "EssentialContainerExited" and detail["containers"][0]["exitCode"] == 5


def test_a_directory_without_its_description_is_removed(logs: Any, tmp_path: Path) -> None:
    """The launcher died before it recorded the attempt's process: nothing can report it
    (its job's reconciliation finds the task unknown, and the attempt lost)."""
    state_dir = tmp_path / "tasks"
    (state_dir / "0123456789abcdef0123456789abcdef").mkdir(parents=True)
    (state_dir / "0123456789abcdef0123456789abcdef" / "output").write_bytes(b"partial")
    events = Events()
    assert LocalProcessLauncher(events, logs, state_dir=state_dir).adopt() == 0
    assert list(state_dir.iterdir()) == [] and events.events == []


# -- with a state directory, an attempt behaves as without -------------------------------


@pytest.fixture
def launcher_on_dir(logs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[LocalProcessLauncher, Events]:
    monkeypatch.setattr(launcher_module, "FORGET_SECONDS", 0.0)
    events = Events()
    return LocalProcessLauncher(events, logs, state_dir=tmp_path / "tasks", kill_grace_seconds=0.5), events


def test_on_a_state_directory_an_attempt_runs_as_without_one(
    logs: Any, tmp_path: Path, workdirs: Path, launcher_on_dir: tuple[LocalProcessLauncher, Events],
) -> None:
    launcher, events = launcher_on_dir
    # echo is the program, not sh's builtin (which would print the -e).
    arn = launcher.launch(_request(["echo", "-e", r"a\tb"]))
    detail = events.wait_stopped()
    assert detail["containers"][0]["exitCode"] == 0 and events.statuses() == ["RUNNING", "STOPPED"]
    assert _messages(logs, _stream(arn)) == ["a\tb"]

    # A variable sh could not name reaches the job too.
    request = _request(["env"], {"my.setting": "on", "WITH_NEWLINE": "a\nb"})
    request.job["jobId"] = "job-2"
    events.stopped.clear()
    arn = launcher.launch(request)
    events.wait_stopped()
    messages = _messages(logs, _stream(arn))
    assert "my.setting=on" in messages and "AWS_BATCH_JOB_ID=job-1" in messages
    assert messages[messages.index("WITH_NEWLINE=a") + 1] == "b"

    request = _request(["sh", "-c", "pwd; echo err >&2; exit 7"])
    request.job["jobId"] = "job-3"
    events.stopped.clear()
    arn = launcher.launch(request)
    detail = events.wait_stopped()
    assert detail["containers"][0]["exitCode"] == 7
    cwd, err = _messages(logs, _stream(arn))
    assert Path(cwd).parent == workdirs and err == "err"
    assert list(workdirs.iterdir()) == []
    _wait_for(lambda: not list((tmp_path / "tasks").iterdir()), 5, "a task directory is still there")


def test_on_a_state_directory_stop_and_a_missing_command_end_as_without_one(
    tmp_path: Path, launcher_on_dir: tuple[LocalProcessLauncher, Events],
) -> None:
    launcher, events = launcher_on_dir
    arn = launcher.launch(_request(["/nonexistent/command"]))
    detail = events.wait_stopped()
    assert events.statuses() == ["STOPPED"] and detail["stopCode"] == "TaskFailedToStart"
    assert detail["stoppedReason"] == "CannotStartContainerError: No such file or directory: /nonexistent/command"
    events.events.clear()
    events.stopped.clear()

    request = _request(["no-such-program-anywhere"])
    request.job["jobId"] = "job-2"
    launcher.launch(request)
    detail = events.wait_stopped()
    assert detail["stoppedReason"] == "CannotStartContainerError: No such file or directory: no-such-program-anywhere"
    events.stopped.clear()

    pidfile = tmp_path / "pid"
    request = _request(["sh", "-c", f"trap '' TERM; sleep 300 & echo $! > {pidfile}; wait"])
    request.job["jobId"] = "job-3"
    arn = launcher.launch(request)
    child = int(_wait_for_text(pidfile))
    launcher.stop(arn, "Terminated by the test")
    detail = events.wait_stopped(10)
    assert detail["stopCode"] == "UserInitiated" and detail["containers"][0]["exitCode"] == 137
    _wait_for(lambda: not _alive(child), 5, "the child still runs")
    _wait_for(lambda: not list((tmp_path / "tasks").iterdir()), 5, "a task directory is still there")


@pytest.mark.parametrize(("command", "environment", "error"), [
    (["sh", "-c", "true"], {"BAD": "a\x00b"}, "ValueError: embedded null byte"),
    (["sh", "-c", "echo a\x00b"], {}, "ValueError: embedded null byte"),
    (["sh\x00x"], {}, "ValueError: embedded null byte"),
    (["sh", "-c", "true"], {"BAD": "lone \ud800 surrogate"}, "UnicodeEncodeError: "),
    (["sh", "-c", "true"], {"A=B": "x"}, "ValueError: illegal environment variable name"),
    (["{tmp}/not-executable"], {}, "Permission denied: {tmp}/not-executable"),
], ids=["nul-in-env", "nul-in-command", "nul-in-program", "surrogate-in-env", "equals-in-env-name", "not-executable"])
def test_on_a_state_directory_an_attempt_that_cannot_start_stops_with_the_reason(
    workdirs: Path, launcher_on_dir: tuple[LocalProcessLauncher, Events], thread_errors: list[BaseException | None],
    command: list[str], environment: dict[str, str], error: str, tmp_path: Path,
) -> None:
    launcher, events = launcher_on_dir
    (tmp_path / "not-executable").write_text("echo hi\n")
    command = [part.replace("{tmp}", str(tmp_path)) for part in command]
    error = error.replace("{tmp}", str(tmp_path))
    launcher.launch(_request(command, environment))
    detail = events.wait_stopped(10)
    assert events.statuses() == ["STOPPED"] and detail["stopCode"] == "TaskFailedToStart"
    assert detail["stoppedReason"].startswith(f"CannotStartContainerError: {error}"), detail["stoppedReason"]
    assert list(workdirs.iterdir()) == [] and thread_errors == []


def _wait_for_text(path: Path, timeout: float = 10) -> str:
    _wait_for(lambda: path.exists() and path.read_text().strip(), timeout, f"nothing in {path}")
    return path.read_text().strip()


def test_without_a_state_directory_the_output_file_leaves_nothing(logs: Any, workdirs: Path) -> None:
    events = Events()
    launcher = LocalProcessLauncher(events, logs)
    launcher.launch(_request(["sh", "-c", "echo hi"]))
    events.wait_stopped()
    assert list(workdirs.iterdir()) == [] and tempfile.gettempdir() == str(workdirs)
