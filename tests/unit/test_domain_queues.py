"""CreateJobQueue / UpdateJobQueue validation and the described shape."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from batchplane.domain import compute, queues
from batchplane.errors import ClientException
from hypothesis import given
from hypothesis import strategies as st

QUEUE_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/q"
POLICY_ARN = "arn:aws:batch:us-east-1:123456789012:scheduling-policy/fair"


def _rejects(call, *fields: str) -> str:
    """Assert ``call`` raises ClientException whose message names every one of ``fields``."""
    with pytest.raises(ClientException) as info:
        call()
    for field in fields:
        assert field in info.value.message, (field, info.value.message)
    return info.value.message


def _environment(name: str, kind: str) -> dict[str, Any]:
    cr: dict[str, Any] = {"type": kind, "maxvCpus": 4, "subnets": ["s"], "securityGroupIds": ["sg"]}
    if kind in ("EC2", "SPOT"):
        cr.update(instanceTypes=["optimal"], instanceRole="ecsInstanceRole")
    return compute.create(
        {"computeEnvironmentName": name, "type": "MANAGED", "computeResources": cr},
        f"arn:aws:batch:us-east-1:123456789012:compute-environment/{name}",
    )


ENVIRONMENTS = {
    "ec2-a": _environment("ec2-a", "EC2"),
    "ec2-b": _environment("ec2-b", "EC2"),
    "spot": _environment("spot", "SPOT"),
    "fargate": _environment("fargate", "FARGATE"),
    "fargate-spot": _environment("fargate-spot", "FARGATE_SPOT"),
    "broken": {**_environment("broken", "EC2"), "status": "INVALID"},
}


def find_ce(ref: str) -> dict[str, Any]:
    """The store's lookup: by name or ARN, ClientException when unknown."""
    for doc in ENVIRONMENTS.values():
        if ref in (doc["computeEnvironmentName"], doc["computeEnvironmentArn"]):
            return doc
    raise ClientException(f"Compute environment {ref} does not exist.")


def policy_arn(ref: str) -> str | None:
    return POLICY_ARN if ref in (POLICY_ARN, "fair") else None


def request(*names: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobQueueName": "q",
        "priority": 10,
        "computeEnvironmentOrder": [
            {"order": i + 1, "computeEnvironment": n} for i, n in enumerate(names or ("ec2-a",))
        ],
    }
    body.update(fields)
    return body


def create(body: dict[str, Any]) -> dict[str, Any]:
    return queues.create(body, QUEUE_ARN, find_ce, policy_arn)


