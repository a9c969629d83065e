"""The small interfaces the use cases need from the outside world."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .domain.capacity import Plan


@dataclass
class LaunchRequest:
    """One attempt to start: everything a task runner needs, nothing it must look up."""

    job: dict[str, Any]  # the job as DescribeJobs shows it
    attempt: int  # from 1, as AWS_BATCH_JOB_ATTEMPT counts
    run: int  # from 1, every dispatch of the job (a preempted attempt runs again)
    queue_name: str
    compute_environment: dict[str, Any]
    environment: dict[str, str] = field(default_factory=dict)  # AWS_BATCH_* and user vars


STARTED_BY = "batchplane"
CONTAINER = "default"  # the one container of every task a launcher starts for a job


def started_by(run: int) -> str:
    """The task's startedBy: who started it and which run of the job it is (ECS allows 36
    letters, digits, -, / and _)."""
    return f"{STARTED_BY}/{run}"


def log_stream_name(job_definition_arn: str, task_arn: str) -> str:
    """``<jobDefinitionName>/default/<taskId>``, the awslogs stream of the attempt."""
    name = job_definition_arn.rsplit("/", 1)[-1].split(":", maxsplit=1)[0]
    return f"{name}/{CONTAINER}/{task_arn.rsplit('/', 1)[-1]}"


def run_of(started: str) -> int | None:
    """The run number in a startedBy written by ``started_by``."""
    prefix, _, run = started.partition("/")
    return int(run) if prefix == STARTED_BY and run.isdigit() else None


class TaskLauncher(Protocol):
    """Starts and stops attempts: ECS tasks on AWS, processes in local mode. Each reports
    back through ECS Task State Change events."""

    def launch(self, request: LaunchRequest) -> str:
        """Start the attempt; returns its task ARN. Must be idempotent per (job, run), and
        report ``started_by(run)`` as the task's startedBy."""
        ...

    def stop(self, task_arn: str, reason: str) -> None:
        """Stop a running attempt (SIGTERM, SIGKILL 30 s later)."""
        ...

    def attempts_on_instance(self, instance_id: str, clusters: list[str]) -> list[tuple[str, int]]:
        """(job id, run) of every attempt running on an EC2 instance of ``clusters``."""
        ...

    def describe(self, task_arns: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """What the launcher knows of these tasks now, each shaped as the ``detail`` of an
        ECS Task State Change event, and the ARNs it no longer (or never) knew."""
        ...


class ComputeProvisioner(Protocol):
    """Creates and removes what a compute environment runs on (its ECS cluster)."""

    def create_environment(self, ce: dict[str, Any]) -> dict[str, Any]:
        """Provision ``ce``; returns fields to add to it (``ecsClusterArn``)."""
        ...

    def delete_environment(self, ce: dict[str, Any]) -> None: ...


class Workflows(Protocol):
    """Starts the Step Functions workflows that fan work out over an array's children."""

    def start_array(self, parent_id: str, action: str, size: int, *, restart: bool = False) -> None:
        """Run ``action`` (materialize, cancel, terminate) over every child of the array, in
        parallel chunks. Idempotent per (parent, action) while a run of it is going on;
        ``restart``: start it again if its runs all ended (the parent still waits, so the
        last one ended without recording its outcome)."""
        ...


class CapacityUnavailable(Exception):
    """The launcher found no room for the task now (EC2 instances still starting, or full;
    Spot capacity short). The attempt never started: the job waits for capacity again
    without spending an attempt, as AWS Batch keeps such a job RUNNABLE."""


class LaunchFailed(Exception):
    """The launcher knows the task was not started: RunTask refused the request or answered
    with failures. The attempt ends ("Task failed to start"). Any other exception from
    ``launch`` leaves it unknown whether the task started (a timeout, a lost answer): the
    scheduler then asks again with the same run, which the launcher's idempotency answers
    with the task if it exists."""


class CapacityError(Exception):
    """A compute environment's settings cannot be provisioned (unknown subnet, AMI, instance
    type...). The message, "CLIENT_ERROR - ...", becomes the environment's statusReason."""


class CapacityController(Protocol):
    """Gives MANAGED EC2/SPOT compute environments the instances their capacity plan asks
    for: Auto Scaling groups on AWS (adapters/autoscaling.py)."""

    def apply(self, ce: dict[str, Any], plan: Plan) -> None:
        """Make the environment's capacity match ``plan`` (types, min/max/desired vCPUs);
        CapacityError when its settings are wrong. Idempotent."""
        ...

    def remove(self, ce: dict[str, Any]) -> None:
        """Release everything ``apply`` made for the (deleted) environment."""
        ...

    def sweep(self, live: set[str]) -> list[str]:
        """Release capacity left behind by environments not in ``live`` (ARNs)."""
        ...


class ScheduleBackend(Protocol):
    """What fires schedules: EventBridge Scheduler (moto's in local mode)."""

    def put(self, doc: dict[str, Any]) -> None: ...

    def delete(self, name: str) -> None: ...
