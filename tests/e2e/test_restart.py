"""Local mode on a data directory survives its own death: ``batchplane local up`` killed
with SIGKILL in the middle of a run and started again loses no accepted job, runs none
twice, and keeps its queues, definitions and job history.

Each stack here is its own ``batchplane local up`` process (the package's in-process
stack stays untouched), as a user runs it.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from .support import TERMINAL, credentials_file, ec2_resources, make_client

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_LISTENING = re.compile(r"listening on (http://\S+?);")


class UpProcess:
    """One ``batchplane local up`` on a data directory."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir
        self.port = port  # 0: any free port, a new one at each start
        self.process: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.output: list[str] = []  # what the stack printed since its last start

    def start(self, timeout: float = 60) -> UpProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "batchplane.cli", "local", "up", "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--credentials", str(credentials_file(self.data_dir.parent))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BATCHPLANE_"))},
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        seen = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = _LISTENING.search(line)
            if match:
                self.endpoint = match.group(1)
                # Read the rest as it comes: a full pipe would block the stack's logging.
                self.output = seen
                threading.Thread(target=self.output.extend, args=(self.process.stdout,), daemon=True).start()
                return self
        self.kill()
        raise AssertionError(f"local up did not start: {''.join(seen)}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state"


def _setup(batch: Any, marks: Path) -> None:
    batch.create_compute_environment(
        computeEnvironmentName="ce", type="MANAGED", computeResources=ec2_resources(maxvCpus=4)
    )
    batch.create_job_queue(jobQueueName="q", priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}])
    # Each run of a job leaves a line: a job that ran twice leaves two.
    script = f'sleep 0.3; echo "$AWS_BATCH_JOB_ID" >> {marks}; echo "ran $AWS_BATCH_JOB_ID"'
    batch.register_job_definition(
        jobDefinitionName="mark", type="container", retryStrategy={"attempts": 3},
        containerProperties={"image": "busybox", "command": ["sh", "-c", script],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "64"}]},
    )


def _until(done: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _statuses(batch: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 100):
        out.update({j["jobId"]: j for j in batch.describe_jobs(jobs=ids[i:i + 100])["jobs"]})
    return out


def test_kill_9_in_the_middle_loses_nothing_and_runs_nothing_twice(data_dir: Path, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.touch()
    first = UpProcess(data_dir).start()
    try:
        batch = make_client("batch", first.endpoint)
        _setup(batch, marks)
        ids = [batch.submit_job(jobName=f"j{i}", jobQueue="q", jobDefinition="mark")["jobId"] for i in range(16)]
        # Some done, some running, some still queued: then the stack dies.
        _until(lambda: sum(j["status"] == "SUCCEEDED" for j in _statuses(batch, ids).values()) >= 3,
                 timeout=60, what="a few jobs done")
    finally:
        first.kill()

    second = UpProcess(data_dir).start()
    try:
        batch = make_client("batch", second.endpoint)
        assert [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]] == ["q"]
        assert batch.describe_job_definitions(jobDefinitionName="mark")["jobDefinitions"]
        _until(lambda: all(j["status"] in TERMINAL for j in _statuses(batch, ids).values()),
                 timeout=120, what="every job ended after the restart")
        jobs = _statuses(batch, ids)
        assert set(jobs) == set(ids), "a job accepted before the kill is gone"
        assert {j["status"] for j in jobs.values()} == {"SUCCEEDED"}, {
            j["jobId"]: (j["status"], j.get("statusReason")) for j in jobs.values()}
        runs = collections.Counter(marks.read_text().split())
        assert set(runs) == set(ids)
        assert [job for job, n in runs.items() if n > 1] == [], "a job ran to its end twice"
        # The history is there too: a job listed as SUCCEEDED by its queue.
        listed = batch.list_jobs(jobQueue="q", jobStatus="SUCCEEDED")["jobSummaryList"]
        assert {j["jobId"] for j in listed} == set(ids)
    finally:
        second.stop()


def test_a_clean_stop_and_start_keeps_everything(data_dir: Path, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.touch()
    first = UpProcess(data_dir).start()
    try:
        batch = make_client("batch", first.endpoint)
        _setup(batch, marks)
        s3 = make_client("s3", first.endpoint)
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="a.txt", Body=b"still here")
        done = batch.submit_job(jobName="before", jobQueue="q", jobDefinition="mark")["jobId"]
        _until(lambda: _statuses(batch, [done])[done]["status"] == "SUCCEEDED", timeout=60, what="job done")
    finally:
        first.stop()
    second = UpProcess(data_dir).start()
    try:
        batch = make_client("batch", second.endpoint)
        job = _statuses(batch, [done])[done]
        assert job["status"] == "SUCCEEDED"
        # What users and jobs keep in the emulator's services is there too.
        s3 = make_client("s3", second.endpoint)
        assert s3.get_object(Bucket="kept", Key="a.txt")["Body"].read() == b"still here"
        logs = make_client("logs", second.endpoint)
        stream = job["container"]["logStreamName"]
        events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream)["events"]
        assert [e["message"] for e in events] == [f"ran {done}"]
        after = batch.submit_job(jobName="after", jobQueue="q", jobDefinition="mark")["jobId"]
        _until(lambda: _statuses(batch, [after])[after]["status"] == "SUCCEEDED", timeout=60, what="job done")
        assert collections.Counter(marks.read_text().split()) == {done: 1, after: 1}
    finally:
        second.stop()
