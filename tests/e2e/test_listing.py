"""ListJobs (status, paging, filters) and DescribeJobs limits."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .support import Env, ec2_resources, uniq, wait_done, wait_status
from .test_resources import client_error


@pytest.fixture(scope="module")
def held(batch: Any, env: Env) -> dict[str, Any]:
    """A queue of its own (its only CE is DISABLED, so jobs stay RUNNABLE) holding 7 jobs
    named alpha-* and 3 named beta-*, all RUNNABLE."""
    ce = uniq("list-ce")
    batch.create_compute_environment(
        computeEnvironmentName=ce,
        type="MANAGED",
        state="DISABLED",
        computeResources=ec2_resources(),
    )
    queue = uniq("list-q")
    batch.create_job_queue(
        jobQueueName=queue,
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )
    alpha = [
        batch.submit_job(jobName=f"alpha-{i}", jobQueue=queue, jobDefinition=env.jobdef)["jobId"]
        for i in range(7)
    ]
    beta = [
        batch.submit_job(jobName=f"Beta-{i}", jobQueue=queue, jobDefinition=env.jobdef)["jobId"]
        for i in range(3)
    ]
    for job_id in alpha + beta:
        wait_status(batch, job_id, "RUNNABLE")
    return {"queue": queue, "alpha": alpha, "beta": beta}


def _all_pages(batch: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], int]:
    summaries: list[dict[str, Any]] = []
    pages = 0
    while True:
        page = batch.list_jobs(**kwargs)
        pages += 1
        assert len(page["jobSummaryList"]) <= kwargs.get("maxResults", 1000)
        summaries += page["jobSummaryList"]
        if not page.get("nextToken"):
            return summaries, pages
        kwargs = {**kwargs, "nextToken": page["nextToken"]}
        assert pages < 100, "ListJobs keeps returning a nextToken"


def test_list_by_status_with_paging(batch: Any, held: dict[str, Any]) -> None:
    everything = set(held["alpha"] + held["beta"])
    summaries, pages = _all_pages(batch, jobQueue=held["queue"], jobStatus="RUNNABLE", maxResults=3)
    ids = [s["jobId"] for s in summaries]
    assert len(ids) == len(set(ids)), "a job was listed twice"
    assert set(ids) == everything
    assert pages >= 4  # 10 jobs, 3 a page
    first = summaries[0]
    assert first["status"] == "RUNNABLE"
    assert {"jobArn", "jobId", "jobName", "createdAt", "status"} <= set(first)

    # Other statuses of the same queue are empty; without a status ListJobs means RUNNING.
    for status in ("SUBMITTED", "STARTING", "RUNNING", "SUCCEEDED"):
        assert batch.list_jobs(jobQueue=held["queue"], jobStatus=status)["jobSummaryList"] == []
    assert batch.list_jobs(jobQueue=held["queue"])["jobSummaryList"] == []
    # The queue can be named by ARN as well.
    arn = batch.describe_job_queues(jobQueues=[held["queue"]])["jobQueues"][0]["jobQueueArn"]
    assert {
        s["jobId"] for s in batch.list_jobs(jobQueue=arn, jobStatus="RUNNABLE")["jobSummaryList"]
    } == everything


def test_list_job_name_filter(batch: Any, held: dict[str, Any]) -> None:
    prefix, _ = _all_pages(
        batch,
        jobQueue=held["queue"],
        maxResults=2,
        filters=[{"name": "JOB_NAME", "values": ["alpha-*"]}],
    )
    assert sorted(s["jobId"] for s in prefix) == sorted(held["alpha"])
    # Case-insensitive, as in AWS Batch.
    beta, _ = _all_pages(
        batch, jobQueue=held["queue"], filters=[{"name": "JOB_NAME", "values": ["BETA*"]}]
    )
    assert sorted(s["jobId"] for s in beta) == sorted(held["beta"])
    exact, _ = _all_pages(
        batch, jobQueue=held["queue"], filters=[{"name": "JOB_NAME", "values": ["alpha-3"]}]
    )
    assert [s["jobName"] for s in exact] == ["alpha-3"]
    none, _ = _all_pages(
        batch, jobQueue=held["queue"], filters=[{"name": "JOB_NAME", "values": ["gamma*"]}]
    )
    assert none == []


def test_list_other_filters(batch: Any, env: Env, held: dict[str, Any]) -> None:
    by_def, _ = _all_pages(
        batch, jobQueue=held["queue"], filters=[{"name": "JOB_DEFINITION", "values": [env.jobdef]}]
    )
    assert {s["jobId"] for s in by_def} == set(held["alpha"] + held["beta"])
    created = sorted(
        j["createdAt"] for j in batch.describe_jobs(jobs=held["alpha"] + held["beta"])["jobs"]
    )
    after, _ = _all_pages(
        batch,
        jobQueue=held["queue"],
        filters=[{"name": "AFTER_CREATED_AT", "values": [str(created[-1] + 1)]}],
    )
    assert after == []
    before, _ = _all_pages(
        batch,
        jobQueue=held["queue"],
        filters=[{"name": "BEFORE_CREATED_AT", "values": [str(created[-1] + 1)]}],
    )
    assert len(before) == 10
    client_error(
        batch.list_jobs,
        "filters",
        jobQueue=held["queue"],
        filters=[{"name": "COLOUR", "values": ["blue"]}],
    )


def test_list_finished_jobs(batch: Any, env: Env) -> None:
    """SUCCEEDED and FAILED jobs are listed under their status, with exit codes."""
    ok = batch.submit_job(jobName=uniq("ok"), jobQueue=env.queue, jobDefinition=env.jobdef)["jobId"]
    bad = batch.submit_job(
        jobName=uniq("bad"),
        jobQueue=env.queue,
        jobDefinition=env.jobdef,
        containerOverrides={"command": ["sh", "-c", "exit 3"]},
    )["jobId"]
    wait_done(batch, ok)
    wait_done(batch, bad)
    succeeded, _ = _all_pages(batch, jobQueue=env.queue, jobStatus="SUCCEEDED")
    failed, _ = _all_pages(batch, jobQueue=env.queue, jobStatus="FAILED")
    assert ok in {s["jobId"] for s in succeeded}
    assert bad not in {s["jobId"] for s in succeeded}
    summary = next(s for s in failed if s["jobId"] == bad)
    assert summary["container"]["exitCode"] == 3
    assert summary["createdAt"] <= summary["startedAt"] <= summary["stoppedAt"]


def test_list_errors(batch: Any, held: dict[str, Any]) -> None:
    client_error(batch.list_jobs, "no-such-queue", jobQueue="no-such-queue")
    client_error(
        batch.list_jobs,
        "nextToken",
        jobQueue=held["queue"],
        jobStatus="RUNNABLE",
        nextToken="garbage",
    )
    client_error(batch.list_jobs, "maxResults", jobQueue=held["queue"], maxResults=0)


def test_describe_jobs_limits(batch: Any, held: dict[str, Any]) -> None:
    known = held["alpha"] + held["beta"]
    unknown = [str(uuid.uuid4()) for _ in range(100 - len(known))]
    jobs = batch.describe_jobs(jobs=known + unknown)["jobs"]
    assert sorted(j["jobId"] for j in jobs) == sorted(known)  # unknown ids are skipped
    client_error(batch.describe_jobs, "100", jobs=known + unknown + [str(uuid.uuid4())])
    # Job ARNs work as ids too.
    arn = jobs[0]["jobArn"]
    assert [j["jobId"] for j in batch.describe_jobs(jobs=[arn])["jobs"]] == [jobs[0]["jobId"]]


def test_cancel_held_jobs(batch: Any, held: dict[str, Any]) -> None:
    """Cancelling every held job empties RUNNABLE and fills FAILED (runs last in module)."""
    for job_id in held["alpha"] + held["beta"]:
        batch.cancel_job(jobId=job_id, reason="listing tests done")
    for job_id in held["alpha"] + held["beta"]:
        assert wait_done(batch, job_id)["status"] == "FAILED"
    assert batch.list_jobs(jobQueue=held["queue"], jobStatus="RUNNABLE")["jobSummaryList"] == []
    failed, _ = _all_pages(batch, jobQueue=held["queue"], jobStatus="FAILED", maxResults=4)
    assert {s["jobId"] for s in failed} == set(held["alpha"] + held["beta"])
    assert {s["statusReason"] for s in failed} == {"listing tests done"}
