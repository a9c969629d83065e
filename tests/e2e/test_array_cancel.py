"""Cancelling and terminating an array parent (issue 12 item 1). AWS: "When you try to
cancel an array parent job in PENDING, Batch attempts to cancel all child jobs. The array
parent job is cancelled when all child jobs are completed." (CancelJob, botocore's model.)
So a child already RUNNING keeps running, the parent stays PENDING until it ends, and a
TerminateJob of that parent still stops it.

Each array has two children: child 1 waits SEQUENTIAL for child 0, which runs until the
test creates its flag file (jobs are local processes), so the timing is the test's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .support import Env, describe, uniq, wait_done, wait_for

if TYPE_CHECKING:
    from pathlib import Path


def _array(batch: Any, env: Env, flag: Path) -> str:
    parent = batch.submit_job(
        jobName=uniq("cancel-array"), jobQueue=env.queue, jobDefinition=env.jobdef,
        arrayProperties={"size": 2}, dependsOn=[{"type": "SEQUENTIAL"}],
        containerOverrides={"command": ["sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.05; done"]},
    )["jobId"]
    wait_for(batch, parent, lambda j: _summary(j).get("RUNNING") == 1, timeout=30, what="a RUNNING child")
    assert describe(batch, f"{parent}:0")["status"] == "RUNNING"
    assert describe(batch, f"{parent}:1")["status"] == "PENDING"
    return parent


def _summary(job: dict[str, Any]) -> dict[str, int]:
    return job.get("arrayProperties", {}).get("statusSummary", {})


def test_a_cancelled_parent_waits_for_its_running_child_then_fails(
    batch: Any, env: Env, tmp_path: Path
) -> None:
    flag = tmp_path / "release"
    try:
        parent = _array(batch, env, flag)
        batch.cancel_job(jobId=parent, reason="cancelled by the e2e test")
        # The child that had not started is cancelled; the running one is left alone.
        queued = wait_done(batch, f"{parent}:1", timeout=30)
        assert (queued["status"], queued["isCancelled"]) == ("FAILED", True)
        waiting = wait_for(batch, parent, lambda j: _summary(j).get("FAILED") == 1, timeout=30)
        assert waiting["status"] == "PENDING", waiting
        assert describe(batch, f"{parent}:0")["status"] == "RUNNING"
        flag.touch()
        assert wait_done(batch, f"{parent}:0", timeout=30)["status"] == "SUCCEEDED"
        done = wait_done(batch, parent, timeout=30)
        assert (done["status"], done["statusReason"]) == ("FAILED", "cancelled by the e2e test")
        assert done["isCancelled"] is True
        assert _summary(done) == {"SUCCEEDED": 1, "FAILED": 1}
    finally:
        flag.touch()


def test_terminating_a_cancelled_parent_stops_its_running_children(
    batch: Any, env: Env, tmp_path: Path
) -> None:
    flag = tmp_path / "release"
    try:
        parent = _array(batch, env, flag)
        batch.cancel_job(jobId=parent, reason="cancelled first")
        wait_done(batch, f"{parent}:1", timeout=30)
        assert describe(batch, parent)["status"] == "PENDING"
        batch.terminate_job(jobId=parent, reason="then terminated")
        child = wait_done(batch, f"{parent}:0", timeout=30)  # the flag never appears
        assert (child["status"], child["isTerminated"]) == ("FAILED", True)
        done = wait_done(batch, parent, timeout=30)
        assert (done["status"], done["statusReason"]) == ("FAILED", "then terminated")
        assert _summary(done) == {"FAILED": 2}
    finally:
        flag.touch()


def test_terminating_a_parent_stops_its_running_children(batch: Any, env: Env, tmp_path: Path) -> None:
    flag = tmp_path / "release"
    try:
        parent = _array(batch, env, flag)
        batch.terminate_job(jobId=parent, reason="terminated")
        child = wait_done(batch, f"{parent}:0", timeout=30)
        assert (child["status"], child["isTerminated"]) == ("FAILED", True)
        done = wait_done(batch, parent, timeout=30)
        assert (done["status"], done["statusReason"]) == ("FAILED", "terminated")
    finally:
        flag.touch()
