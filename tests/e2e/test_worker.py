"""`local up`'s worker process (local/worker.py): it runs the publisher's stream mapping,
which the stack's own process then leaves alone, and it ends with the stack, kill -9
included."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchplane.local import worker

from .support import Env, make_client, uniq
from .test_restart import UpProcess

if TYPE_CHECKING:
    from batchplane.local.stack import LocalStack


def _workers_of(parent: int) -> list[int]:
    """The worker processes whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (b"batchplane.local.worker" in argv and b"--parent" in argv
                and argv[argv.index(b"--parent") + 1] == str(parent).encode()):
            found.append(int(entry.name))
    return found


def test_the_publisher_runs_in_the_worker_and_only_there(stack: LocalStack) -> None:
    assert stack.worker is not None and stack.worker.poll() is None
    assert _workers_of(os.getpid()) == [stack.worker.pid]
    # In this process: the stream mappings of every consumer but the worker's.
    assert worker.FUNCTIONS == ("PublisherFunction",)
    mine = [t.name for t in threading.enumerate() if t.name.startswith("stream-")]
    assert mine == ["stream-TableStream"]  # the scheduler's


def test_the_worker_ends_with_a_stack_killed_under_it(tmp_path: Path) -> None:
    stack = UpProcess(tmp_path / "state").start()
    assert stack.process is not None
    parent = stack.process.pid
    deadline = time.monotonic() + 60
    while not _workers_of(parent):
        assert time.monotonic() < deadline, "no worker started"
        time.sleep(0.05)
    stack.kill()
    deadline = time.monotonic() + 10
    while _workers_of(parent):
        assert time.monotonic() < deadline, "the worker outlived its stack"
        time.sleep(0.05)



def test_a_worker_that_dies_is_started_again_and_publishes_what_it_missed(
        stack: LocalStack, endpoint: str, batch: Any, env: Env) -> None:
    sqs, events = make_client("sqs", endpoint), make_client("events", endpoint)
    name = uniq("worker-events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["batchplane"], "detail-type": ["Batch Job State Change"]}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    try:
        assert stack.worker is not None
        stack.worker.kill()  # SIGKILL: it publishes nothing more
        job = batch.submit_job(jobName=name, jobQueue=env.queue, jobDefinition=env.jobdef)["jobId"]
        deadline = time.monotonic() + 60
        seen: list[str] = []
        # The job's first changes come while no worker runs (it is started again after
        # a second): they are published from its checkpoint all the same.
        while "SUCCEEDED" not in seen:
            assert time.monotonic() < deadline, f"events after the worker's restart: {seen}"
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                detail = json.loads(m["Body"])["detail"]
                if detail["jobId"] == job:
                    seen.append(detail["status"])
        assert {"RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"} <= set(seen)
        assert _workers_of(os.getpid()) == [stack.worker.pid]
    finally:
        events.remove_targets(Rule=name, Ids=["queue"])
        events.delete_rule(Name=name)
