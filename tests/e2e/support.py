"""Helpers of the end-to-end tests: unique names, polling with deadlines (never fixed
sleeps), raw HTTP requests, the AWS CLI in a clean environment."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

if TYPE_CHECKING:
    from collections.abc import Callable

REGION = "us-east-1"
ACCESS_KEY = "e2e-access-key"
SECRET_KEY = "e2e-secret-key"
# Other callers the e2e stack knows (it verifies every Batch API signature), and the
# stack's default key, which clients of this process's environment sign with.
CALLERS = {"AKIDALICE": "alice-secret", "AKIDBOB": "bob-secret", "local": "local"}
TERMINAL = ("SUCCEEDED", "FAILED")
ORDER = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
# No retries: a 5xx must surface in the test that caused it, not be papered over.
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
_SEQ = itertools.count(1)
_RUN = uuid.uuid4().hex[:6]


def uniq(prefix: str) -> str:
    """A resource name no other test uses."""
    return f"{prefix}-{_RUN}-{next(_SEQ)}"


def make_client(service: str, endpoint: str, **kwargs: Any) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=kwargs.pop("config", NO_RETRY),
        **kwargs,
    )


# -- shared resources: one EC2 and one Fargate queue that run jobs, one that holds them ----


@dataclass
class Env:
    ec2_ce: str
    fargate_ce: str
    held_ce: str
    queue: str  # EC2, runs jobs
    fargate_queue: str  # FARGATE, runs jobs
    held_queue: str  # its only CE is DISABLED: jobs stay RUNNABLE
    jobdef: str  # EC2 container definition, echoes hello
    fargate_jobdef: str


def ec2_resources(**extra: Any) -> dict[str, Any]:
    """The computeResources AWS requires for a MANAGED EC2 compute environment."""
    return {
        "type": "EC2",
        "minvCpus": 0,
        "maxvCpus": 64,
        "instanceTypes": ["optimal"],
        "subnets": ["subnet-0e2e0001"],
        "securityGroupIds": ["sg-0e2e0001"],
        "instanceRole": "arn:aws:iam::123456789012:instance-profile/ecsInstanceRole",
        **extra,
    }


def fargate_resources(**extra: Any) -> dict[str, Any]:
    return {
        "type": "FARGATE",
        "maxvCpus": 16,
        "subnets": ["subnet-0e2e0001"],
        "securityGroupIds": ["sg-0e2e0001"],
        **extra,
    }


HELLO = ["sh", "-c", "echo hello $AWS_BATCH_JOB_ID"]


# -- polling ----------------------------------------------------------------------------


def describe(batch: Any, job_id: str) -> dict[str, Any]:
    jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
    assert len(jobs) == 1, f"DescribeJobs does not know {job_id}"
    return jobs[0]


def wait_for(
    batch: Any,
    job_id: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 10.0,
    seen: list[str] | None = None,
    what: str = "",
) -> dict[str, Any]:
    """Poll DescribeJobs until ``until(job)``; records each status change in ``seen``."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        job = describe(batch, job_id)
        if seen is not None and (not seen or seen[-1] != job["status"]):
            seen.append(job["status"])
        if until(job):
            return job
        if time.monotonic() > deadline:
            pytest.fail(
                f"job {job_id} never became {what or until} within {timeout}s; "
                f"last: {job['status']} {job.get('statusReason')!r}"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def wait_status(batch: Any, job_id: str, *statuses: str, **kw: Any) -> dict[str, Any]:
    return wait_for(batch, job_id, lambda j: j["status"] in statuses, what="/".join(statuses), **kw)


def wait_done(batch: Any, job_id: str, **kw: Any) -> dict[str, Any]:
    return wait_status(batch, job_id, *TERMINAL, **kw)


def log_messages(
    logs: Any, stream: str, *, expect: str | None = None, timeout: float = 5.0
) -> list[str]:
    """The messages of a /aws/batch/job stream; with ``expect``, waits for a message
    containing it (CloudWatch Logs ingestion is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        events = logs.get_log_events(
            logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True
        )["events"]
        messages = [e["message"] for e in events]
        if expect is None or any(expect in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.05)


def job_output(batch: Any, logs: Any, job: dict[str, Any], expect: str | None = None) -> list[str]:  # noqa: ARG001 - the (batch, logs, job) order of its 14 callers; the attempt names the log stream
    stream = job["attempts"][-1]["container"]["logStreamName"]
    return log_messages(logs, stream, expect=expect)


# -- raw HTTP ---------------------------------------------------------------------------


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")


def credentials_file(directory: Path) -> Path:
    """An AWS shared credentials file of the tests' keys, for ``local up --credentials``."""
    path = directory / "credentials"
    keys = {ACCESS_KEY: SECRET_KEY, **CALLERS}
    path.write_text("".join(f"[p{i}]\naws_access_key_id = {k}\naws_secret_access_key = {v}\n"
                            for i, (k, v) in enumerate(keys.items())))
    return path


def raw_request(
    endpoint: str,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    *,
    signed: bool = True,
    key: str = ACCESS_KEY,
    secret: str | None = None,
) -> Raw:
    """One HTTP request, as a hand-written client (or an attacker) would send it: the body
    as given, signed with SigV4 for ``batch`` by ``key`` (the tests' own, one of CALLERS,
    or any with its ``secret``) unless ``signed`` is False."""
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    data = body.encode() if isinstance(body, str) else body
    sent = {"Content-Type": "application/json", **(headers or {})}
    if signed:
        request = AWSRequest(method=method, url=f"{endpoint.rstrip('/')}{path}", data=data or b"", headers=sent)
        secret = secret or (SECRET_KEY if key == ACCESS_KEY else CALLERS[key])
        SigV4Auth(Credentials(key, secret), "batch", REGION).add_auth(request)
        sent = dict(request.headers.items())
    try:
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        return Raw(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def assert_client_error(resp: Raw, *words: str) -> str:
    """HTTP 400, x-amzn-errortype ClientException, and a message naming the problem."""
    assert resp.status == 400, (resp.status, resp.body[:500])
    assert resp.error_type == "ClientException", resp.headers
    body = resp.json
    assert body["__type"] == "ClientException", body
    message = body["message"]
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    return message


# -- the AWS CLI --------------------------------------------------------------------------


def aws_cli_path() -> str:
    found = Path(sys.executable).with_name("aws")
    if found.exists():
        return str(found)
    which = shutil.which("aws")
    if which is None:
        pytest.skip("the AWS CLI is not installed")
    return which


def cli_env(**extra: str) -> dict[str, str]:
    """A clean environment for a client process: fake keys, a region and nothing of the
    stack's own settings (it points AWS_ENDPOINT_URL at its emulator)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_PAGER": "",
        }
    )
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run_clis([list(args)], env=env, check=check)[0]


def run_clis(
    commands: list[list[str]], *, env: dict[str, str], check: bool = True
) -> list[subprocess.CompletedProcess[str]]:
    """Runs independent ``aws`` commands side by side (each CLI start costs ~1 s)."""
    procs = [
        (
            args,
            subprocess.Popen(
                [aws_cli_path(), *args, "--output", "json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args in commands
    ]
    done = []
    for args, proc in procs:
        out, err = proc.communicate(timeout=60)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if check:
            assert result.returncode == 0, f"aws {' '.join(args)} -> {result.returncode}\n{err}"
        done.append(result)
    return done
