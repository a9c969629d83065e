"""The one clock. AWS Batch reports times as epoch milliseconds.

Tests and local mode can move it forward (``advance``) to exercise timeouts, time-limit
actions and schedules without waiting for them; nothing ever moves it back.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_offset_ms = 0


def now_ms() -> int:
    return time.time_ns() // 1_000_000 + _offset_ms


def advance(seconds: float) -> None:
    """Move this process's clock forward by ``seconds``."""
    global _offset_ms  # noqa: PLW0603 - the process's one clock offset, by design
    if seconds < 0:
        raise ValueError("the clock only moves forward")
    with _lock:
        _offset_ms += int(seconds * 1000)


def now_iso() -> str:
    """The clock as EventBridge's ``time`` field: ISO 8601, UTC, second precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms() / 1000))
