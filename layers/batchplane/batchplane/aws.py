"""boto3 clients, created once per process and shared (Lambda reuses them across calls)."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from . import metering
from .config import settings

_lock = threading.Lock()
_clients: dict[str, Any] = {}

# Adaptive retries so a throttled control plane backs off instead of failing jobs.
_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, max_pool_connections=32)


def client(service: str) -> Any:
    with _lock:
        found = _clients.get(service)
        if found is None:
            found = boto3.session.Session().client(
                service, region_name=settings().region, config=_CONFIG
            )
            metering.instrument(found)  # a no-op unless the cost meter is on
            _clients[service] = found
        return found


def reset() -> None:
    """Forget cached clients (local mode and tests switch endpoints)."""
    with _lock:
        _clients.clear()
