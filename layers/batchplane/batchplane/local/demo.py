"""The sample workload: a Monte Carlo estimate of pi, run as batch jobs on the local stack
through the unmodified boto3 clients."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

import boto3
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

WORKER = (
    "import os, random; n = int(os.environ['SAMPLES']); "
    "rng = random.Random(int(os.environ['AWS_BATCH_JOB_ID'][:8], 16)); "
    "hits = sum(rng.random() ** 2 + rng.random() ** 2 <= 1 for _ in range(n)); "
    "print(f'hits {hits} of {n} on attempt {os.environ[\"AWS_BATCH_JOB_ATTEMPT\"]}')"
)


def _clients(endpoint: str) -> tuple[Any, Any]:
    session = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    return session.client("batch", endpoint_url=endpoint), session.client("logs", endpoint_url=endpoint)


def _setup(batch: Any) -> None:
    """A compute environment, a queue and a job definition, as a user would create them."""
    existing = batch.describe_compute_environments(computeEnvironments=["demo-ec2"])["computeEnvironments"]
    if not existing:
        batch.create_compute_environment(
            computeEnvironmentName="demo-ec2",
            type="MANAGED",
            computeResources={
                "type": "EC2", "minvCpus": 0, "maxvCpus": 2, "instanceTypes": ["optimal"],
                "subnets": ["subnet-local"], "securityGroupIds": ["sg-local"],
                "instanceRole": "ecsInstanceRole",
            },
        )
        batch.create_job_queue(
            jobQueueName="demo", priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "demo-ec2"}],
        )
    batch.register_job_definition(
        jobDefinitionName="pi-worker",
        type="container",
        containerProperties={
            "image": "public.ecr.aws/docker/library/python:3.11-slim",
            "command": ["python3", "-c", WORKER],
            "environment": [{"name": "SAMPLES", "value": "100000"}],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
        retryStrategy={"attempts": 2},
    )


def run(endpoint: str | None = None, jobs: int = 8, samples: int = 200_000) -> int:
    console = Console()
    with ExitStack() as stack:
        if endpoint is None:
            from .stack import LocalStack

            console.print("[bold]Starting the local stack[/bold] (moto + handlers in-process)...")
            local = stack.enter_context(LocalStack(port=0))
            endpoint = local.endpoint
        console.print(f"Batch API at [cyan]{endpoint}[/cyan]")
        batch, logs = _clients(endpoint)
        _setup(batch)
        started = time.monotonic()
        ids = []
        for i in range(jobs):
            out = batch.submit_job(
                jobName=f"pi-{i}", jobQueue="demo", jobDefinition="pi-worker",
                containerOverrides={"environment": [{"name": "SAMPLES", "value": str(samples)}]},
            )
            ids.append(out["jobId"])
        done: dict[str, dict[str, Any]] = {}
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            bar = progress.add_task("jobs finished", total=jobs)
            deadline = time.monotonic() + 300
            while len(done) < jobs and time.monotonic() < deadline:
                for job in batch.describe_jobs(jobs=ids)["jobs"]:
                    if job["status"] in ("SUCCEEDED", "FAILED"):
                        done[job["jobId"]] = job
                running = sum(1 for j in batch.describe_jobs(jobs=ids)["jobs"] if j["status"] == "RUNNING")
                progress.update(bar, completed=len(done), description=f"jobs finished ({running} running)")
                time.sleep(0.1)
        table = Table(title="Monte Carlo pi on batchplane (local mode)")
        for col in ("job", "status", "exit", "seconds", "output"):
            table.add_column(col)
        hits = total = 0
        failed = 0
        for job_id in ids:
            job = done.get(job_id) or batch.describe_jobs(jobs=[job_id])["jobs"][0]
            line = ""
            stream = job.get("container", {}).get("logStreamName")
            if stream:
                events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream)["events"]
                line = events[-1]["message"] if events else ""
                parts = line.split()
                if len(parts) >= 4 and parts[0] == "hits":
                    hits += int(parts[1])
                    total += int(parts[3])
            seconds = ((job.get("stoppedAt") or 0) - (job.get("startedAt") or 0)) / 1000 if job.get("startedAt") else 0
            failed += job["status"] != "SUCCEEDED"
            table.add_row(job["jobName"], job["status"], str(job.get("container", {}).get("exitCode", "")),
                          f"{seconds:.2f}", line)
        console.print(table)
        if total:
            console.print(f"pi ~= [bold green]{4 * hits / total:.5f}[/bold green] from {total:,} samples "
                          f"in {time.monotonic() - started:.1f} s")
        if failed:
            console.print(f"[red]{failed} job(s) did not succeed[/red]")
            return 1
        return 0
