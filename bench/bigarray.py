"""``python -m bench --big-array N``: one array job of N ``true`` children on ``batchplane
local up`` (a subprocess on a fresh ``--data-dir``, the default store), waited for to the
end, with what the stack costs meanwhile: its process's peak resident memory and the data
directory's size. While the array runs, a plain job is submitted every ``--side-every``
seconds to a second queue on a second compute environment, and its submit -> SUCCEEDED
time measured: one big array must not stall every queue (issue 17 item 5). Every
DescribeJobs the run makes is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from batchplane.domain.arrays import MAX_ARRAY, MIN_ARRAY
from botocore.config import Config
from rich.console import Console
from rich.table import Table

from .cli import run_meta
from .harness import CE, QUEUE, TERMINAL, TRUE_JOB, Harness, client
from .localup import MemorySampler, UpProcess, dir_bytes
from .stats import percentile

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "big-array.json"
SIDE_CE = "bench-side-ce"
SIDE_QUEUE = "bench-side-q"
# No retries (one call is one request), and a long read timeout: a stalled DescribeJobs is
# measured, not cut off at botocore's 60 s.
SLOW_OK = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=900,
                 connect_timeout=10, max_pool_connections=4)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench --big-array",
        description="one big array of `true` children on `batchplane local up`, to its end: "
                    "time, children/s, the stack's peak memory and data directory size, and "
                    "how a job on another queue fares meanwhile (see docs/benchmarks.md)")
    p.add_argument("--big-array", type=int, required=True, metavar="N", help="children (2..100,000)")
    p.add_argument("--timeout", type=float, default=4 * 3600,
                   help="seconds from SubmitJob to give up (default 4 h)")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between DescribeJobs of the array (2)")
    p.add_argument("--side-every", type=float, default=60.0,
                   help="a job on the other queue every this many seconds while the array runs (60)")
    p.add_argument("--side-first", type=float, default=5.0,
                   help="seconds after the array's SubmitJob to submit the first such job (5)")
    p.add_argument("--stall", type=float, default=600.0,
                   help="give up when no child ended for this many seconds (600)")
    p.add_argument("--keep", action="store_true", help="keep the data directory (its path is printed)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output ({DEFAULT_OUT})")
    args = p.parse_args(argv)
    if not MIN_ARRAY <= args.big_array <= MAX_ARRAY:
        p.error("--big-array must be between 2 and 100,000 (AWS Batch's limit is 10,000; batchplane's 100,000)")
    return args


class Timed:
    """A boto3 batch client whose DescribeJobs calls are timed (seconds, and errors)."""

    def __init__(self, endpoint: str, lock: threading.Lock, samples: list[float], errors: list[str]) -> None:
        self.batch = client("batch", endpoint, SLOW_OK)
        self.lock, self.samples, self.errors = lock, samples, errors

    def describe(self, ids: list[str]) -> dict[str, dict[str, Any]] | None:
        began = time.perf_counter()
        try:
            jobs = self.batch.describe_jobs(jobs=ids)["jobs"]
        except Exception as e:  # noqa: BLE001 - a failed call is a figure, not a crash
            with self.lock:
                self.errors.append(f"{time.perf_counter() - began:.1f} s: {type(e).__name__}: {e}")
            return None
        with self.lock:
            self.samples.append(time.perf_counter() - began)
        return {j["jobId"]: j for j in jobs}


def _side_resources(batch: Any) -> None:
    batch.create_compute_environment(
        computeEnvironmentName=SIDE_CE, type="MANAGED", state="ENABLED",
        computeResources={
            "type": "EC2", "minvCpus": 0, "maxvCpus": 16, "instanceTypes": ["optimal"],
            "subnets": ["subnet-bench"], "securityGroupIds": ["sg-bench"],
            "instanceRole": "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole",
        },
    )
    batch.create_job_queue(jobQueueName=SIDE_QUEUE, priority=1, state="ENABLED",
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": SIDE_CE}])


class SideJobs(threading.Thread):
    """A plain job on the other queue at ``first`` s after ``t0``, then every ``every`` s,
    each followed to its end (DescribeJobs every 0.2 s) before the next, until ``done``."""

    def __init__(self, endpoint: str, t0: float, first: float, every: float, done: threading.Event,
                 timed: Timed) -> None:
        super().__init__(name="side-jobs", daemon=True)
        self.batch = client("batch", endpoint, SLOW_OK)
        self.t0, self.first, self.every, self.done, self.timed = t0, first, every, done, timed
        self.results: list[dict[str, Any]] = []

    def run(self) -> None:
        at = self.t0 + self.first
        while not self.done.wait(max(0.0, at - time.monotonic())):
            self.results.append(self.one(len(self.results)))
            at = max(at + self.every, time.monotonic())

    def one(self, n: int) -> dict[str, Any]:
        sent = time.monotonic()
        out: dict[str, Any] = {"at_s": round(sent - self.t0, 1)}
        try:
            job = self.batch.submit_job(jobName=f"side-{n}", jobQueue=SIDE_QUEUE, jobDefinition=TRUE_JOB)["jobId"]
        except Exception as e:  # noqa: BLE001
            out["error"] = f"SubmitJob: {type(e).__name__}: {e}"
            return out
        out["submit_s"] = round(time.monotonic() - sent, 3)
        first_seen: dict[str, float] = {}
        doc: dict[str, Any] = {}
        deadline = sent + 3600
        while time.monotonic() < deadline:
            got = self.timed.describe([job])
            if got and job in got:
                doc = got[job]
                first_seen.setdefault(doc["status"], round(time.monotonic() - sent, 2))
                if doc["status"] in TERMINAL:
                    break
            time.sleep(0.2)
        out.update(status=doc.get("status"), first_seen_s=first_seen,
                   to_end_s=first_seen.get(doc.get("status", "")) if doc.get("status") in TERMINAL else None)
        if doc.get("stoppedAt") and doc.get("createdAt"):
            out["recorded_s"] = (doc["stoppedAt"] - doc["createdAt"]) / 1000
        return out


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:  # noqa: PLR0915 - the benchmark's script, start to figures, in the order it runs
    n = args.big_array
    meta: dict[str, Any] = {**run_meta(), "children": n, "poll_s": args.poll, "side_every_s": args.side_every}
    tmp = Path(tempfile.mkdtemp(prefix="big-array.", dir="/var/tmp"))
    data_dir = tmp / "data"
    stack = UpProcess(data_dir, tmp / "local-up.log")
    result: dict[str, Any] = {"meta": meta}
    lock = threading.Lock()
    parent_lat: list[float] = []
    side_lat: list[float] = []
    errors: list[str] = []
    try:
        console.log(f"starting `batchplane local up --data-dir {data_dir}`")
        meta["start_s"] = round(stack.start(), 2)
        h = Harness()
        h.batch = client("batch", stack.endpoint)
        h._resources()  # bench-q on bench-ce (4,096 vCPUs) and the `true` definition
        _side_resources(h.batch)
        warm = h.submit(name="warm-up")
        h.wait([warm], timeout=120)
        h.wait([h.batch.submit_job(jobName="warm-side", jobQueue=SIDE_QUEUE, jobDefinition=TRUE_JOB)["jobId"]],
               timeout=120)
        poller = Timed(stack.endpoint, lock, parent_lat, errors)
        side_timed = Timed(stack.endpoint, lock, side_lat, errors)
        cpu0 = stack.cpu_seconds() or 0.0
        done = threading.Event()
        with MemorySampler(stack) as memory:
            console.log(f"SubmitJob: one array of {n:,} `true` children on {QUEUE} / {CE}")
            t0 = time.monotonic()
            parent = h.batch.submit_job(jobName="big-array", jobQueue=QUEUE, jobDefinition=TRUE_JOB,
                                        arrayProperties={"size": n})["jobId"]
            submit_s = time.monotonic() - t0
            side = SideJobs(stack.endpoint, t0, args.side_first, args.side_every, done, side_timed)
            side.start()
            progress: list[tuple[float, int]] = []
            ended = best = 0
            last_progress = t0
            all_ended_s = parent_s = None
            doc: dict[str, Any] = {}
            why = "timeout"
            next_log = next_size = t0
            peak_dir = 0
            while True:
                now = time.monotonic()
                if now - t0 > args.timeout:
                    break
                if not stack.alive():
                    why = f"the stack process exited with {stack.proc.returncode if stack.proc else '?'}"
                    break
                if now - last_progress > args.stall:
                    why = f"stall: no child ended for {args.stall:.0f} s"
                    break
                got = poller.describe([parent])
                if got and parent in got:
                    doc = got[parent]
                    summary = (doc.get("arrayProperties") or {}).get("statusSummary") or {}
                    ended = int(summary.get("SUCCEEDED", 0)) + int(summary.get("FAILED", 0))
                    if ended > best:
                        best, last_progress = ended, time.monotonic()
                    if all_ended_s is None and ended >= n:
                        all_ended_s = time.monotonic() - t0
                    if doc.get("status") in TERMINAL:
                        parent_s = time.monotonic() - t0
                        why = "ended"
                        break
                if now >= next_size:
                    peak_dir = max(peak_dir, dir_bytes(data_dir))
                    next_size = now + 30
                if now >= next_log:
                    progress.append((round(now - t0, 1), ended))
                    status = stack.status()
                    console.log(f"  {now - t0:7.0f} s: {ended:,}/{n:,} children ended, parent "
                                f"{doc.get('status', '?')}, stack RSS {status.get('VmRSS', 0) / 1024:.0f} MiB, "
                                f"side jobs {[r.get('to_end_s') for r in side.results][-3:]}")
                    next_log = now + 30
                time.sleep(args.poll)
            done.set()
            cpu1 = stack.cpu_seconds() or 0.0
            side.join(timeout=120)
            final_dir = dir_bytes(data_dir)
        result.update(
            outcome=why, parent_status=doc.get("status"),
            status_summary=(doc.get("arrayProperties") or {}).get("statusSummary"),
            submit_s=round(submit_s, 3),
            all_children_ended_s=None if all_ended_s is None else round(all_ended_s, 1),
            parent_ended_s=None if parent_s is None else round(parent_s, 1),
            children_per_s=None if all_ended_s is None else round(n / all_ended_s, 2),
            children_ended=best,
            stack_cpu_s=round(cpu1 - cpu0, 1),
            peak_rss_mib=round(max(memory.peak_hwm_kib, memory.peak_rss_kib) / 1024, 1),
            rss_end_mib=round((memory.timeline[-1][1] if memory.timeline else 0) / 1024, 1),
            peak_threads=memory.peak_threads,
            data_dir_mib=round(final_dir / 2**20, 1), data_dir_peak_mib=round(max(peak_dir, final_dir) / 2**20, 1),
            side_jobs=side.results,
            describe_parent=_summary(parent_lat), describe_side=_summary(side_lat),
            describe_all=_summary(parent_lat + side_lat), describe_errors=errors[:50],
            progress=progress, rss_timeline_mib=[(t, round(k / 1024, 1)) for t, k in memory.timeline[::10]],
        )
        if why != "ended":
            result["log_tail"] = stack.tail()
    finally:
        stack.stop()
        meta["loadavg_end"] = round(os.getloadavg()[0], 2)
        if args.keep:
            console.print(f"data directory kept: {data_dir}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def _summary(xs: list[float]) -> dict[str, Any]:
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50_ms": round(percentile(xs, 50) * 1000, 1),
            "p99_ms": round(percentile(xs, 99) * 1000, 1), "max_ms": round(max(xs) * 1000, 1)}


def render(r: dict[str, Any], console: Console) -> None:
    m = r["meta"]
    t = Table(title=f"{m['children']:,}-child array on `batchplane local up` ({m['started']}, "
                    f"{m['cpus']} CPUs, load {m['loadavg_start']} -> {m.get('loadavg_end')})",
              title_justify="left")
    t.add_column("measure")
    t.add_column("value", justify="right")
    side = [s for s in r.get("side_jobs", []) if s.get("to_end_s") is not None]
    waits = [s["to_end_s"] for s in side]
    submitted = [s.get("first_seen_s", {}) for s in r.get("side_jobs", [])]
    # How long each stayed SUBMITTED: until DescribeJobs first showed it in another status.
    held = [min((v for k, v in f.items() if k != "SUBMITTED"), default=None) for f in submitted]
    rows = [
        ("outcome", f"{r['outcome']}; parent {r.get('parent_status')}; {r.get('status_summary')}"),
        ("SubmitJob (the array)", f"{r['submit_s']:.2f} s"),
        ("submit -> every child ended", _s(r.get("all_children_ended_s"))),
        ("submit -> parent ended", _s(r.get("parent_ended_s"))),
        ("children / s", f"{r['children_per_s']}" if r.get("children_per_s") else "-"),
        ("stack CPU (user+sys)", f"{r['stack_cpu_s']:,.0f} s"),
        ("stack peak RSS (VmHWM)", f"{r['peak_rss_mib']:,.0f} MiB (at end {r['rss_end_mib']:,.0f} MiB, "
                                   f"{r['peak_threads']} threads at most)"),
        ("data directory", f"{r['data_dir_mib']:,.0f} MiB at end (peak seen {r['data_dir_peak_mib']:,.0f} MiB)"),
        ("job on the other queue: submit -> SUCCEEDED",
         f"p50 {_s(percentile(waits, 50) if waits else None)}, max {_s(max(waits) if waits else None)} "
         f"over {len(waits)} of {len(r.get('side_jobs', []))} jobs"),
        ("  ... of which SUBMITTED, longest", _s(max((x for x in held if x is not None), default=None))),
    ]
    for name, key in (("DescribeJobs (the array)", "describe_parent"),
                      ("DescribeJobs (other queue's job)", "describe_side"), ("DescribeJobs (all)", "describe_all")):
        d = r.get(key, {})
        rows.append((name, f"p50 {d.get('p50_ms', '-')} ms, p99 {d.get('p99_ms', '-')} ms, "
                           f"max {d.get('max_ms', '-')} ms over {d.get('n', 0)} calls"))
    rows.append(("DescribeJobs errors", str(len(r.get("describe_errors", [])))))
    for name, value in rows:
        t.add_row(name, value)
    console.print(t)


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f} s"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    result = run(args, console)
    render(result, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    console.print(f"wrote {args.out}")
    return 0 if result["outcome"] == "ended" else 1
