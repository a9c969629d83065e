"""The scheduler: places RUNNABLE jobs on compute environments (the pure algorithm is
domain.scheduling), preempts for higher-priority queues that ask it, and starts each
attempt exactly once. What the periodic tick does besides is service/watchdog.py."""

from __future__ import annotations

import contextvars
import copy
import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..clock import now_ms
from ..domain import capacity, compute, nodes, scheduling
from ..domain import jobs as rules
from ..errors import ClientException, ConflictError
from ..ports import CapacityUnavailable, LaunchFailed, LaunchRequest, TaskLauncher
from ..store.jobs import JobStore, mvcpus

if TYPE_CHECKING:
    from ..store import Item
    from ..store.repositories import Repositories
    from .attempts import Attempts
    from .fairshare import ShareUsage
    from .resources import Resources

log = logging.getLogger(__name__)
RUNNABLE_WINDOW = 500  # jobs per queue considered in one round
# A pass is rounds of at most ROUND_DISPATCHES dispatches, taken in turn from each queue,
# that read the queues again after each round: a job that became RUNNABLE meanwhile (on
# another queue, behind a large array) waits one round, not until hundreds have launched.
# Rounds go on while they find more to dispatch, for at most PASS_SECONDS; after that
# the next record or tick goes on (the Lambda's timeout is 120 s).
ROUND_DISPATCHES = 100
PASS_SECONDS = 20.0
PREEMPTION_TAG = "batchplane:preemption"  # "enabled" on a job queue opts it in
# A job whose task found no room waits this long before it is placed again; the tick
# (every minute) or any later pass picks it up then.
CAPACITY_HOLD_MS = 30_000
# A launch that raised without saying whether the task started is asked again at once,
# after these pauses (seconds), with the same run: the launcher's idempotency returns the
# task if the first call started it. Still unsure, the tick launches it again a little
# later (watchdog.UNSURE_LAUNCH_GRACE_MS), up to MAX_LAUNCH_ERRORS launches in all.
LAUNCH_RETRY_PAUSES = (0.1, 0.5)
MAX_LAUNCH_ERRORS = 5
LAUNCH_WORKERS = 8  # launches of one dispatch group in flight at once
MAX_TRANSACTION_ITEMS = 25  # TransactWriteItems takes 100 on AWS; moto still takes 25


