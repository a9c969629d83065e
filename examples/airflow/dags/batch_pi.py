"""A Monte Carlo estimate of pi on AWS Batch with the Amazon provider's BatchOperator: an
array job throws darts (one child per shard, each writing its count to S3), a second job
adds the counts up, and a Python task reads the result back through BatchClientHook and
S3Hook. Nothing here knows about batchplane: the AWS settings say where AWS is
(AWS_ENDPOINT_URL in the environment, or the `aws_default` connection's `endpoint_url`
extra). examples/airflow/job_definitions.py registers the two job definitions."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.sdk import DAG, task

QUEUE = os.environ.get("PI_BATCH_QUEUE", "airflow")
BUCKET = os.environ.get("PI_BUCKET", "airflow-local")
SHARDS = int(os.environ.get("PI_SHARDS", "4"))
TOLERANCE = 0.05  # how far from pi the estimate may be

# BatchClientHook waits a random 1 to 10 s before each of its first polls (it is tuned for
# jobs of minutes); its docstring's way to shorten that for quick jobs.
BatchClientHook.DEFAULT_DELAY_MIN = 0
BatchClientHook.DEFAULT_DELAY_MAX = 1

with DAG(
    dag_id="batch_pi",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["batch"],
):
    darts = BatchOperator(
        task_id="darts",
        job_name="pi-darts",
        job_queue=QUEUE,
        job_definition="airflow-pi-darts",
        array_properties={"size": SHARDS},
        # Ref::prefix in the definition's command: this run's own S3 prefix.
        parameters={"prefix": "{{ run_id }}", "darts": "100000"},
        tags={"airflow-dag": "batch_pi"},
    )
    aggregate = BatchOperator(
        task_id="aggregate",
        job_name="pi-aggregate",
        job_queue=QUEUE,
        job_definition="airflow-pi-aggregate",
        parameters={"prefix": "{{ run_id }}"},
        # The job's CloudWatch log is copied into this task's log as it runs.
        awslogs_enabled=True,
        awslogs_fetch_interval=timedelta(seconds=1),
    )

    @task
    def report(job_id: str, run_id: str | None = None) -> float:
        job = BatchClientHook().get_job_description(job_id)
        logs = BatchClientHook().get_job_awslogs_info(job_id)
        result = json.loads(S3Hook().read_key(f"{run_id}/pi.json", bucket_name=BUCKET))
        print(f"Batch job {job_id} {job['status']}, log {logs['awslogs_group']}/{logs['awslogs_stream_name']}")
        print(f"pi ~= {result['pi']:.5f} from {result['darts']:,} darts in {result['partials']} partial results")
        if job["status"] != "SUCCEEDED" or result["job"] != job_id or result["partials"] != SHARDS:
            raise ValueError(f"unexpected result {result} of job {job}")
        if abs(result["pi"] - 3.14159) > TOLERANCE:
            raise ValueError(f"pi estimate {result['pi']} is off")
        return result["pi"]

    darts >> aggregate
    report(aggregate.output)
