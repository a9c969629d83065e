"""Workflow tools built on boto3 work unchanged against the local stack: luigi's
``luigi.contrib.batch`` (BatchClient and BatchTask) submits jobs, waits for them and reads
their logs through the endpoint, with nothing of luigi or of the stack replaced.

luigi makes its clients with ``boto3.client("batch")`` and ``boto3.client("logs")``, so
the tests point the process's environment at the stack, as a user's shell does
(``AWS_ENDPOINT_URL`` and keys). Airflow and Metaflow are heavy: they are run by hand
from examples/airflow and examples/metaflow (see docs/workflow-tools.md)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import boto3
import luigi  # a dev extra
import pytest
from luigi.contrib.batch import BatchClient, BatchJobException, BatchTask
from luigi.contrib.s3 import S3Client, S3Target

from .support import ACCESS_KEY, REGION, SECRET_KEY, Env, describe, uniq

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# luigi's wait_on_job polls with no deadline of its own: each test has one (pytest-timeout
# fails it from the main thread, where luigi's worker must run).
pytestmark = pytest.mark.timeout(60)
POLL = 0.05  # BatchClient's poll_time: luigi sleeps it between two DescribeJobs

# The job prints its parameter (substituted by Batch for Ref::greeting), its own id and
# the region ECS gives a container, then two lines to stderr; with a failure code it
# exits with it.
SCRIPT = """
echo "greeting: $1"
echo "job: $AWS_BATCH_JOB_ID"
echo "region: $AWS_REGION"
echo "to stderr" >&2
if [ "$2" != 0 ]; then echo "failing with $2" >&2; exit "$2"; fi
"""


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> str:
    """This process's AWS settings as a user of the stack has them. The stack set its own
    (its emulator's endpoint) in os.environ; boto3's default session is dropped so that
    luigi's clients read these."""
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return endpoint


@pytest.fixture
def definition(aws_env: str, tmp_path: Path) -> Iterator[str]:  # noqa: ARG001 - requested for its side effect (usefixtures does not apply to fixtures)
    """A job definition registered the luigi way: BatchClient.register_job_definition
    reads it from a JSON file."""
    name = uniq("luigi-echo")
    path = tmp_path / "definition.json"
    path.write_text(json.dumps({
        "jobDefinitionName": name,
        "type": "container",
        "parameters": {"greeting": "default", "code": "0"},
        "containerProperties": {
            "image": "public.ecr.aws/docker/library/busybox:latest",
            "command": ["sh", "-c", SCRIPT, "sh", "Ref::greeting", "Ref::code"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}],
        },
    }))
    response = BatchClient(poll_time=POLL).register_job_definition(str(path))
    assert response["jobDefinitionName"] == name and response["revision"] == 1, response
    yield name


@pytest.mark.usefixtures("aws_env")
def test_luigi_batch_client_submits_waits_and_reads_the_logs(env: Env, definition: str) -> None:
    bc = BatchClient(poll_time=POLL)
    name = uniq("luigi-ok")
    job_id = bc.submit_job(definition, {"greeting": "hello from luigi"}, job_name=name, queue=env.queue)

    assert bc.wait_on_job(job_id) is True
    assert bc.get_job_status(job_id) == "SUCCEEDED"
    job = describe(boto3.client("batch"), job_id)
    assert job["jobName"] == name and job["jobQueue"].endswith(f"/{env.queue}"), job
    # luigi reads the last 50 events of the attempt's stream, right after the status
    # changed: the whole output is there by then, stderr in order with stdout.
    assert bc.get_logs(job["attempts"][0]["container"]["logStreamName"]) == "\n".join([
        "greeting: hello from luigi",
        f"job: {job_id}",
        f"region: {REGION}",
        "to stderr",
    ])


