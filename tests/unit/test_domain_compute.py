"""CreateComputeEnvironment / UpdateComputeEnvironment validation and the described shape."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from batchplane.domain import compute
from batchplane.errors import ClientException
from hypothesis import given
from hypothesis import strategies as st

ARN = "arn:aws:batch:us-east-1:123456789012:compute-environment/ce"


def _rejects(call, *fields: str) -> str:
    """Assert ``call`` raises ClientException whose message names every one of ``fields``."""
    with pytest.raises(ClientException) as info:
        call()
    for field in fields:
        assert field in info.value.message, (field, info.value.message)
    return info.value.message


def ec2(kind: str = "EC2", **resources: Any) -> dict[str, Any]:
    """A valid MANAGED EC2/SPOT request; ``resources`` replace computeResources fields
    (``None`` removes one)."""
    cr: dict[str, Any] = {
        "type": kind,
        "maxvCpus": 16,
        "subnets": ["subnet-1"],
        "securityGroupIds": ["sg-1"],
        "instanceTypes": ["optimal"],
        "instanceRole": "ecsInstanceRole",
    }
    cr.update(resources)
    return {
        "computeEnvironmentName": "ce",
        "type": "MANAGED",
        "computeResources": {k: v for k, v in cr.items() if v is not None},
    }


def fargate(kind: str = "FARGATE", **resources: Any) -> dict[str, Any]:
    cr: dict[str, Any] = {
        "type": kind,
        "maxvCpus": 8,
        "subnets": ["subnet-1"],
        "securityGroupIds": ["sg-1"],
    }
    cr.update(resources)
    return {
        "computeEnvironmentName": "fargate",
        "type": "MANAGED",
        "computeResources": {k: v for k, v in cr.items() if v is not None},
    }


# -- create: the described document ----------------------------------------------------


def test_managed_ec2_gets_defaults_and_the_described_fields() -> None:
    doc = compute.create(ec2(), ARN)
    assert doc["computeEnvironmentName"] == "ce"
    assert doc["computeEnvironmentArn"] == ARN
    assert (doc["type"], doc["state"], doc["status"]) == ("MANAGED", "ENABLED", "VALID")
    assert doc["containerOrchestrationType"] == "ECS"
    assert doc["tags"] == {}
    assert doc["uuid"]
    cr = doc["computeResources"]
    assert (cr["minvCpus"], cr["desiredvCpus"], cr["maxvCpus"]) == (0, 0, 16)
    assert cr["allocationStrategy"] == "BEST_FIT"


def test_create_does_not_share_state_with_the_request() -> None:
    request = ec2(tags={"a": "b"})
    before = copy.deepcopy(request)
    doc = compute.create(request, ARN)
    doc["computeResources"]["subnets"].append("subnet-9")
    assert request == before


def test_uuid_differs_per_environment() -> None:
    assert compute.create(ec2(), ARN)["uuid"] != compute.create(ec2(), ARN)["uuid"]


@pytest.mark.parametrize("kind", ["EC2", "SPOT"])
def test_ec2_and_spot_are_accepted(kind: str) -> None:
    doc = compute.create(ec2(kind, minvCpus=2, desiredvCpus=4, maxvCpus=8), ARN)
    assert compute.platform(doc) == "EC2"
    assert not compute.is_fargate(doc)
    assert compute.max_vcpus(doc) == 8


@pytest.mark.parametrize("kind", ["FARGATE", "FARGATE_SPOT"])
def test_fargate_kinds_are_accepted_with_only_max(kind: str) -> None:
    doc = compute.create(fargate(kind), ARN)
    assert compute.platform(doc) == "FARGATE"
    assert compute.is_fargate(doc)
    assert compute.max_vcpus(doc) == 8
    assert "minvCpus" not in doc["computeResources"]
    assert "allocationStrategy" not in doc["computeResources"]


def test_state_and_tags_and_roles_are_kept() -> None:
    request = {**ec2(), "state": "DISABLED", "tags": {"team": "x"}, "serviceRole": "role/batch"}
    doc = compute.create(request, ARN)
    assert doc["state"] == "DISABLED"
    assert doc["tags"] == {"team": "x"}
    assert doc["serviceRole"] == "role/batch"


def test_unmanaged_without_vcpus_has_no_ceiling() -> None:
    doc = compute.create({"computeEnvironmentName": "u", "type": "UNMANAGED"}, ARN)
    assert "computeResources" not in doc
    assert compute.max_vcpus(doc) is None
    assert compute.platform(doc) == "EC2"


def test_unmanaged_vcpus_is_its_ceiling() -> None:
    doc = compute.create(
        {"computeEnvironmentName": "u", "type": "UNMANAGED", "unmanagedvCpus": 12}, ARN
    )
    assert compute.max_vcpus(doc) == 12


# -- create: what is rejected ----------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({**ec2(), "computeEnvironmentName": "bad name"}, "computeEnvironmentName"),
        ({**ec2(), "computeEnvironmentName": None}, "computeEnvironmentName"),
        ({**ec2(), "type": "SERVERLESS"}, "type"),
        ({**ec2(), "type": None}, "type"),
        ({**ec2(), "state": "PAUSED"}, "state"),
        ({**ec2(), "tags": {"aws:x": "y"}}, "aws:"),
        ({**ec2(), "eksConfiguration": {"eksClusterArn": "arn"}}, "eksConfiguration"),
        ({"computeEnvironmentName": "ce", "type": "MANAGED"}, "computeResources"),
        ({**ec2(), "unmanagedvCpus": 4}, "unmanagedvCpus"),
        (
            {
                "computeEnvironmentName": "u",
                "type": "UNMANAGED",
                "computeResources": ec2()["computeResources"],
            },
            "computeResources",
        ),
        (
            {"computeEnvironmentName": "u", "type": "UNMANAGED", "unmanagedvCpus": -1},
            "unmanagedvCpus",
        ),
        (
            {"computeEnvironmentName": "u", "type": "UNMANAGED", "unmanagedvCpus": "4"},
            "unmanagedvCpus",
        ),
    ],
)
def test_create_rejects_request_level_mistakes(request_: dict[str, Any], field: str) -> None:
    _rejects(lambda: compute.create(request_, ARN), field)


@pytest.mark.parametrize(
    ("resources", "fields"),
    [
        ({"type": "LAMBDA"}, ["computeResources.type"]),
        ({"type": None}, ["computeResources.type"]),
        ({"maxvCpus": None}, ["computeResources.maxvCpus"]),
        ({"maxvCpus": 0}, ["computeResources.maxvCpus"]),
        ({"maxvCpus": "16"}, ["computeResources.maxvCpus"]),
        ({"subnets": None}, ["computeResources.subnets"]),
        ({"subnets": []}, ["computeResources.subnets"]),
        ({"subnets": "subnet-1"}, ["computeResources.subnets"]),
        ({"subnets": [f"subnet-{i}" for i in range(17)]}, ["computeResources.subnets", "16"]),
        ({"securityGroupIds": "sg-1"}, ["computeResources.securityGroupIds"]),
        ({"instanceTypes": None}, ["computeResources.instanceTypes"]),
        ({"instanceTypes": []}, ["computeResources.instanceTypes"]),
        ({"instanceTypes": "m5"}, ["computeResources.instanceTypes"]),
        ({"instanceRole": None}, ["computeResources.instanceRole"]),
        ({"instanceRole": ""}, ["computeResources.instanceRole"]),
        ({"minvCpus": -1}, ["computeResources.minvCpus"]),
        ({"minvCpus": "1"}, ["computeResources.minvCpus"]),
        ({"desiredvCpus": -1}, ["computeResources.desiredvCpus"]),
        ({"desiredvCpus": 1.5}, ["computeResources.desiredvCpus"]),
        ({"tags": {f"k{i}": "v" for i in range(51)}}, ["tags"]),
        ({"tags": "x"}, ["computeResources.tags"]),
    ],
)
@pytest.mark.parametrize("kind", ["EC2", "SPOT"])
def test_ec2_resources_are_checked_field_by_field(
    kind: str, resources: dict[str, Any], fields: list[str]
) -> None:
    _rejects(lambda: compute.create(ec2(kind, **resources), ARN), *fields)


@pytest.mark.parametrize(
    ("low", "desired", "high"),
    [(4, 2, 8), (0, 9, 8), (9, None, 8), (5, 5, 4), (0, 17, 16)],
)
def test_min_desired_max_must_be_ordered(low: int, desired: int | None, high: int) -> None:
    message = _rejects(
        lambda: compute.create(ec2(minvCpus=low, desiredvCpus=desired, maxvCpus=high), ARN),
        "minvCpus",
        "desiredvCpus",
        "maxvCpus",
    )
    assert f"({high})" in message


@given(st.integers(-2, 20), st.one_of(st.none(), st.integers(-2, 20)), st.integers(-2, 20))
def test_min_desired_max_accepted_exactly_when_ordered(
    low: int, desired: int | None, high: int
) -> None:
    request = ec2(minvCpus=low, desiredvCpus=desired, maxvCpus=high)
    effective = low if desired is None else desired
    if 0 <= low <= effective <= high and high >= 1:
        cr = compute.create(request, ARN)["computeResources"]
        assert cr["minvCpus"] <= cr["desiredvCpus"] <= cr["maxvCpus"]
        assert cr["desiredvCpus"] == effective
    else:
        _rejects(lambda: compute.create(request, ARN), "vCpus")


@pytest.mark.parametrize(
    "field",
    [
        "minvCpus",
        "desiredvCpus",
        "instanceTypes",
        "instanceRole",
        "allocationStrategy",
        "bidPercentage",
        "ec2KeyPair",
        "imageId",
        "launchTemplate",
        "spotIamFleetRole",
        "placementGroup",
        "ec2Configuration",
    ],
)
@pytest.mark.parametrize("kind", ["FARGATE", "FARGATE_SPOT"])
def test_fargate_rejects_instance_fields(kind: str, field: str) -> None:
    values: dict[str, Any] = {
        "minvCpus": 0,
        "desiredvCpus": 0,
        "instanceTypes": ["optimal"],
        "instanceRole": "ecsInstanceRole",
        "allocationStrategy": "BEST_FIT",
        "bidPercentage": 50,
        "ec2KeyPair": "key",
        "imageId": "ami-1",
        "launchTemplate": {"launchTemplateName": "lt"},
        "spotIamFleetRole": "role",
        "placementGroup": "pg",
        "ec2Configuration": [{"imageType": "ECS_AL2"}],
    }
    message = _rejects(lambda: compute.create(fargate(kind, **{field: values[field]}), ARN), field)
    assert kind in message


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"maxvCpus": None}, "computeResources.maxvCpus"),
        ({"subnets": []}, "computeResources.subnets"),
    ],
)
def test_fargate_still_needs_max_and_subnets(resources: dict[str, Any], field: str) -> None:
    _rejects(lambda: compute.create(fargate(**resources), ARN), field)


@pytest.mark.parametrize(
    ("kind", "strategy", "ok"),
    [
        ("EC2", "BEST_FIT", True),
        ("EC2", "BEST_FIT_PROGRESSIVE", True),
        ("EC2", "SPOT_CAPACITY_OPTIMIZED", False),
        ("EC2", "SPOT_PRICE_CAPACITY_OPTIMIZED", False),
        ("SPOT", "BEST_FIT", True),
        ("SPOT", "BEST_FIT_PROGRESSIVE", True),
        ("SPOT", "SPOT_CAPACITY_OPTIMIZED", True),
        ("SPOT", "SPOT_PRICE_CAPACITY_OPTIMIZED", True),
        ("EC2", "best_fit", False),
        ("SPOT", "CHEAPEST", False),
        ("SPOT", None, False),
    ],
)
def test_allocation_strategy_depends_on_type(kind: str, strategy: str | None, ok: bool) -> None:
    request = ec2(kind)
    request["computeResources"]["allocationStrategy"] = strategy
    if ok:
        assert compute.create(request, ARN)["computeResources"]["allocationStrategy"] == strategy
    else:
        _rejects(lambda: compute.create(request, ARN), "computeResources.allocationStrategy")


@pytest.mark.parametrize("percent", [0, 1, 60, 100])
def test_spot_bid_percentage_in_range(percent: int) -> None:
    doc = compute.create(ec2("SPOT", bidPercentage=percent), ARN)
    assert doc["computeResources"]["bidPercentage"] == percent


@pytest.mark.parametrize("percent", [-1, 101, "50", 50.5, True])
def test_spot_bid_percentage_out_of_range(percent: object) -> None:
    _rejects(
        lambda: compute.create(ec2("SPOT", bidPercentage=percent), ARN),
        "computeResources.bidPercentage",
    )


@pytest.mark.parametrize("percent", [50, 123])
def test_bid_percentage_on_ec2_is_kept_and_ignored(percent: int) -> None:
    # AWS accepts the SPOT settings on EC2 resources and launches On-Demand instances.
    request = ec2("EC2", bidPercentage=percent, spotIamFleetRole="arn:aws:iam::123456789012:role/fleet")
    doc = compute.create(request, ARN)
    assert doc["computeResources"]["bidPercentage"] == percent


# -- update ----------------------------------------------------------------------------


def ec2_doc(**resources: Any) -> dict[str, Any]:
    return compute.create(ec2(**resources), ARN)


def test_update_state_and_service_role() -> None:
    doc = ec2_doc()
    new = compute.update(doc, {"state": "DISABLED", "serviceRole": "r2"})
    assert new["state"] == "DISABLED"
    assert new["serviceRole"] == "r2"
    assert doc["state"] == "ENABLED", "update must not change the stored document in place"


def test_update_rejects_unknown_state() -> None:
    _rejects(lambda: compute.update(ec2_doc(), {"state": "OFF"}), "state")


def test_update_with_nothing_changes_nothing() -> None:
    doc = ec2_doc()
    assert compute.update(doc, {}) == doc
    assert compute.update(doc, {"computeResources": {}}) == doc


@pytest.mark.parametrize(
    ("start", "changes", "expected"),
    [
        # A lower ceiling pulls desired down; a higher floor pulls it up.
        ({"minvCpus": 0, "desiredvCpus": 8, "maxvCpus": 16}, {"maxvCpus": 4}, (0, 4, 4)),
        ({"minvCpus": 0, "desiredvCpus": 2, "maxvCpus": 16}, {"minvCpus": 6}, (6, 6, 16)),
        ({"minvCpus": 0, "desiredvCpus": 2, "maxvCpus": 16}, {"maxvCpus": 32}, (0, 2, 32)),
        ({"minvCpus": 0, "desiredvCpus": 2, "maxvCpus": 16}, {"desiredvCpus": 10}, (0, 10, 16)),
    ],
)
def test_update_scaling_keeps_desired_inside_the_range(
    start: dict[str, int], changes: dict[str, int], expected: tuple[int, int, int]
) -> None:
    new = compute.update(ec2_doc(**start), {"computeResources": changes})
    cr = new["computeResources"]
    assert (cr["minvCpus"], cr["desiredvCpus"], cr["maxvCpus"]) == expected


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"minvCpus": 20}, ["minvCpus", "maxvCpus"]),
        ({"desiredvCpus": 40}, ["desiredvCpus", "maxvCpus"]),
        ({"maxvCpus": 0}, ["computeResources.maxvCpus"]),
        ({"maxvCpus": "32"}, ["computeResources.maxvCpus"]),
        ({"maxvCpus": None}, ["computeResources.maxvCpus"]),
        ({"minvCpus": "2"}, ["computeResources.minvCpus"]),
        ({"minvCpus": None}, ["computeResources.minvCpus"]),
        ({"type": "SPOT"}, ["computeResources.type"]),
        (
            {"allocationStrategy": "SPOT_CAPACITY_OPTIMIZED"},
            ["computeResources.allocationStrategy"],
        ),
        ({"subnets": []}, ["computeResources.subnets"]),
    ],
)
def test_update_rejects_bad_compute_resources(changes: dict[str, Any], fields: list[str]) -> None:
    _rejects(lambda: compute.update(ec2_doc(), {"computeResources": changes}), *fields)


@pytest.mark.parametrize("changes", [["maxvCpus"], "maxvCpus=4", 4])
def test_update_compute_resources_must_be_an_object(changes: object) -> None:
    _rejects(lambda: compute.update(ec2_doc(), {"computeResources": changes}), "computeResources")


def test_update_keeps_the_type_when_repeated() -> None:
    new = compute.update(ec2_doc(), {"computeResources": {"type": "EC2", "maxvCpus": 64}})
    assert new["computeResources"]["maxvCpus"] == 64


def test_update_fargate_max_only() -> None:
    doc = compute.create(fargate(), ARN)
    new = compute.update(doc, {"computeResources": {"maxvCpus": 32}})
    assert new["computeResources"]["maxvCpus"] == 32
    assert "desiredvCpus" not in new["computeResources"]
    _rejects(lambda: compute.update(doc, {"computeResources": {"minvCpus": 1}}), "minvCpus")
    _rejects(
        lambda: compute.update(doc, {"computeResources": {"type": "EC2"}}), "computeResources.type"
    )


def test_update_unmanaged() -> None:
    doc = compute.create({"computeEnvironmentName": "u", "type": "UNMANAGED"}, ARN)
    assert compute.update(doc, {"unmanagedvCpus": 8})["unmanagedvCpus"] == 8
    _rejects(lambda: compute.update(doc, {"unmanagedvCpus": -2}), "unmanagedvCpus")
    _rejects(lambda: compute.update(doc, {"computeResources": {"maxvCpus": 4}}), "computeResources")
    _rejects(lambda: compute.update(ec2_doc(), {"unmanagedvCpus": 4}), "unmanagedvCpus")


@given(
    st.integers(0, 8),
    st.integers(0, 16),
    st.one_of(st.none(), st.integers(-4, 40)),
    st.one_of(st.none(), st.integers(-4, 40)),
)
def test_update_either_keeps_min_desired_max_ordered_or_names_the_problem(
    start_min: int, start_extra: int, new_min: int | None, new_max: int | None
) -> None:
    doc = ec2_doc(minvCpus=start_min, desiredvCpus=start_min, maxvCpus=start_min + start_extra + 1)
    changes = {k: v for k, v in (("minvCpus", new_min), ("maxvCpus", new_max)) if v is not None}
    low = changes.get("minvCpus", doc["computeResources"]["minvCpus"])
    high = changes.get("maxvCpus", doc["computeResources"]["maxvCpus"])
    if 0 <= low <= high and high >= 1:
        cr = compute.update(doc, {"computeResources": changes})["computeResources"]
        assert cr["minvCpus"] <= cr["desiredvCpus"] <= cr["maxvCpus"]
        assert (cr["minvCpus"], cr["maxvCpus"]) == (low, high)
    else:
        _rejects(lambda: compute.update(doc, {"computeResources": changes}), "vCpus")
