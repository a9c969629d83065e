"""Handlers against moto: the table from template.yaml, the real ECS adapter on moto's
ECS, and the sample events in events/ as the inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from batchplane import aws, config, wiring
from batchplane.local import moto_fixes
from batchplane.local.router import Function
from batchplane.local.stack import create_resources
from batchplane.local.template import Template
from moto import mock_aws

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
TABLE = "batchplane-test"


def load_event(path: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / path).read_text())


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "BATCHPLANE_TABLE": TABLE, "BATCHPLANE_LAUNCHER": "ecs",
        # What an operator would list: the instance profile and the stack's own roles.
        "BATCHPLANE_PASSABLE_ROLES": "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole "
                                     "arn:aws:iam::123456789012:role/batchplane-*",
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_fixes.install()  # the TransactWriteItems local mode runs (see its docstring)
    with mock_aws():
        config.settings.cache_clear()
        aws.reset()
        wiring.reset()
        template = Template.load(ROOT / "template.yaml")
        create_resources(template, boto3.client("dynamodb"), boto3.client("logs"), TABLE)
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        yield {"template": template, "subnet": subnet, "ecs": boto3.client("ecs"), "ec2": ec2}
        wiring.reset()
        aws.reset()
    config.settings.cache_clear()


@pytest.fixture
def functions(moto_env: dict[str, Any]) -> dict[str, Function]:
    return {lid: Function(spec) for lid, spec in moto_env["template"].functions().items()}


def api_call(fn: Function, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Invoke the API function with the sample SubmitJob event re-aimed at ``operation``."""
    event = load_event("api/submitjob.json")
    event["path"] = f"/v1/{operation}"
    event["requestContext"]["path"] = f"/prod/v1/{operation}"
    event["pathParameters"] = {"proxy": operation}
    event["body"] = json.dumps(body)
    event["headers"].pop("amz-sdk-invocation-id", None)
    event["multiValueHeaders"].pop("amz-sdk-invocation-id", None)
    out = fn.invoke(event)
    return out["statusCode"], json.loads(out["body"] or "{}")


@pytest.fixture
def ec2_environment(moto_env: dict[str, Any], functions: dict[str, Function]) -> dict[str, Any]:
    """An EC2 compute environment (with one registered container instance, so that moto's
    ECS can place tasks), the queue "default" and the job definition "hello" that the
    sample events name."""
    api = functions["ApiFunction"]
    status, ce = api_call(api, "createcomputeenvironment", {
        "computeEnvironmentName": "ec2", "type": "MANAGED",
        "computeResources": {"type": "EC2", "minvCpus": 0, "maxvCpus": 4, "instanceTypes": ["m5"],
                             "subnets": [moto_env["subnet"]], "instanceRole": "ecsInstanceRole"},
    })
    assert status == 200, ce
    _, described = api_call(api, "describecomputeenvironments", {"computeEnvironments": ["ec2"]})
    cluster = described["computeEnvironments"][0]["ecsClusterArn"]
    instance = moto_env["ec2"].run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                             InstanceType="m5.xlarge")["Instances"][0]
    moto_env["ecs"].register_container_instance(
        cluster=cluster, instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]})
    )
    status, _ = api_call(api, "createjobqueue", {
        "jobQueueName": "default", "priority": 1,
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ec2"}],
    })
    assert status == 200
    status, _ = api_call(api, "registerjobdefinition", {
        "jobDefinitionName": "hello", "type": "container",
        "containerProperties": {"image": "busybox", "command": ["echo", "hello"],
                                "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                         {"type": "MEMORY", "value": "512"}]},
    })
    assert status == 200
    return {"cluster": cluster, "instance": instance["InstanceId"]}


__all__ = ["api_call", "load_event"]
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
