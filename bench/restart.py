"""``python -m bench --restart``: a run of N trivial jobs on ``batchplane local up`` (a
subprocess on a fresh ``--data-dir``) while the stack is killed with SIGKILL at random
moments (seeded; the seed is printed) and started again on the same directory each time.
At the end: how many jobs were accepted, how they ended, how many were lost (accepted but
never ended, or gone), how many ran twice, how many attempts were retried because their
host went away.

Each job appends ``start <job id> <attempt>`` to a marks file when it starts and ``end
<job id> <attempt>`` when its work is done (``AWS_BATCH_JOB_ID``, ``AWS_BATCH_JOB_ATTEMPT``),
so a run twice is countable: the same attempt started twice, or two attempts of one job
that both did the work. The jobs' processes outlive the stack's (SIGKILL goes to the
stack's process only, as ECS tasks outlive their control plane).

SubmitJob calls go out without retries. A call the kill cut (the request may have
arrived: the connection closed or timed out before any response) is counted apart: it
may or may not have been accepted. If ListJobs shows it, it must end like any other. The
job is then submitted again under a new name, so that N jobs are accepted with an answer.
A call refused at connect (the stack was down) was never sent, and is sent again as is.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from rich.console import Console
from rich.table import Table

from .cli import run_meta
from .harness import TERMINAL, client
from .localup import UpProcess
from .stats import percentile

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "restart.json"
CE, QUEUE, DEFINITION = "restart-ce", "restart-q", "restart-mark"
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
CALLS = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5,
               read_timeout=60, max_pool_connections=16)
# What an attempt ended by its host going away says (service/tasks.py, local/launcher.py).
HOST_WENT_AWAY = re.compile(r"Task lost|TerminationNotice|local stack (died|stopped)|Host EC2", re.I)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench --restart",
        description="kill -9 `batchplane local up` at random moments of a run of trivial "
                    "jobs and start it again each time: lost, run twice, retried "
                    "(see docs/benchmarks.md)")
    p.add_argument("--restart", action="store_true", required=True)
    p.add_argument("--jobs", type=int, default=1000, help="jobs accepted with an answer (1,000)")
    p.add_argument("--kills", type=int, default=5, help="kill -9s of the stack (5)")
    p.add_argument("--seed", type=int, default=None, help="of the kill moments (default: random, printed)")
    p.add_argument("--min-up", type=float, default=1.0,
                   help="a kill comes at least this many seconds after the stack is up (1)")
    p.add_argument("--max-up", type=float, default=15.0,
                   help="... and at most this many (15): uniform in between")
    p.add_argument("--threads", type=int, default=4, help="client threads submitting (4)")
    p.add_argument("--job-seconds", type=float, default=1.0,
                   help="each job sleeps this long between its two marks (1)")
    p.add_argument("--vcpus", type=int, default=64, help="maxvCpus of the compute environment (64)")
    p.add_argument("--timeout", type=float, default=1800,
                   help="seconds after the last kill for every job to end (1,800)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output ({DEFAULT_OUT})")
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 10**6)
    return args


class Stack:
    """The stack process and who may call it: ``up`` is set while it is serving; each start
    is a new ``generation`` with its own endpoint (``--port 0``)."""

    def __init__(self, proc: UpProcess) -> None:
        self.proc = proc
        self.up = threading.Event()
        self.lock = threading.Lock()
        self.generation = 0
        self.start_seconds: list[float] = []

    def start(self) -> None:
        self.start_seconds.append(self.proc.start())
        with self.lock:
            self.generation += 1
        self.up.set()

    def kill9(self) -> None:
        self.up.clear()
        self.proc.kill9()

    def client(self, cache: dict[str, Any]) -> Any:
        """A batch client on the current endpoint (one per thread and generation)."""
        self.up.wait()
        with self.lock:
            gen, endpoint = self.generation, self.proc.endpoint
        if cache.get("gen") != gen:
            cache.update(gen=gen, client=client("batch", endpoint, CALLS))
        return cache["client"]


class Submitters:
    """``threads`` threads submitting jobs 0..n-1 until each is accepted with an answer."""

    def __init__(self, stack: Stack, n: int, threads: int) -> None:
        self.stack, self.n = stack, n
        self.lock = threading.Lock()
        self.next = 0
        self.accepted: dict[str, str] = {}  # job name -> job id
        self.unknown: list[dict[str, Any]] = []  # calls the kill cut: {name, error, at_s}
        self.refused = 0  # connects refused (never sent), sent again as they were
        self.server_errors: list[dict[str, Any]] = []  # an answer that was an error
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.t0 = time.monotonic()
        self.threads = [threading.Thread(target=self._run, name=f"submit-{i}", daemon=True) for i in range(threads)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def done(self) -> bool:
        return not any(t.is_alive() for t in self.threads)

    def submitted(self) -> int:
        with self.lock:
            return len(self.accepted)

    def _take(self) -> int | None:
        with self.lock:
            if self.next >= self.n:
                return None
            self.next += 1
            return self.next - 1

    def _run(self) -> None:
        cache: dict[str, Any] = {}
        while (i := self._take()) is not None:
            tries = 0
            while True:
                name = f"r{i}" if tries == 0 else f"r{i}-{tries}"  # a valid jobName: no dots
                batch = self.stack.client(cache)
                sent = time.monotonic()
                try:
                    job = batch.submit_job(jobName=name, jobQueue=QUEUE, jobDefinition=DEFINITION)["jobId"]
                except EndpointConnectionError:
                    with self.lock:
                        self.refused += 1
                    time.sleep(0.05)
                    continue  # never sent: the same call again once the stack is back
                except ClientError as e:
                    if e.response["ResponseMetadata"].get("HTTPStatusCode", 500) < HTTPStatus.INTERNAL_SERVER_ERROR:
                        raise  # refused as invalid: the benchmark's own fault, retrying cannot help
                    # An answer, but an error (a 5xx of a stack in trouble): it says not
                    # accepted; ListJobs checks that too, under a new name.
                    with self.lock:
                        self.server_errors.append({"name": name, "error": str(e)[:300],
                                                   "at_s": round(sent - self.t0, 2)})
                    tries += 1
                    continue
                except Exception as e:  # noqa: BLE001 - closed, reset or timed out: no answer
                    with self.lock:
                        self.unknown.append({"name": name, "error": f"{type(e).__name__}: {str(e)[:200]}",
                                             "at_s": round(sent - self.t0, 2)})
                    tries += 1
                    continue
                now = time.monotonic()
                with self.lock:
                    self.accepted[name] = job
                    self.first_at = self.first_at or sent
                    self.last_at = now
                break


def _describe(batch: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 100):
        out.update({j["jobId"]: j for j in batch.describe_jobs(jobs=ids[i:i + 100])["jobs"]})
    return out


def _listed(batch: Any) -> dict[str, list[tuple[str, str]]]:
    """Every job of the queue by name: [(job id, status)], from ListJobs of each status."""
    out: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for status in STATUSES:
        token = None
        while True:
            page = batch.list_jobs(jobQueue=QUEUE, jobStatus=status, maxResults=1000,
                                   **({"nextToken": token} if token else {}))
            for j in page["jobSummaryList"]:
                out[j["jobName"]].append((j["jobId"], j["status"]))
            token = page.get("nextToken")
            if not token:
                break
    return out


class Ended:
    """Polls DescribeJobs of the accepted jobs every 2 s (when the stack is up): how many
    have ended, and when the last of them was first seen ended."""

    def __init__(self, stack: Stack, subs: Submitters) -> None:
        self.stack, self.subs = stack, subs
        self.count = 0
        self.docs: dict[str, dict[str, Any]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ended", daemon=True)

    def _run(self) -> None:
        cache: dict[str, Any] = {}
        while not self.stop.wait(2.0):
            if not self.stack.up.is_set():
                continue
            with self.subs.lock:
                ids = list(self.subs.accepted.values())
            pending = [j for j in ids if self.docs.get(j, {}).get("status") not in TERMINAL]
            try:
                self.docs.update(_describe(self.stack.client(cache), pending))
            except Exception:  # noqa: BLE001, S112 - the stack died under the call: next round
                continue
            self.count = sum(d.get("status") in TERMINAL for d in self.docs.values())


def _job_definition(batch: Any, marks: Path, seconds: float) -> None:
    script = (f'echo "start $AWS_BATCH_JOB_ID $AWS_BATCH_JOB_ATTEMPT" >> {marks}; sleep {seconds}; '
              f'echo "end $AWS_BATCH_JOB_ID $AWS_BATCH_JOB_ATTEMPT" >> {marks}')
    batch.register_job_definition(
        jobDefinitionName=DEFINITION, type="container", retryStrategy={"attempts": 10},
        containerProperties={"image": "public.ecr.aws/docker/library/busybox:latest",
                             "command": ["sh", "-c", script],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "64"}]},
    )


def _resources(batch: Any, vcpus: int, marks: Path, seconds: float) -> None:
    batch.create_compute_environment(
        computeEnvironmentName=CE, type="MANAGED", state="ENABLED",
        computeResources={
            "type": "EC2", "minvCpus": 0, "maxvCpus": vcpus, "instanceTypes": ["optimal"],
            "subnets": ["subnet-bench"], "securityGroupIds": ["sg-bench"],
            "instanceRole": "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole",
        },
    )
    batch.create_job_queue(jobQueueName=QUEUE, priority=1, state="ENABLED",
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": CE}])
    _job_definition(batch, marks, seconds)


def read_marks(path: Path) -> tuple[collections.Counter[tuple[str, int]], dict[str, set[int]]]:
    """(starts per (job id, attempt), attempts that did the work per job id)."""
    starts: collections.Counter[tuple[str, int]] = collections.Counter()
    ends: dict[str, set[int]] = collections.defaultdict(set)
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit():  # noqa: PLR2004 - a marks line is three words: kind, job, attempt
            continue  # a line torn by a crash would show here; none is expected
        kind, job, attempt = parts[0], parts[1], int(parts[2])
        if kind == "start":
            starts[(job, attempt)] += 1
        elif kind == "end":
            ends[job].add(attempt)
    return starts, ends


def tally(accepted: dict[str, str], unknown: list[dict[str, Any]], listed: dict[str, list[tuple[str, str]]],
          docs: dict[str, dict[str, Any]], marks: Path) -> dict[str, Any]:
    """The run's figures from what the client knows, what the service says and the marks."""
    found_unknown = {u["name"]: listed[u["name"]][0][0] for u in unknown if listed.get(u["name"])}
    must_end = {**accepted, **found_unknown}  # name -> id
    statuses = collections.Counter(docs.get(i, {}).get("status", "missing") for i in must_end.values())
    lost = sorted(n for n, i in must_end.items() if docs.get(i, {}).get("status") not in TERMINAL)
    listed_ids = {i for pairs in listed.values() for i, _ in pairs}
    known_names = set(must_end) | {u["name"] for u in unknown}
    starts, ends = read_marks(marks)
    twice = sorted(f"{j}#{a}" for (j, a), c in starts.items() if c > 1)
    done_twice = sorted(j for j, attempts in ends.items() if len(attempts) > 1)
    succeeded_unrun = sorted(i for i in must_end.values()
                             if docs.get(i, {}).get("status") == "SUCCEEDED" and i not in ends)
    retried: collections.Counter[str] = collections.Counter()
    host_gone = 0
    for i in must_end.values():
        for a in docs.get(i, {}).get("attempts", [])[:-1]:
            reason = a.get("statusReason") or (a.get("container") or {}).get("reason") or ""
            retried[reason[:120]] += 1
            host_gone += bool(HOST_WENT_AWAY.search(reason))
    ran_ids = {j for j, _ in starts}
    return {
        "accepted": len(accepted),
        "unknown_submits": len(unknown),
        "unknown_found_accepted": len(found_unknown),
        "succeeded": statuses.get("SUCCEEDED", 0),
        "failed": statuses.get("FAILED", 0),
        "lost": len(lost),
        "lost_names": lost[:50],
        "not_in_list_jobs": sorted(n for n, i in must_end.items() if i not in listed_ids)[:50],
        "unexpected_in_list_jobs": sorted(set(listed) - known_names)[:50],
        "names_accepted_twice": sorted(n for n, pairs in listed.items() if len(pairs) > 1)[:50],
        "run_twice": len(twice),
        "run_twice_ids": twice[:50],
        "work_done_twice": len(done_twice),
        "work_done_twice_ids": done_twice[:50],
        "succeeded_without_running": len(succeeded_unrun),
        "ran_but_never_accepted": sorted(ran_ids - set(must_end.values()))[:50],
        "jobs_retried": sum(len(docs.get(i, {}).get("attempts", [])) > 1 for i in must_end.values()),
        "attempts_retried": sum(retried.values()),
        "attempts_retried_host_went_away": host_gone,
        "retry_reasons": dict(retried.most_common(10)),
        "failed_reasons": dict(collections.Counter(
            (docs[i].get("statusReason") or "")[:120] for i in must_end.values()
            if docs.get(i, {}).get("status") == "FAILED").most_common(10)),
    }


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:  # noqa: PLR0915 - the benchmark's script, start to figures, in the order it runs
    meta: dict[str, Any] = {**run_meta(), "jobs": args.jobs, "kills_asked": args.kills, "seed": args.seed,
                            "up_seconds": [args.min_up, args.max_up], "threads": args.threads,
                            "job_seconds": args.job_seconds, "vcpus": args.vcpus}
    console.print(f"[bold]restart benchmark: seed {args.seed}[/bold] (python -m bench --restart "
                  f"--seed {args.seed} repeats the kill moments)")
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="restart-bench.", dir="/var/tmp"))
    marks = tmp / "marks"
    marks.touch()
    stack = Stack(UpProcess(tmp / "data", tmp / "local-up.log"))
    result: dict[str, Any] = {"meta": meta}
    kills: list[dict[str, Any]] = []
    try:
        stack.start()
        setup = client("batch", stack.proc.endpoint, CALLS)
        _resources(setup, args.vcpus, marks, args.job_seconds)
        subs = Submitters(stack, args.jobs, args.threads)
        ended = Ended(stack, subs)
        t0 = subs.t0 = time.monotonic()
        subs.start()
        ended.thread.start()
        for k in range(args.kills):
            delay = rng.uniform(args.min_up, args.max_up)
            wake = time.monotonic() + delay
            while time.monotonic() < wake and not (subs.done() and ended.count >= subs.submitted()):
                time.sleep(0.05)
            if subs.done() and ended.count >= subs.submitted():
                console.log(f"every job ended before kill {k + 1}: {k} of {args.kills} kills made")
                break
            moment = {"at_s": round(time.monotonic() - t0, 2), "up_for_s": round(delay, 2),
                      "accepted": subs.submitted(), "ended_seen": ended.count,
                      "stack_rss_mib": round(stack.proc.status().get("VmRSS", 0) / 1024)}
            stack.kill9()
            began = time.monotonic()
            stack.start()
            moment["down_s"] = round(time.monotonic() - began, 2)
            kills.append(moment)
            console.log(f"kill -9 #{k + 1} at {moment['at_s']:.1f} s (up {delay:.1f} s): "
                        f"{moment['accepted']} accepted, {moment['ended_seen']} seen ended; "
                        f"back in {moment['down_s']:.1f} s")
        # No more kills: every submit answered, then every job that must end ends.
        last_kill = time.monotonic()
        while not subs.done() and time.monotonic() < last_kill + args.timeout:
            time.sleep(0.2)
        batch = client("batch", stack.proc.endpoint, CALLS)
        listed = _listed(batch)
        found = {u["name"]: listed[u["name"]][0][0] for u in subs.unknown if listed.get(u["name"])}
        ids = [*subs.accepted.values(), *found.values()]
        docs: dict[str, dict[str, Any]] = {}
        all_ended = None
        deadline = last_kill + args.timeout
        while time.monotonic() < deadline:
            pending = [i for i in ids if docs.get(i, {}).get("status") not in TERMINAL]
            if not pending:
                all_ended = time.monotonic()
                break
            docs.update(_describe(batch, pending))
            time.sleep(1.0)
        ended.stop.set()
        listed = _listed(batch)  # again: every accepted job in its final list
        figures = tally(subs.accepted, subs.unknown, listed, docs, marks)
        first = subs.first_at or t0
        figures.update(
            kills=len(kills), total_s=None if all_ended is None else round(all_ended - first, 1),
            submit_refused_connects=subs.refused, submit_server_errors=len(subs.server_errors),
            restart_s={"p50": round(percentile(stack.start_seconds[1:], 50), 2) if kills else None,
                       "max": round(max(stack.start_seconds[1:]), 2) if kills else None},
        )
        result.update(figures=figures, kill_moments=kills, unknown=subs.unknown,
                      server_errors=subs.server_errors[:50], first_start_s=round(stack.start_seconds[0], 2))
    finally:
        stack.proc.stop()
        meta["loadavg_end"] = round(os.getloadavg()[0], 2)
        if "figures" in result and _clean(result["figures"]):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            result["kept"] = str(tmp)
            result["log_tail"] = stack.proc.tail()
            console.print(f"[red]kept {tmp} (data directory, marks, the stack's log) to look at[/red]")
    return result


