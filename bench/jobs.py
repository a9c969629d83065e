"""Jobs end to end: dispatch latency, throughput, array fan-out, dependencies. Each
workload also records what it cost (meter and Lambda ledger deltas) for the cost section."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchplane import metering
from botocore.exceptions import ClientError

from .harness import STARTED, TERMINAL, TRUE_JOB, Invocations, client, diff
from .stats import p50_p99, summary_ms

if TYPE_CHECKING:
    from .harness import Harness
    from .report import Report

STALL_SECONDS = 10.0  # a job not started by then waits for the scheduler's 1-minute tick
PARENT_WAIT_SECONDS = 60.0  # after the last child ended, for the array parent's outcome
MIN_SAMPLES = 5  # taken even past the deadline
DISPATCH_TARGET_MS = 200  # recorded p50 of submit -> RUNNING


@dataclass
class Workload:
    """What ``jobs`` jobs cost: AWS calls and Lambda invocations, with wall time."""

    name: str
    jobs: int
    usage: metering.Usage
    invocations: dict[str, Invocations]
    seconds: float
    finished: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Capture:
    """Meter and ledger deltas over a ``with`` block."""

    def __init__(self, h: Harness) -> None:
        self.h = h

    def __enter__(self) -> Capture:
        self.usage0 = metering.snapshot()
        self.inv0 = self.h.ledger.snapshot()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.usage = metering.snapshot() - self.usage0
        self.invocations = diff(self.h.ledger.snapshot(), self.inv0)


def sequential(h: Harness, definition: str, n: int, *, name: str,
               deadline: float = float("inf")) -> tuple[Workload, list[dict[str, Any]]]:
    """``n`` jobs one after the other on an idle service: submit, poll DescribeJobs until
    the job has started, then until it ended, then until the service is quiet again.
    Returns the workload and one sample per job (client-observed start, docs)."""
    samples = []
    h.settle()
    with Capture(h) as cap:
        for i in range(n):
            if i >= MIN_SAMPLES and time.monotonic() > deadline:
                break  # quick mode on a busy machine: fewer samples, said in the table
            start = time.perf_counter()
            job_id = h.submit(definition, name=name)
            seen = None
            status = ""
            while time.perf_counter() - start < STALL_SECONDS:
                status = h.batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"]
                if status in STARTED:
                    seen = time.perf_counter() - start
                    break
                time.sleep(0.002)
            samples.append({"jobId": job_id, "observed_s": seen, "status": status})
            if seen is not None:
                h.wait([job_id], timeout=STALL_SECONDS, pause=0.01)
            h.settle()
    docs = h.describe(s["jobId"] for s in samples)
    for s in samples:
        s["doc"] = docs.get(s["jobId"], {})
    finished = sum(1 for s in samples if s["doc"].get("status") in TERMINAL)
    return Workload(name, len(samples), cap.usage, cap.invocations, cap.seconds, finished), samples


def dispatch(h: Harness, report: Report, n: int, deadline: float = float("inf")) -> Workload:
    workload, samples = sequential(h, TRUE_JOB, n, name="dispatch", deadline=deadline)
    n = len(samples)
    observed = [s["observed_s"] for s in samples if s["observed_s"] is not None]
    recorded = [
        (s["doc"]["startedAt"] - s["doc"]["createdAt"]) / 1000
        for s in samples if s["doc"].get("startedAt") and s["doc"].get("createdAt")
    ]
    stalled = sum(1 for s in samples if s["observed_s"] is None)
    obs, rec = summary_ms(observed), summary_ms(recorded)
    passes = workload.invocations.get("SchedulerFunction:stream")
    pass_ms = passes.seconds / passes.count * 1000 if passes and passes.count else float("nan")
    report.data["dispatch"] = {"jobs": n, "client_observed": obs, "recorded": rec,
                               "stalled": stalled, "stall_seconds": STALL_SECONDS,
                               "scheduler_stream_invocation_mean_ms": round(pass_ms, 1)}
    target_ok = rec.get("p50_ms") is not None and rec["p50_ms"] < DISPATCH_TARGET_MS
    report.add("Dispatch", "submit -> RUNNING, recorded p50 / p99",
               p50_p99(rec),
               note=f"startedAt - createdAt of {rec.get('n', 0)} jobs, one at a time, idle "
                    f"capacity; a stream-triggered scheduler invocation takes {pass_ms:.0f} ms",
               target=f"p50 < {DISPATCH_TARGET_MS} ms", ok=target_ok)
    report.add("Dispatch", "submit -> RUNNING, client-observed p50 / p99",
               p50_p99(obs),
               note="SubmitJob sent -> DescribeJobs (polled every ~2 ms) shows RUNNING or later")
    if stalled:
        report.add("Dispatch", "jobs not started within 10 s", stalled,
                   note="left to the scheduler's 1-minute tick: a lost stream wake-up")
    return workload


def throughput(h: Harness, report: Report, n: int, *, timeout: float) -> Workload:
    """``n`` trivial jobs submitted by 4 client threads at once; jobs/s until all ended.
    Within ``timeout`` (from the first SubmitJob): on a machine too busy for that, fewer
    jobs are submitted (for half of the time) and what has not ended by then is reported."""
    h.settle()
    ids: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter()
    stop_submitting = start + 0.5 * timeout

    def submitter() -> None:
        while time.perf_counter() < stop_submitting:
            with lock:
                if len(ids) >= n:
                    return
                i = len(ids)
                ids.append("")
            job_id = h.submit(TRUE_JOB, name=f"tp-{i}")
            with lock:
                ids[i] = job_id

    with Capture(h) as cap:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in range(4):
                pool.submit(submitter)
        submitted = time.perf_counter() - start
        ids = [i for i in ids if i]
        # Polled once a second: DescribeJobs of many ids is not free locally, and API calls
        # run one at a time there (see docs/benchmarks.md).
        docs = h.wait(ids, timeout=max(1.0, start + timeout - time.perf_counter()), pause=1.0)
        ended = time.perf_counter() - start
        finished = [d for d in docs.values() if d.get("status") in TERMINAL]
        h.settle(timeout=15.0 if len(finished) == len(ids) else 2.0)
    succeeded = sum(1 for d in finished if d["status"] == "SUCCEEDED")
    service_seconds = 0.0
    if finished:
        first = min(d["createdAt"] for d in docs.values())
        service_seconds = (max(d.get("stoppedAt", 0) for d in finished) - first) / 1000
    rate = len(finished) / ended if ended else 0.0
    recorded_rate = len(finished) / service_seconds if service_seconds else 0.0
    report.data["throughput"] = {
        "jobs_asked": n, "jobs": len(ids), "finished": len(finished), "succeeded": succeeded,
        "submit_seconds": round(submitted, 3), "client_seconds": round(ended, 3),
        "recorded_seconds": round(service_seconds, 3), "jobs_per_second": round(rate, 2),
        "recorded_jobs_per_second": round(recorded_rate, 2),
        "submit_per_second": round(len(ids) / submitted, 2) if submitted else None,
        "timeout_seconds": round(timeout, 1),
    }
    note = (f"{len(ids)} x `true` submitted by 4 threads; first SubmitJob -> last one ended "
            f"({ended:.1f} s)")
    if len(ids) < n:
        note += f"; {n} asked, the time budget allowed {len(ids)}"
    if len(finished) < len(ids):
        note += f"; only {len(finished)} ended within {timeout:.0f} s"
    report.add("Throughput", "jobs to SUCCEEDED per second", round(rate, 1), "jobs/s", note=note)
    report.add("Throughput", "SubmitJob calls per second",
               round(len(ids) / submitted, 1) if submitted else None, "calls/s",
               note=f"{succeeded} SUCCEEDED; as recorded (first createdAt -> last stoppedAt, "
                    f"{service_seconds:.1f} s): {recorded_rate:.1f} jobs/s")
    return Workload("burst", len(ids), cap.usage, cap.invocations, cap.seconds, len(finished))


def arrays(h: Harness, report: Report, size: int, *, timeout: float) -> Workload:
    """Array fan-out: time until every child ended, and the parent's outcome."""
    h.settle()
    with Capture(h) as cap:
        start = time.perf_counter()
        parent = h.submit(TRUE_JOB, name="array", arrayProperties={"size": size})
        children_s = parent_s = None
        doc: dict[str, Any] = {}
        deadline = start + timeout
        while time.perf_counter() < deadline:
            doc = h.describe([parent]).get(parent, {})
            summary = (doc.get("arrayProperties") or {}).get("statusSummary") or {}
            ended = int(summary.get("SUCCEEDED", 0)) + int(summary.get("FAILED", 0))
            if children_s is None and ended >= size:
                children_s = time.perf_counter() - start
                # The parent follows soon: once the scheduler has read its children's ends
                # from the stream, which lags behind a large array.
                deadline = min(deadline, time.perf_counter() + PARENT_WAIT_SECONDS)
            if doc.get("status") in TERMINAL:
                parent_s = time.perf_counter() - start
                break
            time.sleep(0.1)
        h.settle()
    summary = (doc.get("arrayProperties") or {}).get("statusSummary") or {}
    transitions = _transitions(h, parent)
    report.data["arrays"] = {
        "supported": True, "size": size, "children_seconds": children_s,
        "parent_seconds": parent_s, "parent_status": doc.get("status"),
        "statusSummary": summary, "step_functions_transitions": transitions,
    }
    if children_s is not None:
        report.add("Array fan-out", f"array of {size}: children ended per second",
                   round(size / children_s, 1), "children/s",
                   note=f"SubmitJob -> every child SUCCEEDED/FAILED: {children_s:.1f} s")
    else:
        report.add("Array fan-out", f"array of {size}: children ended per second", "timed out",
                   note=f"after {timeout:.0f} s: {summary}")
    report.add("Array fan-out", "parent done after",
               round(parent_s, 1) if parent_s is not None else f"still {doc.get('status')}",
               "s" if parent_s is not None else "",
               note="the parent's SUCCEEDED/FAILED, from SubmitJob" if parent_s is not None
               else f"not terminal {timeout if children_s is None else PARENT_WAIT_SECONDS:.0f} s after its children")
    return Workload("array", size, cap.usage, cap.invocations, cap.seconds,
                    int(summary.get("SUCCEEDED", 0)) + int(summary.get("FAILED", 0)),
                    extra={"sfn_transitions": transitions or 0})


