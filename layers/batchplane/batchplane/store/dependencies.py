"""Dependency edges: one item per dependency a job waits for, under the job it waits for
(``DEPS#<dependency>`` / ``JOB#<dependent>``), so that when a job ends the jobs waiting
for it are one partition. A released edge carries its decision (``released``) and
expires with the jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .dynamodb import Item
from .jobs import JOB_SK, retention_expiry

if TYPE_CHECKING:
    from .port import Store


def _pk(dep_id: str) -> str:
    return f"DEPS#{dep_id}"


def _sk(job_id: str) -> str:
    return f"{JOB_SK}#{job_id}"


class DependencyEdges:
    """The edges from jobs to the jobs that wait for them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def new(dep_id: str, job_id: str, dep_type: str | None) -> Item:
        """The edge of job ``job_id`` waiting for ``dep_id`` (``type``: N_TO_N, SEQUENTIAL
        or None), for ``add`` or ``add_op``."""
        return Item(pk=_pk(dep_id), sk=_sk(job_id), doc={"type": dep_type})

    def get(self, dep_id: str, job_id: str) -> Item | None:
        return self.store.get(_pk(dep_id), _sk(job_id))

    def add(self, edge: Item) -> None:
        """Write a new edge; ConflictError if it exists."""
        self.store.put_new(edge)

    def add_op(self, edge: Item) -> Any:
        """``add`` as a transaction entry."""
        return self.store.put_new_op(edge)

    def of(self, dep_id: str) -> list[tuple[str, Item]]:
        """The edges of the jobs waiting for ``dep_id``, each with the waiting job's id."""
        return [(edge.sk.split("#", 1)[1], edge) for edge in self.store.query_partition(_pk(dep_id), "")]

    def release_op(self, edge: Item, decision: str) -> Any:
        """A transaction entry marking the edge released with ``decision`` (a
        compare-and-swap: an edge is released once). A released edge is spent: it
        expires with the jobs, not kept for good."""
        edge.extra.update(released=decision, expiresAt=retention_expiry())
        return self.store.replace_op(edge)