def update(doc: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return queues.update(doc, body, find_ce, policy_arn)


def action(**fields: Any) -> dict[str, Any]:
    out = {
        "reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        "state": "RUNNABLE",
        "maxTimeSeconds": 600,
        "action": "CANCEL",
    }
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


# -- create ----------------------------------------------------------------------------


def test_create_describes_the_queue() -> None:
    doc = create(request("ec2-a"))
    assert doc["jobQueueName"] == "q"
    assert doc["jobQueueArn"] == QUEUE_ARN
    assert (doc["state"], doc["status"], doc["priority"]) == ("ENABLED", "VALID", 10)
    assert doc["jobQueueType"] == "ECS"
    assert doc["jobStateTimeLimitActions"] == []
    assert doc["tags"] == {}
    assert doc["computeEnvironmentOrder"] == [
        {"order": 1, "computeEnvironment": ENVIRONMENTS["ec2-a"]["computeEnvironmentArn"]}
    ]
    assert "schedulingPolicyArn" not in doc


def test_order_is_sorted_ascending_and_references_become_arns() -> None:
    body = request()
    body["computeEnvironmentOrder"] = [
        {"order": 7, "computeEnvironment": "spot"},
        {"order": 0, "computeEnvironment": ENVIRONMENTS["ec2-b"]["computeEnvironmentArn"]},
        {"order": 3, "computeEnvironment": "ec2-a"},
    ]
    doc = create(body)
    assert [e["order"] for e in doc["computeEnvironmentOrder"]] == [0, 3, 7]
    assert [e["computeEnvironment"].rsplit("/", 1)[1] for e in doc["computeEnvironmentOrder"]] == [
        "ec2-b",
        "ec2-a",
        "spot",
    ]


@pytest.mark.parametrize(
    "names", [("ec2-a", "spot"), ("fargate", "fargate-spot"), ("ec2-a", "ec2-b", "spot")]
)
def test_same_platform_environments_combine(names: tuple[str, ...]) -> None:
    assert len(create(request(*names))["computeEnvironmentOrder"]) == len(names)


@pytest.mark.parametrize("priority", [0, 1, 500, 1000])
def test_priority_range_is_inclusive(priority: int) -> None:
    assert create(request(priority=priority))["priority"] == priority


@pytest.mark.parametrize("priority", [-1, 1001, "10", 10.0, True, None])
def test_priority_out_of_range(priority: object) -> None:
    _rejects(lambda: create(request(priority=priority)), "priority")


def test_priority_is_required() -> None:
    body = request()
    del body["priority"]
    message = _rejects(lambda: create(body), "priority")
    assert "1000" in message


@pytest.mark.parametrize(
    ("order", "fields"),
    [
        (None, ["computeEnvironmentOrder"]),
        ([], ["computeEnvironmentOrder"]),
        ("ec2-a", ["computeEnvironmentOrder"]),
        ([{"order": 1}], ["computeEnvironment"]),
        ([{"computeEnvironment": "ec2-a"}], ["order"]),
        (["ec2-a"], ["computeEnvironmentOrder"]),
        ([{"order": -1, "computeEnvironment": "ec2-a"}], ["computeEnvironmentOrder.order"]),
        ([{"order": "1", "computeEnvironment": "ec2-a"}], ["computeEnvironmentOrder.order"]),
        (
            [
                {"order": 1, "computeEnvironment": "ec2-a"},
                {"order": 1, "computeEnvironment": "ec2-b"},
            ],
            ["computeEnvironmentOrder", "order 1"],
        ),
        (
            [
                {"order": 1, "computeEnvironment": "ec2-a"},
                {"order": 2, "computeEnvironment": "ec2-a"},
            ],
            ["computeEnvironmentOrder", "ec2-a"],
        ),
        (
            [
                {"order": i, "computeEnvironment": n}
                for i, n in enumerate(["ec2-a", "ec2-b", "spot", "ec2-a"])
            ],
            ["computeEnvironmentOrder", "3"],
        ),
        ([{"order": 1, "computeEnvironment": "nope"}], ["nope"]),
        ([{"order": 1, "computeEnvironment": "broken"}], ["broken", "INVALID", "VALID"]),
    ],
)
def test_compute_environment_order_mistakes(order: object, fields: list[str]) -> None:
    body = request()
    body["computeEnvironmentOrder"] = order
    _rejects(lambda: create(body), *fields)


@pytest.mark.parametrize(
    "names",
    [
        ("ec2-a", "fargate"),
        ("spot", "fargate-spot"),
        ("fargate", "ec2-a"),
        ("ec2-a", "spot", "fargate"),
    ],
)
def test_ec2_and_fargate_cannot_mix(names: tuple[str, ...]) -> None:
    message = _rejects(lambda: create(request(*names)), "computeEnvironmentOrder")
    assert "FARGATE" in message
    assert "EC2" in message


@given(st.lists(st.sampled_from(sorted(ENVIRONMENTS)), min_size=1, max_size=5))
def test_order_accepted_exactly_when_every_rule_holds(names: list[str]) -> None:
    platforms = {compute.platform(ENVIRONMENTS[n]) for n in names}
    valid = (
        len(names) <= 3
        and len(set(names)) == len(names)
        and len(platforms) == 1
        and "broken" not in names
    )
    if valid:
        doc = create(request(*names))
        assert [e["order"] for e in doc["computeEnvironmentOrder"]] == list(
            range(1, len(names) + 1)
        )
    else:
        with pytest.raises(ClientException):
            create(request(*names))


def test_name_and_state_and_tags_are_checked() -> None:
    _rejects(lambda: create(request(jobQueueName="my queue")), "jobQueueName")
    _rejects(lambda: create(request(state="PAUSED")), "state")
    _rejects(lambda: create(request(tags={f"k{i}": "v" for i in range(51)})), "tags")
    assert create(request(state="DISABLED", tags={"a": "b"}))["tags"] == {"a": "b"}


def test_fair_share_policy_must_exist() -> None:
    assert create(request(schedulingPolicyArn=POLICY_ARN))["schedulingPolicyArn"] == POLICY_ARN
    # A policy named by its name is kept as its ARN (DeleteSchedulingPolicy's in-use check).
    assert create(request(schedulingPolicyArn="fair"))["schedulingPolicyArn"] == POLICY_ARN
    _rejects(
        lambda: create(request(schedulingPolicyArn=POLICY_ARN + "x")),
        POLICY_ARN + "x",
        "does not exist",
    )


def test_service_environments_are_refused() -> None:
    _rejects(
        lambda: create(request(serviceEnvironmentOrder=[{"order": 1}])), "serviceEnvironmentOrder"
    )


# -- jobStateTimeLimitActions ----------------------------------------------------------


@pytest.mark.parametrize("seconds", [600, 3600, 86400])
def test_time_limit_actions_in_range(seconds: int) -> None:
    doc = create(request(jobStateTimeLimitActions=[action(maxTimeSeconds=seconds)]))
    assert doc["jobStateTimeLimitActions"] == [action(maxTimeSeconds=seconds)]


@pytest.mark.parametrize(
    ("actions", "fields"),
    [
        ([action(maxTimeSeconds=599)], ["maxTimeSeconds", "600", "86400"]),
        ([action(maxTimeSeconds=86401)], ["maxTimeSeconds", "600", "86400"]),
        ([action(maxTimeSeconds="600")], ["maxTimeSeconds"]),
        ([action(maxTimeSeconds=None)], ["maxTimeSeconds"]),
        ([action(state="STARTING")], ["jobStateTimeLimitActions.state", "RUNNABLE"]),
        ([action(action="TERMINATE")], ["jobStateTimeLimitActions.action", "CANCEL"]),
        ([action(action=None)], ["jobStateTimeLimitActions.action"]),
        ([action(reason=None)], ["jobStateTimeLimitActions.reason"]),
        ([action(reason="")], ["jobStateTimeLimitActions.reason"]),
        ([action()] * 6, ["jobStateTimeLimitActions", "5"]),
        (action(), ["jobStateTimeLimitActions"]),
        (["CANCEL"], ["jobStateTimeLimitActions"]),
    ],
)
def test_time_limit_action_mistakes(actions: object, fields: list[str]) -> None:
    _rejects(lambda: create(request(jobStateTimeLimitActions=actions)), *fields)


@given(st.integers(0, 200_000))
def test_time_limit_seconds_accepted_exactly_in_600_to_86400(seconds: int) -> None:
    body = request(jobStateTimeLimitActions=[action(maxTimeSeconds=seconds)])
    if 600 <= seconds <= 86400:
        assert create(body)["jobStateTimeLimitActions"][0]["maxTimeSeconds"] == seconds
    else:
        _rejects(lambda: create(body), "maxTimeSeconds")


# -- update ----------------------------------------------------------------------------


def test_update_changes_only_what_is_given() -> None:
    doc = create(request("ec2-a"))
    before = copy.deepcopy(doc)
    new = update(doc, {"priority": 1000, "state": "DISABLED"})
    assert (new["priority"], new["state"]) == (1000, "DISABLED")
    assert new["computeEnvironmentOrder"] == doc["computeEnvironmentOrder"]
    assert doc == before


def test_update_replaces_order_and_time_limits() -> None:
    doc = create(request("ec2-a"))
    new = update(
        doc,
        {
            "computeEnvironmentOrder": [
                {"order": 2, "computeEnvironment": "spot"},
                {"order": 1, "computeEnvironment": "ec2-b"},
            ],
            "jobStateTimeLimitActions": [action(maxTimeSeconds=900)],
        },
    )
    assert [e["computeEnvironment"].rsplit("/", 1)[1] for e in new["computeEnvironmentOrder"]] == [
        "ec2-b",
        "spot",
    ]
    assert new["jobStateTimeLimitActions"][0]["maxTimeSeconds"] == 900


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"priority": 1001}, ["priority"]),
        ({"state": "ON"}, ["state"]),
        ({"computeEnvironmentOrder": []}, ["computeEnvironmentOrder"]),
        (
            {
                "computeEnvironmentOrder": [
                    {"order": 1, "computeEnvironment": "fargate"},
                    {"order": 2, "computeEnvironment": "ec2-a"},
                ]
            },
            ["computeEnvironmentOrder"],
        ),
        ({"jobStateTimeLimitActions": [action(maxTimeSeconds=1)]}, ["maxTimeSeconds"]),
    ],
)
def test_update_validates_like_create(body: dict[str, Any], fields: list[str]) -> None:
    _rejects(lambda: update(create(request()), body), *fields)


def test_fifo_queue_cannot_become_fair_share() -> None:
    message = _rejects(
        lambda: update(create(request()), {"schedulingPolicyArn": POLICY_ARN}),
        "schedulingPolicyArn",
    )
    assert "FIFO" in message


def test_fair_share_queue_can_switch_policy_but_only_to_one_that_exists() -> None:
    doc = {**create(request(schedulingPolicyArn=POLICY_ARN)), "schedulingPolicyArn": "arn:old"}
    assert update(doc, {"schedulingPolicyArn": POLICY_ARN})["schedulingPolicyArn"] == POLICY_ARN
    _rejects(lambda: update(doc, {"schedulingPolicyArn": "arn:missing"}), "arn:missing")
