"""The Batch API verifies every request's SigV4 signature (issue 15 item 4): a key the
stack knows is served; an unknown key, a wrong secret, a tampered body, a stale date, a
wrong scope or no signature at all get AWS's 403, through the unmodified boto3 client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from batchplane.signing import sign_for_api_gateway
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from bench.localup import UpProcess

from .support import (
    ACCESS_KEY,
    CALLERS,
    NO_RETRY,
    REGION,
    SECRET_KEY,
    Env,
    make_client,
    raw_request,
    uniq,
    wait_done,
)

if TYPE_CHECKING:
    from pathlib import Path


def _client(endpoint: str, key: str, secret: str) -> Any:
    return boto3.session.Session().client("batch", endpoint_url=endpoint, region_name=REGION,
                                          aws_access_key_id=key, aws_secret_access_key=secret, config=NO_RETRY)


def _refused(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, info.value.response
    assert info.value.response["ResponseMetadata"].get("RequestId")
    return info.value.response["Error"]


def test_each_known_key_is_served(endpoint: str, env: Env) -> None:
    for key in ("AKIDALICE", "AKIDBOB"):
        queues = _client(endpoint, key, CALLERS[key]).describe_job_queues(jobQueues=[env.queue])["jobQueues"]
        assert [q["jobQueueName"] for q in queues] == [env.queue]


def test_an_unknown_access_key_is_unrecognized(endpoint: str) -> None:
    error = _refused(_client(endpoint, "AKIDSTRANGER", "guessed").describe_job_queues)
    assert error["Code"] == "UnrecognizedClientException"
    assert "AKIDSTRANGER" in error["Message"]


def test_a_known_key_with_the_wrong_secret_does_not_match(endpoint: str) -> None:
    error = _refused(_client(endpoint, "AKIDALICE", "bob-secret").describe_job_queues)
    assert error["Code"] == "InvalidSignatureException"
    assert "does not match" in error["Message"]


def test_a_body_changed_after_signing_does_not_match(endpoint: str, env: Env) -> None:
    client = make_client("batch", endpoint)

    def tamper(request: Any, **_: Any) -> None:
        request.body = request.body.replace(b"honest", b"forged")

    client.meta.events.register("before-send.batch.SubmitJob", tamper)
    error = _refused(lambda: client.submit_job(jobName="honest", jobQueue=env.held_queue,
                                               jobDefinition=env.jobdef))
    assert error["Code"] == "InvalidSignatureException"
    assert not make_client("batch", endpoint).list_jobs(jobQueue=env.held_queue, filters=[
        {"name": "JOB_NAME", "values": ["forged"]}])["jobSummaryList"]


class _SignedAt(SigV4Auth):
    """botocore's SigV4 signer with the clock set to ``at``."""

    def __init__(self, at: datetime) -> None:
        super().__init__(Credentials(ACCESS_KEY, SECRET_KEY), "batch", REGION)
        self.at = at

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self.at.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        self._inject_signature_to_request(request, self.signature(self.string_to_sign(request, canonical), request))


@pytest.mark.parametrize(("minutes", "words"), [(-20, "Signature expired"), (20, "not yet current")])
def test_a_signature_more_than_15_minutes_away_is_refused(endpoint: str, minutes: int, words: str) -> None:
    request = AWSRequest(method="POST", url=f"{endpoint}/v1/describejobqueues", data=b"{}",
                         headers={"Content-Type": "application/json"})
    _SignedAt(datetime.now(UTC) + timedelta(minutes=minutes)).add_auth(request)
    resp = raw_request(endpoint, "POST", "/v1/describejobqueues", "{}", dict(request.headers.items()), signed=False)
    assert resp.status == 403 and resp.error_type == "InvalidSignatureException", resp.body
    assert words in resp.json["message"]


def test_a_signature_for_another_service_is_scoped_wrong(endpoint: str) -> None:
    client = sign_for_api_gateway(make_client("batch", endpoint))  # execute-api: the deployed API's
    error = _refused(client.describe_job_queues)
    assert error["Code"] == "InvalidSignatureException"
    assert "'batch'" in error["Message"]


def test_an_unsigned_request_is_refused(endpoint: str) -> None:
    resp = raw_request(endpoint, "POST", "/v1/describejobqueues", "{}", signed=False)
    assert resp.status == 403 and resp.error_type == "MissingAuthenticationTokenException", resp.body


@pytest.mark.usefixtures("endpoint")
def test_the_stacks_jobs_are_given_a_key_it_knows(batch: Any, env: Env) -> None:
    """A job calls the Batch API with the credentials the stack gives it."""
    script = ("import boto3; b = boto3.client('batch'); "
              f"print(len(b.describe_job_queues(jobQueues=['{env.queue}'])['jobQueues']))")
    job = batch.submit_job(jobName=uniq("calls-batch"), jobQueue=env.queue, jobDefinition=env.jobdef,
                           containerOverrides={"command": ["python3", "-c", script]})["jobId"]
    assert wait_done(batch, job, timeout=30)["status"] == "SUCCEEDED"


def test_insecure_any_credentials_takes_unsigned_requests_and_any_key(tmp_path: Path) -> None:
    up = UpProcess(tmp_path / "data", tmp_path / "up.log", options=["--insecure-any-credentials"])
    up.start()
    try:
        resp = raw_request(up.endpoint, "POST", "/v1/describejobqueues", "{}", signed=False)
        assert resp.status == 200, resp.body
        assert _client(up.endpoint, "AKIDSTRANGER", "anything").describe_job_queues()["jobQueues"] == []
        assert "--insecure-any-credentials" in up.tail()
    finally:
        up.stop()
