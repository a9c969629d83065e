"""Multi-node parallel jobs (domain.nodes): each attempt's nodes made, released, stopped
and run again, and the parent's outcome from its main node.

Every step is in ``advance``, which reads the parent and its nodes and does what is due:
the stream calls it when a node changes status, the tick for parents PENDING for long
(a record the stream dropped), and each step is idempotent, so a repeated call changes
nothing. The attempt a node belongs to is its ``attempt`` (the parent's ``nodesAttempt``
then); a retry moves the parent to the next one once every node of the last has ended.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..clock import now_ms
from ..domain import jobs as rules
from ..domain import nodes
from ..errors import ConflictError
from ..store.jobs import JobStore

if TYPE_CHECKING:
    from ..ports import TaskLauncher
    from ..store import Item
    from ..store.repositories import Repositories
    from .attempts import Attempts

log = logging.getLogger(__name__)
MAX_TRANSACTION_ITEMS = 25
MAIN_EXITED = "The main node of the multi-node parallel job exited"


class Nodes:
    def __init__(self, repos: Repositories, attempts: Attempts, launcher: TaskLauncher | None = None) -> None:
        self.store = repos.store
        self.jobs = repos.jobs
        self.attempts = attempts
        self.launcher = launcher

    # -- the nodes of an attempt ------------------------------------------------------

    def start(self, parent_id: str) -> bool:
        """The parent no longer waits (for dependencies): its first attempt's nodes are
        made. True when that made the main node RUNNABLE."""
        while True:
            parent = self.jobs.get(parent_id)
            if parent is None or parent.doc["status"] != rules.PENDING or parent.job.nodes_attempt:
                return False
            parent.job.nodes_attempt = 1
            try:
                self.jobs.save(parent)
            except ConflictError:
                continue
            return self._make_nodes(parent)

    def _make_nodes(self, parent: Item) -> bool:
        """Create the nodes of the parent's attempt that do not exist yet, and reset those
        of an earlier attempt that ended: the main node RUNNABLE, the others PENDING until
        it runs."""
        attempt = parent.job.nodes_attempt
        num = parent.doc["nodeProperties"]["numNodes"]
        ids = [nodes.node_id(parent.doc["jobId"], i) for i in range(num)]
        found = {i.doc["jobId"]: i for i in self.jobs.get_many(ids)}
        ops: list[dict[str, Any]] = []
        for index, job_id in enumerate(ids):
            node = found.get(job_id)
            if node is None:
                ops.append(self.jobs.new_op(self._new_node(parent, index, attempt)))
            elif node.job.attempt < attempt and node.doc["status"] in rules.TERMINAL:
                _rerun(node, attempt)
                ops += self.jobs.save_ops(node)
        for start in range(0, len(ops), MAX_TRANSACTION_ITEMS):
            try:
                self.store.transact(ops[start:start + MAX_TRANSACTION_ITEMS])
            except ConflictError:
                # Another call made or reset some of these: the next advance sees them.
                log.info("nodes of %s changed while they were made; advancing again", parent.doc["jobId"])
                return False
        return bool(ops)

    def _new_node(self, parent: Item, index: int, attempt: int) -> Item:
        doc = parent.doc
        props = doc["nodeProperties"]
        overrides = (parent.job.node_overrides or {}).get(str(index)) or {}
        request = {"jobName": doc["jobName"], "containerOverrides": overrides, "parameters": doc["parameters"],
                   "tags": doc.get("tags") or {}, "propagateTags": False}
        if doc.get("shareIdentifier"):
            request["shareIdentifier"] = doc["shareIdentifier"]
        definition = {"jobDefinitionArn": doc["jobDefinition"], "platformCapabilities": ["EC2"],
                      "containerProperties": nodes.range_container(props, index), "timeout": doc.get("timeout")}
        node = rules.new_job(request, job_id=nodes.node_id(doc["jobId"], index),
                             job_arn=f"{doc['jobArn']}#{index}", queue={"jobQueueArn": doc["jobQueue"]},
                             definition=definition, now=now_ms())
        node.pop("retryStrategy", None)  # one attempt spans all nodes: the parent retries
        if "schedulingPriority" in doc:
            node["schedulingPriority"] = doc["schedulingPriority"]
        node["nodeDetails"] = {"nodeIndex": index, "isMainNode": index == props["mainNode"]}
        node["nodeProperties"] = {"numNodes": props["numNodes"], "mainNode": props["mainNode"]}
        node["status"] = rules.RUNNABLE if index == props["mainNode"] else rules.PENDING
        item = JobStore.item(node, queue=parent.job.queue, mnp=doc["jobId"], node=index, attempt=attempt)
        if parent.job.owner:
            item.job.owner = parent.job.owner
        return item

    # -- what is due -------------------------------------------------------------------

    def advance(self, parent_id: str) -> bool:
        """Do what is due for the parent's nodes now; True when a node became RUNNABLE."""
        parent = self.jobs.get(parent_id)
        if parent is None or not parent.job.nodes_attempt:
            return False
        attempt = parent.job.nodes_attempt
        props = parent.doc["nodeProperties"]
        found = {i.job.node: i for i in self._nodes_of(parent)}
        if parent.doc["status"] in rules.TERMINAL:
            self._stop(found.values(), _stop_reason(parent.doc))
            return False
        current = {n: i for n, i in found.items() if i.job.attempt == attempt}
        # A node of an earlier attempt still going (dispatched as that attempt ended).
        self._stop([i for n, i in found.items() if n not in current and i.doc["status"] not in rules.TERMINAL],
                   _stop_reason(parent.doc))
        if len(current) < props["numNodes"]:
            if all(i.doc["status"] in rules.TERMINAL for n, i in found.items() if n not in current):
                return self._make_nodes(parent)
            return False  # nodes of the attempt before still stopping
        main = current[props["mainNode"]]
        if main.doc["status"] in rules.TERMINAL:
            self._main_ended(parent, main)
            return False
        if main.doc["status"] == rules.RUNNING:
            return self._release(parent, main, current)
        return False

    def _release(self, parent: Item, main: Item, current: dict[int, Item]) -> bool:
        """The main node runs: the other nodes may be placed now, on its compute
        environment, told its address; the parent shows when the attempt started."""
        address = _address(main.doc)
        released = False
        for node in current.values():
            if node.doc["status"] != rules.PENDING:
                continue
            node.job.main_address = address or ""
            node.job.pinned_ce = main.job.ce
            rules.move(node.doc, rules.RUNNABLE)
            try:
                self.jobs.save(node)
                released = True
            except ConflictError:
                pass  # it moved meanwhile (cancelled): the next advance decides again
        if not parent.doc.get("startedAt"):
            parent.doc["startedAt"] = main.doc.get("startedAt") or now_ms()
            try:
                self.jobs.save(parent)
            except ConflictError:
                pass
        return released

    def _main_ended(self, parent: Item, main: Item) -> None:
        """The main node's attempt ended: so did the job's attempt. The parent records it
        and ends as the main node did, or (retries left) moves to the next attempt; the
        other nodes are stopped either way."""
        attempt = parent.job.nodes_attempt
        ended = main.doc["attempts"][-1] if main.doc["attempts"] else {}
        if parent.job.decided < attempt:
            doc = parent.doc
            container = ended.get("container") or {}
            exit_code, reason = container.get("exitCode"), container.get("reason")
            status_reason = main.doc.get("statusReason") or ended.get("statusReason") or MAIN_EXITED
            retry = (main.doc["status"] == rules.FAILED and bool(main.job.retryable)
                     and not doc.get("isTerminated")
                     and rules.should_retry({**doc, "attempts": [*doc["attempts"], ended]}, exit_code,
                                            reason or "", status_reason))
            doc["attempts"].append(ended)
            parent.job.decided = attempt
            for key, value in (("exitCode", exit_code), ("reason", reason)):
                if value is not None:
                    doc["container"][key] = value
            if retry:
                parent.job.nodes_attempt = attempt + 1
                doc["statusReason"] = status_reason
                doc.pop("startedAt", None)
            else:
                target = rules.SUCCEEDED if main.doc["status"] == rules.SUCCEEDED else rules.FAILED
                reason_now = doc.get("statusReason") if doc.get("isTerminated") else status_reason
                rules.move(doc, target, reason_now)
                doc["stoppedAt"] = now_ms()
            try:
                self.jobs.save(parent)
            except ConflictError:
                return  # another call decided: its advance stops the nodes
        others = [i for i in self._nodes_of(parent) if i.doc["jobId"] != main.doc["jobId"]]
        self._stop(others, _stop_reason(parent.doc))
        if parent.job.nodes_attempt > attempt:
            self.advance(parent.doc["jobId"])  # every node may have ended already: run them again

    def _nodes_of(self, parent: Item) -> list[Item]:
        num = parent.doc["nodeProperties"]["numNodes"]
        return self.jobs.get_many([nodes.node_id(parent.doc["jobId"], n) for n in range(num)])

    def _stop(self, items: Any, reason: str) -> None:
        """End every node that has not: a waiting one at once, a running one by stopping
        its task (its stop event ends it)."""
        for node in items:
            status = node.doc["status"]
            if status in (rules.PENDING, rules.RUNNABLE):
                rules.move(node.doc, rules.FAILED, reason)
                node.doc["stoppedAt"] = now_ms()
                try:
                    self.jobs.save(node)
                except ConflictError:
                    pass  # dispatched meanwhile: the next advance stops its task
            elif status in (rules.STARTING, rules.RUNNING):
                task = self.attempts.mark_stopping(node.doc["jobId"], node.job.run,
                                                   reason=reason, retryable=False)
                if task and self.launcher is not None:
                    self.launcher.stop(task, reason)

    # -- CancelJob / TerminateJob --------------------------------------------------------

    def cancel(self, parent: Item, reason: str, terminate: bool) -> bool:
        """CancelJob or TerminateJob of a parent whose nodes exist. CancelJob ends the job
        only while its main node has not started (AWS leaves started jobs alone);
        TerminateJob stops every node. False when nothing changed."""
        doc = parent.doc
        if doc["status"] in rules.TERMINAL or (doc.get("isTerminated") and terminate):
            return False
        current = self._nodes_of(parent)
        main = next((i for i in current if i.doc["nodeDetails"]["isMainNode"]
                     and i.job.attempt == parent.job.nodes_attempt), None)
        started = main is not None and main.doc["status"] not in rules.QUEUED
        if not terminate and started:
            return False
        doc["isCancelled"] = True
        if terminate:
            doc["isTerminated"] = True
        doc["statusReason"] = reason
        if not started:
            rules.move(doc, rules.FAILED, reason)
            doc["stoppedAt"] = now_ms()
        self.jobs.save(parent)  # ConflictError: the caller decides again
        for node in current:
            if node.doc["status"] in (rules.STARTING, rules.RUNNING) and not node.doc.get("isTerminated"):
                node.doc["isTerminated"] = True
                node.doc["statusReason"] = reason
                try:
                    self.jobs.save(node)
                except ConflictError:
                    pass  # it ended meanwhile, or the next advance stops it
        self._stop(current, reason)
        return True


