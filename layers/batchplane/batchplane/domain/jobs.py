"""Jobs: the state machine, SubmitJob validation, attempts and retry evaluation.

A job is stored as its DescribeJobs document (``doc``) plus ``internal`` bookkeeping the
API never shows (where it runs, what it needs, the current attempt's task).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ..errors import ClientException
from . import checks, compute, jobdefs, nodes

SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED = (
    "SUBMITTED",
    "PENDING",
    "RUNNABLE",
    "STARTING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
)
STATUSES = (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED)
TERMINAL = (SUCCEEDED, FAILED)
QUEUED = (SUBMITTED, PENDING, RUNNABLE)  # CancelJob ends these; later states ignore it

# The legal moves. A failed attempt with attempts left goes back to RUNNABLE.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    SUBMITTED: (PENDING, RUNNABLE, FAILED),
    PENDING: (RUNNABLE, SUCCEEDED, FAILED),  # an array parent ends from PENDING
    RUNNABLE: (STARTING, FAILED),
    STARTING: (RUNNING, RUNNABLE, SUCCEEDED, FAILED),
    RUNNING: (RUNNABLE, SUCCEEDED, FAILED),
    SUCCEEDED: (),
    FAILED: (),
}

ESSENTIAL_EXITED = "Essential container in task exited"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
DEPENDENCY_FAILED = "Dependent Job failed"
MAX_REASON = 1024

_REF = re.compile(r"Ref::([A-Za-z0-9_-]+)")


class IllegalTransition(Exception):
    """A move the state machine forbids; callers treat it as a lost race or a no-op."""


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def move(doc: dict[str, Any], target: str, reason: str | None = None) -> None:
    if not can_move(doc["status"], target):
        raise IllegalTransition(f"{doc['jobId']}: {doc['status']} -> {target}")
    doc["status"] = target
    if reason is not None:
        doc["statusReason"] = reason


def substitute(command: list[str], parameters: dict[str, str]) -> list[str]:
    """Replace ``Ref::name`` with its parameter; unknown references stay as written (AWS)."""
    return [_REF.sub(lambda m: parameters.get(m.group(1), m.group(0)), arg) for arg in command]


def _merge_requirements(base: list[dict[str, str]], override: list[dict[str, str]]) -> list[dict[str, str]]:
    merged = {r["type"]: r for r in base}
    merged.update({r["type"]: r for r in override})
    return list(merged.values())


def _merge_environment(base: list[dict[str, str]], override: list[dict[str, str]]) -> list[dict[str, str]]:
    merged = {v["name"]: v for v in base}
    merged.update({v["name"]: v for v in override})
    return list(merged.values())


def validate_submit(request: dict[str, Any]) -> None:
    """The checks of SubmitJob that need no other resource."""
    checks.job_name(request.get("jobName"))
    for key in ("jobQueue", "jobDefinition"):
        if not isinstance(request.get(key), str) or not request[key]:
            raise ClientException(f"{key} is required.")
    jobdefs.parameters(request.get("parameters"))
    if "schedulingPriorityOverride" in request:
        checks.int_range(request["schedulingPriorityOverride"], 0, 9999, "schedulingPriorityOverride")
    jobdefs.container_overrides(request.get("containerOverrides"), "containerOverrides")
    jobdefs.retry_strategy(request.get("retryStrategy"))
    jobdefs.timeout(request.get("timeout"))
    checks.tags(request.get("tags"))
    for unsupported in ("eksPropertiesOverride", "ecsPropertiesOverride", "consumableResourcePropertiesOverride"):
        if request.get(unsupported):
            raise ClientException(f"{unsupported} is not supported by batchplane.")


def new_job(
    request: dict[str, Any],
    *,
    job_id: str,
    job_arn: str,
    queue: dict[str, Any],
    definition: dict[str, Any],
    now: int,
) -> dict[str, Any]:
    """The SUBMITTED job for a SubmitJob request already checked against its queue and
    job definition."""
    params = {**definition.get("parameters", {}), **(request.get("parameters") or {})}
    overrides = request.get("containerOverrides") or {}
    container = copy.deepcopy(definition.get("containerProperties") or {})
    command = overrides.get("command") or container.get("command") or []
    container["command"] = substitute(command, params)
    container["environment"] = _merge_environment(
        container.get("environment", []), overrides.get("environment") or []
    )
    container["resourceRequirements"] = _merge_requirements(
        container.get("resourceRequirements", []), overrides.get("resourceRequirements") or []
    )
    for key in ("vcpus", "memory", "instanceType"):
        if key in overrides:
            container[key] = overrides[key]
    container.setdefault("networkInterfaces", [])
    # SubmitJob's propagateTags, when given, replaces the job definition's (even False).
    propagate = bool(request.get("propagateTags", definition.get("propagateTags", False)))
    inherited = (definition.get("tags") or {}) if propagate else {}
    doc: dict[str, Any] = {
        "jobArn": job_arn,
        "jobName": request["jobName"],
        "jobId": job_id,
        "jobQueue": queue["jobQueueArn"],
        "status": SUBMITTED,
        "attempts": [],
        "createdAt": now,
        "dependsOn": request.get("dependsOn") or [],
        "jobDefinition": definition["jobDefinitionArn"],
        "parameters": params,
        "container": container,
        "tags": {**inherited, **(request.get("tags") or {})},
        "propagateTags": propagate,
        "platformCapabilities": definition.get("platformCapabilities", ["EC2"]),
        "isCancelled": False,
        "isTerminated": False,
    }
    retry = jobdefs.retry_strategy(request.get("retryStrategy")) or definition.get("retryStrategy")
    if retry:
        doc["retryStrategy"] = retry
    timeout = jobdefs.timeout(request.get("timeout")) or definition.get("timeout")
    if timeout:
        doc["timeout"] = timeout
    if request.get("shareIdentifier"):
        doc["shareIdentifier"] = request["shareIdentifier"]
    priority = request.get("schedulingPriorityOverride", definition.get("schedulingPriority"))
    if priority is not None:
        doc["schedulingPriority"] = priority
    need = jobdefs.requirements(container)
    if need["VCPU"] <= 0 or need["MEMORY"] < jobdefs.MIN_MEMORY_MIB:
        raise ClientException(
            "The job needs at least a VCPU and a MEMORY (>= 4 MiB) requirement from its job "
            "definition or containerOverrides."
        )
    jobdefs.check_platforms(
        container, doc["platformCapabilities"], "containerOverrides.resourceRequirements"
    )
    return doc


def attempts_allowed(doc: dict[str, Any]) -> int:
    return int((doc.get("retryStrategy") or {}).get("attempts", 1))


def _glob(pattern: str, value: str) -> bool:
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def should_retry(doc: dict[str, Any], exit_code: int | None, reason: str, status_reason: str) -> bool:
    """Whether a failed attempt is tried again, per retryStrategy (AWS's rules): the first
    evaluateOnExit rule whose given fields all match decides; no match means retry while
    attempts remain."""
    if len(doc["attempts"]) >= attempts_allowed(doc):
        return False
    for rule in (doc.get("retryStrategy") or {}).get("evaluateOnExit", []):
        fields = (
            ("onExitCode", "" if exit_code is None else str(exit_code)),
            ("onReason", reason or ""),
            ("onStatusReason", status_reason or ""),
        )
        if all(_glob(rule[key], value) for key, value in fields if key in rule):
            return rule["action"].upper() == "RETRY"
    return True


def finish_attempt(
    doc: dict[str, Any],
    *,
    exit_code: int | None,
    reason: str | None,
    status_reason: str,
    now: int,
    retryable: bool = True,
) -> str:
    """Record the ended attempt and move the job on; returns the new status.

    ``retryable`` is False for terminated, cancelled and timed-out attempts, which AWS
    never retries.
    """
    if doc["status"] not in (STARTING, RUNNING):
        # Checked first so that a refused call leaves the job untouched.
        raise IllegalTransition(f"{doc['jobId']}: no attempt to finish in {doc['status']}")
    container = doc["container"]
    attempt = {
        "container": {
            k: v
            for k, v in {
                "taskArn": container.get("taskArn"),
                "exitCode": exit_code,
                "reason": reason,
                "logStreamName": container.get("logStreamName"),
                "containerInstanceArn": container.get("containerInstanceArn"),
                # AWS lists the attempt's ENIs: none for EC2 jobs, whose tasks use the
                # host's network.
                "networkInterfaces": container.get("networkInterfaces", []),
            }.items()
            if v is not None
        },
        "startedAt": doc.get("startedAt") or now,
        "stoppedAt": now,
        "statusReason": status_reason,
    }
    doc["attempts"].append(attempt)
    if exit_code is not None:
        container["exitCode"] = exit_code
    if reason is not None:
        container["reason"] = reason
    # Exit 0 is success unless the attempt was stopped (terminated, cancelled, timed out):
    # a process that handles SIGTERM and exits 0 still ran out of time.
    if exit_code == 0 and retryable and not doc.get("isTerminated"):
        move(doc, SUCCEEDED, status_reason)
        doc["stoppedAt"] = now
        return SUCCEEDED
    if retryable and should_retry(doc, exit_code, reason or "", status_reason):
        move(doc, RUNNABLE, status_reason)
        for key in ("startedAt",):
            doc.pop(key, None)
        for key in ("taskArn", "logStreamName", "exitCode", "reason", "containerInstanceArn"):
            container.pop(key, None)
        return RUNNABLE
    move(doc, FAILED, status_reason)
    doc["stoppedAt"] = now
    return FAILED


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The ListJobs JobSummary of a job."""
    out: dict[str, Any] = {k: doc[k] for k in ("jobArn", "jobId", "jobName", "createdAt", "status", "statusReason",
                               "startedAt", "stoppedAt", "jobDefinition", "shareIdentifier")
           if k in doc}
    # AWS shows these two only when true.
    out.update({k: True for k in ("isCancelled", "isTerminated") if doc.get(k)})
    container = {k: doc["container"][k] for k in ("exitCode", "reason") if k in doc.get("container", {})}
    if container:
        out["container"] = container
    if "arrayProperties" in doc:
        out["arrayProperties"] = {k: v for k, v in doc["arrayProperties"].items() if k in ("size", "index")}
    node = nodes.summary(doc)
    if node is not None:
        out["nodeProperties"] = node
    return out


def requeue(doc: dict[str, Any], reason: str) -> None:
    """Back to RUNNABLE without spending an attempt (the attempt was preempted)."""
    move(doc, RUNNABLE, reason)
    doc.pop("startedAt", None)
    for key in ("taskArn", "logStreamName", "exitCode", "reason", "containerInstanceArn"):
        doc["container"].pop(key, None)


def interrupted_reason(instance_id: str | None) -> str:
    """statusReason of an attempt whose Spot capacity was taken back."""
    if instance_id:
        return f"Host EC2 (instance {instance_id}) terminated."
    return "Your Spot Task was interrupted."


def parent_cancel_decision(doc: dict[str, Any], reason: str, terminate: bool) -> bool:
    """CancelJob (or TerminateJob) of an array parent that has children, as AWS does it:
    the children that have not started are cancelled (TerminateJob also stops the running
    ones) and the parent stays PENDING until every child ended, then ends FAILED with
    ``reason``. Marks ``doc``; False when nothing changes (it ended, or is already
    cancelled and this is not a TerminateJob, or is already terminated)."""
    if doc["status"] in TERMINAL or doc.get("isTerminated"):
        return False
    if doc.get("isCancelled") and not terminate:
        return False
    doc["isCancelled"] = True
    if terminate:
        doc["isTerminated"] = True
    doc["statusReason"] = reason  # the children's reason too; the parent's when it ends
    return True


def cancel_decision(doc: dict[str, Any], reason: str, terminate: bool, now: int) -> str | None:
    """Apply CancelJob (or TerminateJob) to ``doc`` as AWS does. Returns None when nothing
    changes, else the task ARN to stop once the change is saved ("" for none)."""
    status = doc["status"]
    if status in QUEUED:
        doc["isCancelled"] = True
        if terminate:
            doc["isTerminated"] = True
        move(doc, FAILED, reason)
        doc["stoppedAt"] = now
        return ""
    if terminate and status in (STARTING, RUNNING) and not doc["isTerminated"]:
        doc["isTerminated"] = True
        doc["statusReason"] = reason
        return doc["container"].get("taskArn") or ""
    return None


# -- SubmitJob checks that need the queue and the definition ----------------------------


def check_queue_accepts(queue: dict[str, Any]) -> None:
    if queue["state"] != "ENABLED":
        raise ClientException(
            f"Job queue {queue['jobQueueName']} is DISABLED and accepts no new jobs: "
            "enable it with UpdateJobQueue state=ENABLED."
        )


def check_share(request: dict[str, Any], queue: dict[str, Any]) -> None:
    """shareIdentifier and schedulingPriorityOverride go with fair-share queues only."""
    fair_share = bool(queue.get("schedulingPolicyArn"))
    share = request.get("shareIdentifier")
    if fair_share and not share:
        raise ClientException(
            f"Job queue {queue['jobQueueName']} has a fair-share scheduling policy: "
            "SubmitJob needs a shareIdentifier."
        )
    if share and not fair_share:
        raise ClientException(
            f"Job queue {queue['jobQueueName']} has no scheduling policy: shareIdentifier "
            "applies only to fair-share queues."
        )
    if "schedulingPriorityOverride" in request and not fair_share:
        raise ClientException("schedulingPriorityOverride applies only to fair-share job queues.")


def check_platform(queue: dict[str, Any], definition: dict[str, Any], environments: list[dict[str, Any]]) -> None:
    """The definition's platform (EC2 or FARGATE) is one the queue's compute environments
    (``environments``, those that exist) run."""
    wanted = definition.get("platformCapabilities", ["EC2"])[0]
    platforms = {compute.platform(doc) for doc in environments}
    if platforms and wanted not in platforms:
        raise ClientException(
            f"Job definition {definition['jobDefinitionName']} has platformCapabilities "
            f"{wanted} but job queue {queue['jobQueueName']} runs on "
            f"{'/'.join(sorted(platforms))} compute environments."
        )


def check_multinode(request: dict[str, Any],
                    definition: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A multinode definition's job: its nodeProperties and each node's overrides
    (None, [] for a container job)."""
    name = definition["jobDefinitionName"]
    if definition["type"] != "multinode":
        if request.get("nodeOverrides"):
            raise ClientException(
                f"nodeOverrides applies to multinode job definitions; {name} is a container job definition: "
                "use containerOverrides.")
        return None, []
    if request.get("arrayProperties"):
        raise ClientException(
            f"Job definition {name} is multinode: a multi-node parallel job cannot be an array job.")
    if request.get("containerOverrides"):
        raise ClientException(
            f"Job definition {name} is multinode: containerOverrides does not apply, use "
            "nodeOverrides.nodePropertyOverrides with the targetNodes to override.")
    return nodes.job_node_properties(definition, request.get("nodeOverrides"))
