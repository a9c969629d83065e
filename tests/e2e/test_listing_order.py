"""The order of every ListJobs listing, and paging that stays whole while jobs are
submitted.

- With ``filters``: sorted by createdAt, newest first, across every status (botocore's
  model and the AWS docs: "The results are sorted by the createdAt field, with the most
  recent jobs being first").
- By one status (no filters): AWS documents no order; batchplane lists in dispatch order
  (retried RUNNABLE jobs first, then oldest first).
- Array children (arrayJobId): by index.
- multiNodeJobId of a job that is not a multi-node parallel job is refused (tests/e2e/test_multinode.py lists nodes).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from .support import Env, ec2_resources, uniq, wait_done, wait_for, wait_status
from .test_resources import client_error


@pytest.fixture(scope="module")
def held(batch: Any, env: Env) -> dict[str, Any]:
    """A queue of its own whose only CE is DISABLED, with 8 jobs named order-*, submitted
    one after another; the 2nd and 5th are cancelled (FAILED), the rest stay RUNNABLE."""
    ce = uniq("order-ce")
    batch.create_compute_environment(
        computeEnvironmentName=ce, type="MANAGED", state="DISABLED", computeResources=ec2_resources()
    )
    queue = uniq("order-q")
    batch.create_job_queue(
        jobQueueName=queue, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}]
    )
    prefix = uniq("order")
    jobs = [
        batch.submit_job(jobName=f"{prefix}-{i}", jobQueue=queue, jobDefinition=env.jobdef)["jobId"]
        for i in range(8)
    ]
    for job_id in jobs:
        wait_status(batch, job_id, "RUNNABLE")
    for job_id in (jobs[1], jobs[4]):
        batch.cancel_job(jobId=job_id, reason="listing order")
        wait_done(batch, job_id)
    created = {j["jobId"]: j["createdAt"] for j in batch.describe_jobs(jobs=jobs)["jobs"]}
    return {"queue": queue, "prefix": prefix, "jobs": jobs, "created": created,
            "failed": [jobs[1], jobs[4]], "runnable": [j for j in jobs if j not in (jobs[1], jobs[4])]}


def _pages(batch: Any, between: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Every page of a listing; ``between()`` runs before each page after the first."""
    out: list[dict[str, Any]] = []
    for _ in range(100):
        page = batch.list_jobs(**kwargs)
        out += page["jobSummaryList"]
        if not page.get("nextToken"):
            return out
        kwargs = {**kwargs, "nextToken": page["nextToken"]}
        if between is not None:
            between()
    pytest.fail("ListJobs keeps returning a nextToken")


def _newest_first(held: dict[str, Any], ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda j: held["created"][j], reverse=True)


def _assert_newest_first(summaries: list[dict[str, Any]]) -> None:
    created = [s["createdAt"] for s in summaries]
    assert created == sorted(created, reverse=True), created
    assert created[0] > created[-1], "the jobs need distinct createdAt for this test to mean anything"


def test_filtered_listings_are_newest_first_across_statuses(batch: Any, held: dict[str, Any]) -> None:
    name = [{"name": "JOB_NAME", "values": [f"{held['prefix']}-*"]}]
    listed = batch.list_jobs(jobQueue=held["queue"], filters=name)["jobSummaryList"]
    assert sorted(s["jobId"] for s in listed) == sorted(held["jobs"])
    _assert_newest_first(listed)
    # FAILED and RUNNABLE jobs are interleaved by createdAt, not grouped by status.
    assert [s["jobId"] for s in listed] == _newest_first(held, held["jobs"])
    for kind, value in (("JOB_DEFINITION", None), ("AFTER_CREATED_AT", "0"), ("BEFORE_CREATED_AT", "9" * 13)):
        filters = [{"name": kind, "values": [value or listed[0]["jobDefinition"]]}]
        every = batch.list_jobs(jobQueue=held["queue"], filters=filters)["jobSummaryList"]
        assert [s["jobId"] for s in every] == [s["jobId"] for s in listed], kind


