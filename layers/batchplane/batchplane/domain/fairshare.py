"""Fair share: what each share identifier of a queue uses, and how much it counts.

A share's usage is what its jobs run now (milli-vCPUs) plus, with shareDecaySeconds > 0,
its finished work decayed over that window (average milli-vCPUs). The scheduler serves
the share with the lowest usage x weightFactor next (domain/scheduling.py places them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


@dataclass
class FairShare:
    """A queue's scheduling policy, with what each share uses now (in milli-vCPUs)."""

    compute_reservation: int = 0  # percent
    weights: dict[str, float] = field(default_factory=dict)  # identifier or prefix* -> weight
    usage: dict[str, float] = field(default_factory=dict)  # share -> running + decayed mvCPUs

    def weight(self, share: str) -> float:
        """The share's weightFactor: its own entry, else the longest matching prefix*,
        else 1."""
        if share in self.weights:
            return self.weights[share]
        prefixes = [p for p in self.weights if p.endswith("*") and share.startswith(p[:-1])]
        return self.weights[max(prefixes, key=len)] if prefixes else 1.0


def of_policy(policy: dict[str, Any], running: Iterable[tuple[str | None, int]],
              history: Mapping[str, float]) -> FairShare:
    """The fair share of a queue with ``policy`` (its fairsharePolicy), the (share, mvCPUs)
    of its jobs running now and its shares' decayed ``history``."""
    usage: dict[str, float] = {}
    for share, mvcpus in running:
        usage[share or ""] = usage.get(share or "", 0.0) + mvcpus
    for share, past in history.items():
        usage[share] = usage.get(share, 0.0) + past
    return FairShare(
        compute_reservation=policy["computeReservation"],
        weights={d["shareIdentifier"]: float(d.get("weightFactor", 1.0)) for d in policy["shareDistribution"]},
        usage=usage,
    )


def decayed(previous: float, since_ms: int, now_ms: int, decay_seconds: int) -> float:
    """A share's historic usage decayed from ``since_ms`` to ``now_ms`` (half-life-free
    exponential with time constant shareDecaySeconds; none without decay)."""
    if decay_seconds <= 0:
        return 0.0
    return previous * math.exp(-max(0, now_ms - since_ms) / (decay_seconds * 1000))


def attempt_usage(mvcpus: int, started_at: int, now_ms: int, decay_seconds: int) -> float:
    """What a finished attempt adds to its share's history: its vCPU-time as average
    milli-vCPUs over the decay window."""
    return mvcpus * max(0, now_ms - started_at) / (decay_seconds * 1000)
