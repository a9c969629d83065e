"""The failure path: a Batch job that exits 3 fails its BatchOperator task (with the job's
log copied into the task's log), and the task after it never runs."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook
from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.sdk import DAG, task

BatchClientHook.DEFAULT_DELAY_MIN = 0  # see batch_pi.py
BatchClientHook.DEFAULT_DELAY_MAX = 1

with DAG(dag_id="batch_job_fails", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    doomed = BatchOperator(
        task_id="doomed",
        job_name="doomed",
        job_queue=os.environ.get("PI_BATCH_QUEUE", "airflow"),
        job_definition="airflow-pi-aggregate",
        container_overrides={"command": ["sh", "-c", "echo 'disk full (on purpose)' >&2; exit 3"]},
        awslogs_enabled=True,
        awslogs_fetch_interval=timedelta(seconds=1),
    )

    @task
    def after() -> None:
        raise AssertionError("runs only if the Batch job succeeded")

    doomed >> after()
