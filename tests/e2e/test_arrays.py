"""Array jobs and dependencies through the local stack (issue 4's scenarios). The
fan-out runs in moto's Step Functions interpreter, its tasks in the in-process
ArraysFunction."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest

from .support import ec2_resources, job_output, uniq, wait_done, wait_for, wait_status


def _setup(batch: Any, vcpus: int = 8) -> str:
    ce = uniq("ce")
    batch.create_compute_environment(
        computeEnvironmentName=ce, type="MANAGED", computeResources=ec2_resources(maxvCpus=vcpus)
    )
    queue = uniq("q")
    batch.create_job_queue(
        jobQueueName=queue, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}]
    )
    return queue


def _jd(batch: Any, command: list[str], **extra: Any) -> str:
    name = uniq("jd")
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "busybox",
            "command": command,
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
        },
        **extra,
    )
    return name


def _children(batch: Any, parent: str, status: str | None = None) -> list[dict[str, Any]]:
    out, token = [], None
    while True:
        kwargs: dict[str, Any] = {"arrayJobId": parent, "maxResults": 1000}
        if status:
            kwargs["jobStatus"] = status
        if token:
            kwargs["nextToken"] = token
        page = batch.list_jobs(**kwargs)
        out += page["jobSummaryList"]
        token = page.get("nextToken")
        if not token:
            return out


def test_array_with_an_aggregate_that_waits_for_every_child(batch: Any, logs: Any) -> None:
    queue = _setup(batch)
    size = 40  # small keeps the suite fast; bench/ drives the large arrays
    parent = batch.submit_job(
        jobName=uniq("arr"),
        jobQueue=queue,
        arrayProperties={"size": size},
        jobDefinition=_jd(batch, ["sh", "-c", "echo child $AWS_BATCH_JOB_ARRAY_INDEX"]),
    )["jobId"]
    aggregate = batch.submit_job(
        jobName=uniq("agg"),
        jobQueue=queue,
        dependsOn=[{"jobId": parent}],
        jobDefinition=_jd(batch, ["echo", "aggregate"]),
    )["jobId"]
    assert wait_status(batch, aggregate, "PENDING")["status"] == "PENDING"
    done = wait_done(batch, aggregate, timeout=240)
    assert done["status"] == "SUCCEEDED"
    described = batch.describe_jobs(jobs=[parent])["jobs"][0]
    assert described["status"] == "SUCCEEDED"
    assert described["arrayProperties"] == {"size": size, "statusSummary": {"SUCCEEDED": size}}
    children = _children(batch, parent, "SUCCEEDED")
    assert len(children) == size
    assert max(c["stoppedAt"] for c in children) <= done["startedAt"]
    child = batch.describe_jobs(jobs=[f"{parent}:7"])["jobs"][0]
    assert child["arrayProperties"] == {"index": 7}
    assert job_output(batch, logs, child, expect="child 7")[-1] == "child 7"


def test_n_to_n_children_wait_for_their_twins(batch: Any) -> None:
    queue = _setup(batch)
    first = batch.submit_job(
        jobName=uniq("a"),
        jobQueue=queue,
        arrayProperties={"size": 50},
        jobDefinition=_jd(batch, ["sh", "-c", "sleep 0.$((AWS_BATCH_JOB_ARRAY_INDEX % 3))"]),
    )["jobId"]
    second = batch.submit_job(
        jobName=uniq("b"),
        jobQueue=queue,
        arrayProperties={"size": 50},
        dependsOn=[{"jobId": first, "type": "N_TO_N"}],
        jobDefinition=_jd(batch, ["true"]),
    )["jobId"]
    assert wait_done(batch, second, timeout=240)["status"] == "SUCCEEDED"
    a = {c["jobId"].rsplit(":", 1)[1]: c for c in _children(batch, first, "SUCCEEDED")}
    b = {c["jobId"].rsplit(":", 1)[1]: c for c in _children(batch, second, "SUCCEEDED")}
    assert len(a) == len(b) == 50
    for i in a:
        assert b[i]["startedAt"] >= a[i]["stoppedAt"], i


def test_sequential_array_runs_in_index_order(batch: Any) -> None:
    queue = _setup(batch)
    parent = batch.submit_job(
        jobName=uniq("seq"),
        jobQueue=queue,
        arrayProperties={"size": 10},
        dependsOn=[{"type": "SEQUENTIAL"}],
        jobDefinition=_jd(batch, ["true"]),
    )["jobId"]
    assert wait_done(batch, parent, timeout=120)["status"] == "SUCCEEDED"
    children = sorted(_children(batch, parent, "SUCCEEDED"), key=lambda c: int(c["jobId"].rsplit(":", 1)[1]))
    assert len(children) == 10
    for before, after in zip(children, children[1:], strict=False):
        assert after["startedAt"] >= before["stoppedAt"]


def test_a_failed_dependency_fails_its_dependents_and_theirs(batch: Any) -> None:
    queue = _setup(batch)
    failing = batch.submit_job(jobName=uniq("f"), jobQueue=queue, jobDefinition=_jd(batch, ["false"]))["jobId"]
    jd = _jd(batch, ["true"])
    child = batch.submit_job(jobName=uniq("c"), jobQueue=queue, jobDefinition=jd, dependsOn=[{"jobId": failing}])[
        "jobId"
    ]
    grandchild = batch.submit_job(jobName=uniq("g"), jobQueue=queue, jobDefinition=jd, dependsOn=[{"jobId": child}])[
        "jobId"
    ]
    cleanup = batch.submit_job(
        jobName=uniq("cleanup"), jobQueue=queue, jobDefinition=jd, dependsOn=[{"jobId": failing, "type": "ANY_OUTCOME"}]
    )["jobId"]
    for job_id in (child, grandchild):
        job = wait_done(batch, job_id, timeout=60)
        assert (job["status"], job["statusReason"]) == ("FAILED", "Dependent Job failed")
        assert job["attempts"] == []
    assert wait_done(batch, cleanup, timeout=60)["status"] == "SUCCEEDED"


def test_unknown_dependency_is_a_client_exception(batch: Any) -> None:
    queue = _setup(batch)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        batch.submit_job(
            jobName=uniq("x"),
            jobQueue=queue,
            jobDefinition=_jd(batch, ["true"]),
            dependsOn=[{"jobId": "4c3a0d0e-0000-0000-0000-000000000000"}],
        )
    assert info.value.response["Error"]["Code"] == "ClientException"
    assert "does not exist" in info.value.response["Error"]["Message"]


def test_cancelling_a_parent_fails_its_queued_children(batch: Any) -> None:
    ce = uniq("ce")
    batch.create_compute_environment(
        computeEnvironmentName=ce, type="MANAGED", state="DISABLED", computeResources=ec2_resources(maxvCpus=2)
    )
    queue = uniq("q")
    batch.create_job_queue(
        jobQueueName=queue, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}]
    )
    parent = batch.submit_job(
        jobName=uniq("arr"), jobQueue=queue, arrayProperties={"size": 30}, jobDefinition=_jd(batch, ["true"])
    )["jobId"]
    wait_for(
        batch, parent, lambda j: j.get("arrayProperties", {}).get("statusSummary", {}).get("RUNNABLE") == 30, timeout=60
    )
    batch.cancel_job(jobId=parent, reason="not needed")
    done = wait_done(batch, parent)
    assert (done["status"], done["statusReason"]) == ("FAILED", "not needed")
    wait_for(batch, parent, lambda j: j["arrayProperties"]["statusSummary"] == {"FAILED": 30}, timeout=60)
    child = batch.describe_jobs(jobs=[f"{parent}:3"])["jobs"][0]
    assert child["status"] == "FAILED" and child["isCancelled"]
