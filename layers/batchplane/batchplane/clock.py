"""The one clock. AWS Batch reports times as epoch milliseconds."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
