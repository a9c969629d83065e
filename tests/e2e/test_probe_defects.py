"""Issue 17 (defects found by probing), the sub-points the other e2e files left without a
test, through boto3 and raw HTTP against the local stack:

- item 6: a crafted nextToken on DescribeJobQueues, DescribeComputeEnvironments,
  DescribeJobDefinitions and ListSchedulingPolicies is a ClientException, not a 500;
- item 8: a request held inside the service does not hold up the others;
- item 9: no other way through the front port reaches the emulator's control API or
  delivers a forged ECS task or S3 event (a percent-encoded path, EventBridge's PutEvents
  with an aws.* source, a message sent to the local bus's queue), and only a user's signed
  request interrupts an instance;
- item 11: ``batchplane local up`` stops on SIGTERM within seconds, without tracebacks,
  ending the processes of the jobs it runs; an attempt leaves no working directory.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from batchplane import wiring
from botocore.exceptions import ClientError

from .support import (
    TERMINAL,
    Env,
    credentials_file,
    ec2_resources,
    make_client,
    raw_request,
    uniq,
    wait_done,
    wait_status,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from batchplane.local.stack import LocalStack

# -- item 6: crafted nextTokens ----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


_CRAFTED = {
    "deep JSON list": _b64(b"[" * 5000),
    "deep JSON object": _b64(b'{"a":' * 5000),
    "not base64": "!!!???",
    "not UTF-8": _b64(b"\xff\xfe["),
    "a JSON number": _b64(b"12"),
    "a start key of empty strings": _b64(json.dumps(
        {"pk": {"S": ""}, "sk": {"S": ""}, "gsi1pk": {"S": ""}, "gsi1sk": {"S": ""}}).encode()),
    "a start key with a lone surrogate": _b64(json.dumps(
        {"pk": {"S": "CE#\ud800"}, "sk": {"S": "#"}, "gsi1pk": {"S": "CE"}, "gsi1sk": {"S": "\ud800"}}).encode()),
    "a list with a lone surrogate": _b64(json.dumps(["CE", "\ud800", "CE#\ud800", "#"]).encode()),
}

_LISTINGS = {
    "DescribeJobQueues": lambda batch, **kw: batch.describe_job_queues(**kw),
    "DescribeComputeEnvironments": lambda batch, **kw: batch.describe_compute_environments(**kw),
    "DescribeJobDefinitions": lambda batch, **kw: batch.describe_job_definitions(**kw),
    "ListSchedulingPolicies": lambda batch, **kw: batch.list_scheduling_policies(**kw),
}


def _client_exception(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, response
    assert response["Error"]["Code"] == "ClientException", response
    return response


@pytest.fixture(scope="module")
def listed(batch: Any, env: Env) -> None:  # noqa: ARG001 - requested for its side effect (usefixtures does not apply to fixtures)
    """Two of everything the four listings list, so that each has a page after the first."""
    for _ in range(2):
        batch.create_scheduling_policy(name=uniq("probe-sp"), fairsharePolicy={"shareDecaySeconds": 0})


@pytest.mark.parametrize("token", list(_CRAFTED.values()), ids=list(_CRAFTED))
@pytest.mark.parametrize("operation", list(_LISTINGS))
@pytest.mark.usefixtures("listed")
def test_a_crafted_next_token_is_a_client_exception(
    batch: Any, operation: str, token: str
) -> None:
    _client_exception(lambda: _LISTINGS[operation](batch, maxResults=1, nextToken=token))


@pytest.mark.usefixtures("listed")
def test_a_next_token_of_another_listing_is_a_client_exception(batch: Any) -> None:
    """A token names a place in one listing: handed to another it is refused, not read as a
    place there."""
    tokens = {}
    for operation, call in _LISTINGS.items():
        tokens[operation] = call(batch, maxResults=1)["nextToken"]
    for operation, call in _LISTINGS.items():
        for other, token in tokens.items():
            if other != operation:
                _client_exception(lambda call=call, token=token: call(batch, maxResults=1, nextToken=token))
        # Its own token goes on.
        assert call(batch, maxResults=1, nextToken=tokens[operation])["ResponseMetadata"]["HTTPStatusCode"] == 200


# -- item 8: requests served side by side -------------------------------------------------------


def test_a_request_held_in_the_service_does_not_hold_up_the_others(
    endpoint: str, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one DescribeJobs waits inside the service (the store, a slow disk), other
    requests are answered: one process-wide lock per request served one at a time."""
    jobs = wiring.services().jobs
    real_describe = jobs.describe
    inside, release = threading.Event(), threading.Event()

    def slow_describe(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if not inside.is_set():
            inside.set()
            assert release.wait(30), "the test never let the slow request go"
        return real_describe(*args, **kwargs)

    monkeypatch.setattr(jobs, "describe", slow_describe)
    slow_client, quick_client = make_client("batch", endpoint), make_client("batch", endpoint)
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(slow_client.describe_jobs, jobs=["none-such"])
        try:
            assert inside.wait(10), "the slow request never reached the service"
            for _ in range(3):
                queues = quick_client.describe_job_queues(jobQueues=[env.queue])["jobQueues"]
                assert [q["jobQueueName"] for q in queues] == [env.queue]
            assert not slow.done()
        finally:
            release.set()
        assert slow.result(timeout=30)["jobs"] == []


# -- item 9: the trust boundary of the front port -----------------------------------------------


_S3_AUTH = {"Authorization": "AWS4-HMAC-SHA256 Credential=local/20261202/us-east-1/s3/aws4_request, "
                             "SignedHeaders=host, Signature=00"}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/%6Doto-api/data.json"),
    ("GET", "/%6doto-api/data.json"),
    ("GET", "/moto%2Dapi/data.json"),
    ("POST", "/%6Doto-api/reset"),
])
def test_the_emulator_control_api_is_refused_however_its_path_is_spelled(
    endpoint: str, batch: Any, env: Env, method: str, path: str
) -> None:
    """The emulator decodes percent-escapes before it routes a path: /%6Doto-api/ is its
    control API as much as /moto-api/ is."""
    resp = raw_request(endpoint, method, path, "", _S3_AUTH, signed=False)
    assert resp.status == 403, (resp.status, resp.body[:200])
    job = batch.submit_job(jobName=uniq("after-probe"), jobQueue=env.queue, jobDefinition=env.jobdef)["jobId"]
    assert wait_done(batch, job, timeout=20)["status"] == "SUCCEEDED"


