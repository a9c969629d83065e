"""The watchdog: what no event does, and what is left to do when an event never came.

The stream and the ECS task events drive a job through its life, but some of its moves
have no event at all, and some events can be lost:

* ECS has no timeouts: an attempt past its ``attemptDurationSeconds`` is stopped here, and
  a RUNNABLE job stuck for one of its queue's ``jobStateTimeLimitActions`` is cancelled.
* A stream record dropped after its retries leaves a job SUBMITTED or PENDING for good
  (its admission, a dependency's release, an array's fan-out and settling come only from
  the stream); a task event whose handler failed each time EventBridge sent it leaves an
  attempt STARTING or RUNNING, holding its vCPUs, after its task has moved on. The tick
  (``sweep``, every minute) redoes each of these from what the store and ECS say now.
* A scheduling pass that stopped between its dispatch transaction and RunTask (crashed,
  timed out) leaves an attempt STARTING with no task: the tick launches it again through
  the scheduler (RunTask's clientToken makes that start the task only if it never was).
* A StopTask after the job's stop was recorded may have failed: the tick asks again.
* An EC2 Spot Instance Interruption Warning stops every attempt on the instance at once,
  so that each retry starts elsewhere within the two minutes' notice.
* After the control plane itself restarts (local mode on its data directory), ``recover``
  reconciles every attempt in flight at once, without the tick's grace periods.

Each step is idempotent: redoing what an event already did changes nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..clock import now_ms
from ..domain import arrays, bookkeeping, compute, nodes
from ..domain import jobs as rules
from ..domain.dependencies import parent_dependencies
from ..errors import ClientException, ConflictError
from .scheduler import RUNNABLE_WINDOW, Scheduler
from .tasks import TASK_LOST, on_task_state_change

if TYPE_CHECKING:
    from ..ports import TaskLauncher
    from ..store import Item
    from ..store.repositories import Repositories
    from .arrays import Arrays
    from .attempts import Attempts
    from .dependencies import Dependencies
    from .nodes import Nodes
    from .resources import Resources

log = logging.getLogger(__name__)
# A dispatched attempt with no task after this long lost its launch (see sweep): well
# past the scheduler's Lambda timeout (120 s), so the pass that dispatched it has ended.
LAUNCH_GRACE_MS = 300_000
# A launch that raised without saying whether the task started (see the scheduler's
# LAUNCH_RETRY_PAUSES) is launched again by the tick this long after: the dispatching
# pass is over.
UNSURE_LAUNCH_GRACE_MS = 30_000
# An attempt STARTING or RUNNING this long is checked against its task each tick: a stop
# event the events function failed three times is gone (EventBridge invokes it at most
# that often), and the job would hold its vCPUs for good.
RECONCILE_AFTER_MS = 120_000


class Watchdog:
    def __init__(self, repos: Repositories, resources: Resources, attempts: Attempts, launcher: TaskLauncher,
                 dependencies: Dependencies, arrays: Arrays, *, multinode: Nodes, scheduler: Scheduler) -> None:
        self.jobs = repos.jobs
        self.resources = resources
        self.attempts = attempts
        self.launcher = launcher
        self.dependencies = dependencies
        self.arrays = arrays
        self.multinode = multinode
        self.scheduler = scheduler

    def promote(self, job_id: str) -> None:
        """SUBMITTED -> PENDING or RUNNABLE (see Dependencies.admit)."""
        self.dependencies.admit(job_id)

    def sweep(self) -> None:
        """What no event triggers: SUBMITTED jobs whose stream record was lost, attempts
        past their timeout (ECS has no timeouts of its own), attempts whose launch or
        task events were lost, and jobStateTimeLimitActions."""
        queues = self.resources.all_job_queues()
        now = now_ms()
        aged: list[Item] = []
        for q in queues:
            name = q["jobQueueName"]
            for item in self.jobs.queued(name, rules.SUBMITTED, 1000):
                self.promote(item.doc["jobId"])
            for status in (rules.STARTING, rules.RUNNING):
                for item in self.jobs.queued(name, status, 1000):
                    self._relaunch_unrecorded(item, now)  # first: a timeout needs its task
                    self._enforce_timeout(item, now)
                    self._stop_again(item)
                    if item.doc["container"].get("taskArn") and _waited_ms(item, now) >= RECONCILE_AFTER_MS:
                        aged.append(item)
            if q.get("jobStateTimeLimitActions"):
                for item in self.jobs.queued(name, rules.RUNNABLE, RUNNABLE_WINDOW):
                    self._apply_time_limit(item, q["jobStateTimeLimitActions"], now)
            for item in self.jobs.queued(name, rules.PENDING, 1000):
                if _waited_ms(item, now) >= RECONCILE_AFTER_MS:
                    self._settle_pending(item)
        self._reconcile(aged)

    def _settle_pending(self, item: Item) -> None:
        """A job PENDING for long whose wait may be over though no record said so: the
        stream mappings drop a record after their retries, and dependency release and an
        array's settling come only from the stream. Releases each edge of a dependency that
        ended, readies a job that waits for nothing, settles an array parent whose
        children all ended. Each step is idempotent: one the stream did take changes
        nothing."""
        doc = item.doc
        job_id = doc["jobId"]
        if nodes.is_parent(doc) and item.job.nodes_attempt:
            self.multinode.advance(job_id)  # its nodes' records were dropped: do what is due
            return
        if nodes.is_node(doc):
            self.multinode.advance(str(item.job.mnp))  # waits for its main node to run
            return
        if arrays.is_parent(doc):
            fanout = item.job.fanout
            if bookkeeping.is_fanout_done(fanout):
                self.arrays.settle(job_id)
            elif fanout:
                # Its StartExecution may have failed after the mark was saved, or its
                # execution ended without recording on the parent (the Failed step ran
                # out of retries): nothing else starts it again. A running one is left.
                self._restart_fanout(item)
            elif not item.job.waiting:
                self.dependencies.ready(job_id)
            return
        child = "index" in (doc.get("arrayProperties") or {})
        deps = (doc.get("dependsOn") or []) if child else parent_dependencies(doc)
        found = {d.doc["jobId"]: d for d in self.jobs.get_many([d["jobId"] for d in deps if "jobId" in d])}
        ended = [d for d in deps if d.get("jobId") in found and found[d["jobId"]].doc["status"] in rules.TERMINAL]
        if ended:
            log.warning("%s waits for jobs that ended: releasing %d edges no record released", job_id, len(ended))
            self.dependencies.link(job_id, ended)  # writes a missing edge, releases each
        self.dependencies.ready(job_id)

    def recover(self) -> None:
        """After the control plane itself stopped and started again (local mode on its data
        directory): every attempt in flight is reconciled with the launcher at once, without
        the tick's grace periods. An attempt whose task went with the old process ends as
        lost, retried per its retryStrategy, as AWS ends a job whose host went away; one
        dispatched but never launched is launched; an array whose fan-out workflow was
        running starts it again (its chunks are idempotent)."""
        in_flight: list[Item] = []
        for q in self.resources.all_job_queues():
            name = q["jobQueueName"]
            for status in (rules.STARTING, rules.RUNNING):
                for item in self.jobs.every(name, status):
                    if item.doc["container"].get("taskArn"):
                        in_flight.append(item)
                    else:
                        self._relaunch_unrecorded(item, now_ms(), grace_ms=0)
            for item in self.jobs.every(name, rules.PENDING):
                self._restart_fanout(item)
                if nodes.is_parent(item.doc):
                    self.multinode.advance(item.doc["jobId"])
        self._reconcile(in_flight)

    def _restart_fanout(self, item: Item) -> None:
        action = item.job.fanout
        workflows = self.dependencies.workflows
        if not action or bookkeeping.is_fanout_done(action) or workflows is None:
            return
        log.warning("restarting the %s fan-out of array %s", action, item.doc["jobId"])
        workflows.start_array(item.doc["jobId"], action, item.doc["arrayProperties"]["size"], restart=True)

    def _reconcile(self, items: list[Item]) -> None:
        """Apply what the tasks of these attempts say now, for the state changes whose
        events never came: a STOPPED task ends its attempt, a RUNNING one moves a STARTING
        job on, and a task ECS no longer knows ends the attempt as lost (retried per
        retryStrategy). Repeating an event that did come changes nothing."""
        if not items:
            return
        by_arn = {i.doc["container"]["taskArn"]: i for i in items}
        tasks, missing = self.launcher.describe(list(by_arn))
        for task in tasks:
            item = by_arn.get(task.get("taskArn", ""))
            status = task.get("lastStatus")
            news = status == "STOPPED" or (status == "RUNNING" and item is not None
                                           and item.doc["status"] == rules.STARTING)
            if item is None or not news:
                continue
            log.warning("task %s of %s is %s: applying the event that never came",
                        task["taskArn"], item.doc["jobId"], status)
            on_task_state_change(self.attempts, task)
        for arn in missing:
            item = by_arn[arn]
            log.warning("task %s of %s is unknown to ECS: the attempt is lost", arn, item.doc["jobId"])
            self.attempts.task_stopped(item.doc["jobId"], item.job.run, task_arn=arn, exit_code=None,
                                       reason=None, status_reason=TASK_LOST, retryable=True)

    def _stop_again(self, item: Item) -> None:
        """StopTask again for an attempt someone decided to stop (TerminateJob, a timeout,
        preemption, a Spot warning) whose task still runs: the StopTask after the mark
        may have failed, and the mark makes every later decision skip it. Stopping a
        stopping task changes nothing."""
        task = item.doc["container"].get("taskArn")
        stopping = item.job.stopping or {}
        if not task or not (stopping or item.doc.get("isTerminated")):
            return
        try:
            self.launcher.stop(task, stopping.get("reason") or item.doc.get("statusReason") or "Terminated")
        except Exception:  # noqa: BLE001 - the next tick asks again; the rest of the sweep goes on
            log.warning("stopping %s of %s again failed", task, item.doc["jobId"], exc_info=True)

    def _enforce_timeout(self, item: Item, now: int) -> None:
        seconds = (item.doc.get("timeout") or {}).get("attemptDurationSeconds")
        started = item.doc.get("startedAt") or item.job.since
        if not seconds or not started or now < started + seconds * 1000 or item.job.stopping:
            return
        task = self.attempts.mark_stopping(
            item.doc["jobId"], item.job.run, reason=rules.TIMEOUT_REASON, retryable=False
        )
        if task:
            self.launcher.stop(task, rules.TIMEOUT_REASON)

    def _relaunch_unrecorded(self, item: Item, now: int, grace_ms: int = LAUNCH_GRACE_MS) -> None:
        """Launch again an attempt dispatched long ago whose task was never recorded: the
        pass that dispatched it stopped (crashed, timed out) between its transaction and
        RunTask. RunTask's clientToken (the job and run) makes this start the task only if
        that pass did not, and otherwise records the one it started."""
        if item.doc["status"] != rules.STARTING or item.doc["container"].get("taskArn"):
            return
        unsure_at = item.job.launch_error_at  # a launch raised without an answer then
        if unsure_at:
            if now - int(unsure_at) < min(grace_ms, UNSURE_LAUNCH_GRACE_MS):
                return
        elif _waited_ms(item, now) < grace_ms:
            return
        job_id, run = item.doc["jobId"], item.job.run
        log.warning("relaunching %s (run %s): dispatched but no task recorded", job_id, run)
        try:
            ce = self.resources.compute_environment(item.job.ce).doc
        except ClientException as e:  # deleted since: the attempt cannot start there
            self.attempts.task_stopped(job_id, run, task_arn=None, exit_code=None, reason=str(e)[:255],
                                       status_reason="Task failed to start", retryable=True)
            return
        stopping = item.job.stopping
        if self.scheduler.launch(item, ce) and stopping:
            # Stopped on purpose (a timeout, preemption) while it had no task to stop.
            fresh = self.jobs.get(job_id)
            task_arn = fresh.doc["container"].get("taskArn") if fresh else None
            if task_arn:
                self.launcher.stop(task_arn, stopping["reason"])

    def _apply_time_limit(self, item: Item, actions: list[dict[str, Any]], now: int) -> None:
        """Cancel a RUNNABLE job stuck for one of the queue's reasons (AWS's wording)."""
        reason = item.doc.get("statusReason") or ""
        waited_ms = _waited_ms(item, now)
        for action in actions:
            if reason.startswith(action["reason"]) and waited_ms >= action["maxTimeSeconds"] * 1000:
                doc = item.doc
                doc["isCancelled"] = True
                rules.move(doc, rules.FAILED, f"Canceled by JobStateTimeLimit action due to reason: {action['reason']}")
                doc["stoppedAt"] = now
                try:
                    self.jobs.save(item)
                except ConflictError:
                    pass  # it started or was cancelled meanwhile
                return

    def spot_clusters(self) -> list[str]:
        """ECS clusters of the EC2 and SPOT compute environments (where instances live)."""
        return [i.doc["ecsClusterArn"] for i in self.resources.environments.all()
                if i.doc.get("ecsClusterArn") and not compute.is_fargate(i.doc)]

    def on_spot_interruption(self, detail: dict[str, Any]) -> int:
        """EC2 Spot Instance Interruption Warning: stop every attempt on the instance now, so
        that its retry starts elsewhere within the two minutes' notice; returns how many."""
        instance = detail.get("instance-id")
        if not instance:
            return 0
        reason = rules.interrupted_reason(instance)
        stopped = 0
        for job_id, run in self.launcher.attempts_on_instance(instance, self.spot_clusters()):
            task = self.attempts.mark_stopping(job_id, run, reason=reason, retryable=True)
            if task:
                self.launcher.stop(task, reason)
                stopped += 1
        return stopped


def _waited_ms(item: Item, now: int) -> int:
    """How long the job has been in its status (``since`` is written with each move)."""
    return now - int(item.job.since or now)