def _stop_reason(parent: dict[str, Any]) -> str:
    """Why the other nodes are stopped: TerminateJob's (or CancelJob's) reason, else the
    main node's exit."""
    if parent.get("isTerminated") or parent.get("isCancelled"):
        return str(parent.get("statusReason") or MAIN_EXITED)
    return MAIN_EXITED


def _rerun(node: Item, attempt: int) -> None:
    """A node of a retried job, ready to run again in ``attempt``: its earlier attempts
    stay listed (AWS: one attempt spans all nodes, and a retry reruns them all)."""
    doc = node.doc
    main = doc["nodeDetails"]["isMainNode"]
    doc["status"] = rules.RUNNABLE if main else rules.PENDING
    for key in ("statusReason", "startedAt", "stoppedAt"):
        doc.pop(key, None)
    doc["isTerminated"] = doc["isCancelled"] = False
    for key in ("taskArn", "logStreamName", "exitCode", "reason", "containerInstanceArn"):
        doc["container"].pop(key, None)
    doc["container"]["networkInterfaces"] = []
    node.job.main_address = node.job.pinned_ce = node.job.stopping = node.job.expires_at = None
    del node.job.retryable
    node.job.attempt = attempt


def _address(doc: dict[str, Any]) -> str | None:
    """The private IPv4 address a node's task has (its network interface)."""
    for interface in doc["container"].get("networkInterfaces") or []:
        if interface.get("privateIpv4Address"):
            return str(interface["privateIpv4Address"])
    return None
