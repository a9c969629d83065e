"""The ``batchplane`` job commands (cli_jobs.py): the real entry point in processes of its
own, pointed at the stack by ``--endpoint-url`` or AWS_ENDPOINT_URL alone.

Each start of the command costs about a second (boto3's import): independent commands
run side by side."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from .support import Env, cli_env, uniq, wait_done, wait_status

UUID_LENGTH = 36


def batchplane(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    command = Path(sys.executable).with_name("batchplane")
    return subprocess.Popen([str(command), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_all(*commands: list[str], env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """Runs the commands side by side; their results in order."""
    procs = [batchplane(*args, env=env) for args in commands]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args} -> {result.returncode}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def local(endpoint: str) -> dict[str, str]:
    """The environment of a client that knows the stack by AWS_ENDPOINT_URL only."""
    return cli_env(AWS_ENDPOINT_URL=endpoint)


@pytest.fixture(scope="module")
def held_queue(batch: Any, env: Env) -> str:
    """A queue of this module's own whose jobs stay RUNNABLE (its only CE is DISABLED)."""
    name = uniq("cli-held")
    batch.create_job_queue(jobQueueName=name, priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env.held_ce}])  # fmt: skip
    return name


def test_submit_wait_prints_the_log_and_exits_with_the_job(endpoint: str, env: Env) -> None:
    submit = ["submit", "--endpoint-url", endpoint, "--queue", env.queue, "--definition", env.jobdef, "--wait"]
    passed, failed = run_all(
        [*submit, "--name", "cli-ok", "--command", "sh", "-c", "echo hello from the cli"],
        [*submit, "--name", "cli-fails", "--command", "sh", "-c", "echo about to fail; exit 3"],
        env=cli_env(),  # --endpoint-url alone
    )
    ok(passed)
    job_id, *lines = passed.stdout.splitlines()
    assert len(job_id) == UUID_LENGTH and lines == ["hello from the cli"], passed.stdout
    assert "SUCCEEDED" in passed.stderr
    assert failed.returncode == 3, failed.stderr
    assert failed.stdout.splitlines()[1:] == ["about to fail"]
    assert "FAILED" in failed.stderr and "exit code 3" in failed.stderr


def test_logs_follow_prints_lines_while_the_job_runs(batch: Any, local: dict[str, str], env: Env,
                                                     tmp_path: Path) -> None:
    """The job prints, waits for the test to let it go (no fixed sleep on either side),
    prints again: ``logs -f`` shows the first line while the job is still RUNNING."""
    gate = tmp_path / "go-on"
    script = f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second"
    job_id = batch.submit_job(jobName="cli-follow", jobQueue=env.queue, jobDefinition=env.jobdef,
                              containerOverrides={"command": ["sh", "-c", script]})["jobId"]  # fmt: skip
    follow = batchplane("logs", "-f", job_id, env=local)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in follow.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=30) == "first"
        assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNING"
        assert follow.poll() is None  # still following
        gate.touch()
        assert lines.get(timeout=30) == "second"
        assert follow.wait(timeout=30) == 0, follow.stderr.read()
    finally:
        follow.kill()
    assert wait_done(batch, job_id)["status"] == "SUCCEEDED"


