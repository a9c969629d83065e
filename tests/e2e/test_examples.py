"""The Batch side of examples/ keeps working: examples/setup_batch.py makes a bucket, a
compute environment and an ENABLED, VALID job queue (and a second run leaves them as
they are), and the job definitions of examples/airflow/job_definitions.py compute pi when
submitted as the DAG's BatchOperators submit them (an array with the run's prefix as a
parameter, then the aggregate). Airflow and Metaflow themselves are too heavy for CI: the
examples are run with them by hand, as docs/workflow-tools.md records."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .support import cli_env, make_client, uniq, wait_done

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.timeout(120)


def _run(endpoint: str, script: Path, *args: str) -> str:
    """Runs an example script as a user does: its own process, the stack in AWS_ENDPOINT_URL."""
    done = subprocess.run([sys.executable, str(script), *args], env=cli_env(AWS_ENDPOINT_URL=endpoint),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def workflow_queue(endpoint: str) -> tuple[str, str, str]:
    bucket, queue, ce = uniq("examples"), uniq("examples-q"), uniq("examples-ce")
    out = _run(endpoint, EXAMPLES / "setup_batch.py", bucket, queue, ce)
    assert out.strip() == f"bucket s3://{bucket}, job queue {queue} on compute environment {ce}"
    return bucket, queue, ce


def test_setup_batch_makes_a_usable_queue_and_is_idempotent(endpoint: str, batch: Any,
                                                            workflow_queue: tuple[str, str, str]) -> None:
    bucket, queue, ce = workflow_queue
    [before] = batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"]
    _run(endpoint, EXAMPLES / "setup_batch.py", bucket, queue, ce)  # a second run changes nothing
    [after] = batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"]
    assert after["computeEnvironmentArn"] == before["computeEnvironmentArn"]
    assert (after["state"], after["status"]) == ("ENABLED", "VALID"), after
    [found] = batch.describe_job_queues(jobQueues=[queue])["jobQueues"]
    assert (found["state"], found["status"]) == ("ENABLED", "VALID"), found
    assert found["computeEnvironmentOrder"] == [{"order": 1, "computeEnvironment": before["computeEnvironmentArn"]}]
    assert bucket in {b["Name"] for b in make_client("s3", endpoint).list_buckets()["Buckets"]}


def test_airflow_job_definitions_compute_pi_as_the_dag_submits_them(endpoint: str, batch: Any,
                                                                    workflow_queue: tuple[str, str, str]) -> None:
    bucket, queue, _ = workflow_queue
    out = _run(endpoint, EXAMPLES / "airflow" / "job_definitions.py", bucket)
    assert "job definition airflow-pi-darts:" in out and "job definition airflow-pi-aggregate:" in out
    prefix, shards, darts = "manual__2026-12-03T14:33:36+00:00", 3, 2000  # a run_id, as the DAG's prefix
    array = batch.submit_job(jobName="pi-darts", jobQueue=queue, jobDefinition="airflow-pi-darts",
                             arrayProperties={"size": shards},
                             parameters={"prefix": prefix, "darts": str(darts)})["jobId"]
    assert wait_done(batch, array, timeout=90)["status"] == "SUCCEEDED"
    aggregate = batch.submit_job(jobName="pi-aggregate", jobQueue=queue, jobDefinition="airflow-pi-aggregate",
                                 parameters={"prefix": prefix})["jobId"]
    assert wait_done(batch, aggregate, timeout=60)["status"] == "SUCCEEDED"

    body = make_client("s3", endpoint).get_object(Bucket=bucket, Key=f"{prefix}/pi.json")["Body"].read()
    hits = 0
    for index in range(shards):  # each child's darts are seeded by its array index
        rng = random.Random(index)
        hits += sum(rng.random() ** 2 + rng.random() ** 2 <= 1 for _ in range(darts))
    assert json.loads(body) == {"pi": 4 * hits / (shards * darts), "darts": shards * darts,
                                "partials": shards, "job": aggregate}
