"""Jobs: one item per job (``JOB#<id>`` / ``JOB``), listed by queue and status in gsi1
(``JOBS#<queue>#<status>``), with its array parent's child counters kept in step."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any

from ..clock import now_ms
from ..config import settings
from ..domain import jobdefs
from ..domain import jobs as rules
from .arrays import ArrayCounters, Deltas, Key, tally
from .dynamodb import Item

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .port import Store

JOB_SK = "JOB"
# The ranks of a listing partition's sort keys (``_index``): a RUNNABLE job whose attempt
# is retried sorts first (rank 0), at the front of its queue; others are rank 1.
_RANKS = {rules.RUNNABLE: ("0", "1")}


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def listing(queue: str, status: str) -> str:
    """The gsi1 partition that lists a queue's jobs in one status."""
    return f"JOBS#{queue}#{status}"


def retention_expiry() -> int:
    """When an ended job (or what it leaves behind) expires: DynamoDB's TTL, in seconds."""
    return now_ms() // 1000 + settings().job_retention_days * 86400


def mvcpus(doc: dict[str, Any]) -> int:
    """The job's vCPUs in thousandths (Fargate's 0.25 vCPU is 250)."""
    return int(round(jobdefs.requirements(doc["container"])["VCPU"] * 1000))


def is_job(keys: dict[str, Any]) -> bool:
    """Whether a stream record's keys (or an image) are a job's item."""
    return keys.get("sk") == JOB_SK


def job_id(keys: dict[str, Any]) -> str:
    """The job id of a job item's keys: no need to decompress its ``doc``."""
    return str(keys["pk"]).removeprefix("JOB#")


class JobStore:
    """The jobs repository: the services read, create and compare-and-swap jobs through
    it and never see their keys."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.counters = ArrayCounters(store)

    @staticmethod
    def item(doc: dict[str, Any], **extra: Any) -> Item:
        """A new job's item, for ``new_op``; ``extra``: its top-level attributes."""
        return Item(pk=job_pk(doc["jobId"]), sk=JOB_SK, doc=doc, extra=extra)

    def _index(self, item: Item) -> None:
        """Keep the listing keys and retention in step with the job's status."""
        doc = item.doc
        status = doc["status"]
        item.gsi1pk = listing(item.job.queue, status)
        # Retried attempts go back to the front of their queue (rank 0), as in AWS Batch.
        rank = "0" if status == rules.RUNNABLE and doc["attempts"] else "1"
        item.gsi1sk = f"{rank}{doc['createdAt']:013d}#{doc['jobId']}"
        if item.job.status != status:
            # When the job entered its status: RUNNABLE jobs wait from then (time limits,
            # GetJobQueueSnapshot's earliestTimeAtPosition).
            item.job.since = now_ms()
        item.job.status = status
        if status in rules.TERMINAL:
            item.job.expires_at = retention_expiry()

    def get(self, job_id: str) -> Item | None:
        return self.store.get(job_pk(job_id), JOB_SK)

    def get_many(self, job_ids: list[str]) -> list[Item]:
        """The jobs of these ids that exist, in no particular order."""
        return self.store.batch_get([(job_pk(j), JOB_SK) for j in job_ids]) if job_ids else []

    def save(self, item: Item) -> None:
        """Compare-and-swap the job; ConflictError if it changed since it was read."""
        ops = self.save_ops(item)
        if len(ops) == 1:
            self.store.transact_or_put(ops[0])
        else:
            self.store.transact(ops)

    def save_ops(self, item: Item) -> list[dict[str, Any]]:
        """``save`` as entries of a transaction: the job, and its array parent's child
        counters when an array child changes status."""
        return self.save_many_ops([item])

    def save_many_ops(self, items: list[Item]) -> list[dict[str, Any]]:
        """``save`` of several jobs as entries of one transaction. Children of one array
        that move together share one update of each counter item they touch (a
        transaction may write an item only once)."""
        ops: list[dict[str, Any]] = []
        deltas: Deltas = {}
        for item in items:
            before = item.job.status
            self._index(item)
            ops.append(self.store.replace_op(item))
            self._count(item, before, deltas)
        return ops + self.counters.add_ops(deltas)

    def new_op(self, item: Item) -> dict[str, Any]:
        """Creating the job (refused if it exists). An array child's first status is
        counted by its chunk (``ArrayCounters.chunk_ops``), not here."""
        self._index(item)
        return self.store.put_new_op(item)

    @staticmethod
    def counter_key(item: Item) -> Key | None:
        """The key of the item that counts an array child's status, among its parent's."""
        parent = item.job.parent
        return ArrayCounters.key(parent, item.job.index) if parent else None

    def _count(self, item: Item, before: str | None, deltas: Deltas) -> None:
        """Add an array child's change of status to the deltas of its counter item."""
        key = self.counter_key(item)
        after = item.doc["status"]  # what _index recorded
        if key is None or before == after:
            return
        tally(deltas, key, after, 1)
        if before:
            tally(deltas, key, before, -1)

    def not_ended_op(self, job_id: str) -> Any:
        """A transaction entry that passes while the job has not ended (SUCCEEDED or
        FAILED), or does not exist yet (an array child not materialized)."""
        return self.store.check_op(job_pk(job_id), JOB_SK, "status", (rules.SUCCEEDED, rules.FAILED))

    def page(self, queue: str, status: str, *, limit: int | None = None,
             token: str | None = None) -> tuple[list[Item], str | None]:
        """One page of a queue's jobs in ``status``, in dispatch order, and the token of the
        next."""
        return self.store.query_index(listing(queue, status), limit=limit, token=token)

    def newest_first(self, queue: str, status: str, before: str | None, page: int) -> Iterator[tuple[str, Item]]:
        """A queue's jobs in ``status``, newest first, each with its position
        ``<createdAt:013>#<jobId>``, only those older than ``before`` if given, read
        ``page`` at a time. Each rank of the partition is read on its own and the ranks
        merged."""
        ranks = [self._newest_first(queue, status, rank, before, page) for rank in _RANKS.get(status, ("1",))]
        return heapq.merge(*ranks, key=lambda pair: pair[0], reverse=True)

    def _newest_first(self, queue: str, status: str, rank: str, before: str | None,
                      page: int) -> Iterator[tuple[str, Item]]:
        """One rank of a listing partition, newest first (its sort keys are the rank and
        the position)."""
        high = rank + (before if before is not None else "~")
        token = None
        while True:
            items, token = self.store.query_index(listing(queue, status), limit=page, token=token,
                                                  between=(rank, high), forward=False)
            for item in items:
                key = f"{item.doc['createdAt']:013d}#{item.doc['jobId']}"
                if before is None or key < before:
                    yield key, item
            if token is None:
                return

    def every(self, queue: str, status: str, page: int = 1000) -> Iterator[Item]:
        """Every job of a queue in ``status``, in dispatch order, a page at a time."""
        token = None
        while True:
            items, token = self.page(queue, status, limit=page, token=token)
            yield from items
            if token is None:
                return

    def queued(self, queue: str, status: str, limit: int) -> list[Item]:
        """The first ``limit`` jobs of a queue in ``status``, in dispatch order."""
        return self.page(queue, status, limit=limit)[0]