@pytest.fixture
def victim(batch: Any, env: Env) -> Iterator[dict[str, Any]]:
    """A RUNNING job, terminated at the end."""
    job = batch.submit_job(jobName=uniq("victim"), jobQueue=env.queue, jobDefinition=env.jobdef,
                           containerOverrides={"command": ["sleep", "60"]})["jobId"]
    running = wait_status(batch, job, "RUNNING", timeout=30)
    yield running
    batch.terminate_job(jobId=job, reason="test over")
    assert wait_done(batch, job, timeout=60)["status"] == "FAILED"


def _forged_detail(job: dict[str, Any]) -> dict[str, Any]:
    """What the launcher's own STOPPED event of the job's attempt says, exit code 0."""
    arn = job["container"]["taskArn"]
    return {
        "taskArn": arn, "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
        "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
        "startedBy": f"batchplane/{len(job.get('attempts', [])) + 1}",
        "containers": [{"name": "main", "lastStatus": "STOPPED", "exitCode": 0}],
        "overrides": {"containerOverrides": [{"name": "main", "environment": [
            {"name": "AWS_BATCH_JOB_ID", "value": job["jobId"]}]}]},
    }


def _still_running(batch: Any, job_id: str, seconds: float = 3.0) -> None:
    """The job stays RUNNING for ``seconds`` (what a delivered forgery would have ended
    well within them: the local bus delivers within a second)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        assert job["status"] == "RUNNING", (job["status"], job.get("statusReason"))
        time.sleep(0.1)


def test_put_events_of_an_aws_source_is_refused_and_cannot_end_another_jobs_attempt(
    endpoint: str, batch: Any, victim: dict[str, Any]
) -> None:
    """EventBridge keeps the aws.* sources to AWS's services (NotAuthorizedForSourceException):
    else anyone could put the ECS event that ends another job's attempt. Other entries of
    the request go through."""
    events = make_client("events", endpoint)
    answer = events.put_events(Entries=[
        {"Source": "aws.ecs", "DetailType": "ECS Task State Change",
         "Detail": json.dumps(_forged_detail(victim)), "Resources": [victim["container"]["taskArn"]]},
        # An upload's event would fire the bucket's triggers: S3's own, too.
        {"Source": "aws.s3", "DetailType": "Object Created",
         "Detail": json.dumps({"bucket": {"name": "b"}, "object": {"key": "k", "sequencer": "01"}})},
        {"Source": "my.app", "DetailType": "Something", "Detail": "{}"},
    ])
    assert answer["FailedEntryCount"] == 2, answer
    *refused, kept = answer["Entries"]
    assert [r.get("ErrorCode") for r in refused] == ["NotAuthorizedForSourceException"] * 2, answer
    assert "EventId" in kept and "ErrorCode" not in kept, answer
    _still_running(batch, victim["jobId"])


def test_only_a_users_signed_request_interrupts_an_instance(
    endpoint: str, stack: LocalStack, batch: Any, victim: dict[str, Any]
) -> None:
    """``batchplane local interrupt`` reclaims the Spot instance under a job: an unsigned
    request, or one signed with the key every job is given, could stop another's job."""
    body = json.dumps({"jobId": victim["jobId"]})
    unsigned = raw_request(endpoint, "POST", "/_batchplane/interrupt", body, signed=False)
    assert unsigned.status == 403 and unsigned.json["__type"] == "MissingAuthenticationTokenException", unsigned
    job_key = stack.job_access_key
    by_a_job = raw_request(endpoint, "POST", "/_batchplane/interrupt", body, key=job_key, secret=stack.keys[job_key])
    assert by_a_job.status == 403 and by_a_job.json["__type"] == "AccessDeniedException", by_a_job
    assert "user's key" in by_a_job.json["message"]
    _still_running(batch, victim["jobId"])
    missing = raw_request(endpoint, "POST", "/_batchplane/interrupt", json.dumps({"jobId": "no-such-job"}))
    assert missing.status == 400 and missing.json["__type"] == "ClientException", missing


