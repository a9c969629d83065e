"""PassableRoles through the API function: the roles a caller names in a job definition or
a compute environment must be ones the stack's operator listed (moto_env lists the
instance profile ecsInstanceRole and the roles batchplane-*), else a ClientException that
names the parameter. Without the check any caller could have the stack pass any role it
may pass (a confused deputy)."""

from __future__ import annotations

from typing import Any

import pytest
from batchplane import config

from .conftest import api_call

ACCOUNT = "123456789012"
ALLOWED = f"arn:aws:iam::{ACCOUNT}:role/batchplane-task-execution"
OTHER = f"arn:aws:iam::{ACCOUNT}:role/Admin"


def _definition(name: str, **container: Any) -> dict[str, Any]:
    return {"jobDefinitionName": name, "type": "container",
            "containerProperties": {"image": "busybox", "command": ["true"],
                                    "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                             {"type": "MEMORY", "value": "512"}],
                                    **container}}


def _refused(status: int, body: dict[str, Any], *words: str) -> None:
    assert status == 400, body
    assert "ClientException" in body.get("__type", ""), body
    for word in ("PassableRoles", *words):
        assert word in body["message"], (word, body)


@pytest.mark.parametrize("key", ["jobRoleArn", "executionRoleArn"])
def test_register_refuses_a_role_not_listed(functions: dict[str, Any], key: str) -> None:
    api = functions["ApiFunction"]
    status, body = api_call(api, "registerjobdefinition", _definition("denied", **{key: OTHER}))
    _refused(status, body, key, OTHER)
    status, body = api_call(api, "describejobdefinitions", {"jobDefinitionName": "denied"})
    assert status == 200 and body["jobDefinitions"] == [], "a refused registration left a revision"
    status, body = api_call(api, "registerjobdefinition", _definition("allowed", **{key: ALLOWED}))
    assert status == 200, body


@pytest.mark.usefixtures("ec2_environment")
def test_submit_refuses_a_definition_whose_role_is_no_longer_listed(
    functions: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = functions["ApiFunction"]
    status, body = api_call(api, "registerjobdefinition", _definition("old", jobRoleArn=ALLOWED))
    assert status == 200, body
    # The operator narrows the list after the definition was registered.
    monkeypatch.setenv("BATCHPLANE_PASSABLE_ROLES", f"arn:aws:iam::{ACCOUNT}:instance-profile/ecsInstanceRole")
    config.settings.cache_clear()
    status, body = api_call(api, "submitjob", {"jobName": "j", "jobQueue": "default", "jobDefinition": "old"})
    _refused(status, body, "containerProperties.jobRoleArn", ALLOWED)
    status, body = api_call(api, "listjobs", {"jobQueue": "default", "jobStatus": "SUBMITTED"})
    assert status == 200 and body["jobSummaryList"] == []


def test_compute_environment_instance_role(functions: dict[str, Any], moto_env: dict[str, Any]) -> None:
    api = functions["ApiFunction"]

    def create(name: str, role: str) -> tuple[int, dict[str, Any]]:
        return api_call(api, "createcomputeenvironment", {
            "computeEnvironmentName": name, "type": "MANAGED",
            "computeResources": {"type": "EC2", "minvCpus": 0, "maxvCpus": 4, "instanceTypes": ["m5"],
                                 "subnets": [moto_env["subnet"]], "instanceRole": role},
        })

    # A profile's bare name is read as an ARN of this account, as AWS does.
    _refused(*create("admin", "AdminProfile"), f"arn:aws:iam::{ACCOUNT}:instance-profile/AdminProfile")
    status, body = api_call(api, "describecomputeenvironments", {"computeEnvironments": ["admin"]})
    assert body["computeEnvironments"] == []
    assert moto_env["ecs"].list_clusters()["clusterArns"] == [], "a refused environment got a cluster"
    status, body = create("ok", "ecsInstanceRole")
    assert status == 200, body
    status, body = api_call(api, "updatecomputeenvironment", {
        "computeEnvironment": "ok", "computeResources": {"instanceRole": f"arn:aws:iam::{ACCOUNT}:instance-profile/x"}})
    _refused(status, body, "instance-profile/x")
