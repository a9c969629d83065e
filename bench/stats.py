"""Small statistics over latency samples (seconds in, milliseconds out)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


def percentile(samples: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(samples: Sequence[float]) -> dict[str, float | int]:
    """p50 / p99 / mean / max in milliseconds of samples given in seconds."""
    if not samples:
        return {"n": 0}
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 50) * 1000, 2),
        "p99_ms": round(percentile(samples, 99) * 1000, 2),
        "mean_ms": round(sum(samples) / len(samples) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }


def p50_p99(stats: dict[str, float | int], digits: int = 0) -> str:
    """'p50 / p99 ms' of a summary_ms result, or '-' without samples."""
    if not stats.get("n"):
        return "-"
    return f"{stats['p50_ms']:.{digits}f} / {stats['p99_ms']:.{digits}f} ms"
