"""boto3 clients, created once per process and shared (Lambda reuses them across calls)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from . import metering
from .config import settings

if TYPE_CHECKING:
    from collections.abc import Callable

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_transport: Callable[[Any], Any] | None = None

# Adaptive retries so a throttled control plane backs off instead of failing jobs.
_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, max_pool_connections=32)


def client(service: str) -> Any:
    with _lock:
        found = _clients.get(service)
        if found is None:
            found = boto3.session.Session().client(  # type: ignore[call-overload]  # stubs: one overload
                service, region_name=settings().region, config=_CONFIG  # per literal service name
            )
            metering.instrument(found)  # a no-op unless the cost meter is on
            if _transport is not None:
                _transport(found)
            _clients[service] = found
        return found


def use_transport(attach: Callable[[Any], Any] | None) -> None:
    """Have every client created from now on handed to ``attach`` (local mode serves the
    control plane's requests in-process with it); None: plain HTTP again."""
    global _transport  # noqa: PLW0603 - the process's one transport hook, shared by every client
    with _lock:
        _transport = attach
        _clients.clear()


def reset() -> None:
    """Forget cached clients (local mode and tests switch endpoints)."""
    with _lock:
        _clients.clear()
