"""One pass of the pure scheduling algorithm (``batchplane.domain.scheduling.plan``) over
many RUNNABLE candidates: time, and peak memory with tracemalloc (in a separate pass,
since tracing slows Python down several times)."""

from __future__ import annotations

import random
import statistics
import time
import tracemalloc
from typing import TYPE_CHECKING

from batchplane.domain import scheduling

if TYPE_CHECKING:
    from .report import Report

QUEUES = 10
CES_PER_QUEUE = 2
CE_MAX_VCPUS = 256
FARGATE_SHARE = 0.02  # of the candidates, the rest EC2


def inputs(candidates: int, seed: int = 6) -> tuple[
    list[scheduling.Queue], dict[str, list[scheduling.Candidate]]
]:
    """10 queues of different priority, two EC2 compute environments each, and
    ``candidates`` jobs spread evenly: 1-4 vCPUs, 2% asking for FARGATE (which no
    environment offers, so they get a reason instead of a place)."""
    rng = random.Random(seed)
    queues = [
        scheduling.Queue(name=f"q{i}", priority=rng.randint(1, 100),
                         environments=[f"ce{i}-{j}" for j in range(CES_PER_QUEUE)])
        for i in range(QUEUES)
    ]
    runnable: dict[str, list[scheduling.Candidate]] = {q.name: [] for q in queues}
    for n in range(candidates):
        q = queues[n % QUEUES]
        runnable[q.name].append(scheduling.Candidate(
            job_id=f"{n:08d}-0000-4000-8000-000000000000", queue=q.name,
            mvcpus=rng.choice((1000, 1000, 2000, 4000)),
            platform="FARGATE" if rng.random() < FARGATE_SHARE else "EC2",
        ))
    return queues, runnable


def environments() -> dict[str, scheduling.Environment]:
    return {
        f"ce{i}-{j}": scheduling.Environment(name=f"ce{i}-{j}", enabled=True, platform="EC2",
                                             max_mvcpus=CE_MAX_VCPUS * 1000)
        for i in range(QUEUES) for j in range(CES_PER_QUEUE)
    }


def run(report: Report, *, candidates: int, repeats: int) -> None:
    queues, runnable = inputs(candidates)
    times = []
    result = None
    for _ in range(repeats):
        envs = environments()  # plan() fills them up: a fresh, empty set each pass
        start = time.perf_counter()
        result = scheduling.plan(queues, envs, runnable)
        times.append(time.perf_counter() - start)
    assert result is not None
    envs = environments()
    tracemalloc.start()
    try:
        scheduling.plan(queues, envs, runnable)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    median = statistics.median(times)
    report.data["scheduler"] = {
        "candidates": candidates, "queues": QUEUES, "environments": QUEUES * CES_PER_QUEUE,
        "repeats": repeats, "seconds": [round(t, 4) for t in times],
        "median_seconds": round(median, 4), "peak_bytes": peak,
        "placements": len(result.placements), "reasons": len(result.reasons),
    }
    report.add("Scheduler (pure)", f"plan() over {candidates:,} RUNNABLE, {QUEUES} queues",
               round(median * 1000, 1), "ms",
               note=f"median of {repeats}; {len(result.placements):,} placed, "
                    f"{len(result.reasons):,} given a reason; "
                    f"{candidates / median / 1e6:.2f} M candidates/s")
    report.add("Scheduler (pure)", "peak memory allocated during the pass",
               round(peak / 2**20, 2), "MiB", note="tracemalloc, inputs excluded")