class Scheduler:
    def __init__(self, repos: Repositories, resources: Resources, attempts: Attempts, share_usage: ShareUsage,
                 launcher: TaskLauncher) -> None:
        self.store = repos.store
        self.jobs = repos.jobs
        self.usage = repos.usage
        self.share_usage = share_usage
        self.resources = resources
        self.attempts = attempts
        self.launcher = launcher

    def schedule(self) -> int:
        """One scheduling pass over every queue: rounds (see ROUND_DISPATCHES) until one
        finds no more to dispatch; returns how many attempts were dispatched. On the
        tick, Watchdog.sweep runs first."""
        dispatched = 0
        deadline = time.monotonic() + PASS_SECONDS
        while True:
            count, more = self._round()
            dispatched += count
            if not (more and count) or time.monotonic() >= deadline:
                return dispatched

    def _round(self) -> tuple[int, bool]:
        """Plan every queue and dispatch up to ROUND_DISPATCHES of the placements, in
        turn from each queue. Returns how many were dispatched, and whether another round
        may find more (placements left over, or a queue listed to its window)."""
        queue_docs = self.resources.all_job_queues()
        ce_docs = {i.doc["computeEnvironmentArn"]: i.doc for i in self.resources.environments.all()}
        queues: list[scheduling.Queue] = []
        listed: dict[str, list[Item]] = {}
        running: list[scheduling.Running] = []
        for q in queue_docs:
            name = q["jobQueueName"]
            items = listed[name] = self.jobs.queued(name, rules.RUNNABLE, RUNNABLE_WINDOW)
            queue = scheduling.Queue(
                name=name, priority=q["priority"],
                environments=[e["computeEnvironment"] for e in q["computeEnvironmentOrder"]],
                preempts=(q.get("tags") or {}).get(PREEMPTION_TAG) == "enabled",
            )
            # Fair share (with work waiting) and preemption need what runs now; plain FIFO
            # queues do not.
            if (items and q.get("schedulingPolicyArn")) or queue.preempts or self._preemptible(q, queue_docs):
                running += [_running(i, name, ce_docs) for status in (rules.STARTING, rules.RUNNING)
                            for i in self.jobs.queued(name, status, 10_000)]
            if q.get("schedulingPolicyArn"):
                try:
                    queue.fairshare = self.share_usage.of_queue(
                        q, ((r.share, r.mvcpus) for r in running if r.queue == name))
                except ClientException as e:
                    # Its policy is gone (deleted by older code while in use): this queue
                    # goes first in, first out rather than stopping every queue's round.
                    log.warning("job queue %s: %s; scheduling it first in, first out", name, e)
            queues.append(queue)
        # Usage is read after the jobs: a job that leaves RUNNING in between has already
        # given its vCPUs back, so the pass sees room rather than a victim too few (reading
        # usage first could count a job it no longer lists and preempt a second victim).
        usage = {doc["computeEnvironmentName"]: self.usage.of(doc["computeEnvironmentName"])
                 for doc in ce_docs.values()}
        catalog = capacity.default_catalog()
        environments = {arn: capacity.environment(doc, catalog, usage[doc["computeEnvironmentName"]].get("mvcpus", 0))
                        for arn, doc in ce_docs.items()}
        now = now_ms()
        items_by_id: dict[str, Item] = {}
        runnable: dict[str, list[scheduling.Candidate]] = {}
        arns_by_name = {doc["computeEnvironmentName"]: arn for arn, doc in ce_docs.items()}
        for name, items in listed.items():
            ready = [i for i in items if not _held(i, usage, now)]
            items_by_id.update({i.doc["jobId"]: i for i in ready})
            runnable[name] = [c for c in (self._candidate_or_none(i, name, arns_by_name) for i in ready) if c]
        result = scheduling.plan(queues, environments, runnable, running)
        waiting: dict[str, bool] = {}
        for victim, preemptor in result.preemptions:
            # The pass's lists may be a moment old: a preemptor that another pass has
            # already started needs nobody's capacity.
            if preemptor.job_id not in waiting:
                current = self.jobs.get(preemptor.job_id)
                waiting[preemptor.job_id] = current is not None and current.doc["status"] == rules.RUNNABLE
            if waiting[preemptor.job_id]:
                self._preempt(victim, preemptor)
        placements = _in_turn(result.placements)
        dispatched = 0
        for group, ce_arn in _groups(placements[:ROUND_DISPATCHES], items_by_id):
            dispatched += self._dispatch_group(group, ce_docs[ce_arn])
        for job_id, reason in result.reasons.items():
            item = items_by_id[job_id]
            item.doc["statusReason"] = reason
            try:
                self.jobs.save(item)
            except ConflictError:
                pass  # it moved on; the reason no longer matters
        more = len(placements) > ROUND_DISPATCHES or any(len(i) >= RUNNABLE_WINDOW for i in listed.values())
        return dispatched, more

    @staticmethod
    def _candidate_or_none(item: Item, queue: str, arns_by_name: dict[str, str]) -> scheduling.Candidate | None:
        """The job as the plan sees it; None for one whose needs cannot be read (stored
        before SubmitJob refused such values): it waits, and the round goes on for the rest."""
        try:
            return _candidate(item, queue, arns_by_name)
        except (ValueError, TypeError, OverflowError, KeyError) as e:
            log.error("job %s cannot be scheduled: its resource requirements are unreadable (%r)",
                      item.doc.get("jobId"), e)
            return None

    @staticmethod
    def _preemptible(q: dict[str, Any], queue_docs: list[dict[str, Any]]) -> bool:
        """Whether a higher-priority preempting queue shares an environment with ``q``."""
        mine = {e["computeEnvironment"] for e in q["computeEnvironmentOrder"]}
        return any(
            (o.get("tags") or {}).get(PREEMPTION_TAG) == "enabled" and o["priority"] > q["priority"]
            and mine & {e["computeEnvironment"] for e in o["computeEnvironmentOrder"]}
            for o in queue_docs
        )

    def _preempt(self, victim: scheduling.Running, preemptor: scheduling.Candidate) -> None:
        reason = (f"{scheduling.PREEMPTED} {preemptor.job_id} of higher-priority job queue "
                  f"{preemptor.queue}; requeued without using an attempt")
        item = self.jobs.get(victim.job_id)
        if item is None:
            return
        task = self.attempts.mark_stopping(victim.job_id, item.job.run,
                                           reason=reason, retryable=True, requeue=True)
        if task:
            self.launcher.stop(task, reason)

    def _dispatch_group(self, items: list[Item], ce: dict[str, Any]) -> int:
        """Dispatch jobs placed on one compute environment: RUNNABLE -> STARTING and the
        capacity they take in one transaction (one write of the usage counter and of each
        array counter for the lot, instead of one per job), then launch each. If any of
        them changed meanwhile, or the capacity went, each is dispatched on its own."""
        if len(items) == 1:
            return int(self._dispatch(items[0], ce))
        moved = [copy.deepcopy(i) for i in items]
        try:
            self._move_to_starting(moved, ce)
        except ConflictError:
            return sum(self._dispatch(i, ce) for i in items)
        # RunTask takes ~100 ms on ECS: a few at once, rather than a pass that waits for
        # each in turn while the stream's records queue behind it. Each launch runs in a
        # copy of this context (context variables, such as the cost meter's scope).
        with ThreadPoolExecutor(max_workers=min(LAUNCH_WORKERS, len(moved))) as pool:
            launches = [pool.submit(contextvars.copy_context().run, self.launch, item, ce) for item in moved]
            return sum(f.result() for f in launches)

    def _dispatch(self, item: Item, ce: dict[str, Any]) -> bool:
        """RUNNABLE -> STARTING and the capacity it takes, in one transaction; then launch.
        The transaction is what makes each attempt start once however many schedulers run."""
        try:
            self._move_to_starting([item], ce)
        except ConflictError:
            return False  # another scheduler took it, or the capacity went meanwhile
        return self.launch(item, ce)

    def _move_to_starting(self, items: list[Item], ce: dict[str, Any]) -> None:
        """One transaction: each job RUNNABLE -> STARTING, and the environment's usage up
        by their vCPUs, only within its maxvCpus. ConflictError if any job changed since
        it was read, or the room is gone."""
        for item in items:
            _to_starting(item, ce)
        ceiling = compute.max_vcpus(ce)
        limits = None if ceiling is None else {"mvcpus": ceiling * 1000}
        need = sum(mvcpus(i.doc) for i in items)
        usage = self.usage.add_op(ce["computeEnvironmentName"], {"mvcpus": need}, limits)
        self.store.transact([*self.jobs.save_many_ops(items), usage])

    def launch(self, item: Item, ce: dict[str, Any]) -> bool:
        """Start the task of an attempt already moved to STARTING; False if it could not.
        The watchdog calls it too, for an attempt whose launch was lost."""
        doc = item.doc
        attempt = len(doc["attempts"]) + 1
        run = item.job.run
        request = LaunchRequest(
            job=doc,
            attempt=attempt,
            run=run,
            queue_name=item.job.queue,
            compute_environment=ce,
            environment=attempt_environment(doc, item.job.queue, ce["computeEnvironmentName"], attempt),
        )
        if nodes.is_node(doc):
            request.environment.update(nodes.node_environment(doc, item.job.main_address))
        try:
            task_arn = self._start_task(request)
        except CapacityUnavailable as e:
            log.info("no room for %s on %s: %s", doc["jobId"], ce["computeEnvironmentName"], e)
            self.attempts.requeue_unstarted(
                doc["jobId"], run, hold_ms=CAPACITY_HOLD_MS,
                reason=f"CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - {e}"[: rules.MAX_REASON],
            )
            return False
        except LaunchFailed as e:
            log.warning("launch of %s refused: %s", doc["jobId"], e)
            self.attempts.task_stopped(doc["jobId"], run, task_arn=None, exit_code=None,
                                       reason=str(e)[:255], status_reason="Task failed to start", retryable=True)
            return False
        except Exception as e:  # noqa: BLE001 - the task may have started: never end the attempt on a guess
            log.exception("launch of %s (run %s) unsure", doc["jobId"], run)
            self.attempts.launch_unsure(doc["jobId"], run, reason=f"{type(e).__name__}: {e}",
                                        max_errors=MAX_LAUNCH_ERRORS)
            return False
        if self._record_task(doc["jobId"], run, task_arn):
            # TerminateJob came while the task was starting: it had no task to stop yet.
            self.launcher.stop(task_arn, "Terminated while starting")
        return True

    def _start_task(self, request: LaunchRequest) -> str:
        """launcher.launch, asked again with the same run while it raises without an answer
        (not CapacityUnavailable or LaunchFailed): a later answer tells what the first did."""
        for pause in LAUNCH_RETRY_PAUSES:
            try:
                return self.launcher.launch(request)
            except (CapacityUnavailable, LaunchFailed):
                raise
            except Exception as e:  # noqa: BLE001 - asked again below
                log.warning("launch of %s (run %s) raised %r: asking again", request.job["jobId"], request.run, e)
                time.sleep(pause)
        return self.launcher.launch(request)

    def _record_task(self, job_id: str, run: int, task_arn: str) -> bool:
        """Note the attempt's task on the job; True if the job was terminated meanwhile."""
        while True:
            item = self.jobs.get(job_id)
            if item is None or item.job.run != run:
                return False
            if item.doc["status"] not in (rules.STARTING, rules.RUNNING):
                return False
            if item.doc["container"].get("taskArn") == task_arn:
                return bool(item.doc.get("isTerminated"))
            item.doc["container"]["taskArn"] = task_arn
            try:
                self.jobs.save(item)
                return bool(item.doc.get("isTerminated"))
            except ConflictError:
                continue


