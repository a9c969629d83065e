"""Admission of submitted jobs and the dependency graph.

An edge (store/dependencies.py) is written for every dependency a job waits for; the
dependent counts how many it still waits for (``waiting``). When a job ends, the stream
hands it to ``on_finished``, which releases each edge once: an edge carries a
``released`` mark written in the same transaction as the dependent's new count, so a
redelivered event releases nothing twice.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from ..clock import now_ms
from ..domain import arrays, bookkeeping, nodes
from ..domain import dependencies as rules_deps
from ..domain import jobs as rules
from ..errors import ConflictError
from ..store.dependencies import DependencyEdges

if TYPE_CHECKING:
    from ..ports import Workflows
    from ..store.repositories import Repositories
    from .nodes import Nodes

log = logging.getLogger(__name__)


class Dependencies:
    def __init__(self, repos: Repositories, workflows: Workflows | None, multinode: Nodes | None = None) -> None:
        self.store = repos.store
        self.jobs = repos.jobs
        self.edges = repos.edges
        self.workflows = workflows
        self.multinode = multinode  # a multi-node parallel job's nodes are made when it no longer waits

    # -- admission ----------------------------------------------------------------------

    def admit(self, job_id: str) -> bool:
        """SUBMITTED -> PENDING (waiting for dependencies, or an array fanning out) or
        RUNNABLE; True when the job became RUNNABLE."""
        item = self.jobs.get(job_id)
        if item is None or item.doc["status"] != rules.SUBMITTED:
            return False
        deps = rules_deps.parent_dependencies(item.doc)
        item.job.waiting = len(deps)
        target = rules.PENDING if deps or arrays.is_parent(item.doc) or nodes.is_parent(item.doc) else rules.RUNNABLE
        rules.move(item.doc, target)
        try:
            self.jobs.save(item)
        except ConflictError:
            return False  # cancelled meanwhile, or admitted by a redelivered event
        if deps:
            return self.link(job_id, deps)
        if target == rules.PENDING:
            return self.ready(job_id)  # an array parent fans out
        return True

    def link(self, job_id: str, deps: list[dict[str, str]]) -> bool:
        """Write the edges of a PENDING job whose ``waiting`` counts ``deps``. A dependency
        that already ended is released at once. True when that made the job RUNNABLE."""
        runnable = False
        for dep in deps:
            edge = DependencyEdges.new(dep["jobId"], job_id, dep.get("type"))
            # Not ended yet (a child not materialized yet has not ended either).
            check = self.jobs.not_ended_op(dep["jobId"])
            try:
                self.store.transact([check, self.edges.add_op(edge)])
                continue
            except ConflictError:
                pass
            # Either the dependency ended (release now) or the edge exists (a retry).
            if self.edges.get(dep["jobId"], job_id) is None:
                edge.version = 0
                with contextlib.suppress(ConflictError):
                    self.edges.add(edge)
            dep_item = self.jobs.get(dep["jobId"])
            if dep_item is not None and dep_item.doc["status"] in rules.TERMINAL:
                runnable |= self.release(dep["jobId"], job_id, dep_item.doc["status"])
        return runnable

    def ready(self, job_id: str) -> bool:
        """A PENDING job no longer waits: an array fans out its children, a multi-node
        parallel job makes its nodes, others run. True when a job became RUNNABLE."""
        while True:
            item = self.jobs.get(job_id)
            if item is None or item.doc["status"] != rules.PENDING or item.job.waiting > 0:
                return False
            if nodes.is_node(item.doc):
                return False  # released by its main node (service.nodes), not by dependencies
            if nodes.is_parent(item.doc):
                assert self.multinode is not None, "multi-node parallel jobs need service.nodes"
                return self.multinode.start(job_id)
            if arrays.is_parent(item.doc):
                if item.job.fanout:
                    return False
                item.job.fanout = bookkeeping.MATERIALIZE
            else:
                rules.move(item.doc, rules.RUNNABLE)
            try:
                self.jobs.save(item)
            except ConflictError:
                continue
            if arrays.is_parent(item.doc):
                assert self.workflows is not None, "array jobs need the fan-out workflow"
                self.workflows.start_array(job_id, bookkeeping.MATERIALIZE, item.doc["arrayProperties"]["size"])
                return False
            return True

    # -- release ------------------------------------------------------------------------

    def on_finished(self, job_id: str, status: str) -> bool:
        """A job ended: release every job that waits for it. True when one became RUNNABLE."""
        runnable = False
        for dependent, edge in self.edges.of(job_id):
            if not edge.extra.get("released"):
                runnable |= self.release(job_id, dependent, status)
        return runnable

    def release(self, dep_id: str, job_id: str, dep_status: str) -> bool:
        """Release one edge: one fewer to wait for, or "Dependent Job failed"."""
        while True:
            edge = self.edges.get(dep_id, job_id)
            item = self.jobs.get(job_id)
            if edge is None or item is None or edge.extra.get("released"):
                break
            decision = rules_deps.released(dep_status, edge.doc.get("type"))
            ops = [self.edges.release_op(edge, decision)]
            if rules_deps.release(item.doc, decision, now_ms()):
                if decision == "ok":
                    item.job.waiting = max(0, int(item.job.waiting) - 1)
                ops += self.jobs.save_ops(item)
            try:
                self.store.transact(ops)
                break
            except ConflictError:
                continue
        return self.ready(job_id)

