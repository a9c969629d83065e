"""``python -m bench --peer slurm``: batchplane's local mode and a running Slurm side by
side, in one run, on the same workloads, interleaved (batchplane then Slurm, rep by rep).

Slurm's side runs exactly the commands and timings of ``../shared/peers/slurm/bench.sh``
(``sbatch -Q -o /dev/null --wrap=true``, ``squeue`` polled every ``--poll`` seconds until
empty, a 3 s settle between tests). batchplane's side runs ``batchplane local up`` in a
subprocess, as a user would, and drives it with one unmodified boto3 ``batch`` client.
Nothing is installed here: without a responding Slurm only batchplane's side runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from .cli import run_meta
from .harness import QUEUE, ROOT, STARTED, TERMINAL, TRUE_JOB, Harness, client
from .localup import stack_cpu_seconds
from .stats import percentile

if TYPE_CHECKING:
    from collections.abc import Callable

PEERS = ("slurm",)
SLURM_SETUP = "../shared/peers/slurm/setup.sh"
NOT_RUNNING = f"Slurm not running: start it with {SLURM_SETUP}"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "peer-slurm.json"
SLURM_TOOLS = ("sinfo", "sbatch", "squeue", "scontrol")
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
SETTLE_SECONDS = 3.0  # bench.sh: queue empty, then 3 s (Slurm purges records after MinJobAge=2)
FILE_POLL = 0.005  # bench.sh polls the job's timestamp file every 5 ms


@dataclass(frozen=True)
class Counts:
    """Jobs per workload (0 skips it) and repetitions, as bench.sh's N_* and REPS."""

    single: int
    array: int
    big_array: int
    latency: int
    chain: int
    reps: int
    big_reps: int


# bench.sh's quick and full counts; its 10,000-child array runs max(2, REPS-1) times, once
# here by default: batchplane's side can take many minutes.
QUICK = Counts(single=200, array=1000, big_array=0, latency=5, chain=5, reps=1, big_reps=1)
FULL = Counts(single=1000, array=1000, big_array=10_000, latency=20, chain=20, reps=3, big_reps=1)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="batchplane local mode and a running Slurm side by side, as ratios "
                    "(see ../shared/peers/slurm/README.md)")
    p.add_argument("--peer", choices=PEERS, required=True, help="the peer to compare with")
    p.add_argument("--quick", action="store_true",
                   help=f"small counts ({_counts_text(QUICK)}; default: {_counts_text(FULL)})")
    p.add_argument("--reps", type=int, default=None, help="repetitions of each workload")
    p.add_argument("--single", type=int, default=None, help="trivial jobs submitted one by one")
    p.add_argument("--array", type=int, default=None, help="children of the array")
    p.add_argument("--big-array", type=int, default=None,
                   help="children of the big array (full run 10,000, can take an hour on "
                        "batchplane's side; 0 skips it)")
    p.add_argument("--big-reps", type=int, default=None, help="repetitions of the big array (1)")
    p.add_argument("--latency", type=int, default=None, help="idle dispatch samples per rep")
    p.add_argument("--chain", type=int, default=None, help="jobs in the dependency chain")
    p.add_argument("--poll", type=float, default=0.1,
                   help="seconds between squeue / DescribeJobs polls (bench.sh POLL, 0.1)")
    p.add_argument("--timeout-per-job", type=float, default=1.0,
                   help="a workload gives up after 120 s + this many seconds per job (1.0)")
    p.add_argument("--store", default=None,
                   help="passed to `batchplane local up --store` if it has that option "
                        "(default: the stack's default)")
    p.add_argument("--memory", action="store_true",
                   help="passed to `batchplane local up --memory` (default: a fresh --data-dir "
                        "in a temporary directory, if the stack has that option)")
    p.add_argument("--no-peer", action="store_true",
                   help="batchplane's side only, even if Slurm is running")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output ({DEFAULT_OUT})")
    args = p.parse_args(argv)
    counts = QUICK if args.quick else FULL
    asked = {k: getattr(args, k) for k in ("reps", "single", "array", "big_array", "latency",
                                           "chain", "big_reps")}
    args.counts = replace(counts, **{k: v for k, v in asked.items() if v is not None})
    if args.counts.reps < 1 or args.counts.big_reps < 1:
        p.error("--reps and --big-reps must be at least 1")
    return args