def _to_starting(item: Item, ce: dict[str, Any]) -> None:
    """The job as its next attempt starts on ``ce`` (written by the dispatch transaction)."""
    rules.move(item.doc, rules.STARTING, None)
    item.doc.pop("statusReason", None)
    item.job.ce = ce["computeEnvironmentName"]
    item.job.run = item.job.run + 1
    del item.job.launch_errors  # a previous run's unanswered launches
    item.job.launch_error_at = None


def _in_turn(placements: list[tuple[scheduling.Candidate, str]]) -> list[tuple[scheduling.Candidate, str]]:
    """The placements taken one from each queue in turn, each queue's in its order. The
    plan has already given capacity by priority (everything placed fits), so the order
    only says which go first when a round dispatches some of them."""
    by_queue: dict[str, list[tuple[scheduling.Candidate, str]]] = {}
    for placement in placements:
        by_queue.setdefault(placement[0].queue, []).append(placement)
    turns = itertools.zip_longest(*by_queue.values())
    return [p for turn in turns for p in turn if p is not None]


def _groups(placements: list[tuple[scheduling.Candidate, str]],
            items_by_id: dict[str, Item]) -> list[tuple[list[Item], str]]:
    """Placements as dispatch groups: jobs of one compute environment, as many as fit in
    one transaction with their array counters and the environment's usage counter."""
    groups: list[tuple[list[Item], str]] = []
    open_groups: dict[str, tuple[list[Item], set[tuple[str, str]]]] = {}
    for candidate, ce_arn in placements:
        item = items_by_id[candidate.job_id]
        counter = JobStore.counter_key(item)
        group = open_groups.get(ce_arn)
        if group is not None:
            size = len(group[0]) + len(group[1] | ({counter} if counter else set())) + 2  # + this job, usage
            if size > MAX_TRANSACTION_ITEMS:
                group = None
        if group is None:
            group = open_groups[ce_arn] = ([], set())
            groups.append((group[0], ce_arn))
        group[0].append(item)
        if counter:
            group[1].add(counter)
    return groups


