"""A job's output through the unmodified boto3 clients: whatever it prints, the job ends
with its exit code and CloudWatch Logs holds its whole log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .support import Env, uniq, wait_done

MAX_EVENT_BYTES = 262_144 - 26  # CloudWatch Logs' largest event, less PutLogEvents' 26 bytes

# Its working directory, empty lines, lines longer than one event (ASCII and two-byte
# characters), bytes that are not UTF-8, 100,000 lines, a last line without its newline.
NOISY = r"""
pwd
printf 'first\n\n\nafter two empty lines\n'
head -c 300000 /dev/zero | tr '\0' x; echo
yes é | head -n 150000 | tr -d '\n'; echo
printf 'bad \377\376 bytes\n'
seq 1 100000
printf 'no newline at the end'
exit 3
"""


def _messages(logs: Any, stream: str) -> list[str]:
    messages: list[str] = []
    token: str | None = None
    while True:
        page = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True,
                                   **({"nextToken": token} if token else {}))
        messages += [e["message"] for e in page["events"]]
        if not page["events"] or page["nextForwardToken"] == token:
            return messages
        token = page["nextForwardToken"]


def test_a_job_printing_anything_ends_with_its_exit_code_and_its_whole_log(batch: Any, logs: Any, env: Env) -> None:
    job_id = batch.submit_job(
        jobName=uniq("noisy"), jobQueue=env.queue, jobDefinition=env.jobdef,
        containerOverrides={"command": ["sh", "-c", NOISY]},
    )["jobId"]
    job = wait_done(batch, job_id, timeout=60)
    assert job["status"] == "FAILED", job
    assert job["container"]["exitCode"] == 3
    assert job["statusReason"] == "Essential container in task exited"

    cwd, *messages = _messages(logs, job["container"]["logStreamName"])
    # An empty line is one space (CloudWatch Logs takes no empty message); a long line is
    # split at a character boundary into events CloudWatch Logs takes; each invalid byte
    # is U+FFFD, as CloudWatch Logs stores it.
    assert messages == [
        "first", " ", " ", "after two empty lines",
        "x" * MAX_EVENT_BYTES, "x" * (300_000 - MAX_EVENT_BYTES),
        "é" * (MAX_EVENT_BYTES // 2), "é" * (150_000 - MAX_EVENT_BYTES // 2),
        "bad \ufffd\ufffd bytes",
        *(str(n) for n in range(1, 100_001)),
        "no newline at the end",
    ]
    # The attempt's working directory went with it, as a container's filesystem does.
    assert Path(cwd).name.startswith("batchplane-") and not Path(cwd).exists()
