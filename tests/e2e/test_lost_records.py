"""Stream records the mappings dropped after their retries: the tick settles PENDING jobs
whose dependencies or children ended anyway (issue 17 item 3). A record is "lost" here by
making the reaction it would have caused do nothing while the job ends."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from batchplane import clock, wiring
from batchplane.local.router import _Mapping

from .support import make_client, uniq, wait_done, wait_for, wait_status
from .test_arrays import _jd, _setup

if TYPE_CHECKING:
    from pathlib import Path

    import pytest
    from batchplane.local.stack import LocalStack


def _tick_later(stack: LocalStack) -> None:
    clock.advance(121)  # past the tick's grace for PENDING jobs
    stack.tick()


def test_a_dependent_whose_release_was_lost_runs_at_the_tick(
    batch: Any, stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    queue = _setup(batch)
    jd = _jd(batch, ["true"])
    # The first job ends when told, after the second depends on it: a job that already
    # ended when its dependent is submitted releases it at once, no record needed.
    go = tmp_path / "go"
    held = _jd(batch, ["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.02; done"])
    dependencies = wiring.services().reactions.dependencies  # the scheduler's too
    lost = threading.Event()

    def lose(_job_id: str, _status: str) -> bool:  # the lost record
        lost.set()
        return False

    monkeypatch.setattr(dependencies, "on_finished", lose)
    first = batch.submit_job(jobName=uniq("a"), jobQueue=queue, jobDefinition=held)["jobId"]
    second = batch.submit_job(jobName=uniq("b"), jobQueue=queue, jobDefinition=jd,
                              dependsOn=[{"jobId": first}])["jobId"]
    # Admitted, and its edge written (just after the PENDING write): it waits for the first.
    deadline = time.monotonic() + 10
    while dependencies.edges.get(first, second) is None:
        assert time.monotonic() < deadline, "the second job's dependency edge was never written"
        time.sleep(0.01)
    go.touch()
    assert wait_done(batch, first, timeout=20)["status"] == "SUCCEEDED"
    # DescribeJobs shows the end before the scheduler has taken its record: wait for that.
    assert lost.wait(20), "the scheduler never took the record of the first job's end"
    assert wait_status(batch, second, "PENDING", timeout=10)["status"] == "PENDING"
    monkeypatch.undo()
    stack.tick()  # too early: nothing is taken for lost yet
    assert batch.describe_jobs(jobs=[second])["jobs"][0]["status"] == "PENDING"
    _tick_later(stack)
    assert wait_done(batch, second, timeout=20)["status"] == "SUCCEEDED"


def test_an_array_whose_settling_was_lost_ends_at_the_tick(
    batch: Any, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = _setup(batch)
    jd = _jd(batch, ["true"])
    arrays = wiring.services().arrays  # the stream's settling, and the fan-out's last step
    monkeypatch.setattr(arrays, "settle", lambda _: None)  # the lost records
    parent = batch.submit_job(jobName=uniq("arr"), jobQueue=queue, jobDefinition=jd,
                              arrayProperties={"size": 3})["jobId"]
    done = wait_for(batch, parent, lambda j: j["arrayProperties"]["statusSummary"].get("SUCCEEDED") == 3,
                    timeout=30, what="every child SUCCEEDED")
    assert done["status"] == "PENDING"
    monkeypatch.undo()
    _tick_later(stack)
    assert wait_done(batch, parent, timeout=20)["status"] == "SUCCEEDED"


def test_a_batch_that_keeps_failing_is_dropped_after_its_retries_and_noted(
    stack: LocalStack, endpoint: str
) -> None:
    """As Lambda does with MaximumRetryAttempts: the mapping moves on, and its OnFailure
    queue gets where the dropped batch was (the tick then recovers the jobs, above)."""
    assert stack.router is not None
    scheduler = stack.router.functions["SchedulerFunction"]
    props = scheduler.spec.events["TableStream"]["Properties"]
    calls: list[int] = []

    class Failing:
        spec = scheduler.spec

        def invoke(self, event: dict[str, Any]) -> Any:
            calls.append(len(event["Records"]))
            raise RuntimeError("a handler that keeps failing")

    mapping = _Mapping(Failing(), props, "TableStream")  # type: ignore[arg-type]
    assert mapping.max_retries == 10 and mapping.on_failure == "StreamFailureQueue"
    records = [{"eventName": "MODIFY", "dynamodb": {"SequenceNumber": f"{n:021d}", "Keys": {}}} for n in (7, 8)]
    stack.router._deliver_batch(mapping, records)
    assert calls == [2] * 11  # the first try and ten retries
    sqs = make_client("sqs", endpoint)
    url = sqs.get_queue_url(QueueName="StreamFailureQueue")["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        f"{7:021d}", f"{8:021d}", 2)
