"""What ``batchplane demo`` runs survives a ``kill -9`` of the stack in the middle: the Monte
Carlo pi array and its aggregate, submitted to a ``batchplane local up --data-dir``
subprocess, the stack killed with SIGKILL while the children run, started again on the
same data directory (and port: the running children keep their endpoint), and the
aggregate's estimate comes out as it does without the kill, from every child's partial
result (those put just before the kill too: S3 writes are journaled before they are
answered), with no job run twice.

The demo's own functions set it up (``demo._setup``: compute environment, queue, the
worker and aggregate definitions) and read its result (``demo._last_line``).
"""

from __future__ import annotations

import inspect
import json
import random
import socket
import uuid
from typing import TYPE_CHECKING, Any

from batchplane.local import demo

from .support import TERMINAL
from .test_restart import UpProcess, _statuses, _until

if TYPE_CHECKING:
    from pathlib import Path

SAMPLES = inspect.signature(demo.run).parameters["samples"].default
JOBS = inspect.signature(demo.run).parameters["jobs"].default
PATIENT = [{"name": "AWS_RETRY_MODE", "value": "standard"}, {"name": "AWS_MAX_ATTEMPTS", "value": "20"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _expected(jobs: int, samples: int) -> str:
    """The aggregate's line from every partial result: each child's darts are seeded by its
    index (demo.WORKER), so the estimate is known in advance."""
    hits = 0
    for index in range(jobs):
        rng = random.Random(index)
        hits += sum(rng.random() ** 2 + rng.random() ** 2 <= 1 for _ in range(samples))
    total = jobs * samples
    return f"pi ~= {4 * hits / total:.6f} from {total:,} darts in {jobs} partial results"


def _stream_text(logs: Any, attempt: dict[str, Any]) -> list[str]:
    stream = attempt["container"].get("logStreamName")
    if not stream:
        return []
    return [e["message"] for e in logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream)["events"]]


def _summary(batch: Any, array: str) -> dict[str, int]:
    doc = _statuses(batch, [array])[array]
    return (doc.get("arrayProperties") or {}).get("statusSummary") or {}


def test_the_demo_survives_a_kill_9_in_the_middle(tmp_path: Path) -> None:
    stack = UpProcess(tmp_path / "state", port=_free_port())
    stack.start()
    try:
        clients = demo._clients(stack.endpoint)
        batch, s3 = clients["batch"], clients["s3"]
        bucket = f"batchplane-demo-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        demo._setup(batch, bucket, SAMPLES)
        # As demo.run submits them, plus patience: the children reach S3 through the stack,
        # which is down for the restart's seconds. botocore's standard retry mode, 20
        # attempts (backoff up to 20 s, with jitter), outlasts that even on a loaded
        # machine; its default (legacy, 5) may not, and a child whose put_object failed
        # would be retried: a second run of its darts.
        patient = {"containerOverrides": {"environment": PATIENT}}
        array = batch.submit_job(jobName="pi-darts", jobQueue="demo", jobDefinition="pi-worker",
                                 arrayProperties={"size": JOBS}, **patient)["jobId"]
        aggregate = batch.submit_job(jobName="pi-aggregate", jobQueue="demo", jobDefinition="pi-aggregate",
                                     dependsOn=[{"jobId": array}], **patient)["jobId"]

        # In the middle: a child has started, not every child has ended, the aggregate waits.
        def middle() -> bool:
            s = _summary(batch, array)
            started = s.get("RUNNING", 0) + s.get("SUCCEEDED", 0) + s.get("FAILED", 0)
            return started >= 1 and s.get("SUCCEEDED", 0) + s.get("FAILED", 0) < JOBS
        _until(middle, timeout=120, what="the array's children under way")
        # No wait for a save: what a child put in S3 is journaled before it is answered
        # (local/journal.py), so the kill may come at any moment.
        children = [f"{array}:{i}" for i in range(JOBS)]
        before = _summary(batch, array)
        assert _statuses(batch, [aggregate])[aggregate]["status"] not in TERMINAL
    finally:
        stack.kill()

    stack.start()
    try:
        clients = demo._clients(stack.endpoint)
        batch, logs = clients["batch"], clients["logs"]
        _until(lambda: _statuses(batch, [aggregate])[aggregate]["status"] in TERMINAL,
               timeout=300, what="the aggregate to end after the restart")
        jobs = _statuses(batch, [array, aggregate, *children])
        ended = {i: (j["status"], j.get("statusReason"), len(j["attempts"])) for i, j in jobs.items()}
        assert {s for s, _, _ in ended.values()} == {"SUCCEEDED"}, (before, ended)
        # Nothing ran twice: one attempt each (a retry would be a second run of its darts).
        again = {i: [(a.get("statusReason"), a["container"].get("exitCode"), a["container"].get("reason"),
                      _stream_text(logs, a)) for a in j["attempts"]]
                 for i, j in jobs.items() if i != array and len(j["attempts"]) != 1}
        assert not again, f"ran twice (killed at {before}): {json.dumps(again, indent=1)}"
        # The estimate from every child's partial result, as without the kill.
        assert demo._last_line(logs, jobs[aggregate]) == _expected(JOBS, SAMPLES), before
    finally:
        stack.stop()