def _clean(f: dict[str, Any]) -> bool:
    return not (f["lost"] or f["run_twice"] or f["work_done_twice"] or f["succeeded_without_running"]
                or f["not_in_list_jobs"] or f["names_accepted_twice"] or f["ran_but_never_accepted"])


def render(r: dict[str, Any], console: Console) -> None:
    m, f = r["meta"], r.get("figures", {})
    t = Table(title=f"kill -9 at random moments of a {m['jobs']:,}-job run (seed {m['seed']}, {m['started']}, "
                    f"{m['cpus']} CPUs, load {m['loadavg_start']} -> {m.get('loadavg_end')})", title_justify="left")
    t.add_column("measure")
    t.add_column("value", justify="right")
    if not f:
        console.print("[red]no figures: the run failed[/red]")
        return
    rows = [
        ("kill -9s of the stack", f"{f['kills']} (at s: {', '.join(str(k['at_s']) for k in r['kill_moments'])})"),
        ("restart (kill -> listening)", f"p50 {f['restart_s']['p50']} s, max {f['restart_s']['max']} s"),
        ("accepted (SubmitJob answered)", f"{f['accepted']:,}"),
        ("submits cut by a kill (no answer)", f"{f['unknown_submits']}, of which accepted (in ListJobs): "
                                              f"{f['unknown_found_accepted']}"),
        ("ended SUCCEEDED / FAILED", f"{f['succeeded']:,} / {f['failed']:,}"),
        ("lost (accepted, never ended or gone)", str(f["lost"])),
        ("run twice (an attempt started twice)", str(f["run_twice"])),
        ("work done twice (two attempts ran to the end)", str(f["work_done_twice"])),
        ("SUCCEEDED without having run", str(f["succeeded_without_running"])),
        ("accepted but missing from ListJobs", str(len(f["not_in_list_jobs"]))),
        ("attempts retried / because their host went away",
         f"{f['attempts_retried']} / {f['attempts_retried_host_went_away']} ({f['jobs_retried']} jobs)"),
        ("first submit -> every job ended", "-" if f["total_s"] is None else f"{f['total_s']:,.1f} s"),
    ]
    for name, value in rows:
        t.add_row(name, value)
    console.print(t)
    if f.get("retry_reasons"):
        console.print(f"retry reasons: {f['retry_reasons']}")
    if f.get("failed_reasons"):
        console.print(f"failed: {f['failed_reasons']}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    result = run(args, console)
    render(result, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    console.print(f"wrote {args.out}")
    return 0 if result.get("figures") and _clean(result["figures"]) else 1
