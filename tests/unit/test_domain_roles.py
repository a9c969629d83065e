"""Which roles batchplane passes for its callers (the confused-deputy check)."""

from __future__ import annotations

import pytest
from batchplane.config import _passable_roles
from batchplane.domain import roles
from batchplane.errors import ClientException

JOB_ROLES = roles.parse("arn:aws:iam::123456789012:role/batchplane-job-*, arn:aws:iam::123456789012:role/etl")


def test_patterns_match_whole_arns() -> None:
    assert roles.allowed("arn:aws:iam::123456789012:role/batchplane-job-s3", JOB_ROLES)
    assert roles.allowed("arn:aws:iam::123456789012:role/etl", JOB_ROLES)
    assert not roles.allowed("arn:aws:iam::123456789012:role/etl-admin", JOB_ROLES)
    assert not roles.allowed("arn:aws:iam::123456789012:role/batchplane-admin", JOB_ROLES)
    assert not roles.allowed("arn:aws:iam::999999999999:role/batchplane-job-s3", JOB_ROLES)


def test_a_role_outside_the_list_is_refused_with_what_to_do() -> None:
    with pytest.raises(ClientException, match="PassableRoles.*ask its operator"):
        roles.check("arn:aws:iam::123456789012:role/admin", "jobRoleArn", JOB_ROLES)
    with pytest.raises(ClientException, match=r"now: none"):
        roles.check("arn:aws:iam::123456789012:role/admin", "jobRoleArn", ())
    roles.check("arn:aws:iam::123456789012:role/admin", "jobRoleArn", roles.ANY)


def test_every_role_a_job_definition_names() -> None:
    doc = {
        "containerProperties": {"jobRoleArn": "a", "executionRoleArn": "b"},
        "nodeProperties": {"nodeRangeProperties": [{"container": {"jobRoleArn": "c"}}, {"targetNodes": "1:"}]},
    }
    assert roles.job_definition_roles(doc) == [
        ("containerProperties.jobRoleArn", "a"), ("containerProperties.executionRoleArn", "b"),
        ("nodeProperties.nodeRangeProperties[0].container.jobRoleArn", "c"),
    ]
    with pytest.raises(ClientException, match="nodeRangeProperties\\[0\\].container.jobRoleArn c "):
        roles.check_job_definition(doc, ("a", "b"))


def test_an_instance_profile_name_is_read_as_its_arn() -> None:
    assert roles.instance_role_arn("ecsInstanceRole", "123456789012") == (
        "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole")
    arn = "arn:aws:iam::123456789012:instance-profile/x"
    assert roles.instance_role_arn(arn, "123456789012") == arn


def test_unset_it_is_any_role_in_local_mode_and_none_on_aws() -> None:
    assert _passable_roles({"BATCHPLANE_LAUNCHER": "local"}) == roles.ANY
    assert _passable_roles({"BATCHPLANE_LAUNCHER": "ecs"}) == ()
    assert _passable_roles({"BATCHPLANE_LAUNCHER": "local", "BATCHPLANE_PASSABLE_ROLES": ""}) == ()
