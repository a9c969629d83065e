"""A stateful model test of the job lifecycle (hypothesis RuleBasedStateMachine) on the
harness's world: the real handlers and services on moto, with hypothesis choosing every
step: submit (plain, failing, retried, long, with a timeout, arrays, with dependencies on
earlier jobs), deliver a stream batch of any mapping (or the last one again), deliver
any pending task event (in any order, or again), let a task start or end, run a step of
a fan-out, cancel, terminate, tick.

After every step the table agrees with a simple model:

- each job's status moved only along legal transitions, and an ended job stays ended;
- an ended job ended as the model says: FAILED if it was terminated, cancelled while
  queued, or a dependency failed; else as its definition says (an array as its
  children);
- the environment's vCPU counter equals the vCPUs of the jobs STARTING or RUNNING;
- each array's counters equal its children's statuses.

At the end everything is delivered, every long job terminated and the clock moved until
all ended, and the harness's invariants hold (no job lost or run twice, every edge
released, capacity back to zero).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any

from batchplane.domain import jobs as rules
from batchplane.store.dynamodb import Item
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from .harness import Result, _check
from .injector import Injector
from .world import TABLE, World

KINDS = {  # job definition -> its outcome when nothing stops it
    "ok": rules.SUCCEEDED, "fail": rules.FAILED, "flaky": rules.SUCCEEDED, "sleep": rules.FAILED,
}
MAX_JOBS = 10


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        logging.disable(logging.CRITICAL)
        self.world = World(0, Injector(0, rate=0.0), chaos=False).__enter__()
        self.kind: dict[str, str] = {}  # job id -> definition ("array" for a parent)
        self.deps: dict[str, list[str]] = {}
        self.forced: set[str] = set()  # terminated, or cancelled while queued: FAILED
        self.children: dict[str, list[str]] = {}
        self.status: dict[str, str] = {}  # the last status seen
        self.order: list[str] = []

    def teardown(self) -> None:
        try:
            self._finish()
        finally:
            self.world.__exit__(None, None, None)
            logging.disable(logging.NOTSET)

    # -- the model ------------------------------------------------------------------

    def expected(self, job_id: str) -> str:
        if job_id in self.forced or any(self.expected(d) == rules.FAILED for d in self.deps.get(job_id, [])):
            return rules.FAILED
        if self.kind[job_id] == "array":
            kids = self.children.get(job_id) or []
            return rules.FAILED if any(self.expected(k) == rules.FAILED for k in kids) else rules.SUCCEEDED
        return KINDS[self.kind[job_id]]

    # -- rules ----------------------------------------------------------------------

    @precondition(lambda self: len(self.order) < MAX_JOBS)
    @rule(kind=st.sampled_from(["ok", "ok", "fail", "flaky", "sleep", "timeout", "array"]),
          deps=st.lists(st.integers(0, MAX_JOBS), max_size=2, unique=True), size=st.integers(2, 3))
    def submit(self, kind: str, deps: list[int], size: int) -> None:
        on = sorted({self.order[i % len(self.order)] for i in deps}) if self.order else []
        on = [d for d in on if self.kind[d] != "sleep"][:2]  # a wait on a long job would never end by itself
        body: dict[str, Any] = {"jobName": f"j{len(self.order)}", "jobQueue": "q",
                                "jobDefinition": {"timeout": "sleep", "array": "ok"}.get(kind, kind)}
        if kind == "timeout":
            body["timeout"] = {"attemptDurationSeconds": 60}
        if kind == "array":
            body["arrayProperties"] = {"size": size}
        if on:
            body["dependsOn"] = [{"jobId": d} for d in on]
        job_id = self.world.api("submitjob", body)["jobId"]
        self.kind[job_id] = {"timeout": "sleep"}.get(kind, kind)
        self.deps[job_id] = on
        self.order.append(job_id)

    @rule(which=st.integers(0, 3), again=st.booleans())
    def stream(self, which: int, again: bool) -> None:
        ready = self.world.stream_ready()
        if not ready:
            return
        mapping = ready[which % len(ready)]
        if again and self.world.last_batch.get(mapping.consumer):  # at least once: a batch again
            self.world.mapping_queues[mapping.consumer][:0] = self.world.last_batch[mapping.consumer]
        self.world.deliver_stream(mapping)

    @rule(which=st.integers(0, 20), again=st.booleans())
    def event(self, which: int, again: bool) -> None:
        pending = self.world.pending_events
        if not pending:
            return
        i = which % len(pending)
        if again:
            pending.append(pending[i])
        pending.insert(0, pending.pop(i))
        self.world.deliver_event()

    @rule(which=st.integers(0, 20))
    def task(self, which: int) -> None:
        ready = self.world.agent_ready()
        if ready:
            self.world.agent_step(ready[which % len(ready)])

    @rule(which=st.integers(0, 3))
    def fanout(self, which: int) -> None:
        ready = self.world.executions_ready()
        if ready:
            self.world.execution_step(ready[which % len(ready)])

    @precondition(lambda self: self.order)
    @rule(which=st.integers(0, MAX_JOBS), terminate=st.booleans())
    def stop(self, which: int, terminate: bool) -> None:
        job_id = self.order[which % len(self.order)]
        before = self._status(job_id)
        self.world.api("terminatejob" if terminate else "canceljob", {"jobId": job_id, "reason": "model"})
        if before not in rules.TERMINAL and (terminate or before in rules.QUEUED):
            self._force(job_id, terminate)

    @rule()
    def tick(self) -> None:
        self.world.tick()

    # -- checks ---------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        items = self.world.items()
        jobs = {i["pk"]["S"].removeprefix("JOB#"): Item.from_dynamo(i) for i in items if i["sk"]["S"] == "JOB"}
        busy = 0
        counted: dict[str, Counter[str]] = {}
        for raw in items:
            pk = raw["pk"]["S"]
            if pk.startswith("ARRAY#") and raw["sk"]["S"].startswith("COUNT#"):
                c = counted.setdefault(pk.removeprefix("ARRAY#"), Counter())
                for s in rules.STATUSES:
                    c[s] += int(raw.get(s, {}).get("N", "0"))
            if raw["sk"]["S"] == "USAGE":
                busy = int(raw.get("mvcpus", {}).get("N", "0"))
        for job_id, item in jobs.items():
            parent = (item.extra or {}).get("parent")
            if parent and job_id not in self.kind:
                self.kind[job_id] = "ok"
                self.deps[job_id] = []
                self.children.setdefault(parent, []).append(job_id)
                if parent in self.forced:
                    self.forced.add(job_id)
            status, before = item.doc["status"], self.status.get(job_id)
            if before in rules.TERMINAL:
                assert status == before, f"{job_id} left {before} for {status}"
            elif before is not None and status != before:
                assert _reachable(before, status), f"{job_id}: {before} -> {status}"
            self.status[job_id] = status
            if status in rules.TERMINAL and not (parent and parent in self.forced):
                want = self.expected(job_id)
                assert status == want, (f"{item.doc['jobName']} ({self.kind[job_id]}) ended {status}, the model "
                                        f"says {want}: {item.doc.get('statusReason')}")
        running = sum(1000 for i in jobs.values() if i.doc["status"] in (rules.STARTING, rules.RUNNING))
        assert busy == running, f"usage {busy} mvcpus, jobs STARTING/RUNNING hold {running}"
        for parent, kids in self.children.items():
            actual = Counter(jobs[k].doc["status"] for k in kids)
            assert +counted.get(parent, Counter()) == +actual, (parent, counted.get(parent), actual)

    # -- helpers --------------------------------------------------------------------

    def _status(self, job_id: str) -> str:
        out = self.world.ddb.get_item(TableName=TABLE, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}})
        return out.get("Item", {}).get("status", {}).get("S", "?")

    def _force(self, job_id: str, terminate: bool) -> None:
        self.forced.add(job_id)
        for child in self.children.get(job_id, []):
            if terminate or self.status.get(child) in rules.QUEUED:
                self.forced.add(child)

    def _finish(self) -> None:
        """Deliver everything, terminate what would run for good, let the clock run; then
        the harness's invariants."""
        w = self.world
        for _ in range(400):
            progressed = False
            for m in w.stream_ready():
                w.deliver_stream(m)
                progressed = True
            while w.pending_events:
                w.deliver_event()
                progressed = True
            for t in w.agent_ready():
                w.agent_step(t)
                progressed = True
            for e in w.executions_ready():
                w.execution_step(e)
                progressed = True
            if progressed:
                continue
            jobs = w.jobs()
            left = [j for j, i in jobs.items() if i.doc["status"] not in rules.TERMINAL]
            if not left:
                break
            for j in left:
                if self.kind.get(j) == "sleep" and j not in self.forced:
                    w.api("terminatejob", {"jobId": j, "reason": "model: the end"})
                    self._force(j, True)
            w.tick()
        self.agrees_with_the_model()
        result = Result(0)
        ids = {f"{j}": j for j in self.order}
        expected = {j: self.expected(j) for j in self.order}
        _check(w, ids, expected, result)
        problems = [v for v in result.violations if not v.startswith("wrong outcome")]
        assert not problems, problems
        wrong = [v for v in result.violations if v.startswith("wrong outcome")]
        assert not wrong, wrong


def _reachable(before: str, after: str) -> bool:
    """Whether legal moves lead from ``before`` to ``after`` (a step may make several)."""
    seen, todo = {before}, [before]
    while todo:
        for nxt in rules.TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return after in seen


TestLifecycle = Lifecycle.TestCase
# Derandomized: CI runs the same examples each time (no shrinking: a failure prints its steps as
# found); MODEL_EXAMPLES=200 for a longer run.
TestLifecycle.settings = settings(max_examples=int(os.environ.get("MODEL_EXAMPLES", "6")), stateful_step_count=30,
                                  deadline=None, derandomize=True, suppress_health_check=list(HealthCheck),
                                  phases=[Phase.explicit, Phase.reuse, Phase.generate], print_blob=True)
