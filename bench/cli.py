"""``python -m bench``: run the sections asked for, print one table, write the JSON."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from .harness import ROOT, Harness
from .report import Report

if TYPE_CHECKING:
    from .jobs import Workload

SECTIONS = ("scheduler", "coldstart", "api", "peer", "dispatch", "throughput", "arrays",
            "dependencies", "cost")
STACK_SECTIONS = set(SECTIONS) - {"scheduler", "coldstart"}
COST_ARRAY_SIZE = 10  # children of the array the cost meter prices
COST_PAIRS = 5  # dependency pairs the cost meter prices
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


@dataclass(frozen=True)
class Sizes:
    api_calls: int
    dispatch_jobs: int
    retry_jobs: int
    throughput_jobs: int
    throughput_timeout: float  # from the first SubmitJob; what is left unfinished is reported
    array_size: int
    array_timeout: float
    dependency_pairs: int
    scheduler_candidates: int
    scheduler_repeats: int
    import_repeats: int


QUICK = Sizes(api_calls=20, dispatch_jobs=8, retry_jobs=2, throughput_jobs=100,
              throughput_timeout=60, array_size=10, array_timeout=20, dependency_pairs=2,
              scheduler_candidates=100_000, scheduler_repeats=3, import_repeats=0)
QUICK_BUDGET = 95.0  # seconds from start: stack sections shrink their samples to fit
STOP_RESERVE = 6.0  # seconds kept for stopping the stack and printing
FULL = Sizes(api_calls=300, dispatch_jobs=100, retry_jobs=10, throughput_jobs=1000,
             throughput_timeout=900, array_size=1000, array_timeout=600, dependency_pairs=10,
             scheduler_candidates=100_000, scheduler_repeats=10, import_repeats=7)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="batchplane benchmarks and cost meter (see docs/benchmarks.md)",
        epilog="python -m bench --peer slurm [--quick] ...: side by side with a running Slurm "
               "(python -m bench --peer slurm --help); python -m bench --restart [--jobs N]: "
               "kill -9 the stack at random moments of a run; python -m bench --big-array N: "
               "one array of N children to its end, with the stack's memory")
    p.add_argument("--quick", action="store_true",
                   help="small samples, finishes within two minutes (default: full run)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"comma-separated sections to run (default all): {','.join(SECTIONS)}")
    p.add_argument("--sam-build-dir", type=Path, default=None,
                   help="a `sam build` output directory, to report function and layer sizes")
    p.add_argument("--no-sam-build", action="store_true",
                   help="full mode: do not run `sam build` when --sam-build-dir is not given")
    p.add_argument("--jobs", type=int, default=None, help="throughput: number of jobs")
    p.add_argument("--array-size", type=int, default=None,
                   help="arrays: children of the array job (quick 10, full 1,000; up to 100,000)")
    p.add_argument("--array-timeout", type=float, default=None,
                   help="arrays: seconds to wait for every child (quick 20, full 600)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output ({DEFAULT_OUT})")
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def _git() -> dict[str, str | bool]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, check=False, text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT,
                                    capture_output=True, check=False, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": dirty}


def run_meta() -> dict[str, object]:
    """What every benchmark run records of when, where and from which commit it ran."""
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": round(os.getloadavg()[0], 2),
        "git": _git(),
    }


def _meta(args: argparse.Namespace, sizes: Sizes) -> dict[str, object]:
    return {
        "mode": "quick" if args.quick else "full",
        "sections": args.sections,
        **run_meta(),
        "versions": {p: version(p) for p in ("boto3", "moto", "aws-lambda-powertools")},
        "sizes": sizes.__dict__,
    }


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if any(a == "--peer" or a.startswith("--peer=") for a in given):
        from .peer import main as peer_main  # noqa: PLC0415 - a run of its own: its module is imported only when asked for

        return peer_main(given)
    # Runs of their own, each on `batchplane local up` in a subprocess (docs/benchmarks.md).
    if any(a == "--big-array" or a.startswith("--big-array=") for a in given):
        from .bigarray import main as big_array_main  # noqa: PLC0415 - a run of its own: its module is imported only when asked for

        return big_array_main(given)
    if any(a == "--restart" for a in given):
        from .restart import main as restart_main  # noqa: PLC0415 - a run of its own: its module is imported only when asked for

        return restart_main(given)
    args = parse(argv)
    sizes = QUICK if args.quick else FULL
    asked = {"throughput_jobs": args.jobs, "array_size": args.array_size, "array_timeout": args.array_timeout}
    sizes = dataclasses.replace(sizes, **{k: v for k, v in asked.items() if v})
    # A pipe gets 80 columns by default, too narrow for the notes.
    console = Console(width=None if sys.stdout.isatty() else 160)
    logging.basicConfig(level=logging.ERROR)
    report = Report(meta=_meta(args, sizes))
    began = time.perf_counter()
    end = time.monotonic() + QUICK_BUDGET - STOP_RESERVE if args.quick else float("inf")
    wanted = set(args.sections)

    # Without the stack first: its background threads would slow the subprocesses down.
    if "scheduler" in wanted:
        from . import scheduler  # noqa: PLC0415 - a section's modules are imported only when it runs

        console.log("scheduler: one pass of plan()")
        scheduler.run(report, candidates=sizes.scheduler_candidates,
                      repeats=sizes.scheduler_repeats)
    if "coldstart" in wanted:
        from . import coldstart  # noqa: PLC0415 - a section's modules are imported only when it runs

        console.log("cold start: handler imports in fresh interpreters")
        coldstart.run_imports(report, sizes.import_repeats,
                              deadline=time.monotonic() + 15 if args.quick else float("inf"))
        build = not args.quick and not args.no_sam_build
        coldstart.run_sizes(report, args.sam_build_dir, build=build)

    # Speed on local mode's default store; the cost meter prices DynamoDB requests, so its
    # workloads run again (small, figures not in the table) on --store dynamodb.
    if wanted & STACK_SECTIONS - {"cost"}:
        _with_stack(report, wanted - {"cost"}, sizes, console, end, store="sqlite")
    if "cost" in wanted:
        _with_stack(report, {"cost"}, sizes, console, end, store="dynamodb",
                    for_cost=wanted & {"arrays", "dependencies"})

    report.meta["seconds"] = round(time.perf_counter() - began, 1)
    report.meta["loadavg_end"] = round(os.getloadavg()[0], 2)
    report.render(console)
    report.write(args.out)
    console.print(f"wrote {args.out} in {report.meta['seconds']} s")
    return 0


def _with_stack(report: Report, wanted: set[str], sizes: Sizes, console: Console,
                end: float, *, store: str, for_cost: set[str] | None = None) -> None:
    """The sections on a local stack on ``store``; ``end`` is when quick mode must be done,
    and each section gets a deadline that leaves ``keep`` seconds to those after it.
    ``for_cost``: sections run only for the cost meter's workloads (small, their figures
    left out of the report)."""
    from . import api, cost, jobs  # noqa: PLC0415 - a section's modules are imported only when it runs

    def until(seconds: float, keep: float) -> float:
        return min(time.monotonic() + seconds, end - keep)

    console.log(f"starting the local stack (--store {store}, handlers in-process, cost meter on)")
    h = Harness(store).start()
    for_cost = for_cost or set()
    workloads: dict[str, Workload] = {}
    suffix = "" if store == "sqlite" else f"_{store}"
    items = report.data.setdefault(f"table_items_at_start{suffix}", {})

    def section(name: str, text: str) -> None:
        items[name] = h.table_items()
        console.log(f"{text} ({items[name]} items in the table)")

    try:
        warm = h.submit(name="warm-up")  # first invocations import and connect
        h.wait([warm], timeout=30)
        h.settle()
        # Quick mode's budget goes first to what the issue asks for (API, dispatch, cost,
        # throughput), then to arrays and dependencies.
        if wanted & {"api", "peer"}:
            section("api", "API latency" + (" and the moto peer" if "peer" in wanted else ""))
            api.run(h, report, calls=sizes.api_calls, api="api" in wanted, peer="peer" in wanted,
                    deadline=until(10, 62))
        if "dispatch" in wanted or "cost" in wanted:
            n = sizes.dispatch_jobs if "dispatch" in wanted else 5
            section("dispatch", f"dispatch latency: {n} jobs one at a time")
            if "dispatch" in wanted:
                workloads["isolated"] = jobs.dispatch(h, report, n, deadline=until(10, 52))
            else:
                workloads["isolated"], _ = jobs.sequential(h, jobs.TRUE_JOB, n, name="cost",
                                                           deadline=until(10, 52))
        if "cost" in wanted:
            section("retry", f"retries: {sizes.retry_jobs} jobs whose first attempt exits 1")
            workloads["retry"] = cost.retry(h, sizes.retry_jobs, deadline=until(6, 46))
        tick = cost.idle_tick(h) if "cost" in wanted else None  # on an idle service
        if "throughput" in wanted or "cost" in wanted:
            n = sizes.throughput_jobs if "throughput" in wanted else 50
            section("throughput", f"throughput: {n} jobs at once")
            out = report if "throughput" in wanted else Report()  # cost only: not in the table
            timeout = max(20.0, min(sizes.throughput_timeout, end - time.monotonic() - 10))
            workloads["burst"] = jobs.throughput(h, out, n, timeout=timeout)
        if "arrays" in wanted or "arrays" in for_cost:
            size = sizes.array_size if "arrays" in wanted else COST_ARRAY_SIZE
            section("arrays", f"array fan-out: {size} children")
            timeout = max(8.0, min(sizes.array_timeout, end - time.monotonic() - 4))
            workloads["array"] = jobs.arrays(h, report if "arrays" in wanted else Report(), size, timeout=timeout)
        if "dependencies" in wanted or "dependencies" in for_cost:
            pairs = sizes.dependency_pairs if "dependencies" in wanted else COST_PAIRS
            section("dependencies", f"dependencies: {pairs} pairs A -> B")
            workloads["dependency"], workloads["pair"] = jobs.dependencies(
                h, report if "dependencies" in wanted else Report(), pairs, deadline=until(12, 0))
        if "cost" in wanted and tick is not None:
            section("cost", "cost meter")
            cost.run(h, report, workloads, tick=tick, polls=workloads.get("isolated"),
                     sample_job=_a_finished_job(h))
        report.data[f"lambda_invocations_total{suffix}"] = {
            name: fn.invocations for name, fn in h.stack.router.functions.items()}
    finally:
        h.stop()


def _a_finished_job(h: Harness) -> str | None:
    out = h.batch.list_jobs(jobQueue="bench-q", jobStatus="SUCCEEDED", maxResults=1)
    found = out.get("jobSummaryList") or []
    return found[0]["jobId"] if found else None
