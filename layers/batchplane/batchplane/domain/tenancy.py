"""Isolation between callers on a job queue: what AWS users get from IAM conditions on
the job's submitter, as a per-queue opt-in. On a queue tagged ``batchplane:isolation =
identity`` a job is seen (DescribeJobs, ListJobs, GetJobQueueSnapshot, dependsOn) and
stopped (CancelJob, TerminateJob) only by the identity that submitted it: the IAM
principal on AWS, the verified access key in local mode. Jobs the stack submits itself
(triggers, schedules) have no owner and stay visible to every caller of the queue."""

from __future__ import annotations

from typing import Any

ISOLATION_TAG = "batchplane:isolation"
BY_IDENTITY = "identity"


def isolated(queue: dict[str, Any]) -> bool:
    """Whether the job queue keeps each caller's jobs to that caller."""
    return (queue.get("tags") or {}).get(ISOLATION_TAG) == BY_IDENTITY


def visible(owner: str | None, caller: str | None, queue_isolated: bool) -> bool:
    """Whether ``caller`` may see and stop a job ``owner`` submitted. A caller of None is
    the stack itself."""
    return not queue_isolated or caller is None or owner is None or owner == caller
