"""One seeded run: the workload against the world with faults injected, then the
invariants. ``run(seed)`` returns a Result; ``Result.violations`` lists what broke.

The workload: two plain jobs, a job that fails its first two attempts and succeeds on
the third (retryStrategy attempts 3), a job that fails both its attempts, an array of 5
with an aggregate job depending on it, a chain a -> b -> c, a job depending on a failing
one, a long job with a dependent that is cancelled while it waits and then the long job
terminated, and a long job with a 60 s attemptDurationSeconds that times out. The
compute environment has 4 vCPUs (the array and the rest contend for it).

Invariants, checked on the table, the stream's history and ECS's tasks:

- every job SubmitJob accepted exists and ended, in the status its definition says;
  no job exists that no SubmitJob answered (a retried submit made two);
- each job's status moves (from the stream) are legal transitions, and it entered a
  terminal status once and never left it;
- no (job, run) has two tasks; no job had two tasks running at once; every task that ran
  is exactly one of the job's attempts; a SUCCEEDED job had one task that exited 0; no
  task is left running;
- the compute environment's vCPU usage counter is back to zero;
- each array's counters equal its children's statuses, and it has all its children;
- every dependency edge is released.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from batchplane.domain import jobs as rules

from .injector import Injector
from .world import TABLE, World

ARRAY_SIZE = 5
MAX_STEPS = 6000
MAX_IDLE_TICKS = 40  # virtual minutes with nothing else to do before "stuck"

# (op, name, request or target, expected final status)
WORKLOAD: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("submit", "ok1", {"jobDefinition": "ok"}, "SUCCEEDED"),
    ("submit", "flaky", {"jobDefinition": "flaky"}, "SUCCEEDED"),
    ("submit", "arr", {"jobDefinition": "ok", "arrayProperties": {"size": ARRAY_SIZE}}, "SUCCEEDED"),
    ("submit", "agg", {"jobDefinition": "ok", "dependsOn": ["arr"]}, "SUCCEEDED"),
    ("submit", "a", {"jobDefinition": "ok"}, "SUCCEEDED"),
    ("submit", "b", {"jobDefinition": "ok", "dependsOn": ["a"]}, "SUCCEEDED"),
    ("submit", "long", {"jobDefinition": "sleep"}, "FAILED"),
    ("submit", "waiter", {"jobDefinition": "ok", "dependsOn": ["long"]}, "FAILED"),
    ("submit", "c", {"jobDefinition": "ok", "dependsOn": ["b"]}, "SUCCEEDED"),
    ("submit", "doomed", {"jobDefinition": "fail"}, "FAILED"),
    ("submit", "after-doomed", {"jobDefinition": "ok", "dependsOn": ["doomed"]}, "FAILED"),
    ("cancel", "waiter", {}, None),
    ("submit", "ok2", {"jobDefinition": "ok"}, "SUCCEEDED"),
    ("submit", "timeout", {"jobDefinition": "sleep", "timeout": {"attemptDurationSeconds": 60}}, "FAILED"),
    ("terminate", "long", {}, None),
]


@dataclass
class Result:
    seed: int
    violations: list[str] = field(default_factory=list)
    jobs: int = 0
    accepted: int = 0
    lost: int = 0
    run_twice: int = 0
    stuck: int = 0  # jobs not ended when nothing more happened (or the steps ran out)
    faults: int = 0
    invocations: int = 0
    steps: int = 0
    seconds: float = 0.0
    digest: str = ""
    sites: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, str] = field(default_factory=dict)  # job name -> final status
    stats: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"seed {self.seed}: {self.jobs} jobs, {self.faults} faults in {self.invocations} invocations, "
                f"{self.steps} steps, {self.seconds:.1f}s, lost {self.lost}, run twice {self.run_twice}, "
                f"stuck {self.stuck}, "
                f"{len(self.violations)} violations, trace {self.digest}")


def run(seed: int, *, rate: float = 0.35, chaos: bool = True, injector: Injector | None = None,
        workload: list[tuple[str, str, dict[str, Any], str | None]] | None = None) -> Result:
    started = time.monotonic()
    injector = injector or Injector(seed, rate=rate)
    result = Result(seed)
    with World(seed, injector, chaos=chaos) as world:
        ids: dict[str, str] = {}
        expected: dict[str, str] = {}
        ops = list(WORKLOAD if workload is None else workload)
        idle_ticks = 0
        while world.step < MAX_STEPS:
            world.step += 1
            choices: list[tuple[str, Any]] = []
            if ops and _ready(world, ops[0], ids):
                choices.append(("workload", None))
            choices += [("stream", m) for m in world.stream_ready()]
            if world.pending_events:
                choices.append(("event", None))
            choices += [("agent", t) for t in world.agent_ready()]
            choices += [("sfn", e) for e in world.executions_ready()]
            if not choices:
                jobs = world.jobs()
                if ops and not _ready(world, ops[0], ids) and idle_ticks < MAX_IDLE_TICKS:
                    idle_ticks += 1
                    world.tick()
                    continue
                if not ops and all(j.doc["status"] in rules.TERMINAL for j in jobs.values()):
                    break
                idle_ticks += 1
                if idle_ticks > MAX_IDLE_TICKS:
                    left = sorted((j.doc["jobName"], j.doc["status"]) for j in jobs.values()
                                  if j.doc["status"] not in rules.TERMINAL)
                    result.violations.append(f"stuck: {left}")
                    result.stuck = len(left)
                    break
                world.tick()
                continue
            idle_ticks = 0
            if world.rng.random() < 0.02:
                world.tick()
                continue
            kind, what = world.rng.choice(choices)
            if kind == "workload":
                _workload_step(world, ops.pop(0), ids, expected)
            elif kind == "stream":
                world.deliver_stream(what)
            elif kind == "event":
                world.deliver_event()
            elif kind == "agent":
                world.agent_step(what)
            else:
                world.execution_step(what)
        else:
            result.violations.append(f"no quiet end within {MAX_STEPS} steps")
            result.stuck = sum(j.doc["status"] not in rules.TERMINAL for j in world.jobs().values())
        world.read_stream()
        _check(world, ids, expected, result)
        result.steps = world.step
        result.faults = len(injector.fired)
        result.invocations = sum(injector.invocations.values())
        result.sites = injector.sites()
        result.digest = world.trace_digest()
        result.stats = {**vars(world.stats), "deliveries": dict(world.stats.deliveries)}
    result.seconds = time.monotonic() - started
    return result


def _ready(world: World, op: tuple[str, str, dict[str, Any], str | None], ids: dict[str, str]) -> bool:
    """A "wait-running" step waits for its job to be RUNNING (the others are ready)."""
    if op[0] != "wait-running":
        return True
    out = world.ddb.get_item(TableName=TABLE, Key={"pk": {"S": f"JOB#{ids[op[1]]}"}, "sk": {"S": "JOB"}})
    return out.get("Item", {}).get("status", {}).get("S") == rules.RUNNING


def _workload_step(world: World, op: tuple[str, str, dict[str, Any], str | None],
                   ids: dict[str, str], expected: dict[str, str]) -> None:
    kind, name, request, want = op
    if kind == "wait-running":
        return
    if kind == "submit":
        body = {"jobName": name, "jobQueue": "q", **request}
        if "dependsOn" in body:
            body["dependsOn"] = [{"jobId": ids[d]} for d in body["dependsOn"]]
        answer = world.api("submitjob", body)
        ids[name] = answer["jobId"]
        assert want is not None
        expected[answer["jobId"]] = want
    else:
        world.api("canceljob" if kind == "cancel" else "terminatejob",
                  {"jobId": ids[name], "reason": f"harness {kind}"})


def _check(world: World, ids: dict[str, str], expected: dict[str, str], result: Result) -> None:  # noqa: PLR0912, PLR0915 - the harness's list of invariants, each a few lines over the same tables
    v = result.violations
    jobs = world.jobs()
    result.jobs = len(jobs)
    result.outcomes = {item.doc["jobName"]: item.doc["status"]
                       for job_id, item in jobs.items() if job_id in ids.values()}
    result.accepted = len(expected)
    children: dict[str, list[Any]] = {}
    nodes: set[str] = set()  # of multi-node parallel jobs: any outcome once their job ended
    for job_id, item in jobs.items():
        parent = (item.extra or {}).get("parent") or (item.extra or {}).get("mnp")
        if (item.extra or {}).get("mnp"):
            nodes.add(job_id)
        if parent:
            children.setdefault(parent, []).append(item)
            want = expected.get(parent)
            if want:
                expected.setdefault(job_id, want)
    # A fan-out that gave up (a chunk failed through all its Step Functions retries, and
    # the Failed state recorded it) ends its array FAILED by design, and what depends on
    # it; its children end either way. One whose Failed state failed too is started again.
    gave_up = {e.payload["parentId"] for e in world.executions.values()
               if e.error and e.recorded and e.payload["action"] == "materialize"}
    any_end = {job_id for job_id, item in jobs.items() if (item.extra or {}).get("parent") in gave_up} | nodes
    failed, frontier = set(gave_up), set(gave_up)
    while frontier:
        for job_id in frontier:
            expected[job_id] = rules.FAILED
        frontier = {job_id for job_id, item in jobs.items() if job_id not in failed | any_end
                    and any(d.get("jobId") in frontier for d in item.doc.get("dependsOn") or [])}
        failed |= frontier
    lost: set[str] = set()
    for job_id, want in expected.items():
        item = jobs.get(job_id)
        if item is None:
            v.append(f"lost: accepted job {job_id} is not in the table")
            lost.add(job_id)
            continue
        status = item.doc["status"]
        if status not in rules.TERMINAL:
            v.append(f"lost: {item.doc['jobName']} {job_id} ended {status}, not at all")
            lost.add(job_id)
        elif status != want and job_id not in any_end:
            v.append(f"wrong outcome: {item.doc['jobName']} {job_id} {status} ({item.doc.get('statusReason')}), "
                     f"expected {want}; attempts {[a.get('statusReason') for a in item.doc['attempts']]}")
    for job_id, item in jobs.items():
        if job_id not in expected:
            v.append(f"duplicate: job {item.doc['jobName']} {job_id} that no SubmitJob answered")
    # The stream's history of each job.
    for job_id, moves in world.history.items():
        name = jobs[job_id].doc["jobName"] if job_id in jobs else job_id
        ended = 0
        for before, after in moves:
            if before is None:
                if after != rules.SUBMITTED and not (after in (rules.RUNNABLE, rules.PENDING) and
                                                     (jobs.get(job_id) and (jobs[job_id].extra or {}).get("parent")
                                                      or job_id in nodes)):
                    v.append(f"history: {name} created {after}")
                continue
            if after is None:
                continue
            if job_id in nodes and before in rules.TERMINAL and after in (rules.RUNNABLE, rules.PENDING):
                continue  # a node of a retried job runs again in the job's next attempt
            if before in rules.TERMINAL:
                v.append(f"history: {name} left {before} for {after}")
            elif not rules.can_move(before, after):
                v.append(f"history: {name} {before} -> {after} is not a legal move")
            if after in rules.TERMINAL:
                ended += 1
        # A node ends once in each attempt of its job (stopped, or never placed, if need be).
        job = jobs[str(jobs[job_id].extra["mnp"])] if job_id in nodes else None
        if ended > (max(1, len(job.doc["attempts"])) if job else 1):
            v.append(f"history: {name} ended {ended} times: {moves}")
    # Tasks.
    twice: set[str] = set()
    by_run: Counter[tuple[str, int]] = Counter((t.job_id, t.run) for t in world.tasks.values())
    for (job_id, run), n in by_run.items():
        if n > 1:
            v.append(f"run twice: {n} tasks for job {job_id} run {run}")
            twice.add(job_id)
    by_job: dict[str, list[Any]] = {}
    for t in world.tasks.values():
        by_job.setdefault(t.job_id, []).append(t)
        if t.state != "STOPPED":
            v.append(f"leaked task: {t.arn} of {t.job_id} is still {t.state}")
    for job_id, tasks in by_job.items():
        ran = sorted((t for t in tasks if t.started_step is not None), key=lambda t: t.started_step)
        for first, second in zip(ran, ran[1:], strict=False):
            if first.stopped_step is None or second.started_step < first.stopped_step:
                v.append(f"run twice: job {job_id} had tasks {first.arn} and {second.arn} running at once")
                twice.add(job_id)
        item = jobs.get(job_id)
        if item is None:
            continue
        recorded = Counter(a["container"].get("taskArn") for a in item.doc["attempts"])
        for t in ran:
            if recorded[t.arn] != 1:
                v.append(f"attempts: task {t.arn} of {item.doc['jobName']} is {recorded[t.arn]} of its attempts")
        if item.doc["status"] == rules.SUCCEEDED and job_id not in nodes:
            zero = [t for t in ran if t.exit_code == 0]
            if len(zero) != 1:
                v.append(f"run twice: SUCCEEDED {item.doc['jobName']} had {len(zero)} tasks exit 0")
                twice.add(job_id)
    # Capacity, arrays, edges.
    items = world.items()
    for raw in items:
        pk, sk = raw["pk"]["S"], raw["sk"]["S"]
        if sk == "USAGE" and int(raw.get("mvcpus", {}).get("N", "0")) != 0:
            v.append(f"capacity: {pk} USAGE mvcpus = {raw['mvcpus']['N']}")
        if pk.startswith("DEPS#") and "released" not in raw:
            v.append(f"edge: {pk} {sk} never released")
    for parent_id, parent in jobs.items():
        props = parent.doc.get("arrayProperties") or {}
        if "size" not in props or "index" in props:
            continue
        kids = children.get(parent_id, [])
        # Every child once the fan-out began (one that failed on a dependency first has none).
        if (parent.extra or {}).get("fanout") and len(kids) != props["size"]:
            v.append(f"array: {parent_id} has {len(kids)} of {props['size']} children")
        counted: Counter[str] = Counter()
        for raw in items:
            if raw["pk"]["S"] == f"ARRAY#{parent_id}" and raw["sk"]["S"].startswith("COUNT#"):
                for status in rules.STATUSES:
                    counted[status] += int(raw.get(status, {}).get("N", "0"))
        actual = Counter(k.doc["status"] for k in kids)
        if +counted != +actual or any(n < 0 for n in counted.values()):
            v.append(f"array: {parent_id} counters {dict(counted)} != children {dict(actual)}")
    result.lost = len(lost)
    result.run_twice = len(twice)
