"""Shares: the finished work of each fair-share identifier in a job queue, decayed over
the policy's shareDecaySeconds (``doc``: ``share``, ``usage`` in average milli-vCPUs over
the decay window, and ``at``, when it was last decayed). One item per share, under its
queue (``SHARES#<queue>`` / ``SHARE#<share>``): a scheduling pass reads a queue's in one
query."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .dynamodb import Item

if TYPE_CHECKING:
    from .port import Store


def _pk(queue: str) -> str:
    return f"SHARES#{queue}"


class Shares:
    """Decayed usage of fair shares, by job queue and share identifier."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, queue: str, share: str) -> Item | None:
        return self.store.get(_pk(queue), f"SHARE#{share}")

    @staticmethod
    def new(queue: str, share: str, usage: float, at: int) -> Item:
        """The first usage of a share, for ``save``."""
        return Item(pk=_pk(queue), sk=f"SHARE#{share}", doc={"share": share, "usage": usage, "at": at})

    def save(self, item: Item) -> None:
        """Create a ``new`` share, or compare-and-swap one read with ``get``; ConflictError
        when another writer got there first."""
        if item.version == 0:
            self.store.put_new(item)
        else:
            self.store.replace(item)

    def of(self, queue: str) -> list[Item]:
        """Every share of the queue that has usage."""
        return self.store.query_partition(_pk(queue), "SHARE#")
