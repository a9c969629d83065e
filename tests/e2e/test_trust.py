"""What users and jobs are given (the front port, AWS_ENDPOINT_URL) reaches the AWS APIs,
not the emulator's control API nor batchplane's own functions: nobody can dump or wipe
the stack's state, or forge an ECS event that ends another job's attempt."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .support import Env, make_client, raw_request, uniq, wait_done, wait_status


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/moto-api/data.json"),
    ("POST", "/moto-api/reset"),
    ("GET", "/moto-api/"),
    ("POST", "/moto-api/reset-auth"),
])
def test_the_emulator_control_api_is_refused(endpoint: str, batch: Any, env: Env, method: str, path: str) -> None:
    resp = raw_request(endpoint, method, path, "{}")
    assert resp.status == 403, (resp.status, resp.body[:200])
    assert "control API" in resp.json["message"]
    # Nothing was wiped: a job still runs.
    job = batch.submit_job(jobName=uniq("after-probe"), jobQueue=env.queue, jobDefinition=env.jobdef)["jobId"]
    assert wait_done(batch, job, timeout=20)["status"] == "SUCCEEDED"


def test_a_forged_task_event_cannot_end_another_jobs_attempt(endpoint: str, batch: Any, env: Env) -> None:
    job = batch.submit_job(jobName=uniq("victim"), jobQueue=env.queue, jobDefinition=env.jobdef,
                           containerOverrides={"command": ["sleep", "30"]})["jobId"]
    running = wait_status(batch, job, "RUNNING", timeout=20)
    forged = {
        "version": "0", "id": "forged", "detail-type": "ECS Task State Change", "source": "aws.ecs",
        "account": "123456789012", "region": "us-east-1", "resources": [running["container"]["taskArn"]],
        "detail": {"taskArn": running["container"]["taskArn"], "lastStatus": "STOPPED",
                   "desiredStatus": "STOPPED", "stopCode": "EssentialContainerExited",
                   "startedBy": "batchplane/1", "containers": [{"name": "main", "exitCode": 0}]},
    }
    lam = make_client("lambda", endpoint)
    with pytest.raises(ClientError) as refused:
        lam.invoke(FunctionName="EventsFunction", Payload=json.dumps(forged).encode())
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert batch.describe_jobs(jobs=[job])["jobs"][0]["status"] == "RUNNING"
    batch.terminate_job(jobId=job, reason="test over")
    assert wait_done(batch, job, timeout=60)["status"] == "FAILED"
