"""Compute environments: validation of Create/Update requests and the described shape."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from ..errors import ClientException
from . import checks

TYPES = ("MANAGED", "UNMANAGED")
RESOURCE_TYPES = ("EC2", "SPOT", "FARGATE", "FARGATE_SPOT")
STATES = ("ENABLED", "DISABLED")
MAX_SUBNETS = 16
EC2_STRATEGIES = ("BEST_FIT", "BEST_FIT_PROGRESSIVE")
SPOT_STRATEGIES = (*EC2_STRATEGIES, "SPOT_CAPACITY_OPTIMIZED", "SPOT_PRICE_CAPACITY_OPTIMIZED")
# What Fargate computes resources accept: no instances, so no instance settings.
FARGATE_FIELDS = {"type", "maxvCpus", "subnets", "securityGroupIds", "tags", "updateToLatestImageVersion"}


def is_fargate(ce: dict[str, Any]) -> bool:
    return (ce.get("computeResources") or {}).get("type") in ("FARGATE", "FARGATE_SPOT")


def platform(ce: dict[str, Any]) -> str:
    """FARGATE or EC2: the platform capability of the jobs this environment can run."""
    return "FARGATE" if is_fargate(ce) else "EC2"


def provisioned(ce: dict[str, Any]) -> bool:
    """Whether batchplane launches instances for this environment (MANAGED EC2 or SPOT)."""
    return ce.get("type") == "MANAGED" and not is_fargate(ce)


def max_vcpus(ce: dict[str, Any]) -> int | None:
    """The vCPU ceiling, or None for an UNMANAGED environment without unmanagedvCpus."""
    if ce["type"] == "MANAGED":
        return int(ce["computeResources"]["maxvCpus"])
    return ce.get("unmanagedvCpus")


def _compute_resources(cr: Any) -> dict[str, Any]:
    if not isinstance(cr, dict):
        raise ClientException("computeResources is required for a MANAGED compute environment.")
    kind = checks.one_of(cr.get("type"), RESOURCE_TYPES, "computeResources.type")
    out = copy.deepcopy(cr)
    if "maxvCpus" not in cr:
        raise ClientException("computeResources.maxvCpus is required.")
    checks.int_range(cr["maxvCpus"], 1, None, "computeResources.maxvCpus")
    subnets = checks.strings(cr.get("subnets"), "computeResources.subnets")
    if not subnets:
        raise ClientException("computeResources.subnets must list at least one subnet.")
    if len(subnets) > MAX_SUBNETS:
        raise ClientException("computeResources.subnets can list at most 16 subnets.")
    checks.strings(cr.get("securityGroupIds"), "computeResources.securityGroupIds")
    if kind in ("FARGATE", "FARGATE_SPOT"):
        extra = sorted(set(cr) - FARGATE_FIELDS)
        if extra:
            raise ClientException(
                f"{', '.join(extra)} cannot be specified for {kind} compute resources: "
                "Fargate has no instances to configure."
            )
        return out
    minv = checks.int_range(cr.get("minvCpus", 0), 0, None, "computeResources.minvCpus")
    out["minvCpus"] = minv
    desired = cr.get("desiredvCpus", minv)
    checks.int_range(desired, 0, None, "computeResources.desiredvCpus")
    if not minv <= desired <= cr["maxvCpus"]:
        raise ClientException(
            f"computeResources must satisfy minvCpus ({minv}) <= desiredvCpus ({desired}) "
            f"<= maxvCpus ({cr['maxvCpus']})."
        )
    out["desiredvCpus"] = desired
    types = checks.strings(cr.get("instanceTypes"), "computeResources.instanceTypes")
    if not types:
        raise ClientException(
            f"computeResources.instanceTypes is required for {kind} compute resources "
            "(for example [\"optimal\"] or [\"m5\", \"c5.xlarge\"])."
        )
    if not cr.get("instanceRole"):
        raise ClientException(
            f"computeResources.instanceRole is required for {kind} compute resources: "
            "give the ARN or name of an instance profile for the ECS container instances."
        )
    strategies = SPOT_STRATEGIES if kind == "SPOT" else EC2_STRATEGIES
    if "allocationStrategy" in cr:
        checks.one_of(cr["allocationStrategy"], strategies, "computeResources.allocationStrategy")
    else:
        out["allocationStrategy"] = "BEST_FIT"
    # bidPercentage and spotIamFleetRole are SPOT settings. AWS accepts them on EC2
    # resources too and launches On-Demand instances regardless, so they are kept and
    # ignored there (botocore's model has already checked bidPercentage is an integer).
    if "bidPercentage" in cr and kind == "SPOT":
        checks.int_range(cr["bidPercentage"], 0, 100, "computeResources.bidPercentage")
    checks.tags(cr.get("tags"), "computeResources.tags")
    return out


def create(request: dict[str, Any], arn: str) -> dict[str, Any]:
    """The described compute environment for a valid CreateComputeEnvironment request."""
    name = checks.name(request.get("computeEnvironmentName"), "computeEnvironmentName")
    kind = checks.one_of(request.get("type"), TYPES, "type")
    state = checks.one_of(request.get("state", "ENABLED"), STATES, "state")
    doc: dict[str, Any] = {
        "computeEnvironmentName": name,
        "computeEnvironmentArn": arn,
        "tags": checks.tags(request.get("tags")),
        "type": kind,
        "state": state,
        "status": "VALID",
        "statusReason": "ComputeEnvironment Healthy",
        "uuid": str(uuid.uuid4()),
        "containerOrchestrationType": "ECS",
    }
    if request.get("eksConfiguration"):
        raise ClientException("eksConfiguration is not supported: batchplane runs jobs on ECS.")
    if kind == "MANAGED":
        doc["computeResources"] = _compute_resources(request.get("computeResources"))
        if "unmanagedvCpus" in request:
            raise ClientException("unmanagedvCpus applies only to UNMANAGED compute environments.")
    else:
        if request.get("computeResources"):
            raise ClientException(
                "computeResources cannot be specified for an UNMANAGED compute environment."
            )
        if "unmanagedvCpus" in request:
            doc["unmanagedvCpus"] = checks.int_range(
                request["unmanagedvCpus"], 0, None, "unmanagedvCpus"
            )
    for key in ("serviceRole", "context"):
        if request.get(key) is not None:
            doc[key] = request[key]
    return doc


def update(doc: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The compute environment after a valid UpdateComputeEnvironment request."""
    new = copy.deepcopy(doc)
    if "state" in request:
        new["state"] = checks.one_of(request["state"], STATES, "state")
    if "unmanagedvCpus" in request:
        if doc["type"] != "UNMANAGED":
            raise ClientException("unmanagedvCpus applies only to UNMANAGED compute environments.")
        new["unmanagedvCpus"] = checks.int_range(request["unmanagedvCpus"], 0, None, "unmanagedvCpus")
    if "serviceRole" in request:
        new["serviceRole"] = request["serviceRole"]
    changes = request.get("computeResources")
    if changes is not None and not isinstance(changes, dict):
        raise ClientException("computeResources must be an object.")
    if changes:
        if doc["type"] != "MANAGED":
            raise ClientException(
                "computeResources cannot be updated on an UNMANAGED compute environment."
            )
        if "type" in changes and changes["type"] != doc["computeResources"]["type"]:
            raise ClientException(
                "computeResources.type cannot change; create a new compute environment instead."
            )
        merged = {**doc["computeResources"], **changes}
        floor, ceiling = merged.get("minvCpus", 0), merged.get("maxvCpus")
        if (
            not is_fargate(doc)
            and "desiredvCpus" not in changes
            and all(type(v) is int for v in (floor, ceiling))
        ):
            # A new floor or ceiling pulls the current desired count inside it; values that
            # are not integers are left for _compute_resources to reject by name.
            merged["desiredvCpus"] = min(max(merged.get("desiredvCpus", 0), floor), ceiling)
        new["computeResources"] = _compute_resources(merged)
    return new
