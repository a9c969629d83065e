"""The one place that builds things: every use case, adapter and repository, once per
process, from the settings (one store, one launcher); each use case receives what it
needs and builds nothing (docs/architecture.md maps them)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import aws
from .adapters.eventbridge import StateChangePublisher
from .config import settings
from .service.arrays import Arrays
from .service.attempts import Attempts
from .service.compute_environments import ComputeEnvironments
from .service.dependencies import Dependencies
from .service.fairshare import ShareUsage
from .service.job_definitions import JobDefinitions
from .service.job_queues import JobQueues
from .service.jobs import Jobs
from .service.nodes import Nodes
from .service.provisioning import SCALE_IN_AFTER_SECONDS, Provisioning
from .service.reactions import Reactions
from .service.resources import Resources
from .service.scheduler import Scheduler
from .service.scheduling_policies import SchedulingPolicies
from .service.tags import Tags
from .service.triggers import Schedules, Triggers
from .service.watchdog import Watchdog
from .store import DynamoStore, Store
from .store.repositories import Repositories

if TYPE_CHECKING:
    from .ports import CapacityController, ComputeProvisioner, ScheduleBackend, TaskLauncher, Workflows

_lock = threading.Lock()
_services: Services | None = None
_store: Store | None = None  # set by local mode's embedded store; else DynamoDB
_launchers: dict[str, tuple[TaskLauncher, ComputeProvisioner]] = {}


@dataclass
class Services:
    store: Store
    repos: Repositories
    resources: Resources
    compute_environments: ComputeEnvironments
    job_queues: JobQueues
    scheduling_policies: SchedulingPolicies
    job_definitions: JobDefinitions
    tags: Tags
    jobs: Jobs
    scheduler: Scheduler
    watchdog: Watchdog
    attempts: Attempts
    arrays: Arrays
    reactions: Reactions
    triggers: Triggers
    schedules: Schedules


def register_launcher(name: str, launcher: TaskLauncher, provisioner: ComputeProvisioner) -> None:
    """Make a launcher available under BATCHPLANE_LAUNCHER=name (local mode uses this)."""
    with _lock:
        _launchers[name] = (launcher, provisioner)
    reset()


def register_store(store: Store | None) -> None:
    """Serve every use case from ``store`` (local mode's embedded store), or from the
    DynamoDB table of the settings again (None)."""
    global _store  # noqa: PLW0603 - wiring's module-level singletons, by design
    with _lock:
        _store = store
    reset()


def _compute(name: str) -> tuple[TaskLauncher, ComputeProvisioner]:
    if name in _launchers:
        return _launchers[name]
    if name == "ecs":
        from .adapters.ecs import EcsLauncher, EcsProvisioner  # noqa: PLC0415 - an adapter is imported only when the settings choose it (Lambda cold start)

        return EcsLauncher(), EcsProvisioner()
    raise RuntimeError(f"BATCHPLANE_LAUNCHER={name!r} names no task launcher")


def _workflows() -> Workflows | None:
    if not os.environ.get("BATCHPLANE_ARRAY_STATE_MACHINE"):
        return None
    from .adapters.stepfunctions import StepFunctionsWorkflows  # noqa: PLC0415 - an adapter is imported only when the settings choose it (Lambda cold start)

    return StepFunctionsWorkflows()


def _schedule_backend() -> ScheduleBackend:
    from .adapters.eventbridge_scheduler import EventBridgeSchedules, SchedulerSettings  # noqa: PLC0415 - imported by the functions that manage schedules only (Lambda cold start)

    return EventBridgeSchedules(aws.client("scheduler"), SchedulerSettings.from_env())


def services() -> Services:
    global _services  # noqa: PLW0603 - wiring's module-level singletons, by design
    with _lock:
        if _services is None:
            store = _store or DynamoStore(aws.client("dynamodb"), settings().table_name)
            repos = Repositories.over(store)
            launcher, provisioner = _compute(settings().launcher)
            workflows = _workflows()
            resources = Resources(repos)
            share_usage = ShareUsage(repos, resources)
            attempts = Attempts(repos, share_usage)
            multinode = Nodes(repos, attempts, launcher)
            dependencies = Dependencies(repos, workflows, multinode)
            arrays = Arrays(repos, dependencies, launcher)
            jobs = Jobs(repos, resources, arrays, multinode, launcher, workflows)
            scheduler = Scheduler(repos, resources, attempts, share_usage, launcher)
            _services = Services(
                store=store,
                repos=repos,
                resources=resources,
                compute_environments=ComputeEnvironments(repos, resources, provisioner),
                job_queues=JobQueues(repos, resources),
                scheduling_policies=SchedulingPolicies(repos, resources),
                job_definitions=JobDefinitions(repos, resources),
                tags=Tags(repos, resources),
                jobs=jobs,
                scheduler=scheduler,
                watchdog=Watchdog(repos, resources, attempts, launcher, dependencies, arrays,
                                  multinode=multinode, scheduler=scheduler),
                attempts=attempts,
                arrays=arrays,
                reactions=Reactions(dependencies, arrays, multinode),
                triggers=Triggers(repos, jobs),
                schedules=Schedules(repos, jobs, _schedule_backend),
            )
        return _services


def reset() -> None:
    """Rebuild on next use (settings or endpoints changed)."""
    global _services  # noqa: PLW0603 - wiring's module-level singletons, by design
    _services = None


# -- capacity: what the provisioner function drives ------------------------------------

_capacities: dict[str, CapacityController | None] = {}
_provisioning: Provisioning | None = None


def register_capacity(name: str, controller: CapacityController | None) -> None:
    """Make a capacity controller available under BATCHPLANE_LAUNCHER=name (local mode may
    register one that models instances)."""
    with _lock:
        _capacities[name] = controller
    reset()


def _capacity(name: str) -> CapacityController | None:
    if name in _capacities:
        return _capacities[name]
    if name == "ecs":
        from .adapters.autoscaling import AutoScalingCapacity  # noqa: PLC0415 - an adapter is imported only when the settings choose it (Lambda cold start)

        return AutoScalingCapacity()
    return None  # e.g. "local": no Auto Scaling, so the provisioner does nothing


def provisioning() -> Provisioning:
    """The provisioner use case, on the same store as ``services()``."""
    global _provisioning  # noqa: PLW0603 - wiring's module-level singletons, by design
    s = services()
    with _lock:
        if _provisioning is None or _provisioning.store is not s.store:
            # How long demand must stay below desiredvCpus before scale-in (local mode and
            # tests may shorten it).
            delay = os.environ.get("BATCHPLANE_SCALE_IN_AFTER_SECONDS", SCALE_IN_AFTER_SECONDS)
            _provisioning = Provisioning(
                s.repos, s.resources, _capacity(settings().launcher), scale_in_after_seconds=float(delay)
            )
        return _provisioning


def publisher() -> StateChangePublisher:
    """What puts the stream's state changes on the bus (the publisher function)."""
    return StateChangePublisher(aws.client("events"))
