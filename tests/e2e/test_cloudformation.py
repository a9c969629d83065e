"""CloudFormation's AWS::Batch::* resources in local mode are batchplane's own: a stack's
compute environment, job queue, job definition and scheduling policy are what the Batch
API describes, its queue runs jobs, an update changes them and a delete removes them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from .support import ec2_resources, make_client, uniq, wait_done


def _template(priority: int, command: list[str]) -> str:
    resources = ec2_resources()
    return json.dumps({"Resources": {
        "Policy": {"Type": "AWS::Batch::SchedulingPolicy", "Properties": {
            "FairsharePolicy": {"ShareDecaySeconds": "60", "ShareDistribution": [
                {"ShareIdentifier": "a", "WeightFactor": 1}]}}},
        "Env": {"Type": "AWS::Batch::ComputeEnvironment", "Properties": {
            "Type": "MANAGED", "State": "ENABLED",
            "ComputeResources": {"Type": "EC2", "MinvCpus": 0, "MaxvCpus": "8",
                                 "InstanceTypes": resources["instanceTypes"], "Subnets": resources["subnets"],
                                 "SecurityGroupIds": resources["securityGroupIds"],
                                 "InstanceRole": resources["instanceRole"]}}},
        "Queue": {"Type": "AWS::Batch::JobQueue", "Properties": {
            "Priority": priority, "ComputeEnvironmentOrder": [{"Order": 1, "ComputeEnvironment": {"Ref": "Env"}}],
            "Tags": {"Team": "cfn"}}},
        "Definition": {"Type": "AWS::Batch::JobDefinition", "Properties": {
            "Type": "container", "Parameters": {"Greeting": "hello"},
            "ContainerProperties": {"Image": "busybox", "Command": command,
                                    "ResourceRequirements": [{"Type": "VCPU", "Value": 1},
                                                             {"Type": "MEMORY", "Value": 128}]},
            "RetryStrategy": {"Attempts": "2"}}},
    }, "Outputs": {"QueueArn": {"Value": {"Fn::GetAtt": ["Queue", "JobQueueArn"]}},
                   "DefinitionArn": {"Value": {"Ref": "Definition"}}}})


def _wait_stack(cfn: Any, name: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if stack["StackStatus"] == status or time.monotonic() > deadline:
            assert stack["StackStatus"] == status, stack
            return stack
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_a_stacks_batch_resources_are_batchplanes(endpoint: str, batch: Any) -> None:
    cfn = make_client("cloudformation", endpoint)
    name = uniq("cfn")
    cfn.create_stack(StackName=name, TemplateBody=_template(5, ["echo", "Ref::Greeting"]))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in _wait_stack(cfn, name, "CREATE_COMPLETE")["Outputs"]}
    queue = batch.describe_job_queues(jobQueues=[outputs["QueueArn"]])["jobQueues"][0]
    assert queue["priority"] == 5 and queue["tags"] == {"Team": "cfn"}
    definition = batch.describe_job_definitions(jobDefinitions=[outputs["DefinitionArn"]])["jobDefinitions"][0]
    assert definition["retryStrategy"]["attempts"] == 2  # "2" in the template: CloudFormation converts
    assert {"type": "VCPU", "value": "1"} in definition["containerProperties"]["resourceRequirements"]
    env = batch.describe_compute_environments(
        computeEnvironments=[queue["computeEnvironmentOrder"][0]["computeEnvironment"]])["computeEnvironments"][0]
    assert env["computeResources"]["maxvCpus"] == 8
    policies = {r["PhysicalResourceId"] for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
                if r["ResourceType"] == "AWS::Batch::SchedulingPolicy"}
    assert [p["name"] for p in batch.describe_scheduling_policies(arns=list(policies))["schedulingPolicies"]]
    job = batch.submit_job(jobName="from-cfn", jobQueue=outputs["QueueArn"], jobDefinition=outputs["DefinitionArn"])
    assert wait_done(batch, job["jobId"], timeout=30)["status"] == "SUCCEEDED"

    cfn.update_stack(StackName=name, TemplateBody=_template(7, ["echo", "changed"]))
    outputs2 = {o["OutputKey"]: o["OutputValue"] for o in _wait_stack(cfn, name, "UPDATE_COMPLETE")["Outputs"]}
    assert batch.describe_job_queues(jobQueues=[outputs["QueueArn"]])["jobQueues"][0]["priority"] == 7
    revisions = batch.describe_job_definitions(jobDefinitions=[outputs["DefinitionArn"], outputs2["DefinitionArn"]])
    statuses = {d["revision"]: d["status"] for d in revisions["jobDefinitions"]}
    assert statuses == {1: "INACTIVE", 2: "ACTIVE"}  # a change is a new revision, as on AWS

    cfn.delete_stack(StackName=name)
    deadline = time.monotonic() + 30
    while batch.describe_job_queues(jobQueues=[outputs["QueueArn"]])["jobQueues"]:
        assert time.monotonic() < deadline, "the stack's job queue outlived the stack"
        time.sleep(0.1)
    assert not batch.describe_compute_environments(computeEnvironments=[env["computeEnvironmentArn"]])[
        "computeEnvironments"]
    assert batch.describe_job_definitions(jobDefinitions=[outputs2["DefinitionArn"]])[
        "jobDefinitions"][0]["status"] == "INACTIVE"
