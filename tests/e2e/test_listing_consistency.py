"""ListJobs must not list one job twice in one answer.

With ``filters`` (and without ``jobStatus``) ListJobs reads the status partitions
JOBS#<queue>#<status> one after another (SUBMITTED, PENDING, RUNNABLE, ...). A job that
moves forward while the call is between two partitions is read from both; ``Jobs.list``
keeps the first. (Across pages of one listing a job can still appear twice, as it can in
AWS Batch's eventually consistent listing.)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from .support import Env, uniq


def test_list_jobs_never_repeats_a_job(batch: Any, env: Env) -> None:
    """One thread submits jobs to a held queue (each moves SUBMITTED -> RUNNABLE right
    away) while another lists them, until one answer repeats a job or the deadline passes."""
    prefix = uniq("moving")
    repeated: list[str] = []
    submitted: list[str] = []
    stop = threading.Event()

    def lister() -> None:
        while not stop.is_set():
            listed = batch.list_jobs(
                jobQueue=env.held_queue, filters=[{"name": "JOB_NAME", "values": [f"{prefix}*"]}]
            )
            counts = Counter(s["jobId"] for s in listed["jobSummaryList"])
            repeated.extend(job_id for job_id, n in counts.items() if n > 1)

    thread = threading.Thread(target=lister, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline and not repeated and len(submitted) < 60:
            submitted.append(
                batch.submit_job(
                    jobName=f"{prefix}-{len(submitted)}",
                    jobQueue=env.held_queue,
                    jobDefinition=env.jobdef,
                )["jobId"]
            )
    finally:
        stop.set()
        thread.join(timeout=30)
    for job_id in submitted:
        batch.cancel_job(jobId=job_id, reason="listing consistency check done")
    assert not repeated, f"ListJobs listed {sorted(set(repeated))} twice in one answer"
