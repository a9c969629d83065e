"""Checks the latest PiFlow run from both sides: Metaflow's client (the run succeeded,
each `throw` task recorded the AWS Batch job it ran as) and the Batch API (each of those
jobs SUCCEEDED, its CloudWatch log stream is the one Metaflow read from the container's
ECS metadata endpoint, and holds the task's output). Exits non-zero on any mismatch."""

import sys

import boto3
from metaflow import Flow, namespace

namespace(None)
run = Flow("PiFlow").latest_run
assert run.successful, f"{run} did not succeed"
shards = len(run["join"].task.data.batch_job_ids)
batch, logs = boto3.client("batch"), boto3.client("logs")
for t in run["throw"]:
    meta = t.metadata_dict
    job_id = meta["aws-batch-job-id"]
    job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    stream = job["container"]["logStreamName"]
    assert job["status"] == "SUCCEEDED", job
    assert meta["aws-batch-jq-name"] == job["jobQueue"].rsplit("/", 1)[1], (meta, job["jobQueue"])
    assert meta["aws-batch-awslogs-stream"] == stream, (meta, stream)
    assert meta["aws-batch-execution-env"] in ("AWS_ECS_EC2", "AWS_ECS_FARGATE"), meta
    events = logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True)["events"]
    line = next((e["message"] for e in events if e["message"].startswith("shard ")), None)
    assert line and job_id in line, [e["message"] for e in events]
    print(f"{t.pathspec}: Batch job {job_id} {job['status']} ({job['jobName']}); its log: {line}")
print(f"{run.pathspec}: pi ~= {run.data.pi:.5f} from {shards} Batch jobs")
sys.exit(0)
