"""Job queues: validation of Create/Update requests and the described shape."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..errors import ClientException
from . import checks
from .compute import platform

STATES = ("ENABLED", "DISABLED")
MAX_COMPUTE_ENVIRONMENTS = 3
MAX_TIME_LIMIT_ACTIONS = 5
TIME_LIMIT_REASONS_HINT = (
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE, "
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT, CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
)

# Looks up a compute environment by name or ARN; ClientException when unknown.
FindComputeEnvironment = Callable[[str], dict[str, Any]]


def _order(value: Any, find: FindComputeEnvironment) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ClientException(
            "computeEnvironmentOrder must list 1 to 3 compute environments, each with "
            "order and computeEnvironment."
        )
    if len(value) > MAX_COMPUTE_ENVIRONMENTS:
        raise ClientException(
            f"computeEnvironmentOrder can list at most {MAX_COMPUTE_ENVIRONMENTS} compute "
            f"environments; got {len(value)}."
        )
    out: list[dict[str, Any]] = []
    seen_orders: set[int] = set()
    platforms = set()
    for entry in value:
        if not isinstance(entry, dict) or "computeEnvironment" not in entry or "order" not in entry:
            raise ClientException(
                "Each computeEnvironmentOrder entry needs order and computeEnvironment."
            )
        order = checks.int_range(entry["order"], 0, None, "computeEnvironmentOrder.order")
        if order in seen_orders:
            raise ClientException(f"computeEnvironmentOrder has order {order} twice.")
        seen_orders.add(order)
        ce = find(entry["computeEnvironment"])
        if ce["status"] != "VALID":
            raise ClientException(
                f"Compute environment {ce['computeEnvironmentName']} is {ce['status']}; "
                "only VALID compute environments can be attached to a job queue."
            )
        if any(e["computeEnvironment"] == ce["computeEnvironmentArn"] for e in out):
            raise ClientException(
                f"computeEnvironmentOrder lists compute environment "
                f"{ce['computeEnvironmentName']} twice."
            )
        platforms.add(platform(ce))
        out.append({"order": order, "computeEnvironment": ce["computeEnvironmentArn"]})
    if len(platforms) > 1:
        raise ClientException(
            "computeEnvironmentOrder cannot mix EC2/SPOT and FARGATE/FARGATE_SPOT compute "
            "environments in one job queue."
        )
    return sorted(out, key=lambda e: e["order"])


def _time_limit_actions(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_TIME_LIMIT_ACTIONS:
        raise ClientException("jobStateTimeLimitActions takes a list of at most 5 actions.")
    out = []
    for action in value:
        if not isinstance(action, dict):
            raise ClientException("Each jobStateTimeLimitActions entry must be an object.")
        reason = action.get("reason")
        if not isinstance(reason, str) or not reason:
            raise ClientException(
                f"jobStateTimeLimitActions.reason is required, for example one of "
                f"{TIME_LIMIT_REASONS_HINT}."
            )
        checks.one_of(action.get("state"), ("RUNNABLE",), "jobStateTimeLimitActions.state")
        checks.int_range(
            action.get("maxTimeSeconds"), 600, 86400, "jobStateTimeLimitActions.maxTimeSeconds"
        )
        checks.one_of(action.get("action"), ("CANCEL",), "jobStateTimeLimitActions.action")
        out.append(dict(action))
    return out


def create(
    request: dict[str, Any],
    arn: str,
    find_ce: FindComputeEnvironment,
    policy_arn: Callable[[str], str | None],
) -> dict[str, Any]:
    """The described job queue for a valid CreateJobQueue request."""
    name = checks.name(request.get("jobQueueName"), "jobQueueName")
    if "priority" not in request:
        raise ClientException("priority is required: an integer from 0 to 1000, higher first.")
    doc: dict[str, Any] = {
        "jobQueueName": name,
        "jobQueueArn": arn,
        "state": checks.one_of(request.get("state", "ENABLED"), STATES, "state"),
        "status": "VALID",
        "statusReason": "JobQueue Healthy",
        "priority": checks.int_range(request["priority"], 0, 1000, "priority"),
        "computeEnvironmentOrder": _order(request.get("computeEnvironmentOrder"), find_ce),
        "tags": checks.tags(request.get("tags")),
        "jobStateTimeLimitActions": _time_limit_actions(request.get("jobStateTimeLimitActions")),
        "jobQueueType": "ECS",
    }
    if request.get("schedulingPolicyArn"):
        doc["schedulingPolicyArn"] = _policy(request["schedulingPolicyArn"], policy_arn)
    if request.get("serviceEnvironmentOrder"):
        raise ClientException("serviceEnvironmentOrder is not supported: batchplane runs on ECS.")
    return doc


def update(
    doc: dict[str, Any],
    request: dict[str, Any],
    find_ce: FindComputeEnvironment,
    policy_arn: Callable[[str], str | None],
) -> dict[str, Any]:
    """The job queue after a valid UpdateJobQueue request."""
    new = copy.deepcopy(doc)
    if "state" in request:
        new["state"] = checks.one_of(request["state"], STATES, "state")
    if "priority" in request:
        new["priority"] = checks.int_range(request["priority"], 0, 1000, "priority")
    if "computeEnvironmentOrder" in request:
        new["computeEnvironmentOrder"] = _order(request["computeEnvironmentOrder"], find_ce)
    if "jobStateTimeLimitActions" in request:
        new["jobStateTimeLimitActions"] = _time_limit_actions(request["jobStateTimeLimitActions"])
    if request.get("schedulingPolicyArn"):
        if not doc.get("schedulingPolicyArn"):
            raise ClientException(
                "A FIFO job queue cannot become a fair-share queue: create a new job queue "
                "with schedulingPolicyArn instead."
            )
        new["schedulingPolicyArn"] = _policy(request["schedulingPolicyArn"], policy_arn)
    return new


def _policy(ref: str, policy_arn: Callable[[str], str | None]) -> str:
    """The ARN of the scheduling policy ``ref`` names (its name or ARN): what the queue
    keeps, so that DeleteSchedulingPolicy sees it is in use however it was named."""
    arn = policy_arn(ref)
    if arn is None:
        raise ClientException(f"Scheduling policy {ref} does not exist.")
    return arn
