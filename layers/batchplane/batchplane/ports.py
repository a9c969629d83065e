"""The small interfaces the use cases need from the outside world."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class LaunchRequest:
    """One attempt to start: everything a task runner needs, nothing it must look up."""

    job: dict[str, Any]  # the job as DescribeJobs shows it
    attempt: int  # from 1
    queue_name: str
    compute_environment: dict[str, Any]
    environment: dict[str, str] = field(default_factory=dict)  # AWS_BATCH_* and user vars


class TaskLauncher(Protocol):
    """Starts and stops attempts: ECS tasks on AWS, processes in local mode. Each reports
    back through ECS Task State Change events."""

    def launch(self, request: LaunchRequest) -> str:
        """Start the attempt; returns its task ARN. Must be idempotent per (job, attempt)."""
        ...

    def stop(self, task_arn: str, reason: str) -> None:
        """Stop a running attempt (SIGTERM, SIGKILL 30 s later)."""
        ...

    def attempts_on_instance(self, instance_id: str, clusters: list[str]) -> list[tuple[str, int]]:
        """(job id, attempt) of every attempt running on an EC2 instance of ``clusters``."""
        ...


class ComputeProvisioner(Protocol):
    """Creates and removes what a compute environment runs on (its ECS cluster)."""

    def create_environment(self, ce: dict[str, Any]) -> dict[str, Any]:
        """Provision ``ce``; returns fields to add to it (``ecsClusterArn``)."""
        ...

    def delete_environment(self, ce: dict[str, Any]) -> None: ...