def test_filtered_paging_is_stable_while_jobs_are_submitted(
    batch: Any, env: Env, held: dict[str, Any]
) -> None:
    """Pages of 3 while a matching job is submitted before every page: the pages together
    list the jobs that existed at the first page, newest first, each once; the new jobs
    are newer than every page after the first, so they never appear."""
    name = [{"name": "JOB_NAME", "values": [f"{held['prefix']}-*"]}]
    added: list[str] = []

    def submit() -> None:
        added.append(batch.submit_job(jobName=f"{held['prefix']}-new-{len(added)}", jobQueue=held["queue"],
                                      jobDefinition=env.jobdef)["jobId"])

    try:
        paged = _pages(batch, submit, jobQueue=held["queue"], filters=name, maxResults=3)
        assert added, "no job was submitted between pages"
        assert [s["jobId"] for s in paged] == _newest_first(held, held["jobs"])
    finally:
        for job_id in added:
            batch.cancel_job(jobId=job_id, reason="paging check done")
            wait_done(batch, job_id)
    # A new listing sees them first.
    fresh = batch.list_jobs(jobQueue=held["queue"], filters=name, maxResults=len(added))["jobSummaryList"]
    assert {s["jobId"] for s in fresh} == set(added)


def test_one_status_lists_in_dispatch_order_and_pages_stably(
    batch: Any, env: Env, held: dict[str, Any]
) -> None:
    """By status: oldest first (the order the scheduler takes RUNNABLE jobs). Paging
    while jobs are submitted lists every job that existed, in order, once; new jobs can
    only come after them."""
    runnable = _pages(batch, jobQueue=held["queue"], jobStatus="RUNNABLE", maxResults=2)
    created = [s["createdAt"] for s in runnable]
    assert [s["jobId"] for s in runnable] == sorted(held["runnable"], key=lambda j: held["created"][j])
    assert created == sorted(created)
    failed = batch.list_jobs(jobQueue=held["queue"], jobStatus="FAILED")["jobSummaryList"]
    assert [s["jobId"] for s in failed][:2] == held["failed"]

    added: list[str] = []

    def submit() -> None:
        added.append(batch.submit_job(jobName=uniq("late"), jobQueue=held["queue"],
                                      jobDefinition=env.jobdef)["jobId"])
        wait_status(batch, added[-1], "RUNNABLE")

    try:
        paged = [s["jobId"] for s in _pages(batch, submit, jobQueue=held["queue"], jobStatus="RUNNABLE",
                                            maxResults=2)]
        assert added, "no job was submitted between pages"
        assert len(paged) == len(set(paged)), "a job was listed twice"
        assert paged[: len(held["runnable"])] == [s["jobId"] for s in runnable]
        assert set(paged[len(held["runnable"]):]) <= set(added)
    finally:
        for job_id in added:
            batch.cancel_job(jobId=job_id, reason="paging check done")
            wait_done(batch, job_id)


def test_array_children_list_by_index(batch: Any, env: Env, held: dict[str, Any]) -> None:
    parent = batch.submit_job(jobName=uniq("order-array"), jobQueue=held["queue"], jobDefinition=env.jobdef,
                              arrayProperties={"size": 7})["jobId"]
    # statusSummary counts a chunk's children just before it creates them: wait for the
    # children themselves.
    deadline = time.monotonic() + 30
    while len(batch.describe_jobs(jobs=[f"{parent}:{i}" for i in range(7)])["jobs"]) < 7:
        assert time.monotonic() < deadline, "the array's 7 children were not all created within 30 s"
        time.sleep(0.02)
    wait_for(batch, parent, lambda j: j.get("arrayProperties", {}).get("statusSummary", {}).get("RUNNABLE") == 7,
             timeout=30, what="7 RUNNABLE children")
    for status in (None, "RUNNABLE"):
        kwargs = {"jobStatus": status} if status else {}
        children = _pages(batch, arrayJobId=parent, maxResults=3, **kwargs)
        assert [s["jobId"] for s in children] == [f"{parent}:{i}" for i in range(7)]
        assert [s["arrayProperties"]["index"] for s in children] == list(range(7))
    batch.cancel_job(jobId=parent, reason="listing order")
    wait_done(batch, parent, timeout=30)


def test_multi_node_listing_of_an_unknown_job_is_refused(batch: Any) -> None:
    client_error(batch.list_jobs, "multi-node", multiNodeJobId="some-job")
