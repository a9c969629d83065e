"""The scheduling algorithm: which RUNNABLE jobs start now, and where. Pure and
deterministic so that it can be tested exhaustively and benchmarked alone.

Queues are served in descending priority (ties by name, so the order is stable); within
a queue jobs come in the order the store lists them (retried attempts first, then by
submission). A queue's compute environments are tried in their ``order``. A job that
fits nowhere now does not block the jobs behind it (backfill), but it gets a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MISCONFIGURED = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU)"
    " is higher than that can be met by the CE(s) attached to the job queue."
)
NO_CAPACITY = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - All compute environments attached to the job"
    " queue are at their maxvCpus; the job waits for running jobs to finish."
)
NO_ENVIRONMENT = (
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - No ENABLED compute environment of the"
    " job queue can run this job's platform."
)


@dataclass
class Environment:
    name: str
    enabled: bool
    platform: str  # "EC2" or "FARGATE"
    max_mvcpus: int | None  # None: no ceiling known (UNMANAGED without unmanagedvCpus)
    used_mvcpus: int = 0

    def fits(self, mvcpus: int) -> bool:
        return self.max_mvcpus is None or self.used_mvcpus + mvcpus <= self.max_mvcpus

    def could_ever_fit(self, mvcpus: int) -> bool:
        return self.max_mvcpus is None or mvcpus <= self.max_mvcpus


@dataclass
class Queue:
    name: str
    priority: int
    environments: list[str]  # in computeEnvironmentOrder


@dataclass
class Candidate:
    job_id: str
    queue: str
    mvcpus: int
    platform: str
    reason: str | None = None  # the statusReason it has now


@dataclass
class Plan:
    placements: list[tuple[Candidate, str]] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # job id -> new statusReason


def plan(
    queues: list[Queue],
    environments: dict[str, Environment],
    runnable: dict[str, list[Candidate]],
) -> Plan:
    """Place as many RUNNABLE jobs as capacity allows, highest-priority queue first."""
    out = Plan()
    for queue in sorted(queues, key=lambda q: (-q.priority, q.name)):
        ces = [environments[n] for n in queue.environments if n in environments]
        for job in runnable.get(queue.name, []):
            usable = [ce for ce in ces if ce.enabled and ce.platform == job.platform]
            target = next((ce for ce in usable if ce.fits(job.mvcpus)), None)
            if target is not None:
                target.used_mvcpus += job.mvcpus
                out.placements.append((job, target.name))
                continue
            if not usable:
                reason = NO_ENVIRONMENT
            elif not any(ce.could_ever_fit(job.mvcpus) for ce in usable):
                reason = MISCONFIGURED
            else:
                reason = NO_CAPACITY
            if reason != job.reason:
                out.reasons[job.job_id] = reason
    return out
