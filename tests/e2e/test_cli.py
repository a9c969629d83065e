"""The AWS CLI and boto3 in processes of their own, pointed at the stack by
``--endpoint-url`` or by nothing but the AWS_ENDPOINT_URL environment variable.

Independent CLI commands run side by side: each CLI start costs about a second."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from .support import Env, cli_env, ec2_resources, job_output, run_clis, uniq, wait_done

CONTAINER = {
    "image": "busybox",
    "command": ["sh", "-c", "echo hello Ref::who $AWS_BATCH_JOB_ID"],
    "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
}


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


def test_cli_with_endpoint_url(endpoint: str, batch: Any, logs: Any, env: Env) -> None:
    cli = cli_env()
    ce, queue, jd = uniq("cli-ce"), uniq("cli-q"), uniq("cli-jd")

    def batch_cli(command: str, *json_args: str) -> list[str]:
        return ["--endpoint-url", endpoint, "batch", *command.split(), *json_args]

    created, queued, registered = map(_json, run_clis([
        batch_cli(f"create-compute-environment --compute-environment-name {ce} --type MANAGED "
                  "--compute-resources", json.dumps(ec2_resources(maxvCpus=4))),
        # Shorthand syntax for the order, as people type it.
        batch_cli(f"create-job-queue --job-queue-name {queue} --priority 1 "
                  f"--compute-environment-order order=1,computeEnvironment={env.ec2_ce}"),
        batch_cli(f"register-job-definition --job-definition-name {jd} --type container "
                  "--parameters who=cli --container-properties", json.dumps(CONTAINER)),
    ], env=cli))  # fmt: skip
    assert created["computeEnvironmentName"] == ce
    assert queued["jobQueueName"] == queue
    assert registered["revision"] == 1
    found = batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"]
    assert found[0]["computeResources"]["instanceRole"].endswith("ecsInstanceRole")

    submitted, failed = run_clis([
        batch_cli(f"submit-job --job-name from-cli --job-queue {queue} --job-definition {jd}"),
        # A client error reaches the CLI user as ClientException with its message.
        batch_cli(f"submit-job --job-name x --job-queue no-such-queue --job-definition {jd}"),
    ], env=cli, check=False)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert failed.returncode != 0
    assert "ClientException" in failed.stderr and "no-such-queue" in failed.stderr, failed.stderr
    job_id = _json(submitted)["jobId"]
    job = wait_done(batch, job_id)
    assert job["status"] == "SUCCEEDED", job
    assert f"hello cli {job_id}" in job_output(batch, logs, job, expect=f"hello cli {job_id}")

    described, listed = map(_json, run_clis([
        batch_cli(f"describe-jobs --jobs {job_id}"),
        # The CLI follows nextToken itself and shows one list.
        batch_cli(f"list-jobs --job-queue {queue} --job-status SUCCEEDED --page-size 1"),
    ], env=cli))  # fmt: skip
    got = [(j["jobId"], j["status"], j["container"]["exitCode"]) for j in described["jobs"]]
    assert got == [(job_id, "SUCCEEDED", 0)]
    assert described["jobs"][0]["attempts"][0]["container"]["logStreamName"]
    assert [s["jobId"] for s in listed["jobSummaryList"]] == [job_id]


_ENV_ONLY_SCRIPT = """
import json, sys, time, boto3
queue, definition = sys.argv[1:3]
batch = boto3.client("batch")
logs = boto3.client("logs")
job_id = batch.submit_job(jobName="env-only", jobQueue=queue, jobDefinition=definition)["jobId"]
deadline = time.monotonic() + 20
while True:
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    if job["status"] in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
        break
    time.sleep(0.05)
stream = job["attempts"][-1]["container"]["logStreamName"] if job["attempts"] else None
messages = []
while stream and time.monotonic() < deadline:
    messages = [e["message"] for e in logs.get_log_events(
        logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True)["events"]]
    if any(job_id in m for m in messages):
        break
    time.sleep(0.05)
print(json.dumps({"jobId": job_id, "status": job["status"], "messages": messages,
                  "endpoint": batch.meta.endpoint_url}))
"""


def test_aws_endpoint_url_environment_only(endpoint: str, batch: Any, env: Env) -> None:
    """No --endpoint-url and no endpoint_url argument: AWS_ENDPOINT_URL alone routes the
    batch AND the logs calls to the stack (the front port routes by credential scope)."""
    only_env = cli_env(AWS_ENDPOINT_URL=endpoint)
    python = subprocess.Popen(
        [sys.executable, "-c", _ENV_ONLY_SCRIPT, env.queue, env.jobdef],
        env=only_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        (queues,) = run_clis([["batch", "describe-job-queues", "--job-queues", env.queue]],
                             env=only_env)  # fmt: skip
        out, err = python.communicate(timeout=60)
    finally:
        python.kill()
    assert [q["jobQueueName"] for q in _json(queues)["jobQueues"]] == [env.queue]
    assert python.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["endpoint"] == endpoint
    assert result["status"] == "SUCCEEDED", result
    assert f"hello {result['jobId']}" in result["messages"]
    # And the job is the stack's, as seen by the in-process client.
    assert batch.describe_jobs(jobs=[result["jobId"]])["jobs"][0]["jobName"] == "env-only"
