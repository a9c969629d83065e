"""`local up`'s front port served by its worker process (local/worker.py, ``--front-fd``):
the Batch API answered there, every other request sent on to the stack's process, which
answers it as it always has, and TerminateJob's StopTask reaching the stack's launcher.

The stack here is its own ``batchplane local up`` process, as a user runs it (the
package's in-process stack keeps the API in its process: its tests move its clock).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from batchplane.local.remote_launcher import RemoteLauncher
from batchplane.ports import LaunchRequest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from .support import ec2_resources, make_client, raw_request, uniq, wait_done, wait_status
from .test_restart import UpProcess
from .test_worker import _workers_of

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    stack = UpProcess(tmp_path_factory.mktemp("front-worker") / "state").start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def batch(up: UpProcess) -> Any:
    return make_client("batch", up.endpoint)


@pytest.fixture(scope="module")
def queue(batch: Any) -> str:
    ce, queue = uniq("fw-ce"), uniq("fw-q")
    batch.create_compute_environment(computeEnvironmentName=ce, type="MANAGED",
                                     computeResources=ec2_resources(maxvCpus=4))
    batch.create_job_queue(jobQueueName=queue, priority=1,
                           computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}])
    return queue


def _definition(batch: Any, command: list[str]) -> str:
    name = uniq("fw-jd")
    batch.register_job_definition(jobDefinitionName=name, type="container", containerProperties={
        "image": "busybox", "command": command, "resourceRequirements": [
            {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]})
    return name


def _worker(up: UpProcess) -> int:
    assert up.process is not None
    deadline = time.monotonic() + 30
    while not (found := _workers_of(up.process.pid)):
        assert time.monotonic() < deadline, "no worker process"
        time.sleep(0.05)
    (pid,) = found
    return pid


def test_the_batch_api_answers_while_the_stacks_process_is_stopped(up: UpProcess, batch: Any, queue: str) -> None:
    """The Batch API runs in the worker: with the stack's own process stopped (SIGSTOP),
    DescribeJobQueues and SubmitJob are answered; an S3 request, which the worker sends
    on to the stack's process, waits for it."""
    assert up.process is not None
    s3 = make_client("s3", up.endpoint, config=Config(retries={"max_attempts": 1}, read_timeout=1,
                                                       connect_timeout=5))
    bucket = uniq("fw-bucket")
    s3.create_bucket(Bucket=bucket)
    jd = _definition(batch, ["true"])
    os.kill(up.process.pid, signal.SIGSTOP)
    try:
        assert [q["jobQueueName"] for q in batch.describe_job_queues(jobQueues=[queue])["jobQueues"]] == [queue]
        job_id = batch.submit_job(jobName="while-stopped", jobQueue=queue, jobDefinition=jd)["jobId"]
        with pytest.raises(ReadTimeoutError):
            s3.list_objects_v2(Bucket=bucket)
    finally:
        os.kill(up.process.pid, signal.SIGCONT)
    assert wait_done(batch, job_id)["status"] == "SUCCEEDED"  # the stack runs it once it goes on
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_every_other_request_is_answered_by_the_stacks_front_server(up: UpProcess) -> None:
    """What the stack's own front server answers or refuses, it still does through the port."""
    s3 = make_client("s3", up.endpoint)
    bucket = uniq("fw-data")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"through the worker")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"through the worker"
    events = make_client("events", up.endpoint)
    put = events.put_events(Entries=[{"Source": "aws.ecs", "DetailType": "ECS Task State Change", "Detail": "{}"}])
    assert put["Entries"][0]["ErrorCode"] == "NotAuthorizedForSourceException"
    with pytest.raises(ClientError) as refused:
        make_client("lambda", up.endpoint).invoke(FunctionName="EventsFunction", Payload=b"{}")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert raw_request(up.endpoint, "GET", "/moto-api/data.json", signed=False).status == 403
    assert raw_request(up.endpoint, "GET", "/dashboard/", signed=False).status == 200
    # The local-only operations stay the stack's: an unknown one is a 400 from it.
    assert raw_request(up.endpoint, "POST", "/_batchplane/launcher/stop", body="{}").status == 400


