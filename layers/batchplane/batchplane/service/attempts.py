"""The end of each attempt's life: task started, task stopped (ECS events or local)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..clock import now_ms
from ..domain import jobs as rules
from ..errors import ConflictError
from ..store.jobs import mvcpus

if TYPE_CHECKING:
    from ..store import Item
    from ..store.repositories import Repositories
    from .fairshare import ShareUsage


class Attempts:
    def __init__(self, repos: Repositories, share_usage: ShareUsage) -> None:
        self.store = repos.store
        self.jobs = repos.jobs
        self.usage = repos.usage
        self.share_usage = share_usage

    def task_running(self, job_id: str, run: int, *, task_arn: str, log_stream: str | None,
                     started_at: int, container_instance: str | None = None, item: Item | None = None,
                     network_interfaces: list[dict[str, str]] | None = None) -> None:
        """STARTING -> RUNNING when the attempt's task reports it runs. ``item`` is the job
        as the caller just read it (saves a read); after a conflict it is read again.
        ``network_interfaces``: the task's (a multi-node parallel job's nodes find their
        main node at its address)."""
        while True:
            item = item or self.jobs.get(job_id)
            if item is None or item.job.run != run or item.doc["status"] != rules.STARTING:
                return  # duplicate, late or foreign event
            doc = item.doc
            rules.move(doc, rules.RUNNING)
            doc["startedAt"] = started_at
            doc["container"]["taskArn"] = task_arn
            if log_stream:
                doc["container"]["logStreamName"] = log_stream
            if container_instance:
                doc["container"]["containerInstanceArn"] = container_instance
            if network_interfaces:
                doc["container"]["networkInterfaces"] = network_interfaces
            try:
                self.jobs.save(item)
                return
            except ConflictError:
                item = None
                continue

    def task_stopped(  # noqa: PLR0913 - keyword-only: the fields of a task's stop event
        self,
        job_id: str,
        run: int,
        *,
        task_arn: str | None,
        exit_code: int | None,
        reason: str | None,
        status_reason: str,
        log_stream: str | None = None,
        started_at: int | None = None,
        retryable: bool = True,
        item: Item | None = None,
    ) -> str | None:
        """End the attempt and free its capacity, in one transaction; returns the new status,
        or None when the event was a duplicate or late. ``item``: as for ``task_running``."""
        while True:
            item = item or self.jobs.get(job_id)
            if item is None or item.job.run != run:
                return None
            doc = item.doc
            if doc["status"] not in (rules.STARTING, rules.RUNNING):
                return None
            if doc["status"] == rules.STARTING and started_at and task_arn:
                # The task ran, but its STOPPED event came before its RUNNING one (ECS
                # events are not ordered): record RUNNING first, as its own change, so the
                # job shows and publishes every state it went through.
                self.task_running(job_id, run, task_arn=task_arn, log_stream=log_stream,
                                  started_at=started_at, item=item)
                item = None
                continue
            if task_arn:
                doc["container"]["taskArn"] = task_arn
            if log_stream:
                doc["container"].setdefault("logStreamName", log_stream)
            if started_at and not doc.get("startedAt"):
                doc["startedAt"] = started_at
            # Whoever stopped the task on purpose said why (timeout, Spot interruption,
            # preemption); that beats what the task's own stop event says.
            stopping = item.job.stopping or {}
            item.job.stopping = None
            if doc.get("isTerminated"):
                status_reason, retryable = doc.get("statusReason") or status_reason, False
            elif stopping:
                status_reason, retryable = stopping["reason"], stopping["retryable"]
            if "nodeDetails" in doc:
                item.job.retryable = retryable  # the parent decides on a retry (service.nodes)
            if stopping.get("requeue") and not doc.get("isTerminated"):
                rules.requeue(doc, status_reason)
                status = rules.RUNNABLE
            else:
                status = rules.finish_attempt(
                    doc,
                    exit_code=exit_code,
                    reason=reason,
                    status_reason=status_reason,
                    now=now_ms(),
                    retryable=retryable,
                )
            try:
                self.store.transact(self._release_ops(item))
            except ConflictError:
                item = None
                continue
            if doc.get("shareIdentifier") and doc.get("startedAt"):
                self.share_usage.record(item.job.queue, doc)
            return status

    def requeue_unstarted(self, job_id: str, run: int, *, reason: str, hold_ms: int) -> None:
        """The dispatched attempt found no room and never started: back to RUNNABLE with
        ``reason``, no attempt spent, its capacity released, and not placed again for
        ``hold_ms`` (instances take minutes to come up; retrying at once would spin)."""
        while True:
            item = self.jobs.get(job_id)
            if item is None or item.job.run != run or item.doc["status"] != rules.STARTING:
                return
            rules.requeue(item.doc, reason)
            item.job.hold_until = now_ms() + hold_ms
            # ...or until its environment frees capacity: a later release passes this count.
            ce = item.job.ce
            item.job.hold_ce = ce
            item.job.hold_releases = self.usage.of(ce).get("releases", 0)
            try:
                self.store.transact(self._release_ops(item, counted=False))
                return
            except ConflictError:
                continue

    def launch_unsure(self, job_id: str, run: int, *, reason: str, max_errors: int) -> None:
        """A launch raised without saying whether the task started (a timeout, a lost
        answer). The attempt stays STARTING with no task, its error counted, for the tick
        to launch again with the same run (which finds the task if it started); after
        ``max_errors`` such launches it ends as "Task failed to start"."""
        while True:
            item = self.jobs.get(job_id)
            if (item is None or item.job.run != run or item.doc["status"] != rules.STARTING
                    or item.doc["container"].get("taskArn")):
                return
            errors = item.job.launch_errors + 1
            if errors >= max_errors:
                self.task_stopped(job_id, run, task_arn=None, exit_code=None, reason=reason[:255],
                                  status_reason="Task failed to start", retryable=True, item=item)
                return
            item.job.launch_errors = errors
            item.job.launch_error_at = now_ms()  # the tick waits from here to launch again
            try:
                self.jobs.save(item)
                return
            except ConflictError:
                continue

    def _release_ops(self, item: Item, *, counted: bool = True) -> list[dict[str, Any]]:
        """Save the job that left STARTING/RUNNING and give its vCPUs back to its compute
        environment, as one transaction's entries. ``counted`` releases (capacity a task
        really held) also count in ``releases``, which wakes jobs held for capacity."""
        ce = item.job.ce
        del item.job.ce
        ops = self.jobs.save_ops(item)
        if ce:
            deltas = {"mvcpus": -mvcpus(item.doc)} | ({"releases": 1} if counted else {})
            ops.append(self.usage.add_op(ce, deltas))
        return ops

    def mark_stopping(
        self, job_id: str, run: int, *, reason: str, retryable: bool, requeue: bool = False
    ) -> str | None:
        """Record why the attempt is about to be stopped; returns its task ARN to stop, or
        None when the attempt is no longer running."""
        while True:
            item = self.jobs.get(job_id)
            if item is None or item.job.run != run:
                return None
            if item.doc["status"] not in (rules.STARTING, rules.RUNNING):
                return None
            item.job.stopping = {"reason": reason, "retryable": retryable, "requeue": requeue}
            try:
                self.jobs.save(item)
                return item.doc["container"].get("taskArn")
            except ConflictError:
                continue
