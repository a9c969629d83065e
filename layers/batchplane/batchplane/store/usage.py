"""Compute environment usage: the vCPUs (in thousandths, ``mvcpus``) that a compute
environment's attempts hold, and how often capacity a task held was given back
(``releases``). One counter item beside the environment (``CE#<name>`` / ``USAGE``),
which dispatch adds to in the transaction that starts the jobs, only within maxvCpus."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .port import Store

_SK = "USAGE"


def _pk(ce_name: str) -> str:
    return f"CE#{ce_name}"


class UsageCounters:
    """The usage counters of compute environments, by name."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def of(self, ce_name: str) -> dict[str, int]:
        """The environment's counters now ({} before its first dispatch)."""
        return self.store.counters(_pk(ce_name), _SK)

    def add_op(self, ce_name: str, deltas: dict[str, int], limits: dict[str, int] | None = None) -> Any:
        """A transaction entry adding ``deltas``; with ``limits``, only while each counter
        stays within its limit (the guard that keeps dispatch within maxvCpus)."""
        return self.store.add_op(_pk(ce_name), _SK, deltas, limits)

    def forget(self, ce_name: str) -> None:
        """Delete the counters of a deleted environment."""
        self.store.delete(_pk(ce_name), _SK)