def _transitions(h: Harness, parent: str) -> int | None:
    """State transitions of the array's workflow executions (moto runs the ASL), counted
    as Standard workflows bill them: one per state entered."""
    arn = os.environ.get("BATCHPLANE_ARRAY_STATE_MACHINE")
    if not arn:
        return None
    sfn = client("stepfunctions", h.stack.endpoint)
    try:
        runs = sfn.list_executions(stateMachineArn=arn)["executions"]
        total = 0
        for run in runs:
            if not run["name"].startswith(parent):
                continue
            events = sfn.get_execution_history(executionArn=run["executionArn"],
                                               maxResults=1000)["events"]
            total += sum(1 for e in events if e["type"].endswith("StateEntered"))
        return total
    except ClientError:
        return None


def _pairs(h: Harness, pairs: int, *, depend: bool,
           deadline: float) -> tuple[Workload, list[tuple[dict, dict]]]:
    samples = []
    with Capture(h) as cap:
        for i in range(pairs):
            if i and time.monotonic() > deadline:
                break
            first = h.submit(TRUE_JOB, name="pair-a")
            extra = {"dependsOn": [{"jobId": first}]} if depend else {}
            second = h.submit(TRUE_JOB, name="pair-b", **extra)
            docs = h.wait([first, second], timeout=STALL_SECONDS * 3, pause=0.05)
            h.settle()
            samples.append((docs.get(first, {}), docs.get(second, {})))
    name = "dependency" if depend else "pair"
    done = sum(1 for a, b in samples if a.get("status") in TERMINAL and b.get("status") in TERMINAL)
    return Workload(name, len(samples), cap.usage, cap.invocations, cap.seconds, done), samples


def dependencies(h: Harness, report: Report, pairs: int,
                 deadline: float = float("inf")) -> tuple[Workload, Workload]:
    """Pairs A -> B (B dependsOn A): how long B waits after A ended. For the cost meter,
    the same number of pairs without the dependency too: an edge costs the difference."""
    h.settle()
    # Half the time each; the same number of pairs in both, so that they compare.
    control, _ = _pairs(h, pairs, depend=False,
                        deadline=time.monotonic() + (deadline - time.monotonic()) / 2)
    edges, samples = _pairs(h, control.jobs, depend=True, deadline=float("inf"))
    release = [(b["startedAt"] - a["stoppedAt"]) / 1000
               for a, b in samples if b.get("startedAt") and a.get("stoppedAt")]
    stats = summary_ms(release)
    report.data["dependencies"] = {"supported": True, "pairs": edges.jobs, "release": stats}
    report.add("Dependencies", "release: A stoppedAt -> B startedAt, p50 / p99",
               p50_p99(stats) if release else "no pair finished",
               note=f"{len(release)} of {edges.jobs} pairs, one pair at a time")
    return edges, control
