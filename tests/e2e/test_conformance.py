"""Where batchplane answered differently from AWS Batch, through the unmodified boto3
client: unknown jobs for CancelJob/TerminateJob, array dependency types on plain jobs,
the request id of every response, unknown instance types, and values a process cannot
take."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from .support import Env, Raw, ec2_resources, uniq, wait_done, wait_status
from .support import describe as describe_one
from .test_resources import client_error

if TYPE_CHECKING:
    from collections.abc import Callable

# -- CancelJob / TerminateJob of a job batchplane does not know ---------------------------


@pytest.mark.parametrize("operation", ["cancel_job", "terminate_job"])
def test_stopping_an_unknown_job_answers_200_and_an_empty_body(
    batch: Any, raw: Callable[..., Raw], operation: str
) -> None:
    """AWS Batch answers CancelJob and TerminateJob of any job id with HTTP 200 and {}
    (aws/aws-cli#2551: terminate-job of "Whatever-string" returns 200 with body {})."""
    for job_id in (str(uuid.uuid4()), "no-such-job", f"{uuid.uuid4()}:3"):
        out = getattr(batch, operation)(jobId=job_id, reason="not there")
        assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert {k: v for k, v in out.items() if k != "ResponseMetadata"} == {}
    path = "/v1/canceljob" if operation == "cancel_job" else "/v1/terminatejob"
    resp = raw(path, {"jobId": str(uuid.uuid4()), "reason": "not there"})
    assert (resp.status, resp.json) == (200, {})
    # The request itself must still be well formed.
    client_error(getattr(batch, operation), "reason", jobId=str(uuid.uuid4()), reason="")


# -- x-amzn-RequestId on every response ---------------------------------------------------


def test_every_response_carries_a_request_id(batch: Any, env: Env, raw: Callable[..., Raw]) -> None:
    """boto3 reads ResponseMetadata.RequestId from x-amzn-RequestId; AWS sends one on every
    answer, success or error, and every request has its own."""
    ok = batch.describe_job_queues(jobQueues=[env.queue])
    again = batch.describe_job_queues(jobQueues=[env.queue])
    with pytest.raises(ClientError) as info:
        batch.describe_jobs(jobs=[])
    ids = [ok["ResponseMetadata"].get("RequestId"), again["ResponseMetadata"].get("RequestId"),
           info.value.response["ResponseMetadata"].get("RequestId")]
    assert all(ids) and len(set(ids)) == 3, ids
    assert info.value.response["Error"]["Code"] == "ClientException"
    # Raw HTTP: an unknown operation, a route that does not exist, a bad body, tags.
    for resp in (raw("/v1/nosuchoperation", {}), raw("/v1/describejobs", "{not json"),
                 raw("/v1/a/b/c", {}), raw(f"/v1/tags/{uuid.uuid4()}", method="GET"),
                 raw("/v1/describejobqueues", {})):
        assert resp.headers.get("x-amzn-requestid"), (resp.status, resp.headers)


# -- instance types the catalog does not know ----------------------------------------------


def test_unknown_instance_types_are_refused(batch: Any) -> None:
    """AWS refuses CreateComputeEnvironment with an instance type it does not offer
    ("Instance type can only be one of [...]"); batchplane accepted it and its jobs then
    waited RUNNABLE for ever."""
    for types in (["unknown"], ["m5", "m5.huge"], ["optimal", "zz9"]):
        bad = next(t for t in types if t in ("unknown", "m5.huge", "zz9"))
        message = client_error(
            batch.create_compute_environment, bad, "instanceTypes",
            computeEnvironmentName=uniq("badtype"), type="MANAGED",
            computeResources=ec2_resources(instanceTypes=types),
        )
        assert "optimal" in message  # says what would do
    name = uniq("goodtype")
    for types in (["optimal"], ["default_x86_64"], ["m5"], ["c5.xlarge", "r6i"]):
        batch.create_compute_environment(
            computeEnvironmentName=f"{name}-{len(types)}-{types[0].replace('.', '-')}", type="MANAGED",
            state="DISABLED", computeResources=ec2_resources(instanceTypes=types),
        )
    ce = f"{name}-1-m5"
    client_error(batch.update_compute_environment, "unknown", computeEnvironment=ce,
                 computeResources={"instanceTypes": ["unknown"]})
    batch.update_compute_environment(computeEnvironment=ce, computeResources={"instanceTypes": ["c5"]})
    found = batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"][0]
    assert found["computeResources"]["instanceTypes"] == ["c5"]


# -- array dependency types on a job that is not an array ----------------------------------


def test_array_dependency_types_on_a_plain_job_are_plain_dependencies(batch: Any, env: Env) -> None:
    """AWS accepts SEQUENTIAL and N_TO_N on a job that is not an array; they only mean
    something for arrays. N_TO_N with a jobId waits for that job as a plain dependency
    would; SEQUENTIAL without one waits for nothing. DescribeJobs shows dependsOn as
    submitted."""
    first = batch.submit_job(
        jobName=uniq("first"), jobQueue=env.queue, jobDefinition=env.jobdef,
        containerOverrides={"command": ["sh", "-c", "sleep 1"]},
    )["jobId"]
    after = batch.submit_job(
        jobName=uniq("n2n"), jobQueue=env.queue, jobDefinition=env.jobdef,
        dependsOn=[{"jobId": first, "type": "N_TO_N"}],
    )["jobId"]
    alone = batch.submit_job(
        jobName=uniq("seq"), jobQueue=env.queue, jobDefinition=env.jobdef,
        dependsOn=[{"type": "SEQUENTIAL"}],
    )["jobId"]
    job = wait_status(batch, after, "PENDING", "SUCCEEDED", "FAILED")
    assert job["dependsOn"] == [{"jobId": first, "type": "N_TO_N"}]
    if job["status"] == "PENDING":  # it waits while the first job runs
        assert wait_done(batch, first, timeout=30)["status"] == "SUCCEEDED"
    done = wait_done(batch, after, timeout=30)
    assert done["status"] == "SUCCEEDED"
    assert done["startedAt"] >= describe_one(batch, first)["stoppedAt"]
    ran = wait_done(batch, alone, timeout=30)
    assert ran["status"] == "SUCCEEDED" and ran["dependsOn"] == [{"type": "SEQUENTIAL"}]

    failing = batch.submit_job(
        jobName=uniq("fails"), jobQueue=env.queue, jobDefinition=env.jobdef,
        containerOverrides={"command": ["sh", "-c", "exit 4"]},
    )["jobId"]
    for kind in ("N_TO_N", "SEQUENTIAL"):
        dependent = batch.submit_job(
            jobName=uniq("dep"), jobQueue=env.queue, jobDefinition=env.jobdef,
            dependsOn=[{"jobId": failing, "type": kind}],
        )["jobId"]
        ended = wait_done(batch, dependent, timeout=30)
        assert (ended["status"], ended["statusReason"]) == ("FAILED", "Dependent Job failed"), kind
    client_error(batch.submit_job, "does not exist", jobName=uniq("x"), jobQueue=env.queue,
                 jobDefinition=env.jobdef, dependsOn=[{"jobId": str(uuid.uuid4()), "type": "N_TO_N"}])


# -- values a process cannot be given --------------------------------------------------------

_UNPASSABLE = [
    # (containerProperties / containerOverrides fragment, words of the message)
    ({"environment": [{"name": "GOOD", "value": "a\x00b"}]}, ["environment", "GOOD", "NUL"]),
    ({"environment": [{"name": "BA\x00D", "value": "v"}]}, ["environment", "NUL"]),
    ({"environment": [{"name": "A=B", "value": "v"}]}, ["environment", "="]),
    ({"environment": [{"name": "", "value": "v"}]}, ["environment", "name"]),
    ({"environment": [{"name": "SURR", "value": "x\ud800"}]}, ["environment", "SURR", "surrogate"]),
    ({"environment": [{"name": "\udfff", "value": "v"}]}, ["environment", "surrogate"]),
    ({"command": ["echo", "a\x00b"]}, ["command", "NUL"]),
    ({"command": ["echo", "\ud800"]}, ["command", "surrogate"]),
]


@pytest.mark.parametrize(("fragment", "words"), _UNPASSABLE,
                         ids=["env-value-nul", "env-name-nul", "env-name-equals", "env-name-empty",
                              "env-value-surrogate", "env-name-surrogate", "command-nul",
                              "command-surrogate"])
def test_values_no_process_can_take_are_refused(
    batch: Any, env: Env, fragment: dict[str, Any], words: list[str]
) -> None:
    """A NUL ends a C string and a lone surrogate is not Unicode: neither can be put in a
    process's argv or environment, and '=' separates an environment name from its value
    (ECS, and Docker under it, refuse such a container). Refused up front, in
    RegisterJobDefinition and in SubmitJob's containerOverrides, with the field named."""
    name = uniq("unpassable")
    client_error(
        batch.register_job_definition, *words, jobDefinitionName=name, type="container",
        containerProperties={
            "image": "busybox", "command": ["true"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
            **fragment,
        },
    )
    assert batch.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"] == []
    job_name = uniq("unpassable")
    client_error(batch.submit_job, *words, jobName=job_name, jobQueue=env.held_queue,
                 jobDefinition=env.jobdef, containerOverrides=fragment)
    listed = batch.list_jobs(jobQueue=env.held_queue, filters=[{"name": "JOB_NAME", "values": [job_name]}])
    assert listed["jobSummaryList"] == []


def test_parameters_that_reach_the_command_are_checked_too(batch: Any, env: Env) -> None:
    """Ref:: placeholders put parameters into the command, so their values obey the same rule."""
    client_error(batch.submit_job, "parameters", "NUL", jobName=uniq("p"), jobQueue=env.held_queue,
                 jobDefinition=env.jobdef, parameters={"p": "a\x00"})
    client_error(batch.submit_job, "parameters", "surrogate", jobName=uniq("p"), jobQueue=env.held_queue,
                 jobDefinition=env.jobdef, parameters={"p": "\ud800"})