def attempt_environment(doc: dict[str, Any], queue: str, ce: str, attempt: int) -> dict[str, str]:
    """The variables every attempt sees: the user's, then AWS_BATCH_* (which users cannot set)."""
    env = {v["name"]: v.get("value", "") for v in doc["container"].get("environment", [])}
    index = (doc.get("arrayProperties") or {}).get("index")
    if index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
    env.update(
        {
            "AWS_BATCH_JOB_ID": doc["jobId"],
            "AWS_BATCH_JQ_NAME": queue,
            "AWS_BATCH_CE_NAME": ce,
            "AWS_BATCH_JOB_ATTEMPT": str(attempt),
        }
    )
    return env


def _held(item: Item, usage: dict[str, dict[str, int]], now: int) -> bool:
    """Whether a job that found no room still waits: until its hold ends or its compute
    environment has freed capacity since."""
    if int(item.job.hold_until or 0) <= now:
        return False
    freed = usage.get(item.job.hold_ce or "", {}).get("releases", 0)
    return freed <= int(item.job.hold_releases or 0)


def _candidate(item: Item, queue: str, arns_by_name: dict[str, str]) -> scheduling.Candidate:
    doc = item.doc
    shape = capacity.Shape.of(doc["container"])
    # The nodes of a multi-node parallel job run in its main node's compute environment.
    pinned = item.job.pinned_ce
    return scheduling.Candidate(
        job_id=doc["jobId"], queue=queue, mvcpus=shape.mvcpus,
        platform=doc.get("platformCapabilities", ["EC2"])[0], reason=doc.get("statusReason"),
        share=doc.get("shareIdentifier"), priority=int(doc.get("schedulingPriority") or 0),
        memory_mib=shape.memory_mib, gpus=shape.gpus,
        environment=arns_by_name.get(pinned, pinned) if pinned else None,
    )


def _running(item: Item, queue: str, ce_docs: dict[str, dict[str, Any]]) -> scheduling.Running:
    ce_name = item.job.ce
    arn = next((a for a, d in ce_docs.items() if d["computeEnvironmentName"] == ce_name), ce_name)
    return scheduling.Running(
        job_id=item.doc["jobId"], queue=queue, environment=arn, mvcpus=mvcpus(item.doc),
        started_at=int(item.doc.get("startedAt") or item.job.since or 0),
        share=item.doc.get("shareIdentifier"), stopping=bool(item.job.stopping),
    )
