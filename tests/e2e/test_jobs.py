"""Jobs through the unmodified boto3 client: run, fail, environment, parameters, cancel,
terminate."""

from __future__ import annotations

from typing import Any

import pytest

from .support import ORDER, REGION, Env, job_output, uniq, wait_done, wait_for, wait_status


def _in_order(seen: list[str]) -> bool:
    positions = [ORDER.index(s) for s in seen]
    return positions == sorted(positions)


@pytest.mark.parametrize("platform", ["EC2", "FARGATE"])
def test_hello_succeeds_with_logs(batch: Any, logs: Any, env: Env, platform: str) -> None:
    queue, jobdef = (
        (env.queue, env.jobdef) if platform == "EC2" else (env.fargate_queue, env.fargate_jobdef)
    )
    submitted = batch.submit_job(jobName=uniq("hello"), jobQueue=queue, jobDefinition=jobdef)
    job_id = submitted["jobId"]
    assert submitted["jobArn"].endswith(f":job/{job_id}")

    seen: list[str] = []
    job = wait_done(batch, job_id, timeout=10, seen=seen)

    assert job["status"] == "SUCCEEDED", job
    assert _in_order(seen), f"statuses went out of order: {seen}"
    assert seen[-1] == "SUCCEEDED"
    assert job["container"]["exitCode"] == 0
    assert job["statusReason"] == "Essential container in task exited"
    assert job["createdAt"] <= job["startedAt"] <= job["stoppedAt"]
    assert len(job["attempts"]) == 1
    attempt = job["attempts"][0]
    assert attempt["container"]["exitCode"] == 0
    stream = attempt["container"]["logStreamName"]
    assert stream.startswith(f"{jobdef}/default/"), stream
    assert attempt["startedAt"] <= attempt["stoppedAt"]
    assert job["jobQueue"].endswith(f":job-queue/{queue}")
    assert job["jobDefinition"].endswith(f":job-definition/{jobdef}:1")

    messages = job_output(batch, logs, job, expect=f"hello {job_id}")
    assert f"hello {job_id}" in messages, messages


def test_exit_code_3_fails(batch: Any, env: Env) -> None:
    job_id = batch.submit_job(
        jobName=uniq("exit3"),
        jobQueue=env.queue,
        jobDefinition=env.jobdef,
        containerOverrides={"command": ["sh", "-c", "exit 3"]},
    )["jobId"]
    job = wait_done(batch, job_id)
    assert job["status"] == "FAILED", job
    assert job["container"]["exitCode"] == 3
    assert job["attempts"][0]["container"]["exitCode"] == 3
    assert job["createdAt"] <= job["startedAt"] <= job["stoppedAt"]
    assert job["isCancelled"] is False and job["isTerminated"] is False


def test_batch_environment_variables(batch: Any, logs: Any, env: Env) -> None:
    script = (
        "echo JOB=$AWS_BATCH_JOB_ID; echo JQ=$AWS_BATCH_JQ_NAME; "
        "echo CE=$AWS_BATCH_CE_NAME; echo ATTEMPT=$AWS_BATCH_JOB_ATTEMPT; echo MINE=$MINE"
    )
    job_id = batch.submit_job(
        jobName=uniq("env"),
        jobQueue=env.queue,
        jobDefinition=env.jobdef,
        containerOverrides={
            "command": ["sh", "-c", script],
            "environment": [{"name": "MINE", "value": "from-override"}],
        },
    )["jobId"]
    job = wait_done(batch, job_id)
    assert job["status"] == "SUCCEEDED", job
    messages = job_output(batch, logs, job, expect="MINE=")
    for line in (
        f"JOB={job_id}",
        f"JQ={env.queue}",
        f"CE={env.ec2_ce}",
        "ATTEMPT=1",
        "MINE=from-override",
    ):
        assert line in messages, (line, messages)


_METADATA_SCRIPT = """
import json, os, urllib.request
base = os.environ["ECS_CONTAINER_METADATA_URI_V4"]
container = json.load(urllib.request.urlopen(base))
task = json.load(urllib.request.urlopen(base + "/task"))
print("EXEC=" + os.environ["AWS_EXECUTION_ENV"], "REGION=" + os.environ["AWS_REGION"])
print("TASK=" + task["TaskARN"], "CLUSTER=" + task["Cluster"], "FAMILY=" + task["Family"])
print("STREAM=" + container["LogOptions"]["awslogs-stream"], "KNOWN=" + container["KnownStatus"])
"""


@pytest.mark.parametrize("fargate", [False, True], ids=["ec2", "fargate"])
def test_ecs_container_variables_and_metadata_endpoint(batch: Any, logs: Any, env: Env, fargate: bool) -> None:
    """What ECS gives every container: AWS_EXECUTION_ENV (Metaflow's @batch needs it), the
    region, and a task metadata endpoint that describes the attempt's own task."""
    job_id = batch.submit_job(
        jobName=uniq("ecs-env"),
        jobQueue=env.fargate_queue if fargate else env.queue,
        jobDefinition=env.fargate_jobdef if fargate else env.jobdef,
        containerOverrides={"command": ["python3", "-c", _METADATA_SCRIPT]},
    )["jobId"]
    job = wait_done(batch, job_id)
    assert job["status"] == "SUCCEEDED", job
    words = " ".join(job_output(batch, logs, job, expect="STREAM=")).split()
    container = job["attempts"][0]["container"]
    ce = env.fargate_ce if fargate else env.ec2_ce
    clusters = batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"]
    for line in (
        "EXEC=AWS_ECS_FARGATE" if fargate else "EXEC=AWS_ECS_EC2",
        f"REGION={REGION}",
        f"TASK={container['taskArn']}",
        f"CLUSTER={clusters[0]['ecsClusterArn']}",
        f"FAMILY={job['jobDefinition'].rsplit('/', 1)[-1].split(':')[0]}",
        f"STREAM={container['logStreamName']}",
        "KNOWN=RUNNING",
    ):
        assert line in words, (line, words)


