"""The sample workload: a Monte Carlo estimate of pi, the classic batch shape. An array
job's children each throw darts and write a partial count to S3; an aggregate job that
depends on the array reads them all and prints the estimate. Everything goes through the
unmodified boto3 clients against the local stack."""

from __future__ import annotations

import sys
import time
import uuid
from contextlib import ExitStack
from typing import Any

import boto3
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# Each child: darts seeded by its index, partial result to s3://$BUCKET/partials/<index>.json.
# A job submitted alone has no array index: it is the one shard, index 0.
WORKER = """
import json, os, random, boto3
index = int(os.environ.get('AWS_BATCH_JOB_ARRAY_INDEX', '0'))
n = int(os.environ['SAMPLES'])
rng = random.Random(index)
hits = sum(rng.random() ** 2 + rng.random() ** 2 <= 1 for _ in range(n))
boto3.client('s3').put_object(Bucket=os.environ['BUCKET'], Key=f'partials/{index}.json',
                              Body=json.dumps({'hits': hits, 'samples': n}))
print(f'child {index}: {hits} of {n} darts inside')
"""
AGGREGATE = """
import json, os, boto3
s3 = boto3.client('s3')
pages = s3.get_paginator('list_objects_v2').paginate(Bucket=os.environ['BUCKET'], Prefix='partials/')
parts = [json.loads(s3.get_object(Bucket=os.environ['BUCKET'], Key=o['Key'])['Body'].read())
         for page in pages for o in page.get('Contents', [])]
hits, samples = sum(p['hits'] for p in parts), sum(p['samples'] for p in parts)
print(f'pi ~= {4 * hits / samples:.6f} from {samples:,} darts in {len(parts)} partial results')
"""


def _clients(endpoint: str) -> dict[str, Any]:
    session = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    return {name: session.client(name, endpoint_url=endpoint) for name in ("batch", "logs", "s3")}


def _definition(batch: Any, name: str, script: str, env: dict[str, str]) -> None:
    # Local mode runs jobs as processes of this machine: this interpreter has boto3.
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "public.ecr.aws/docker/library/python:3.11-slim",
            "command": [sys.executable, "-c", script],
            "environment": [{"name": k, "value": v} for k, v in env.items()],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "256"}],
        },
        retryStrategy={"attempts": 2},
    )


def _setup(batch: Any, bucket: str, samples: int) -> None:
    """A compute environment, a queue and two job definitions, as a user creates them."""
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
    _definition(batch, "pi-worker", WORKER, {"BUCKET": bucket, "SAMPLES": str(samples)})
    _definition(batch, "pi-aggregate", AGGREGATE, {"BUCKET": bucket})


def _last_line(logs: Any, job: dict[str, Any]) -> str:
    stream = job.get("container", {}).get("logStreamName")
    if not stream:
        return ""
    events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream)["events"]
    return events[-1]["message"] if events else ""


def run(endpoint: str | None = None, jobs: int = 8, samples: int = 200_000) -> int:
    console = Console()
    with ExitStack() as stack:
        if endpoint is None:
            from .stack import LocalStack  # noqa: PLC0415 - local mode (moto) only when no endpoint is given

            console.print("[bold]Starting the local stack[/bold] (moto + handlers in-process)...")
            endpoint = stack.enter_context(LocalStack(port=0)).endpoint
        console.print(f"Batch API at [cyan]{endpoint}[/cyan]")
        clients = _clients(endpoint)
        batch, logs, s3 = clients["batch"], clients["logs"], clients["s3"]
        bucket = f"batchplane-demo-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        _setup(batch, bucket, samples)
        started = time.monotonic()
        array = batch.submit_job(jobName="pi-darts", jobQueue="demo", jobDefinition="pi-worker",
                                 arrayProperties={"size": jobs})["jobId"]
        aggregate = batch.submit_job(jobName="pi-aggregate", jobQueue="demo",
                                     jobDefinition="pi-aggregate", dependsOn=[{"jobId": array}])["jobId"]
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            bar = progress.add_task("array children finished", total=jobs + 1)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                parent, agg = batch.describe_jobs(jobs=[array, aggregate])["jobs"]
                summary = parent.get("arrayProperties", {}).get("statusSummary", {})
                ended = summary.get("SUCCEEDED", 0) + summary.get("FAILED", 0)
                ended += agg["status"] in ("SUCCEEDED", "FAILED")
                running = summary.get("RUNNING", 0) + summary.get("STARTING", 0)
                progress.update(bar, completed=ended,
                                description=f"children {summary.get('SUCCEEDED', 0)}/{jobs} done, "
                                            f"{running} running; aggregate {agg['status']}")
                if agg["status"] in ("SUCCEEDED", "FAILED"):
                    break
                time.sleep(0.1)
        table = Table(title="Monte Carlo pi on batchplane (local mode)")
        for col in ("job", "status", "attempts", "seconds", "output"):
            table.add_column(col)
        children = [f"{array}:{i}" for i in range(jobs)]
        described = []
        for i in range(0, len(children), 100):
            described += batch.describe_jobs(jobs=children[i:i + 100])["jobs"]
        described += batch.describe_jobs(jobs=[aggregate])["jobs"]
        failed = 0
        for job in sorted(described, key=lambda j: j.get("arrayProperties", {}).get("index", jobs)):
            seconds = ((job.get("stoppedAt") or 0) - (job.get("startedAt") or 0)) / 1000 if job.get("startedAt") else 0
            failed += job["status"] != "SUCCEEDED"
            index = job.get("arrayProperties", {}).get("index")
            name = job["jobName"] + (f"[{index}]" if index is not None else "")
            table.add_row(name, job["status"], str(len(job["attempts"])), f"{seconds:.2f}", _last_line(logs, job))
        console.print(table)
        console.print(f"[bold green]{_last_line(logs, described[-1])}[/bold green] "
                      f"(submit to result in {time.monotonic() - started:.1f} s)")
        if failed:
            console.print(f"[red]{failed} job(s) did not succeed[/red]")
            return 1
        return 0