def _counts_text(c: Counts) -> str:
    return (f"{c.single} single, {c.array} and {c.big_array} array, {c.latency} latency, "
            f"{c.chain} chain, {c.reps} rep{'s' if c.reps > 1 else ''}")


# -- figures: one row per measure, both sides, the ratio and the target ------------------


@dataclass(frozen=True)
class Target:
    """What good looks like. ``kind`` "ratio_min" / "ratio_max": batchplane/Slurm at least
    / at most ``limit``; "value_max": batchplane's own value at most ``limit``."""

    text: str
    kind: str
    limit: float

    def check(self, ours: float | None, ratio: float | None) -> bool | None:
        if self.kind == "value_max":
            return None if ours is None else ours <= self.limit
        if ratio is None:
            return None
        return ratio >= self.limit if self.kind == "ratio_min" else ratio <= self.limit


THROUGHPUT_2X = Target(">= 2x Slurm", "ratio_min", 2.0)
HALF_THE_TIME = Target("<= 1/2 Slurm's time", "ratio_max", 0.5)
DISPATCH_50MS = Target("p50 <= 50 ms", "value_max", 50.0)
NO_SLOWER_HOP = Target("<= Slurm's", "ratio_max", 1.0)


@dataclass
class Row:
    workload: str
    measure: str
    unit: str
    better: str  # "higher" or "lower"
    batchplane: float | None
    slurm: float | None
    target: Target | None = None
    note: str = ""
    ratio: float | None = field(init=False)
    ok: bool | None = field(init=False)

    def __post_init__(self) -> None:
        self.ratio = ratio(self.batchplane, self.slurm)
        self.ok = self.target.check(self.batchplane, self.ratio) if self.target else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["target"] = self.target.text if self.target else None
        out["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        return out


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """batchplane / Slurm, or None when either side has no number (or Slurm's is 0)."""
    if ours is None or theirs is None or not theirs or math.isnan(ours) or math.isnan(theirs):
        return None
    return ours / theirs


def fmt_value(v: float | None, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"  # noqa: PLR2004 - display: the digits a number is shown with, by its size
    return f"{text} {unit}".strip()


def fmt_ratio(row: Row) -> str:
    if row.ratio is None:
        return "-"
    r = row.ratio
    text = f"{r:.3f}" if r < 0.1 else f"{r:.2f}"  # noqa: PLR2004 - display: a small ratio gets one more digit
    return f"{text}x ({row.better} is better)"


def fmt_target(row: Row) -> str:
    if row.target is None:
        return ""
    if row.ok is None:
        return f"{row.target.text}: - (no {'' if row.target.kind == 'value_max' else 'Slurm '}figure)"
    return f"{row.target.text}: {'met' if row.ok else 'missed'}"


def render(rows: list[Row], console: Console, *, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col, justify in (("workload", "left"), ("measure", "left"), ("batchplane", "right"),
                         ("Slurm", "right"), ("batchplane / Slurm", "right"),
                         ("target", "left"), ("notes", "left")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    last = None
    for row in rows:
        if last is not None and row.workload != last:
            table.add_section()
        target = fmt_target(row)
        if row.ok is not None:
            target = target.replace(": met", ": [green]met[/green]").replace(
                ": missed", ": [red]missed[/red]")
        table.add_row(row.workload if row.workload != last else "", row.measure,
                      fmt_value(row.batchplane, row.unit), fmt_value(row.slurm, row.unit),
                      fmt_ratio(row), target, row.note)
        last = row.workload
    console.print(table)


# -- the two sides ------------------------------------------------------------------------


def _cpu_now() -> tuple[float, float]:
    """(total, idle+iowait) jiffies of all CPUs, as bench.sh's cpu_now."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                v = [float(x) for x in line.split()[1:]]
                return sum(v), v[3] + v[4]
    return 0.0, 0.0


def _busy(c0: tuple[float, float], c1: tuple[float, float]) -> float:
    return round(100 * (1 - (c1[1] - c0[1]) / max(c1[0] - c0[0], 1)), 1)


def _pause() -> None:
    """bench.sh's 0.2-1.2 s random pause between latency samples: a fixed period would
    phase-lock to a periodic scheduler and report one point of its distribution."""
    time.sleep(0.2 + random.randrange(1000) / 1000)  # noqa: S311 - not cryptography


def _read_ts(path: Path) -> float | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    try:
        return float(text) if text else None
    except ValueError:
        return None  # written halfway


def _hops(path: Path) -> list[float]:
    """Gaps between consecutive job starts, each job having appended its timestamp."""
    try:
        t = [float(x) for x in path.read_text().split() if x.strip()]
    except (OSError, ValueError):
        return []
    return [b - a for a, b in zip(t, t[1:], strict=False)]


class Side:
    name = ""

    def __init__(self, work: Path, poll: float, timeout_per_job: float) -> None:
        self.work = work
        self.poll = poll
        self.timeout_per_job = timeout_per_job

    def timeout(self, n: int) -> float:
        return 120.0 + self.timeout_per_job * n


class Slurm(Side):
    """bench.sh's commands, run from Python with the same arguments and pauses."""

    name = "slurm"

    def _run(self, *cmd: str, check: bool = False) -> str:
        done = subprocess.run(cmd, cwd=self.work, capture_output=True, text=True, timeout=120,
                              check=check)
        return done.stdout

    def _queue_empty(self) -> bool:
        return not self._run("squeue", "-h", "-o", "%i").strip()

    def wait_empty(self, deadline: float) -> float | None:
        while time.monotonic() < deadline:
            if self._queue_empty():
                return time.time()
            time.sleep(self.poll)
        return None

    def settle(self) -> None:
        deadline = time.monotonic() + 600
        while not self._queue_empty() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(SETTLE_SECONDS)

    def _sbatch(self, *args: str) -> str:
        try:
            return self._run("sbatch", *args, check=True).strip()
        except subprocess.CalledProcessError as e:
            print(f"[peer] sbatch failed: {e.stderr.strip()}", file=sys.stderr)
            return ""

    def single(self, n: int) -> dict[str, Any]:
        self.settle()
        c0, t0 = _cpu_now(), time.time()
        for _ in range(n):
            self._sbatch("-Q", "-o", "/dev/null", "--wrap=true")
        t1 = time.time()
        t2 = self.wait_empty(time.monotonic() + self.timeout(n))
        return {"n": n, "submit_s": t1 - t0, "total_s": None if t2 is None else t2 - t0,
                "cpu_busy_pct": _busy(c0, _cpu_now())}

    def array(self, n: int) -> dict[str, Any]:
        self.settle()
        c0, t0 = _cpu_now(), time.time()
        self._sbatch("-Q", "-o", "/dev/null", f"--array=0-{n - 1}", "--wrap=true")
        t1 = time.time()
        t2 = self.wait_empty(time.monotonic() + self.timeout(n))
        return {"n": n, "submit_s": t1 - t0, "total_s": None if t2 is None else t2 - t0,
                "cpu_busy_pct": _busy(c0, _cpu_now())}

    def latency(self, n: int, rep: int) -> dict[str, Any]:
        self.settle()
        out: dict[str, list[float]] = {"from_call_s": [], "from_return_s": [], "submit_call_s": []}
        for i in range(n):
            f = self.work / f"lat.slurm.{rep}.{i}"
            f.unlink(missing_ok=True)
            tc = time.time()
            self._sbatch("-Q", "-o", "/dev/null", f"--wrap=date +%s.%N > {f}")
            tr = time.time()
            deadline = time.monotonic() + 60
            ts = None
            while ts is None and time.monotonic() < deadline:
                ts = _read_ts(f) if f.exists() and f.stat().st_size else None
                if ts is None:
                    time.sleep(FILE_POLL)
            if ts is not None:
                out["from_call_s"].append(ts - tc)
                out["from_return_s"].append(ts - tr)
            out["submit_call_s"].append(tr - tc)
            self.wait_empty(time.monotonic() + 60)
            _pause()
        return out

    def chain(self, n: int, rep: int) -> dict[str, Any]:
        f = self.work / f"chain.slurm.{rep}"
        self.settle()
        f.write_text("")
        t0 = time.time()
        prev = ""
        for _ in range(n):
            dep = (f"--dependency=afterok:{prev}",) if prev else ()
            j = self._sbatch("--parsable", "-o", "/dev/null", *dep, f"--wrap=date +%s.%N >> {f}")
            prev = j.split(";", 1)[0]
        t1 = time.time()
        t2 = self.wait_empty(time.monotonic() + self.timeout(n))
        hops = _hops(f)
        return {"n": n, "submit_s": t1 - t0, "total_s": None if t2 is None else t2 - t0,
                "ran": len(hops) + 1 if hops else len(f.read_text().split()),
                "hop_start_s": hops}


class Batchplane(Side):
    """The same workloads through one boto3 client against ``batchplane local up``."""

    name = "batchplane"

    def __init__(self, h: Harness, work: Path, poll: float, timeout_per_job: float) -> None:
        super().__init__(work, poll, timeout_per_job)
        self.h = h

    def _active(self) -> bool:
        return any(self.h.batch.list_jobs(jobQueue=QUEUE, jobStatus=s, maxResults=1)
                   .get("jobSummaryList") for s in ACTIVE)

    def settle(self) -> None:
        deadline = time.monotonic() + 600
        while self._active() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(SETTLE_SECONDS)  # the last jobs' stream records and events

    def wait_done(self, ids: list[str], deadline: float) -> tuple[float | None, dict[str, Any]]:
        """Poll DescribeJobs of the jobs not yet ended until all have; the time all were
        first seen ended (None on timeout) and every job's last document. The pause grows
        with the jobs still pending (one DescribeJobs per 100): ``--poll`` per call."""
        pending = list(ids)
        docs: dict[str, Any] = {}
        while pending and time.monotonic() < deadline:
            docs.update(self.h.describe(pending))
            pending = [j for j in pending if docs.get(j, {}).get("status") not in TERMINAL]
            if pending:
                time.sleep(min(1.0, self.poll * math.ceil(len(pending) / 100)))
        return (None if pending else time.time()), docs

    def _cmd(self, shell: str) -> dict[str, Any]:
        return {"containerOverrides": {"command": ["sh", "-c", shell]}}

    def single(self, n: int) -> dict[str, Any]:
        self.settle()
        c0, t0 = _cpu_now(), time.time()
        ids = [self.h.submit(TRUE_JOB, name="peer-single") for _ in range(n)]
        t1 = time.time()
        t2, docs = self.wait_done(ids, time.monotonic() + self.timeout(n))
        return {"n": n, "submit_s": t1 - t0, "total_s": None if t2 is None else t2 - t0,
                "cpu_busy_pct": _busy(c0, _cpu_now()), **_outcome(docs, ids)}

    def array(self, n: int) -> dict[str, Any]:
        self.settle()
        c0, t0 = _cpu_now(), time.time()
        parent = self.h.submit(TRUE_JOB, name="peer-array", arrayProperties={"size": n})
        t1 = time.time()
        deadline = time.monotonic() + self.timeout(n)
        t2 = parent_s = None
        doc: dict[str, Any] = {}
        while time.monotonic() < deadline:
            doc = self.h.describe([parent]).get(parent, {})
            summary = (doc.get("arrayProperties") or {}).get("statusSummary") or {}
            ended = int(summary.get("SUCCEEDED", 0)) + int(summary.get("FAILED", 0))
            if t2 is None and ended >= n:
                t2 = time.time()
                deadline = min(deadline, time.monotonic() + 60)  # for the parent's own end
            if doc.get("status") in TERMINAL:
                parent_s = time.time() - t0
                break
            time.sleep(self.poll)
        summary = (doc.get("arrayProperties") or {}).get("statusSummary") or {}
        return {"n": n, "submit_s": t1 - t0, "total_s": None if t2 is None else t2 - t0,
                "parent_s": parent_s, "parent_status": doc.get("status"),
                "status_summary": summary, "cpu_busy_pct": _busy(c0, _cpu_now())}

    def latency(self, n: int, rep: int) -> dict[str, Any]:
        self.settle()
        out: dict[str, list[float]] = {"from_call_s": [], "from_return_s": [], "submit_call_s": [],
                                       "recorded_s": [], "observed_s": []}
        for i in range(n):
            f = self.work / f"lat.batchplane.{rep}.{i}"
            f.unlink(missing_ok=True)
            tc = time.time()
            job = self.h.submit(TRUE_JOB, name="peer-latency", **self._cmd(f"date +%s.%N > {f}"))
            tr = time.time()
            deadline = time.monotonic() + 60
            ts = seen = None
            # The job's own timestamp, and what DescribeJobs shows, in one 5 ms loop.
            while (ts is None or seen is None) and time.monotonic() < deadline:
                if ts is None and f.exists() and f.stat().st_size:
                    ts = _read_ts(f)
                if seen is None:
                    status = self.h.batch.describe_jobs(jobs=[job])["jobs"][0]["status"]
                    if status in STARTED:
                        seen = time.time()
                time.sleep(FILE_POLL)
            _, docs = self.wait_done([job], time.monotonic() + 60)
            doc = docs.get(job, {})
            if ts is not None:
                out["from_call_s"].append(ts - tc)
                out["from_return_s"].append(ts - tr)
            if seen is not None:
                out["observed_s"].append(seen - tc)
            if doc.get("startedAt") and doc.get("createdAt"):
                out["recorded_s"].append((doc["startedAt"] - doc["createdAt"]) / 1000)
            out["submit_call_s"].append(tr - tc)
            _pause()
        return out

    def chain(self, n: int, rep: int) -> dict[str, Any]:
        f = self.work / f"chain.batchplane.{rep}"
        self.settle()
        f.write_text("")
        t0 = time.time()
        ids: list[str] = []
        for _ in range(n):
            dep = {"dependsOn": [{"jobId": ids[-1]}]} if ids else {}
            ids.append(self.h.submit(TRUE_JOB, name="peer-chain", **dep,
                                     **self._cmd(f"date +%s.%N >> {f}")))
        t1 = time.time()
        t2, docs = self.wait_done(ids, time.monotonic() + self.timeout(n))
        hops = _hops(f)
        recorded = [(docs[b]["startedAt"] - docs[a]["stoppedAt"]) / 1000
                    for a, b in zip(ids, ids[1:], strict=False)
                    if docs.get(a, {}).get("stoppedAt") and docs.get(b, {}).get("startedAt")]
        return {"n": n, "submit_s": t1 - t0, "total_s": None if t2 is None else t2 - t0,
                "ran": len(hops) + 1 if hops else len(f.read_text().split()),
                "hop_start_s": hops, "hop_stopped_started_s": recorded, **_outcome(docs, ids)}


def _outcome(docs: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    statuses = [docs.get(j, {}).get("status") for j in ids]
    done = [docs[j] for j in ids if docs.get(j, {}).get("stoppedAt")]
    recorded = None
    if done and len(done) == len(ids):
        recorded = (max(d["stoppedAt"] for d in done) - min(d["createdAt"] for d in done)) / 1000
    return {"succeeded": statuses.count("SUCCEEDED"), "failed": statuses.count("FAILED"),
            "recorded_s": recorded}


# -- Slurm: is it there -----------------------------------------------------------------


def slurm_problem(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """Why Slurm cannot be benchmarked now, or None if it answers."""
    missing = [t for t in SLURM_TOOLS if which(t) is None]
    if missing:
        return f"{', '.join(missing)} not found"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, check=False, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError) as e:
        return f"scontrol ping failed: {e}"
    if "UP" not in ping.stdout:
        return f"slurmctld is not responding ({(ping.stdout + ping.stderr).strip() or 'no answer'})"
    try:
        state = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True,
                               timeout=15, check=False).stdout.split()
    except (OSError, subprocess.SubprocessError) as e:
        return f"sinfo failed: {e}"
    if not state:
        return "sinfo shows no node"
    if not any(s.rstrip("*~#") in ("idle", "mix", "alloc") for s in state):
        return f"the node is {state[0]}, not idle"
    return None


def slurm_info() -> dict[str, Any]:
    keys = ("SLURM_VERSION", "SchedulerType", "SchedulerParameters", "SelectType", "MinJobAge",
            "Epilog", "MaxArraySize")
    out: dict[str, Any] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        text = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                              timeout=15, check=False).stdout
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() in keys:
                out[key.strip()] = value.strip()
        cpus = subprocess.run(["sinfo", "-h", "-N", "-o", "%c"], capture_output=True, text=True,
                              timeout=15, check=False).stdout.split()
        out["node_cpus"] = cpus[0] if cpus else None
    return out


# -- batchplane: `batchplane local up` in a subprocess ----------------------------------


def up_options() -> str:
    """`batchplane local up --help`, to see which options this checkout's stack has."""
    done = subprocess.run([sys.executable, "-m", "batchplane.cli", "local", "up", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    return done.stdout


def stack_options(help_text: str, *, store: str | None, memory: bool, data_dir: Path) -> list[str]:
    """Options for `batchplane local up`, given its --help: ``--store`` when asked for, and
    a fresh state each run: ``--memory`` when asked for, else an empty ``--data-dir`` (an
    embedded store on disk, as a user's default) when the stack has those options."""
    options: list[str] = []
    if store:
        if "--store" not in help_text:
            raise SystemExit("this checkout's `batchplane local up` has no --store option")
        options += ["--store", store]
    if memory:
        if "--memory" not in help_text:
            raise SystemExit("this checkout's `batchplane local up` has no --memory option")
        options.append("--memory")
    elif "--data-dir" in help_text and store != "dynamodb":  # dynamodb: the emulator's memory
        options += ["--data-dir", str(data_dir)]
    return options


class LocalUp:
    """``batchplane local up`` as a child process; stopped with SIGTERM (its clean stop)."""

    def __init__(self, log: Path, options: list[str] | None = None) -> None:
        self.log = log
        self.options = options or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def start(self, timeout: float = 120.0) -> LocalUp:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "batchplane.cli", "local", "up", "--port", str(port)]
        cmd += self.options
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"listening on (http://[A-Za-z0-9.\-]+:[0-9]+)", self.log.read_text(errors="replace"))
            if m:
                self.endpoint = m.group(1)
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"`batchplane local up` did not start:\n{tail}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def cpu_seconds(self) -> float | None:
        """User + system CPU so far of the stack's process and its worker process (its jobs
        are separate processes, not counted)."""
        return stack_cpu_seconds(self.proc.pid) if self.proc is not None else None


# -- the run ------------------------------------------------------------------------------


def _median(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def _p(xs: list[float], p: float) -> float | None:
    return round(percentile(xs, p) * 1000, 1) if xs else None


def _pooled(reps: list[dict[str, Any]], key: str) -> list[float]:
    return [x for r in reps for x in r.get(key, [])]


def _rate(reps: list[dict[str, Any]], key: str) -> float | None:
    return _median([r["n"] / r[key] if r.get(key) else None for r in reps])


def _seconds(reps: list[dict[str, Any]]) -> float | None:
    return _median([r.get("total_s") for r in reps])


def rows_from(raw: dict[str, dict[str, list[dict[str, Any]]]], counts: Counts) -> list[Row]:
    """The table from each side's raw results (``raw[side][workload]`` = one dict per rep)."""
    bp, sl = raw.get("batchplane", {}), raw.get("slurm", {})
    rows: list[Row] = []
    reps = f"median of {counts.reps}" if counts.reps > 1 else "1 rep"

    if bp.get("single") or sl.get("single"):
        w = f"{counts.single:,} `true` jobs, one by one"
        b, s = bp.get("single", []), sl.get("single", [])
        rows.append(Row(w, "submit rate (while submitting)", "jobs/s", "higher",
                        _rate(b, "submit_s"), _rate(s, "submit_s"), None,  # the target is the throughput below
                        f"{reps}; one boto3 client / one sbatch per job"))
        unfinished = [r for r in b + s if r.get("total_s") is None]
        rows.append(Row(w, "submit -> all done", "jobs/s", "higher",
                        _rate(b, "total_s"), _rate(s, "total_s"), THROUGHPUT_2X,
                        f"{reps}" + (f"; {len(unfinished)} rep(s) timed out" if unfinished else "")))
    # >= 2x the throughput is <= 1/2 the time
    array_target = Target(">= 2x Slurm's throughput (<= 1/2 its time)", "ratio_max", 0.5)
    for key, size, target in (("array", counts.array, array_target),
                              ("big_array", counts.big_array, HALF_THE_TIME)):
        if bp.get(key) or sl.get(key):
            b, s = bp.get(key, []), sl.get(key, [])
            n = counts.reps if key == "array" else counts.big_reps
            ours, theirs = _seconds(b), _seconds(s)
            note = (f"{'median of ' + str(n) if n > 1 else '1 rep'}; children/s: "
                    f"{fmt_value(size / ours if ours else None, '')} vs "
                    f"{fmt_value(size / theirs if theirs else None, '')}")
            rows.append(Row(f"{size:,}-child array of `true`", "submit -> all children done",
                            "s", "lower", ours, theirs, target, note))
    if bp.get("latency") or sl.get("latency"):
        w = "idle dispatch"
        b, s = bp.get("latency", []), sl.get("latency", [])
        n = len(_pooled(b, "submit_call_s")) or len(_pooled(s, "submit_call_s"))
        bf, sf = _pooled(b, "from_call_s"), _pooled(s, "from_call_s")
        rows.append(Row(w, "submit -> job's own timestamp, p50", "ms", "lower", _p(bf, 50),
                        _p(sf, 50), DISPATCH_50MS,
                        f"{n} jobs one at a time, pooled; the job runs `date +%s.%N > file`"))
        rows.append(Row(w, "submit -> job's own timestamp, p99", "ms", "lower", _p(bf, 99),
                        _p(sf, 99)))
        rec = _pooled(b, "recorded_s")
        rows.append(Row(w, "submit -> RUNNING as recorded, p50", "ms", "lower", _p(rec, 50), None,
                        DISPATCH_50MS, "batchplane: startedAt - createdAt (Slurm: no ms record)"))
        rows.append(Row(w, "submit -> RUNNING as recorded, p99", "ms", "lower", _p(rec, 99), None))
        obs = _pooled(b, "observed_s")
        rows.append(Row(w, "submit -> RUNNING observed, p50", "ms", "lower", _p(obs, 50), None,
                        note="batchplane: DescribeJobs polled every 5 ms shows RUNNING or later"))
        rows.append(Row(w, "submit -> RUNNING observed, p99", "ms", "lower", _p(obs, 99), None))
        rows.append(Row(w, "submit call (SubmitJob / sbatch), p50", "ms", "lower",
                        _p(_pooled(b, "submit_call_s"), 50), _p(_pooled(s, "submit_call_s"), 50)))
    if bp.get("chain") or sl.get("chain"):
        w = f"{counts.chain}-job dependency chain"
        b, s = bp.get("chain", []), sl.get("chain", [])
        rows.append(Row(w, "hop: a job's start -> the next one's, p50", "ms", "lower",
                        _p(_pooled(b, "hop_start_s"), 50), _p(_pooled(s, "hop_start_s"), 50),
                        NO_SLOWER_HOP, "from the timestamps the jobs append (bench.sh's hop); "
                                       "dependsOn / afterok"))
        rec = _pooled(b, "hop_stopped_started_s")
        rows.append(Row(w, "hop: A stoppedAt -> B startedAt, p50", "ms", "lower", _p(rec, 50),
                        None, note=f"batchplane's record; p99 {fmt_value(_p(rec, 99), 'ms')}"))
        rows.append(Row(w, "submit -> last job done", "s", "lower", _seconds(b), _seconds(s),
                        note=reps))
    return rows


WORKLOADS = ("single", "array", "big_array", "latency", "chain")


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    counts: Counts = args.counts
    problem = "--no-peer" if args.no_peer else slurm_problem()
    if problem and not args.no_peer:
        console.print(f"[bold yellow]{NOT_RUNNING}[/bold yellow] ({problem}); "
                      "running batchplane's side only")
    elif problem:
        console.print("--no-peer: batchplane's side only")
    meta = _meta(args, counts, problem)
    meta["slurm"] = {} if problem else slurm_info()
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {"batchplane": {}, "slurm": {}}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="peer-bench.", dir="/var/tmp") as tmp:
        work = Path(tmp)
        console.log("starting `batchplane local up` in a subprocess")
        options = stack_options(up_options(), store=args.store, memory=args.memory,
                                data_dir=work / "data")
        meta["local_up_options"] = options
        stack = LocalUp(work / "local-up.log", options).start()
        try:
            h = Harness()
            h.batch = client("batch", stack.endpoint)
            h._resources()  # the bench's queue, compute environment and job definitions
            bp = Batchplane(h, work, args.poll, args.timeout_per_job)
            warm = h.submit(name="warm-up")  # first invocations import and connect
            bp.wait_done([warm], time.monotonic() + 60)
            sides: list[Side] = [bp]
            if not problem:
                sides.append(Slurm(work, args.poll, args.timeout_per_job))
            cpu0 = stack.cpu_seconds()
            for name in WORKLOADS:
                size = counts.big_array if name == "big_array" else getattr(counts, name)
                if size <= 0:
                    continue
                reps = counts.big_reps if name == "big_array" else counts.reps
                for rep in range(1, reps + 1):
                    for side in sides:  # interleaved: batchplane, then Slurm, rep by rep
                        console.log(f"{name} x{size} rep {rep}/{reps}: {side.name}")
                        if name in ("latency", "chain"):
                            result = getattr(side, name)(size, rep)
                        else:
                            result = getattr(side, "array" if name == "big_array" else name)(size)
                        raw[side.name].setdefault(name, []).append(result)
                        console.log(f"  {_brief(name, result)}")
            cpu1 = stack.cpu_seconds()
            if cpu0 is not None and cpu1 is not None:
                meta["stack_cpu_seconds"] = round(cpu1 - cpu0, 1)
        finally:
            stack.stop()
    meta["seconds"] = round(time.perf_counter() - began, 1)
    meta["loadavg_end"] = round(os.getloadavg()[0], 2)
    rows = rows_from(raw, counts)
    return {"meta": meta, "rows": rows, "raw": raw}


def _brief(name: str, r: dict[str, Any]) -> str:
    if name in ("single", "array", "big_array", "chain"):
        total = r.get("total_s")
        text = f"submit {r['submit_s']:.1f} s, all done " + (
            f"{total:.1f} s ({r['n'] / total:.1f} jobs/s)" if total else "timed out")
        return text + (f", ran {r['ran']}" if "ran" in r else "")
    calls = r.get("from_call_s", [])
    return "job timestamps (ms): " + " ".join(f"{x * 1000:.0f}" for x in calls)


def _meta(args: argparse.Namespace, counts: Counts, problem: str | None) -> dict[str, Any]:
    return {
        "peer": args.peer,
        "peer_ran": problem is None,
        "peer_problem": problem,
        "mode": "quick" if args.quick else "full",
        **run_meta(),
        "counts": asdict(counts),
        "poll_seconds": args.poll,
    }


def write(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": result["meta"], "figures": [r.to_json() for r in result["rows"]],
           "raw": result["raw"]}
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    result = run(args, console)
    meta = result["meta"]
    title = (f"batchplane local vs Slurm ({meta['mode']}, {meta['started']}, {meta['cpus']} CPUs, "
             f"load {meta['loadavg_start']} -> {meta['loadavg_end']}; ratio = batchplane / Slurm)")
    render(result["rows"], console, title=title)
    if not meta["peer_ran"] and meta["peer_problem"] != "--no-peer":
        console.print(NOT_RUNNING)
    write(result, args.out)
    console.print(f"wrote {args.out} in {meta['seconds']} s")
    return 0
