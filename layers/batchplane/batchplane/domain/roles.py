"""Which IAM roles batchplane may pass on a caller's behalf.

AWS Batch checks that the caller of RegisterJobDefinition and CreateComputeEnvironment may
itself pass the roles named (iam:PassRole). batchplane's functions pass them to ECS and EC2
with their own permissions, so without a check of its own any API caller could run code
under any role the stack may pass (a confused deputy). The operator names the roles callers
may use: the stack's ``PassableRoles`` parameter, a list of ARN patterns (``*`` matches any
run of characters). Roles outside it are refused at RegisterJobDefinition, SubmitJob (a
definition registered before the list changed) and Create/UpdateComputeEnvironment.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from ..errors import ClientException

if TYPE_CHECKING:
    from collections.abc import Iterable

ANY = ("*",)  # local mode: attempts are processes of the user who started the stack

# Where a job definition or its node ranges name the roles of its containers.
_JOB_ROLES = ("jobRoleArn", "executionRoleArn")


def parse(value: str) -> tuple[str, ...]:
    """The patterns of a PassableRoles value: separated by commas or white space."""
    return tuple(p for p in value.replace(",", " ").split() if p)


def allowed(arn: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(arn, p) for p in patterns)


def check(arn: str, what: str, patterns: tuple[str, ...]) -> None:
    if patterns == ANY or allowed(arn, patterns):
        return
    listed = ", ".join(patterns) if patterns else "none"
    raise ClientException(
        f"{what} {arn} is not a role batchplane may pass for its callers. The stack's "
        f"PassableRoles parameter lists the roles jobs and compute environments may use "
        f"(now: {listed}); ask its operator to add this one."
    )


def job_definition_roles(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, role ARN) of every role a job definition names."""
    containers = [("containerProperties", doc.get("containerProperties") or {})]
    for i, node in enumerate((doc.get("nodeProperties") or {}).get("nodeRangeProperties") or []):
        containers.append((f"nodeProperties.nodeRangeProperties[{i}].container", node.get("container") or {}))
    return [(f"{where}.{key}", c[key]) for where, c in containers for key in _JOB_ROLES
            if isinstance(c.get(key), str) and c[key]]


def check_job_definition(doc: dict[str, Any], patterns: tuple[str, ...]) -> None:
    for where, arn in job_definition_roles(doc):
        check(arn, where, patterns)


def instance_role_arn(value: str, account_id: str, partition: str = "aws") -> str:
    """computeResources.instanceRole as an ARN: AWS accepts an instance profile's name too."""
    if value.startswith("arn:"):
        return value
    return f"arn:{partition}:iam::{account_id}:instance-profile/{value}"
