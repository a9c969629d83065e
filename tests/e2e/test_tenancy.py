"""Isolation between callers (issue 15 item 5): on a job queue tagged
batchplane:isolation=identity, each access key sees and stops only the jobs it submitted;
on other queues every caller sees every job, as on AWS without IAM conditions. Two keys,
through the unmodified boto3 client (the stack verifies their signatures)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from .support import CALLERS, NO_RETRY, REGION, Env, uniq, wait_done


def _as(endpoint: str, key: str) -> Any:
    return boto3.session.Session().client("batch", endpoint_url=endpoint, region_name=REGION,
                                          aws_access_key_id=key, aws_secret_access_key=CALLERS[key], config=NO_RETRY)


@pytest.fixture(scope="module")
def isolated_queue(batch: Any, env: Env) -> str:
    name = uniq("isolated")
    batch.create_job_queue(jobQueueName=name, priority=1, tags={"batchplane:isolation": "identity"},
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env.held_ce}])
    wait_queue_valid(batch, name)
    return name


def wait_queue_valid(batch: Any, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if batch.describe_job_queues(jobQueues=[name])["jobQueues"][0]["status"] == "VALID":
            return
        time.sleep(0.1)
    raise AssertionError(f"job queue {name} never became VALID")


def _listed(client: Any, queue: str, **extra: Any) -> set[str]:
    pages = client.get_paginator("list_jobs").paginate(jobQueue=queue, **extra)
    return {j["jobId"] for page in pages for j in page["jobSummaryList"]}


def test_each_identity_sees_only_its_own_jobs_on_an_isolated_queue(
        endpoint: str, isolated_queue: str, env: Env) -> None:
    alice, bob = _as(endpoint, "AKIDALICE"), _as(endpoint, "AKIDBOB")
    mine = alice.submit_job(jobName="t-alice", jobQueue=isolated_queue, jobDefinition=env.jobdef)["jobId"]
    theirs = bob.submit_job(jobName="t-bob", jobQueue=isolated_queue, jobDefinition=env.jobdef)["jobId"]
    assert [j["jobId"] for j in alice.describe_jobs(jobs=[mine, theirs])["jobs"]] == [mine]
    assert [j["jobId"] for j in bob.describe_jobs(jobs=[mine, theirs])["jobs"]] == [theirs]
    for extra in ({"jobStatus": "RUNNABLE"}, {"filters": [{"name": "JOB_NAME", "values": ["t-*"]}]}):
        assert _listed(alice, isolated_queue, **extra) == {mine}, extra
        assert _listed(bob, isolated_queue, **extra) == {theirs}, extra
    front = alice.get_job_queue_snapshot(jobQueue=isolated_queue)["frontOfQueue"]["jobs"]
    assert [j["jobArn"].rsplit("/", 1)[1] for j in front] == [mine]


def test_another_identity_cannot_stop_a_job_or_depend_on_it(endpoint: str, isolated_queue: str, env: Env) -> None:
    alice, bob = _as(endpoint, "AKIDALICE"), _as(endpoint, "AKIDBOB")
    job = alice.submit_job(jobName=uniq("guarded"), jobQueue=isolated_queue, jobDefinition=env.jobdef)["jobId"]
    for stop in (bob.cancel_job, bob.terminate_job):
        with pytest.raises(ClientError) as info:
            stop(jobId=job, reason="not mine")
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert info.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "AKIDBOB" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        bob.submit_job(jobName=uniq("rider"), jobQueue=env.queue, jobDefinition=env.jobdef,
                       dependsOn=[{"jobId": job}])
    assert "does not exist" in info.value.response["Error"]["Message"]
    assert alice.describe_jobs(jobs=[job])["jobs"][0]["status"] == "RUNNABLE"
    alice.terminate_job(jobId=job, reason="mine to stop")
    assert wait_done(alice, job, timeout=20)["status"] == "FAILED"


def test_an_arrays_children_belong_to_who_submitted_the_array(endpoint: str, isolated_queue: str, env: Env) -> None:
    alice, bob = _as(endpoint, "AKIDALICE"), _as(endpoint, "AKIDBOB")
    parent = alice.submit_job(jobName=uniq("array"), jobQueue=isolated_queue, jobDefinition=env.jobdef,
                              arrayProperties={"size": 2})["jobId"]
    child = f"{parent}:1"
    deadline = time.monotonic() + 30
    while not alice.describe_jobs(jobs=[child])["jobs"]:  # until the fan-out has made it
        assert time.monotonic() < deadline, "the array's children were never made"
        time.sleep(0.05)
    assert alice.describe_jobs(jobs=[child])["jobs"] and not bob.describe_jobs(jobs=[child])["jobs"]
    assert _listed(alice, isolated_queue, arrayJobId=parent) == {f"{parent}:0", child}
    with pytest.raises(ClientError):
        bob.list_jobs(arrayJobId=parent)
    with pytest.raises(ClientError) as info:
        bob.cancel_job(jobId=child, reason="not mine")
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"
    alice.cancel_job(jobId=parent, reason="done looking")


def test_a_queue_without_the_tag_shows_every_callers_jobs(endpoint: str, env: Env) -> None:
    alice, bob = _as(endpoint, "AKIDALICE"), _as(endpoint, "AKIDBOB")
    job = alice.submit_job(jobName=uniq("shared"), jobQueue=env.held_queue, jobDefinition=env.jobdef)["jobId"]
    assert [j["jobId"] for j in bob.describe_jobs(jobs=[job])["jobs"]] == [job]
    bob.cancel_job(jobId=job, reason="anyone may, here")
    assert wait_done(alice, job, timeout=20)["status"] == "FAILED"
