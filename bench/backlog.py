"""``python -m bench.backlog``: SubmitJob while a queue holds a backlog of RUNNABLE jobs.

A user with a small compute environment submits more than it can run: every new job
wakes the scheduler, whose round lists the queue's RUNNABLE window (up to 500 jobs) and
finds no room. This runs ``batchplane local up`` (a fresh data directory, as a user runs
it), points one queue at a DISABLED compute environment so that nothing runs, submits
``--jobs`` trivial jobs one by one and prints, for each ``--segment`` of them: the submit
rate, the SubmitJob round trip p50, and the stack's CPU per SubmitJob (its process's and
its worker process's, which serves the Batch API). The figures to compare are the
segments' against each other in one run (how the cost grows with the backlog), and one
checkout's against another's on the same machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from .harness import CE, Harness, client
from .peer import LocalUp, stack_options, up_options
from .stats import percentile


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.backlog", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=1000, help="jobs to submit (1000)")
    p.add_argument("--segment", type=int, default=200, help="jobs a printed line (200)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-backlog.", dir="/var/tmp") as work:
        options = stack_options(up_options(), store=None, memory=False, data_dir=Path(work) / "data")
        up = LocalUp(Path(work) / "local-up.log", options).start()
        try:
            run(up, args.jobs, args.segment)
        finally:
            up.stop()
    return 0


def run(up: LocalUp, jobs: int, segment: int) -> None:
    h = Harness()
    h.batch = client("batch", up.endpoint)
    h._resources()  # the bench's queue, compute environment and job definitions
    h.batch.update_compute_environment(computeEnvironment=CE, state="DISABLED")
    print(f"{jobs} jobs onto a queue whose compute environment is DISABLED (nothing runs), "
          f"{segment} a line; stack: {up.endpoint}")
    submitted = 0
    while submitted < jobs:
        n = min(segment, jobs - submitted)
        round_trips = []
        cpu0, t0 = up.cpu_seconds(), time.perf_counter()
        for _ in range(n):
            start = time.perf_counter()
            h.submit(name="backlog")
            round_trips.append(time.perf_counter() - start)
        wall, cpu1 = time.perf_counter() - t0, up.cpu_seconds()
        cpu = f"{(cpu1 - cpu0) * 1000 / n:.1f} ms" if cpu0 is not None and cpu1 is not None else "-"
        p50 = percentile(round_trips, 50) * 1000
        print(f"  backlog {submitted:>6,} -> {submitted + n:>6,}: {n / wall:6.1f} submits/s, "
              f"SubmitJob p50 {p50:5.1f} ms, stack CPU (with its worker) {cpu} a SubmitJob", flush=True)
        submitted += n


if __name__ == "__main__":
    raise SystemExit(main())
