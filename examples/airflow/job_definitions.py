"""Registers the two job definitions the DAGs submit, through the Batch API only (each run
adds a revision; the DAGs use the latest):

- airflow-pi-darts, an array child: darts seeded by its index, its count written to
  s3://BUCKET/<prefix>/partials/<index>.json;
- airflow-pi-aggregate: adds the partial counts up, prints the estimate and writes it to
  s3://BUCKET/<prefix>/pi.json.

    python examples/airflow/job_definitions.py BUCKET

Reads AWS_ENDPOINT_URL, the region and the keys from the environment, as any AWS client
does. The jobs' command is this interpreter (it has boto3): local mode runs a job as a
process on this machine, whatever its image says. On AWS, name an image with boto3 and
its python."""

from __future__ import annotations

import sys

import boto3

DARTS = """
import json, os, random, sys, boto3
prefix, n = sys.argv[1], int(sys.argv[2])
index = int(os.environ["AWS_BATCH_JOB_ARRAY_INDEX"])
rng = random.Random(index)
hits = sum(rng.random() ** 2 + rng.random() ** 2 <= 1 for _ in range(n))
boto3.client("s3").put_object(Bucket=os.environ["BUCKET"], Key=f"{prefix}/partials/{index}.json",
                              Body=json.dumps({"hits": hits, "darts": n}))
print(f"child {index}: {hits} of {n} darts inside")
"""
AGGREGATE = """
import json, os, sys, boto3
s3, bucket, prefix = boto3.client("s3"), os.environ["BUCKET"], sys.argv[1]
pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/partials/")
parts = [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
         for page in pages for o in page.get("Contents", [])]
hits, darts = sum(p["hits"] for p in parts), sum(p["darts"] for p in parts)
result = {"pi": 4 * hits / darts, "darts": darts, "partials": len(parts), "job": os.environ["AWS_BATCH_JOB_ID"]}
s3.put_object(Bucket=bucket, Key=f"{prefix}/pi.json", Body=json.dumps(result))
print(f"pi ~= {result['pi']:.5f} from {darts:,} darts in {len(parts)} partial results")
"""

bucket = sys.argv[1]
batch = boto3.client("batch")
for name, script, args in (
    ("airflow-pi-darts", DARTS, ["Ref::prefix", "Ref::darts"]),
    ("airflow-pi-aggregate", AGGREGATE, ["Ref::prefix"]),
):
    revision = batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        parameters={"darts": "100000"},
        containerProperties={
            "image": "public.ecr.aws/docker/library/python:3.12-slim",
            "command": [sys.executable, "-c", script, *args],
            "environment": [{"name": "BUCKET", "value": bucket}],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "256"}],
        },
    )["revision"]
    print(f"job definition {name}:{revision}")