@pytest.mark.usefixtures("aws_env")
def test_luigi_batch_client_raises_with_the_failed_jobs_log(env: Env, definition: str) -> None:
    bc = BatchClient(poll_time=POLL)
    job_id = bc.submit_job(definition, {"greeting": "doomed", "code": "7"}, queue=env.queue)

    with pytest.raises(BatchJobException) as raised:
        bc.wait_on_job(job_id)
    assert str(raised.value) == f"Job {job_id} failed: " + "\n".join([
        "greeting: doomed", f"job: {job_id}", f"region: {REGION}", "to stderr", "failing with 7",
    ])
    job = describe(boto3.client("batch"), job_id)
    assert job["status"] == "FAILED" and job["attempts"][0]["container"]["exitCode"] == 7, job


# BatchTask has no output (it runs each time it is scheduled); luigi warns about that.
@pytest.mark.filterwarnings("ignore:Task Doomed.* without outputs:UserWarning")
def test_luigi_batch_task_pipeline_runs_jobs_and_stops_at_a_failed_one(
    aws_env: str, env: Env, definition: str, tmp_path: Path
) -> None:
    """luigi's scheduler runs BatchTasks: a job computes its output into S3 (through the
    endpoint the stack gives it), luigi sees the S3 target complete and runs the task
    that needs it; a failing job fails its task, and what depends on it never runs."""
    s3 = S3Client(endpoint_url=aws_env)
    bucket = uniq("luigi-out")
    boto3.client("s3").create_bucket(Bucket=bucket)
    # The job's own boto3 comes from this interpreter (a local attempt runs on this machine).
    compute = (
        "import boto3, os, sys; n = int(sys.argv[1]); "
        "boto3.client('s3').put_object(Bucket=sys.argv[2], Key=sys.argv[3], "
        "Body=f\"{sum(i * i for i in range(n + 1))} {os.environ['AWS_BATCH_JOB_ID']}\".encode())"
    )
    squares = uniq("luigi-squares")
    boto3.client("batch").register_job_definition(
        jobDefinitionName=squares, type="container",
        parameters={"n": "0", "bucket": bucket, "key": "none"},
        containerProperties={
            "image": "python:3.11",
            "command": [sys.executable, "-c", compute, "Ref::n", "Ref::bucket", "Ref::key"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "256"}],
        },
    )

    class SumOfSquares(BatchTask):
        n = luigi.IntParameter()

        @property
        def parameters(self) -> dict[str, str]:
            return {"n": str(self.n), "bucket": bucket, "key": f"squares/{self.n}"}

        def output(self) -> Any:
            return S3Target(f"s3://{bucket}/squares/{self.n}", client=s3)

    class Report(luigi.Task):
        n = luigi.IntParameter()
        fail = luigi.BoolParameter(default=False)

        def requires(self) -> Any:
            if self.fail:
                return Doomed(job_definition=definition, job_queue=env.queue, poll_time=1)
            return SumOfSquares(n=self.n, job_definition=squares, job_queue=env.queue, poll_time=1)

        def output(self) -> Any:
            return luigi.LocalTarget(tmp_path / f"report-{self.n}")

        def run(self) -> None:
            with self.input().open("r") as f, self.output().open("w") as out:
                out.write(f.read())

    class Doomed(BatchTask):
        @property
        def parameters(self) -> dict[str, str]:
            return {"greeting": "doomed", "code": "2"}

    def build(*tasks: luigi.Task) -> Any:
        return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")

    result = build(Report(n=10), Report(n=100))
    assert result.status == luigi.LuigiStatusCode.SUCCESS, result.summary_text
    values = [(tmp_path / f"report-{n}").read_text() for n in (10, 100)]
    assert [v.split()[0] for v in values] == ["385", "338350"], values
    # Each value was computed by its own Batch job.
    job_ids = [v.split()[1] for v in values]
    assert len(set(job_ids)) == 2
    assert all(describe(boto3.client("batch"), j)["status"] == "SUCCEEDED" for j in job_ids)
    assert s3.exists(f"s3://{bucket}/squares/10") and not s3.exists(f"s3://{bucket}/squares/11")

    result = build(Report(n=0, fail=True))
    assert result.status == luigi.LuigiStatusCode.FAILED, result.summary_text
    assert not (tmp_path / "report-0").exists()
    assert "* 1 failed:\n    - 1 Doomed(" in result.summary_text, result.summary_text
