"""ECS Task State Change events -> attempt started / attempt ended.

Both ECS (on AWS) and the local process launcher report attempts with this one event
shape, so the same code ends attempts everywhere. Events may arrive twice or out of
order; Jobs.task_running / task_stopped ignore what no longer applies.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain import jobs as rules
from ..ports import CONTAINER, log_stream_name, run_of

if TYPE_CHECKING:
    from .attempts import Attempts

TASK_LOST = "Task lost: ECS no longer knows the attempt's task, and its stop event never came"

# stopCode -> (statusReason, retryable). Anything else: the task's stoppedReason.
_STOP_CODES = {
    "EssentialContainerExited": (rules.ESSENTIAL_EXITED, True),
    "UserInitiated": (None, False),
    "SpotInterruption": (rules.interrupted_reason(None), True),
}


def _ms(value: str | None) -> int | None:
    if not value:
        return None
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def batch_environment(detail: dict[str, Any]) -> dict[str, str]:
    """The AWS_BATCH_* variables the task was started with (from its overrides)."""
    for override in (detail.get("overrides") or {}).get("containerOverrides", []):
        env = {e["name"]: e["value"] for e in override.get("environment", [])}
        if "AWS_BATCH_JOB_ID" in env:
            return env
    return {}


def _network_interfaces(detail: dict[str, Any]) -> list[dict[str, str]]:
    """The job's networkInterfaces from the task's container (awsvpc: its ENI)."""
    for container in detail.get("containers") or []:
        found = [{k: i[k] for k in ("attachmentId", "privateIpv4Address", "ipv6Address") if i.get(k)}
                 for i in container.get("networkInterfaces") or [] if isinstance(i, dict)]
        if found:
            return found
    return []


def on_task_state_change(attempts: Attempts, detail: dict[str, Any]) -> str | None:
    """Apply one ECS Task State Change; returns the job's new status or None if ignored."""
    env = batch_environment(detail)
    job_id = env.get("AWS_BATCH_JOB_ID")
    run = run_of(str(detail.get("startedBy", "")))
    if not job_id or run is None:
        return None
    task_arn = detail["taskArn"]
    item = attempts.jobs.get(job_id)
    if item is None:
        return None
    stream = log_stream_name(item.doc["jobDefinition"], task_arn)
    if detail.get("lastStatus") == "RUNNING":
        attempts.task_running(
            job_id, run, task_arn=task_arn, log_stream=stream,
            container_instance=detail.get("containerInstanceArn"),
            started_at=_ms(detail.get("startedAt")) or _ms(detail.get("updatedAt")) or 0,
            item=item, network_interfaces=_network_interfaces(detail),
        )
        return rules.RUNNING
    if detail.get("lastStatus") != "STOPPED":
        return None
    container = next(
        (c for c in detail.get("containers", []) if c.get("name") == CONTAINER),
        (detail.get("containers") or [{}])[0],
    )
    code = detail.get("stopCode", "")
    status_reason, retryable = _STOP_CODES.get(code, (detail.get("stoppedReason") or code, True))
    if detail.get("timedOut"):
        status_reason, retryable = rules.TIMEOUT_REASON, False
    return attempts.task_stopped(
        job_id,
        run,
        task_arn=task_arn,
        exit_code=container.get("exitCode"),
        reason=container.get("reason"),
        status_reason=status_reason or detail.get("stoppedReason") or "Task stopped",
        log_stream=stream,
        started_at=_ms(detail.get("startedAt")),
        retryable=retryable,
        item=item,
    )