def test_listing_describe_and_cancel(batch: Any, local: dict[str, str], env: Env, held_queue: str) -> None:
    job_id = batch.submit_job(jobName="cli-held", jobQueue=held_queue, jobDefinition=env.jobdef)["jobId"]
    wait_status(batch, job_id, "RUNNABLE")
    in_queue, every_queue, described, queues, envs = run_all(
        ["jobs", "--queue", held_queue, "--output", "json"],
        ["ls", "--status", "RUNNABLE", "--output", "json"],
        ["describe", job_id, "--output", "json"],
        ["queues", held_queue, "--output", "json"],
        ["envs", "--output", "json"],
        env=local,
    )
    (listed,) = json.loads(ok(in_queue).stdout)
    assert (listed["jobId"], listed["jobName"], listed["status"], listed["jobQueue"]) == (
        job_id, "cli-held", "RUNNABLE", held_queue)  # fmt: skip
    assert job_id in [j["jobId"] for j in json.loads(ok(every_queue).stdout)]
    assert json.loads(ok(described).stdout)["jobId"] == job_id
    (shown,) = json.loads(ok(queues).stdout)
    assert shown["jobQueueName"] == held_queue
    assert [j["jobArn"] for j in shown["snapshot"]["frontOfQueue"]["jobs"]] == [listed["jobArn"]]
    assert env.ec2_ce in [ce["computeEnvironmentName"] for ce in json.loads(ok(envs).stdout)]

    (cancel,) = run_all(["cancel", job_id, "--reason", "not needed"], env=local)
    assert "cancel requested" in ok(cancel).stderr
    job = wait_done(batch, job_id)
    assert (job["status"], job["statusReason"], job["isCancelled"]) == ("FAILED", "not needed", True)


@pytest.mark.usefixtures("batch")
def test_wait_counts_every_child_of_arrays(local: dict[str, str], env: Env) -> None:
    submit = ["submit", "--queue", env.queue, "--definition", env.jobdef, "--array-size", "3"]
    passing, failing = run_all(
        [*submit, "--name", "cli-array"],
        [*submit, "--name", "cli-array-fails", "--command", "sh", "-c", 'test "$AWS_BATCH_JOB_ARRAY_INDEX" != 1'],
        env=local,
    )
    passing_id, failing_id = ok(passing).stdout.strip(), ok(failing).stdout.strip()
    waited, waited_ok = run_all(["wait", passing_id, failing_id], ["wait", passing_id], env=local)
    assert waited.returncode == 1, waited.stderr  # a child failed
    assert ok(waited_ok).stdout.splitlines() == [
        f"{passing_id}  cli-array  SUCCEEDED  3/3 children done: 3 SUCCEEDED"]  # fmt: skip
    passed_line, failed_line = waited.stdout.splitlines()
    assert passed_line == waited_ok.stdout.strip()
    assert failed_line.startswith(f"{failing_id}  cli-array-fails  FAILED  3/3 children done: ")
    assert "2 SUCCEEDED" in failed_line and "1 FAILED" in failed_line

    (listing,) = run_all(["jobs", "--queue", env.queue, "--output", "json", "--limit", "1000"], env=local)
    rows = {r["jobId"]: r for r in json.loads(ok(listing).stdout)}
    assert rows[passing_id]["arrayProperties"] == {"size": 3, "statusSummary": {"SUCCEEDED": 3}}
    assert not [j for j in rows if j.startswith(f"{passing_id}:")]  # the children are folded


def test_bad_input_is_one_clear_line(local: dict[str, str], env: Env) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    results = run_all(
        ["describe", unknown],
        ["logs", unknown],
        ["cancel", unknown],  # CancelJob itself answers 200 for a job it does not know
        ["submit", "--queue", "no-such-queue", "--definition", env.jobdef],
        ["jobs", "--endpoint-url", "http://127.0.0.1:9"],  # nothing listens there
        env=local,
    )
    for result in results:
        assert result.returncode == 1, (result.args, result.stderr)
        assert result.stderr.startswith("batchplane: ") and len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stdout == ""
    for result in results[:3]:
        assert f"no such job: {unknown}" in result.stderr
    assert "no-such-queue" in results[3].stderr
    assert "http://127.0.0.1:9" in results[4].stderr


def test_a_job_that_never_runs_ends_submit_wait(batch: Any, local: dict[str, str], env: Env,
                                                held_queue: str) -> None:
    """submit --wait on a job cancelled while RUNNABLE: no log stream, exit code 1."""
    waiting = batchplane("submit", "--queue", held_queue, "--definition", env.jobdef, "--wait", env=local)
    try:
        job_id = waiting.stdout.readline().strip()
        wait_status(batch, job_id, "RUNNABLE")
        batch.cancel_job(jobId=job_id, reason="cancelled by the test")
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 1, err
    assert out == "" and "cancelled by the test" in err and "Traceback" not in err
    assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "FAILED"