def test_a_message_sent_to_the_local_buss_queue_cannot_end_another_jobs_attempt(
    endpoint: str, batch: Any, victim: dict[str, Any]
) -> None:
    """Local mode carries an EventBridge rule's events to its function through an SQS queue
    of the emulator; that queue is the stack's own, not a way in for users and jobs."""
    sqs = make_client("sqs", endpoint)
    name = "batchplane-EventsFunction-EcsTaskStateChange"
    event = {"version": "0", "id": "forged", "detail-type": "ECS Task State Change", "source": "aws.ecs",
             "account": "123456789012", "region": "us-east-1", "time": "2026-12-03T00:00:00Z",
             "resources": [victim["container"]["taskArn"]], "detail": _forged_detail(victim)}
    with pytest.raises(ClientError) as refused:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, refused.value.response
    _still_running(batch, victim["jobId"])


# -- item 11: stopping ``local up`` -------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _until(done: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_local_up_stops_on_sigterm_within_seconds_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """A finished attempt leaves no working directory in the temp folder; SIGTERM stops the
    stack in a few seconds (not 30), with no traceback, and the process group of a job
    still running (one that ignores SIGTERM, and its child) ends with it."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BATCHPLANE_"))}
    env["TMPDIR"] = str(temp)
    up = subprocess.Popen(
        [sys.executable, "-m", "batchplane.cli", "local", "up", "--port", "0", "--data-dir", str(tmp_path / "state"),
         "--credentials", str(credentials_file(tmp_path))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    output: list[str] = []
    try:
        assert up.stdout is not None
        endpoint = ""
        deadline = time.monotonic() + 60
        while not endpoint and time.monotonic() < deadline:
            line = up.stdout.readline()
            assert line, f"local up ended: {''.join(output)}"
            output.append(line)
            if "listening on " in line:
                endpoint = line.split("listening on ", 1)[1].split(";", 1)[0]
        assert endpoint, f"local up did not start: {''.join(output)}"
        reader = threading.Thread(target=output.extend, args=(up.stdout,), daemon=True)
        reader.start()

        batch = make_client("batch", endpoint)
        batch.create_compute_environment(computeEnvironmentName="ce", type="MANAGED",
                                         computeResources=ec2_resources(maxvCpus=4))
        batch.create_job_queue(jobQueueName="q", priority=1,
                               computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}])
        batch.register_job_definition(
            jobDefinitionName="sh", type="container",
            containerProperties={"image": "busybox", "command": ["true"],
                                 "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                          {"type": "MEMORY", "value": "64"}]})

        def run(script: str) -> str:
            return batch.submit_job(jobName="j", jobQueue="q", jobDefinition="sh",
                                    containerOverrides={"command": ["sh", "-c", script]})["jobId"]

        done = run("pwd > made-here; echo x > file")
        _until(lambda: batch.describe_jobs(jobs=[done])["jobs"][0]["status"] in TERMINAL, 60, "the first job")
        assert batch.describe_jobs(jobs=[done])["jobs"][0]["status"] == "SUCCEEDED"
        # Its working directory goes with it.
        _until(lambda: not [p for p in temp.iterdir() if p.name.startswith("batchplane-")], 10,
               f"the attempt's working directory to go: {sorted(p.name for p in temp.iterdir())}")

        pidfile = tmp_path / "pids"
        running = run(f"trap '' TERM; sleep 300 & echo $$ $! > {pidfile}; wait; wait")
        _until(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2, 60, "the second job's pids")
        # The process may write its pids before the stack has recorded the job RUNNING.
        _until(lambda: batch.describe_jobs(jobs=[running])["jobs"][0]["status"] == "RUNNING", 30,
               "the second job RUNNING")
        pids = [int(p) for p in pidfile.read_text().split()]

        began = time.monotonic()
        up.send_signal(signal.SIGTERM)
        code = up.wait(timeout=30)
        took = time.monotonic() - began
        reader.join(5)
        text = "".join(output)
        assert code == 0, text
        assert took < 10, f"local up took {took:.1f}s to stop"
        assert "Traceback" not in text, text
        assert "cannot schedule new futures" not in text, text
        _until(lambda: not [p for p in pids if _alive(p)], 5, f"the job's processes {pids} to end")
        assert not [p for p in temp.iterdir() if p.name.startswith("batchplane-")]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
