"""Creates what a workflow's Batch jobs run on, through the AWS APIs only: an S3 bucket,
a MANAGED EC2 compute environment and an ENABLED job queue on it. Idempotent: what
exists already is left as it is. Reads AWS_ENDPOINT_URL, the region and the keys from
the environment, as any AWS client does.

    python examples/setup_batch.py BUCKET QUEUE [COMPUTE_ENVIRONMENT]

On AWS, give the compute environment your own subnets, security groups and instance
role (--subnet, --security-group, --instance-role)."""

from __future__ import annotations

import argparse
import time

import boto3

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("bucket")
parser.add_argument("queue")
parser.add_argument("compute_environment", nargs="?", default="workflows-ec2")
parser.add_argument("--subnet", default="subnet-local")
parser.add_argument("--security-group", default="sg-local")
parser.add_argument("--instance-role", default="ecsInstanceRole")
parser.add_argument("--max-vcpus", type=int, default=4)
args = parser.parse_args()

s3 = boto3.client("s3")
if args.bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
    s3.create_bucket(Bucket=args.bucket)

batch = boto3.client("batch")
ce = args.compute_environment
if not batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"]:
    batch.create_compute_environment(
        computeEnvironmentName=ce,
        type="MANAGED",
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": args.max_vcpus,
            "instanceTypes": ["optimal"],
            "subnets": [args.subnet],
            "securityGroupIds": [args.security_group],
            "instanceRole": args.instance_role,
        },
    )
# A queue takes a compute environment once it is VALID (AWS makes one in seconds).
for _ in range(60):
    if batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"][0]["status"] == "VALID":
        break
    time.sleep(2)
if not batch.describe_job_queues(jobQueues=[args.queue])["jobQueues"]:
    batch.create_job_queue(
        jobQueueName=args.queue,
        priority=1,
        state="ENABLED",
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
    )
print(f"bucket s3://{args.bucket}, job queue {args.queue} on compute environment {ce}")
