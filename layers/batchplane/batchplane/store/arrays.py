"""Array counters: how many of an array's children are in each status (its
statusSummary). They live on a few counter items under the parent (``ARRAY#<parent>`` /
``COUNT#<shard>``), with one marker per counted fan-out chunk (``CHUNK#<first index>``),
so that DescribeJobs of a parent reads a handful of items, not its children."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..domain import arrays
from ..domain import jobs as rules
from .dynamodb import Item

if TYPE_CHECKING:
    from .port import Store

Key = tuple[str, str]  # a counter item's pk and sk
Deltas = dict[Key, dict[str, int]]  # counter item -> status -> change


def tally(deltas: Deltas, key: Key, status: str, step: int) -> None:
    """Add ``step`` to the count of ``status`` on counter item ``key``."""
    counts = deltas.setdefault(key, {})
    counts[status] = counts.get(status, 0) + step


class ArrayCounters:
    """The child counters of array parents."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def key(parent_id: str, index: int) -> Key:
        """Child ``index``'s counter item. Children next to each other, which tend to move
        at the same time, count on different items: fewer transactions collide."""
        return f"ARRAY#{parent_id}", f"COUNT#{index % arrays.COUNTER_SHARDS:02d}"

    def add_ops(self, deltas: Deltas) -> list[Any]:
        """Transaction entries adding ``deltas``: one per counter item that changes."""
        ops = []
        for (pk, sk), counts in deltas.items():
            changed = {status: d for status, d in counts.items() if d}
            if changed:
                ops.append(self.store.add_op(pk, sk, changed))
        return ops

    def chunk_ops(self, parent_id: str, first: dict[int, str]) -> list[Any]:
        """Counting a fan-out chunk's children in their first status (index -> status),
        as one transaction with a marker item: a retried chunk is refused and counts
        nothing twice. One transaction per chunk instead of one per child."""
        deltas: Deltas = {}
        for index, status in first.items():
            tally(deltas, self.key(parent_id, index), status, 1)
        marker = Item(pk=f"ARRAY#{parent_id}", sk=f"CHUNK#{min(first):06d}", doc={})
        return [self.store.put_new_op(marker), *self.add_ops(deltas)]

    def summary(self, parent_id: str) -> dict[str, int]:
        """How many children of an array are in each status (its statusSummary)."""
        total: dict[str, int] = {}
        for item in self.store.query_partition(f"ARRAY#{parent_id}", "COUNT#", raw=True):
            for status in rules.STATUSES:
                total[status] = total.get(status, 0) + int(item.get(status, 0))
        return total

    def forget(self, parent_id: str) -> int:
        """Delete an array's counter and chunk items, once its parent item has expired.
        Returns how many there were."""
        found = self.store.query_partition(f"ARRAY#{parent_id}", "", raw=True)
        for item in found:
            self.store.delete(item["pk"], item["sk"])
        return len(found)
