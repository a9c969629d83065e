"""Builds the use cases once per process from the settings (one store, one launcher)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from . import aws
from .config import settings
from .ports import ComputeProvisioner, TaskLauncher
from .service.attempts import Attempts
from .service.jobs import Jobs
from .service.scheduler import Scheduler
from .service.resources import Resources
from .store import DynamoStore

_lock = threading.Lock()
_services: Services | None = None
_launchers: dict[str, tuple[TaskLauncher, ComputeProvisioner]] = {}


@dataclass
class Services:
    store: DynamoStore
    resources: Resources
    jobs: Jobs
    scheduler: Scheduler
    attempts: Attempts


def register_launcher(name: str, launcher: TaskLauncher, provisioner: ComputeProvisioner) -> None:
    """Make a launcher available under BATCHPLANE_LAUNCHER=name (local mode uses this)."""
    with _lock:
        _launchers[name] = (launcher, provisioner)
    reset()


def _compute(name: str) -> tuple[TaskLauncher, ComputeProvisioner]:
    if name in _launchers:
        return _launchers[name]
    if name == "ecs":
        from .adapters.ecs import EcsLauncher, EcsProvisioner

        return EcsLauncher(), EcsProvisioner()
    raise RuntimeError(f"BATCHPLANE_LAUNCHER={name!r} names no task launcher")


def services() -> Services:
    global _services
    with _lock:
        if _services is None:
            store = DynamoStore(aws.client("dynamodb"), settings().table_name)
            launcher, provisioner = _compute(settings().launcher)
            _services = Services(
                store=store,
                resources=Resources(store, provisioner),
                jobs=Jobs(store, launcher),
                scheduler=Scheduler(store, launcher),
                attempts=Attempts(store),
            )
        return _services


def reset() -> None:
    """Rebuild on next use (settings or endpoints changed)."""
    global _services
    _services = None
