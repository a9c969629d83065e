"""The scheduling algorithm: which RUNNABLE jobs start now, and where. Pure and
deterministic so that it can be tested exhaustively and benchmarked alone.

Queues are served in descending priority (ties by name, so the order is stable); within
a FIFO queue jobs come in the order the store lists them (retried attempts first, then
by submission). In a fair-share queue the share with the lowest weighted usage goes next
and, within a share, the highest schedulingPriority. A queue's compute environments are
tried in their ``order``. A job that fits nowhere now does not block the jobs behind it
(backfill), but it gets a reason.

Preemption (beyond AWS Batch, opt-in per queue): a job of a preempting queue that waits
for capacity may take it from running jobs of lower-priority queues on the same compute
environment; those are requeued, not failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .capacity import Environment, Shape

if TYPE_CHECKING:
    from .fairshare import FairShare

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
RESERVED = (
    "CAPACITY:FAIRSHARE_COMPUTE_RESERVATION - The rest of the queue's capacity is reserved"
    " for share identifiers that have no jobs yet (computeReservation)."
)
PREEMPTED = "Preempted by job"


@dataclass
class Queue:
    name: str
    priority: int
    environments: list[str]  # in computeEnvironmentOrder
    fairshare: FairShare | None = None
    preempts: bool = False  # may take capacity from lower-priority queues' running jobs


@dataclass
class Running:
    """An attempt holding capacity (STARTING or RUNNING)."""

    job_id: str
    queue: str
    environment: str
    mvcpus: int
    started_at: int = 0
    share: str | None = None
    stopping: bool = False  # already being stopped (preempted, timed out, ...)


@dataclass
class Candidate:
    job_id: str
    queue: str
    mvcpus: int
    platform: str
    reason: str | None = None  # the statusReason it has now
    share: str | None = None  # shareIdentifier (fair-share queues)
    priority: int = 0  # schedulingPriority (fair-share queues)
    memory_mib: int = 0
    gpus: int = 0
    environment: str | None = None  # the only compute environment it may run on (a node's)

    @property
    def shape(self) -> Shape:
        return Shape(self.mvcpus, self.memory_mib, self.gpus)


@dataclass
class Plan:
    placements: list[tuple[Candidate, str]] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # job id -> new statusReason
    preemptions: list[tuple[Running, Candidate]] = field(default_factory=list)  # victim, for


def plan(
    queues: list[Queue],
    environments: dict[str, Environment],
    runnable: dict[str, list[Candidate]],
    running: list[Running] | None = None,
) -> Plan:
    """Place as many RUNNABLE jobs as capacity allows, highest-priority queue first."""
    out = Plan()
    running = running or []
    by_queue = {q.name: q for q in queues}
    for queue in sorted(queues, key=lambda q: (-q.priority, q.name)):
        ces = [environments[n] for n in queue.environments if n in environments]
        jobs = runnable.get(queue.name, [])
        if queue.fairshare is not None:
            _place_fair(queue, ces, jobs, running, out)
        else:
            for job in jobs:
                _place(job, ces, out)
        if queue.preempts:
            _preempt(queue, ces, jobs, running, by_queue, out)
    return out


def _place(job: Candidate, ces: list[Environment], out: Plan) -> bool:
    usable = [ce for ce in ces if ce.enabled and ce.platform == job.platform
              and job.environment in (None, ce.name)]
    target = next((ce for ce in usable if ce.fits(job.mvcpus) and ce.could_ever_fit(job.shape)), None)
    if target is not None:
        target.used_mvcpus += job.mvcpus
        out.placements.append((job, target.name))
        return True
    if not usable:
        reason = NO_ENVIRONMENT
    elif not any(ce.could_ever_fit(job.shape) for ce in usable):
        reason = MISCONFIGURED
    else:
        reason = NO_CAPACITY
    _reason(job, reason, out)
    return False


def _reason(job: Candidate, reason: str, out: Plan) -> None:
    # A preempted job keeps saying so while it waits for the capacity it lost.
    if reason == NO_CAPACITY and (job.reason or "").startswith(PREEMPTED):
        return
    if reason != job.reason:
        out.reasons[job.job_id] = reason


def _place_fair(queue: Queue, ces: list[Environment], jobs: list[Candidate],
                running: list[Running], out: Plan) -> None:
    """Fair share: the share with the lowest usage x weight goes next; within a share the
    highest schedulingPriority, then the store's order."""
    policy = queue.fairshare
    assert policy is not None
    usage = dict(policy.usage)
    waiting: dict[str, list[Candidate]] = {}
    for job in sorted(jobs, key=lambda j: -j.priority):  # stable: FIFO within a priority
        waiting.setdefault(job.share or "", []).append(job)
    active = set(waiting) | {r.share or "" for r in running if r.queue == queue.name}
    # computeReservation keeps (reservation/100)^active of the queue's capacity for
    # shares that have no jobs yet.
    ceiling = sum(ce.max_mvcpus or 0 for ce in ces if ce.enabled)
    unbounded = any(ce.max_mvcpus is None for ce in ces if ce.enabled)
    cap = math.inf if unbounded else ceiling * (1 - (policy.compute_reservation / 100) ** len(active))
    used = sum(r.mvcpus for r in running if r.queue == queue.name)
    while waiting:
        share = min(waiting, key=lambda s: (usage.get(s, 0.0) * policy.weight(s), s))
        job = waiting[share].pop(0)
        if not waiting[share]:
            del waiting[share]
        if used + job.mvcpus > cap and policy.compute_reservation:
            _reason(job, RESERVED, out)
            continue
        if _place(job, ces, out):
            used += job.mvcpus
            usage[share] = usage.get(share, 0.0) + job.mvcpus


def _preempt(queue: Queue, ces: list[Environment], jobs: list[Candidate], running: list[Running],
             queues: dict[str, Queue], out: Plan) -> None:
    """For each job of ``queue`` still waiting for capacity, requeue running jobs of
    lower-priority queues on one of its environments: latest started first."""
    placed = {c.job_id for c, _ in out.placements}
    taken = {v.job_id for v, _ in out.preemptions}
    for job in jobs:
        if job.job_id in placed or out.reasons.get(job.job_id, job.reason) != NO_CAPACITY:
            continue
        for ce in (c for c in ces if c.enabled and c.platform == job.platform):
            on_ce = [r for r in running if r.environment == ce.name and r.job_id not in taken]
            # Capacity already on its way back (jobs being stopped) is spent first.
            freeing = sum(r.mvcpus for r in on_ce if r.stopping)
            if ce.max_mvcpus is not None and ce.max_mvcpus - ce.used_mvcpus + freeing >= job.mvcpus:
                ce.used_mvcpus += job.mvcpus  # reserve it: do not preempt again for this job
                break
            victims = sorted(
                (r for r in on_ce if not r.stopping and r.queue in queues
                 and queues[r.queue].priority < queue.priority),
                key=lambda r: (queues[r.queue].priority, -r.started_at),
            )
            free = (ce.max_mvcpus or 0) - ce.used_mvcpus + freeing
            chosen = []
            for victim in victims:
                if free >= job.mvcpus:
                    break
                chosen.append(victim)
                free += victim.mvcpus
            if free >= job.mvcpus and chosen:
                for victim in chosen:
                    out.preemptions.append((victim, job))
                    taken.add(victim.job_id)
                ce.used_mvcpus += job.mvcpus
                break
