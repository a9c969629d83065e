"""Array jobs: materializing children in chunks (driven by the fan-out state machine),
cascading cancels, the parent's outcome, and listing children."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import arns
from ..clock import now_ms
from ..domain import arrays, bookkeeping
from ..domain import jobs as rules
from ..errors import ConflictError
from ..store.jobs import JobStore

if TYPE_CHECKING:
    from ..ports import TaskLauncher
    from ..store import Item
    from ..store.repositories import Repositories
    from .dependencies import Dependencies


class Arrays:
    def __init__(self, repos: Repositories, dependencies: Dependencies, launcher: TaskLauncher | None) -> None:
        self.store = repos.store
        self.jobs = repos.jobs
        self.counters = repos.array_counters
        self.dependencies = dependencies
        self.launcher = launcher

    # -- fan-out tasks ----------------------------------------------------------------

    def run_chunk(self, parent_id: str, action: str, start: int, count: int) -> int:
        """One Map iteration of the fan-out workflow; returns how many children it changed.
        Safe to run again after a failure: each child is created or cancelled once."""
        parent = self.jobs.get(parent_id)
        if parent is None:
            return 0
        if action == bookkeeping.MATERIALIZE:
            if parent.doc["status"] in rules.TERMINAL:
                return 0  # ended before this chunk (a parent cancelled by older code)
            # A cancelled parent still gets every child, cancelled at once below: it ends
            # only when all of them have, and the counters count each child once, in the
            # first status its chunk counted it in.
            self._count_chunk(parent.doc, range(start, start + count))
            made = sum(self._materialize(parent, i) for i in range(start, start + count))
            # Cancelled while this chunk ran? The cancel cascade may have passed these
            # indexes before their children existed. Reading the parent after writing them
            # means that either this read sees the cancel or the cascade sees the children.
            parent = self.jobs.get(parent_id) or parent
            if parent.doc.get("isCancelled"):
                self._cancel_range(parent, start, count, bool(parent.doc.get("isTerminated")))
            return made
        return self._cancel_range(parent, start, count, action == bookkeeping.TERMINATE)

    def _cancel_range(self, parent: Item, start: int, count: int, terminate: bool) -> int:
        changed = 0
        counted = False
        for i in range(start, start + count):
            child = self.jobs.get(arrays.child_id(parent.doc["jobId"], i))
            if child is None:
                # Never made: the materialize fan-out gave up (its retries ran out) or has
                # not come this far. Make it (counted once, as its chunk would) and cancel
                # it, or the counters would wait for it and the parent never end.
                if not counted:
                    self._count_chunk(parent.doc, range(start, start + count))
                    counted = True
                self._materialize(parent, i)
                child = self.jobs.get(arrays.child_id(parent.doc["jobId"], i))
            if child is not None and child.doc["status"] not in rules.TERMINAL:
                self.cancel_one(child, parent.doc.get("statusReason") or "Array parent cancelled", terminate)
                changed += 1
        return changed

    def _count_chunk(self, parent: dict[str, Any], indexes: range) -> None:
        """Count the chunk's children in the parent's statusSummary before creating them,
        so that a child's later moves never take a counter below zero."""
        try:
            self.store.transact(self.counters.chunk_ops(
                parent["jobId"], {i: _first_status(arrays.child_dependencies(parent, i)) for i in indexes}))
        except ConflictError:
            pass  # counted by an earlier try of this chunk

    def _materialize(self, parent: Item, index: int) -> bool:
        job_id = arrays.child_id(parent.doc["jobId"], index)
        doc = arrays.child_doc(parent.doc, index, arns.job_arn(job_id))
        deps = doc["dependsOn"]
        doc["status"] = _first_status(deps)
        item = JobStore.item(doc, queue=parent.job.queue, parent=parent.doc["jobId"], index=index,
                             waiting=len(deps))
        if parent.job.child_events == bookkeeping.OFF:
            item.job.events = bookkeeping.OFF  # the publisher's filter drops its records
        if parent.job.owner:
            item.job.owner = parent.job.owner  # whoever submitted the array (domain.tenancy)
        try:
            self.store.transact_or_put(self.jobs.new_op(item))
        except ConflictError:
            return False  # made by an earlier try of this chunk
        if deps:
            self.dependencies.link(job_id, deps)
        return True

    def cancel_one(self, item: Item, reason: str, terminate: bool) -> None:
        """What CancelJob/TerminateJob do to one child (the cascade's unit)."""
        while True:
            stop_task = rules.cancel_decision(item.doc, reason, terminate, now_ms())
            if stop_task is None:
                return
            try:
                self.jobs.save(item)
            except ConflictError:
                fresh = self.jobs.get(item.doc["jobId"])
                if fresh is None:
                    return
                item = fresh
                continue
            if stop_task and self.launcher is not None:
                self.launcher.stop(stop_task, reason)
            return

    def finish_fanout(self, parent_id: str, action: str) -> None:
        """The workflow's last step: note that every child exists, then settle the parent
        if its children already ended."""
        while True:
            parent = self.jobs.get(parent_id)
            if parent is None or parent.job.fanout == bookkeeping.fanout_done(action):
                break
            parent.job.fanout = bookkeeping.fanout_done(action)
            try:
                self.jobs.save(parent)
                break
            except ConflictError:
                continue
        self.settle(parent_id)

    # -- the parent's outcome ---------------------------------------------------------

    def settle(self, parent_id: str) -> None:
        """PENDING -> SUCCEEDED or FAILED once every child ended (called when a child ends).
        A cancelled (or terminated) parent ends FAILED with the reason it was given."""
        while True:
            parent = self.jobs.get(parent_id)
            if parent is None or parent.doc["status"] != rules.PENDING:
                return
            size = parent.doc["arrayProperties"]["size"]
            status = arrays.outcome(self.counters.summary(parent_id), size)
            if status is None:
                return
            doc = parent.doc
            if doc.get("isCancelled"):
                rules.move(doc, rules.FAILED, doc.get("statusReason") or "Array parent cancelled")
            else:
                rules.move(doc, status, None if status == rules.SUCCEEDED else "Array Child Job failed")
            doc["stoppedAt"] = now_ms()
            try:
                self.jobs.save(parent)
                return
            except ConflictError:
                continue

    def described(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A parent as DescribeJobs shows it: with statusSummary from the child counters."""
        props = doc.get("arrayProperties") or {}
        if "size" not in props:
            return doc
        summary = self.counters.summary(doc["jobId"])
        return {**doc, "arrayProperties": {**props, "statusSummary": {k: v for k, v in summary.items() if v}}}

    def children(
        self, parent: dict[str, Any], status: str | None, start: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Children from index ``start`` (in status, if given): a page and the next start."""
        size = parent["arrayProperties"]["size"]
        out: list[dict[str, Any]] = []
        index = start
        while index < size and len(out) < limit:
            batch = range(index, min(size, index + 100))
            found = {i.doc["jobId"]: i.doc for i in self.jobs.get_many(
                [arrays.child_id(parent["jobId"], i) for i in batch])}
            for i in batch:
                doc = found.get(arrays.child_id(parent["jobId"], i))
                index = i + 1
                if doc and (status is None or doc["status"] == status):
                    out.append(doc)
                    if len(out) >= limit:
                        break
        return out, (index if index < size else None)


def _first_status(deps: list[dict[str, str]]) -> str:
    """A child waits PENDING for its own dependencies, else is RUNNABLE at once."""
    return rules.PENDING if deps else rules.RUNNABLE
