"""The documents the domain builds use only the members, enums and required fields of the
AWS Batch API model (botocore's batch service-2.json, read as data: no client, no moto)."""

from __future__ import annotations

from typing import Any

import pytest
from batchplane.domain import compute, jobdefs, jobs, policies, queues

botocore_session = pytest.importorskip("botocore.session")
MODEL = botocore_session.get_session().get_service_model("batch")


def members(shape: str) -> set[str]:
    return set(MODEL.shape_for(shape).members)


def required(shape: str) -> set[str]:
    return set(MODEL.shape_for(shape).required_members)


def enum(shape: str, member: str) -> set[str]:
    return set(MODEL.shape_for(shape).members[member].enum)


def conforms(doc: dict[str, Any], shape: str, *, check_required: bool = True) -> None:
    extra = set(doc) - members(shape)
    assert not extra, f"{shape} has no member(s) {sorted(extra)}"
    if check_required:
        missing = required(shape) - set(doc)
        assert not missing, f"{shape} requires {sorted(missing)}"


def _ce(kind: str) -> dict[str, Any]:
    cr: dict[str, Any] = {"type": kind, "maxvCpus": 4, "subnets": ["s"], "securityGroupIds": ["sg"]}
    if kind in ("EC2", "SPOT"):
        cr.update(instanceTypes=["optimal"], instanceRole="ecsInstanceRole", minvCpus=0)
    return compute.create(
        {
            "computeEnvironmentName": kind.lower().replace("_", "-"),
            "type": "MANAGED",
            "computeResources": cr,
            "serviceRole": "role",
        },
        f"arn:aws:batch:us-east-1:123456789012:compute-environment/{kind}",
    )


@pytest.mark.parametrize("kind", ["EC2", "SPOT", "FARGATE", "FARGATE_SPOT"])
def test_compute_environment_detail(kind: str) -> None:
    doc = _ce(kind)
    conforms(doc, "ComputeEnvironmentDetail")
    conforms(doc["computeResources"], "ComputeResource")
    assert doc["type"] in enum("ComputeEnvironmentDetail", "type")
    assert doc["state"] in enum("ComputeEnvironmentDetail", "state")
    assert doc["status"] in enum("ComputeEnvironmentDetail", "status")
    assert doc["computeResources"]["type"] in enum("ComputeResource", "type")
    if "allocationStrategy" in doc["computeResources"]:
        assert doc["computeResources"]["allocationStrategy"] in enum(
            "ComputeResource", "allocationStrategy"
        )


def test_domain_choices_are_all_in_the_model() -> None:
    assert set(compute.RESOURCE_TYPES) <= enum("ComputeResource", "type")
    assert set(compute.SPOT_STRATEGIES) <= enum("ComputeResource", "allocationStrategy")
    assert set(compute.TYPES) == enum("ComputeEnvironmentDetail", "type")
    assert set(jobdefs.TYPES) <= enum("RegisterJobDefinitionRequest", "type")
    assert set(jobdefs.PLATFORMS) <= set(MODEL.shape_for("PlatformCapabilityList").member.enum)
    assert set(jobs.STATUSES) == enum("JobDetail", "status")


def test_job_queue_detail() -> None:
    ce = _ce("EC2")
    doc = queues.create(
        {
            "jobQueueName": "q",
            "priority": 1,
            "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ec2"}],
            "jobStateTimeLimitActions": [
                {"reason": "r", "state": "RUNNABLE", "maxTimeSeconds": 600, "action": "CANCEL"}
            ],
            "schedulingPolicyArn": "arn:p",
        },
        "arn:aws:batch:us-east-1:123456789012:job-queue/q",
        lambda _: ce,
        lambda _: True,
    )
    conforms(doc, "JobQueueDetail")
    for entry in doc["computeEnvironmentOrder"]:
        conforms(entry, "ComputeEnvironmentOrder")
    for action in doc["jobStateTimeLimitActions"]:
        conforms(action, "JobStateTimeLimitAction")
    assert doc["status"] in enum("JobQueueDetail", "status")
    assert doc["jobQueueType"] in enum("JobQueueDetail", "jobQueueType")


def test_scheduling_policy_detail() -> None:
    doc = policies.create(
        {
            "name": "p",
            "fairsharePolicy": {
                "shareDistribution": [{"shareIdentifier": "a*", "weightFactor": 2}]
            },
        },
        "arn:aws:batch:us-east-1:123456789012:scheduling-policy/p",
    )
    conforms(doc, "SchedulingPolicyDetail")
    conforms(doc["fairsharePolicy"], "FairsharePolicy")
    for share in doc["fairsharePolicy"]["shareDistribution"]:
        conforms(share, "ShareAttributes")


def _definition() -> dict[str, Any]:
    return jobdefs.register(
        {
            "jobDefinitionName": "jd",
            "type": "container",
            "parameters": {"p": "v"},
            "schedulingPriority": 1,
            "retryStrategy": {
                "attempts": 2,
                "evaluateOnExit": [{"action": "EXIT", "onExitCode": "1"}],
            },
            "timeout": {"attemptDurationSeconds": 60},
            "propagateTags": True,
            "tags": {"t": "v"},
            "containerProperties": {
                "image": "busybox",
                "command": ["true"],
                "environment": [{"name": "A", "value": "1"}],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "1"},
                    {"type": "MEMORY", "value": "2048"},
                ],
            },
        },
        "arn:aws:batch:us-east-1:123456789012:job-definition/jd:1",
        1,
    )


def test_job_definition() -> None:
    doc = _definition()
    conforms(doc, "JobDefinition")
    conforms(doc["containerProperties"], "ContainerProperties")
    conforms(doc["retryStrategy"], "RetryStrategy")
    for rule in doc["retryStrategy"]["evaluateOnExit"]:
        conforms(rule, "EvaluateOnExit")
    conforms(doc["timeout"], "JobTimeout")


def test_job_detail_attempts_and_summary() -> None:
    doc = jobs.new_job(
        {"jobName": "j", "shareIdentifier": "a", "retryStrategy": {"attempts": 2}},
        job_id="id",
        job_arn="arn:aws:batch:us-east-1:123456789012:job/id",
        queue={"jobQueueArn": "arn:q"},
        definition=_definition(),
        now=1,
    )
    # The model marks JobDetail.startedAt required, yet AWS omits it until RUNNING.
    conforms(doc, "JobDetail", check_required=False)
    assert required("JobDetail") - set(doc) == {"startedAt"}
    conforms(doc["container"], "ContainerDetail")
    for status in (jobs.RUNNABLE, jobs.STARTING, jobs.RUNNING):
        jobs.move(doc, status)
    doc["startedAt"] = 2
    doc["container"].update(
        taskArn="arn:t", logStreamName="jd/default/t", containerInstanceArn="arn:ci"
    )
    jobs.finish_attempt(doc, exit_code=1, reason="r", status_reason="s", now=3)
    jobs.move(doc, jobs.STARTING)
    jobs.finish_attempt(doc, exit_code=None, reason=None, status_reason="s", now=4)  # never ran
    conforms(doc, "JobDetail", check_required=False)
    for attempt in doc["attempts"]:
        conforms(attempt, "AttemptDetail")
        conforms(attempt["container"], "AttemptContainerDetail")
    conforms(jobs.summary(doc), "JobSummary")
    doc["container"].update(exitCode=1, reason="r")
    conforms(jobs.summary(doc)["container"], "ContainerSummary")
