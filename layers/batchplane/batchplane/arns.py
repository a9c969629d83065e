"""ARNs in AWS Batch's formats, and lookups that accept a name or an ARN."""

from __future__ import annotations

from .config import settings

ARN_PARTS = 6  # arn:partition:service:region:account:resource


def arn(resource_type: str, name: str) -> str:
    s = settings()
    return f"arn:{s.partition}:batch:{s.region}:{s.account_id}:{resource_type}/{name}"


def compute_environment_arn(name: str) -> str:
    return arn("compute-environment", name)


def job_queue_arn(name: str) -> str:
    return arn("job-queue", name)


def job_definition_arn(name: str, revision: int) -> str:
    return arn("job-definition", f"{name}:{revision}")


def job_arn(job_id: str) -> str:
    return arn("job", job_id)


def scheduling_policy_arn(name: str) -> str:
    return arn("scheduling-policy", name)


def name_from(ref: str, resource_type: str) -> str:
    """The resource name in ``ref``, which is either a plain name or an ARN of that type.

    A reference to another resource type, or an ARN of another partition, region or
    account, comes back unchanged so that the lookup fails with the usual "does not
    exist" message instead of finding the local namesake.
    """
    if ref.startswith("arn:"):
        parts = ref.split(":", ARN_PARTS - 1)
        if len(parts) == ARN_PARTS and parts[5].startswith(resource_type + "/"):
            name = parts[5][len(resource_type) + 1 :]
            if ref == arn(resource_type, name):
                return name
    return ref


def parse(resource_arn: str) -> tuple[str, str]:
    """(resource type, resource id) of a batch ARN; ValueError if it is not one."""
    parts = resource_arn.split(":", ARN_PARTS - 1)
    if len(parts) != ARN_PARTS or parts[0] != "arn" or parts[2] != "batch" or "/" not in parts[5]:
        raise ValueError(resource_arn)
    resource_type, _, resource_id = parts[5].partition("/")
    return resource_type, resource_id