def test_ref_parameters_defaults_and_overrides(batch: Any, logs: Any, env: Env) -> None:
    name = uniq("params")
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        parameters={"greeting": "hi", "who": "world"},
        containerProperties={
            "image": "busybox",
            "vcpus": 1,
            "memory": 64,
            "command": ["echo", "Ref::greeting", "Ref::who", "Ref::unknown"],
        },
    )
    defaults = batch.submit_job(jobName=uniq("p"), jobQueue=env.queue, jobDefinition=name)["jobId"]
    override = batch.submit_job(
        jobName=uniq("p"),
        jobQueue=env.queue,
        jobDefinition=name,
        parameters={"who": "batch"},
    )["jobId"]

    job = wait_done(batch, defaults)
    assert job["status"] == "SUCCEEDED", job
    assert job["parameters"] == {"greeting": "hi", "who": "world"}
    assert "hi world Ref::unknown" in job_output(batch, logs, job, expect="hi world")

    job = wait_done(batch, override)
    assert job["status"] == "SUCCEEDED", job
    assert job["parameters"] == {"greeting": "hi", "who": "batch"}
    assert "hi batch Ref::unknown" in job_output(batch, logs, job, expect="hi batch")


def test_cancel_runnable_job_fails_it(batch: Any, env: Env) -> None:
    job_id = batch.submit_job(
        jobName=uniq("held"), jobQueue=env.held_queue, jobDefinition=env.jobdef
    )["jobId"]
    wait_status(batch, job_id, "RUNNABLE")
    assert (
        batch.cancel_job(jobId=job_id, reason="not needed any more")["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 200
    )
    job = wait_done(batch, job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "not needed any more"
    assert job["isCancelled"] is True
    assert job["attempts"] == []
    assert job["createdAt"] <= job["stoppedAt"]
    # Cancelling a finished job changes nothing and still succeeds.
    batch.cancel_job(jobId=job_id, reason="again")
    assert wait_done(batch, job_id)["statusReason"] == "not needed any more"


def test_cancel_leaves_running_job_and_terminate_stops_it(batch: Any, env: Env) -> None:
    job_id = batch.submit_job(
        jobName=uniq("sleeper"),
        jobQueue=env.queue,
        jobDefinition=env.jobdef,
        containerOverrides={"command": ["sleep", "30"]},
    )["jobId"]
    running = wait_status(batch, job_id, "RUNNING")

    batch.cancel_job(jobId=job_id, reason="cancel should not touch a RUNNING job")
    after = wait_for(batch, job_id, lambda _: True)
    assert after["status"] == "RUNNING", after
    assert after["isCancelled"] is False
    assert after.get("statusReason") == running.get("statusReason")

    batch.terminate_job(jobId=job_id, reason="stopped by the e2e test")
    job = wait_done(batch, job_id, timeout=10)
    assert job["status"] == "FAILED", job
    assert job["isTerminated"] is True
    assert job["statusReason"] == "stopped by the e2e test"
    assert len(job["attempts"]) == 1
    assert job["createdAt"] <= job["startedAt"] <= job["stoppedAt"]
    # The job ran for far less than its 30 s: terminate really stopped the process.
    assert job["stoppedAt"] - job["startedAt"] < 15_000


def test_terminate_queued_job_cancels_it(batch: Any, env: Env) -> None:
    job_id = batch.submit_job(
        jobName=uniq("held"), jobQueue=env.held_queue, jobDefinition=env.jobdef
    )["jobId"]
    wait_status(batch, job_id, "RUNNABLE")
    batch.terminate_job(jobId=job_id, reason="terminated while queued")
    job = wait_done(batch, job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "terminated while queued"


def test_submit_by_name_revision_and_arn(batch: Any, env: Env) -> None:
    name = uniq("revs")
    props = {"image": "busybox", "vcpus": 1, "memory": 64}
    r1 = batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={**props, "command": ["echo", "rev1"]},
    )
    r2 = batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={**props, "command": ["echo", "rev2"]},
    )
    assert (r1["revision"], r2["revision"]) == (1, 2)
    by_name = batch.submit_job(jobName=uniq("j"), jobQueue=env.queue, jobDefinition=name)["jobId"]
    by_rev = batch.submit_job(jobName=uniq("j"), jobQueue=env.queue, jobDefinition=f"{name}:1")[
        "jobId"
    ]
    by_arn = batch.submit_job(
        jobName=uniq("j"), jobQueue=env.queue, jobDefinition=r1["jobDefinitionArn"]
    )["jobId"]
    jobs = {j["jobId"]: j for j in batch.describe_jobs(jobs=[by_name, by_rev, by_arn])["jobs"]}
    assert jobs[by_name]["jobDefinition"] == r2["jobDefinitionArn"]
    assert jobs[by_rev]["jobDefinition"] == r1["jobDefinitionArn"]
    assert jobs[by_arn]["jobDefinition"] == r1["jobDefinitionArn"]
    assert jobs[by_name]["container"]["command"] == ["echo", "rev2"]
    assert jobs[by_rev]["container"]["command"] == ["echo", "rev1"]
    for job_id in jobs:
        assert wait_done(batch, job_id)["status"] == "SUCCEEDED"