def test_the_batch_api_checks_signatures_in_the_worker(up: UpProcess) -> None:
    unsigned = raw_request(up.endpoint, "POST", "/v1/describejobqueues", body="{}", signed=False)
    assert unsigned.status == 403, unsigned.body
    forged = raw_request(up.endpoint, "POST", "/v1/describejobqueues", body="{}", key="AKIDFORGED", secret="x")
    assert forged.status == 403 and forged.error_type == "UnrecognizedClientException", forged.body
    assert raw_request(up.endpoint, "POST", "/v1/describejobqueues", body="{}").status == 200


def test_malformed_http_is_a_4xx_from_the_worker_too(up: UpProcess) -> None:
    parts = urlsplit(up.endpoint)
    for raw in (b"POST /v1/describejobqueues HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                b"BREW /v1/describejobqueues HTTP/1.1\r\nHost: x\r\n\r\n"):
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
            conn.sendall(raw)
            received = b""
            while data := conn.recv(65536):  # until the server closes the connection
                received += data
        status = int(received.split(b" ", 2)[1])
        assert 400 <= status < 500 and b"ClientException" in received, received[:300]


def test_terminate_job_stops_the_task_through_the_stacks_launcher(batch: Any, queue: str) -> None:
    jd = _definition(batch, ["sleep", "60"])
    job_id = batch.submit_job(jobName="long", jobQueue=queue, jobDefinition=jd)["jobId"]
    wait_status(batch, job_id, "RUNNING")
    began = time.monotonic()
    batch.terminate_job(jobId=job_id, reason="stopped through the worker")
    job = wait_done(batch, job_id)
    assert job["status"] == "FAILED" and job["statusReason"] == "stopped through the worker"
    assert time.monotonic() - began < 40  # the process was stopped, not waited for


def test_a_worker_killed_is_replaced_on_the_same_port(up: UpProcess, batch: Any, queue: str) -> None:
    """The port's socket is the stack's: a request made while no worker serves it waits in
    its queue and is answered by the next worker. (A connection the killed worker held is
    closed under its request: the SDK's retries, on by default, send it again.)"""
    first = _worker(up)
    os.kill(first, signal.SIGKILL)
    retrying = make_client("batch", up.endpoint, config=Config(retries={"mode": "standard"}))
    jd = _definition(retrying, ["true"])  # sent at once: answered once the next worker runs
    job_id = retrying.submit_job(jobName="after-restart", jobQueue=queue, jobDefinition=jd)["jobId"]
    assert wait_done(batch, job_id)["status"] == "SUCCEEDED"
    assert _worker(up) != first


def test_the_remote_launcher_answers_for_the_stacks_launcher(up: UpProcess, batch: Any, queue: str) -> None:
    """RemoteLauncher against the stack's internal port (found in the worker's command line,
    as the stack gives it): launch, describe, attempts_on_instance and stop reach the
    stack's launcher."""
    argv = _proc_cmdline(_worker(up))
    remote = RemoteLauncher(argv[argv.index("--internal") + 1])
    job_id = batch.submit_job(jobName="described", jobQueue=queue,
                              jobDefinition=_definition(batch, ["sleep", "60"]))["jobId"]
    job = wait_status(batch, job_id, "RUNNING")
    task = job["container"]["taskArn"]
    found, missing = remote.describe([task, task + "-none"])
    assert [t["taskArn"] for t in found] == [task] and found[0]["lastStatus"] == "RUNNING"
    assert missing == [task + "-none"]
    assert remote.attempts_on_instance("i-none", []) == []
    # A second task for the job, as a later run of it (its events match no run the job
    # has, so they change nothing): started, and then stopped.
    (ce,) = batch.describe_compute_environments(computeEnvironments=[
        batch.describe_job_queues(jobQueues=[queue])["jobQueues"][0]["computeEnvironmentOrder"][0]["computeEnvironment"]
    ])["computeEnvironments"]
    second = remote.launch(LaunchRequest(job=job, attempt=1, run=99, queue_name=queue, compute_environment=ce))
    assert second != task
    assert remote.launch(LaunchRequest(job=job, attempt=1, run=99, queue_name=queue, compute_environment=ce)) == second
    remote.stop(second, "stopped by a RemoteLauncher")
    deadline = time.monotonic() + 30
    while remote.describe([second])[0][0]["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline, remote.describe([second])
        time.sleep(0.05)
    assert wait_status(batch, job_id, "RUNNING")["container"]["taskArn"] == task  # the job's own goes on
    remote.stop(task, "stopped by a RemoteLauncher")
    assert wait_done(batch, job_id)["status"] == "FAILED"


def _proc_cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0")]

