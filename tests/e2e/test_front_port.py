"""Malformed HTTP at the front port: every request gets a 4xx in AWS's error shape and a
closed connection, within the read timeout; none hangs, drops the connection without an
answer, or gets a 500."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .support import ACCESS_KEY, SECRET_KEY, Env, make_client, uniq, wait_done

if TYPE_CHECKING:
    from collections.abc import Iterator

    from batchplane.local.stack import LocalStack

READ_TIMEOUT = 2.0  # this test's: the stack's own is 30 s


@pytest.fixture
def short_timeout(stack: LocalStack) -> Iterator[None]:
    assert stack.server is not None
    handler = stack.server.RequestHandlerClass
    saved = handler.timeout
    handler.timeout = READ_TIMEOUT
    yield
    handler.timeout = saved


def _exchange(endpoint: str, raw: bytes) -> tuple[int, bytes]:
    """Send ``raw``, read until the server closes; the status and everything it sent."""
    parts = urlsplit(endpoint)
    with socket.create_connection((parts.hostname, parts.port), timeout=READ_TIMEOUT + 10) as conn:
        conn.sendall(raw)
        received = b""
        while True:
            data = conn.recv(65536)  # a hang fails here with a timeout
            if not data:
                break
            received += data
    assert received, "the connection was dropped without an answer"
    return int(received.split(b" ", 2)[1]), received


BATCH_AUTH = (b"Authorization: AWS4-HMAC-SHA256 Credential=local/20261202/us-east-1/batch/aws4_request, "
              b"SignedHeaders=host, Signature=00\r\n")
MALFORMED = {
    "negative content-length": b"POST /v1/describejobqueues HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "content-length longer than the body": b"POST /v1/describejobqueues HTTP/1.1\r\nHost: x\r\n"
                                            b"Content-Length: 100\r\n\r\n{}",
    "non-numeric content-length": b"POST /v1/describejobqueues HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "huge content-length": b"POST /v1/describejobqueues HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n",
    "bad chunk size": b"POST /v1/describejobqueues HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "truncated chunk": b"POST /v1/describejobqueues HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"10\r\nabc",
    "POST /v1": b"POST /v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    "/v2/submitjob": b"POST /v2/submitjob HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute URI": b"POST http://example.com/v1/describejobqueues HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    "dynamodb scope on /v1": b"POST /v1/describejobqueues HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                             b"Authorization: AWS4-HMAC-SHA256 Credential=local/20261202/us-east-1/dynamodb/"
                             b"aws4_request, SignedHeaders=host, Signature=00\r\n\r\n{}",
    "unsupported method": b"PROPFIND /v1/describejobqueues HTTP/1.1\r\nHost: x\r\n" + BATCH_AUTH + b"\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.usefixtures("short_timeout")
def test_a_malformed_request_gets_a_4xx_and_a_closed_connection(
    endpoint: str, raw: bytes
) -> None:
    status, received = _exchange(endpoint, raw)
    assert 400 <= status < 500, received[:300]
    assert b'"__type"' in received, received[:300]
    assert b"x-amzn-RequestId: " in received, received[:300]


def test_the_stack_still_serves_after_the_malformed_requests(endpoint: str, batch: Any, env: Env) -> None:
    job = batch.submit_job(jobName=uniq("after-malformed"), jobQueue=env.queue, jobDefinition=env.jobdef)["jobId"]
    assert wait_done(batch, job, timeout=20)["status"] == "SUCCEEDED"
    s3 = make_client("s3", endpoint)  # what is forwarded to the emulator still is
    s3.create_bucket(Bucket=uniq("front").lower())


def test_a_batch_request_signed_for_another_region_is_refused_with_the_stacks(endpoint: str) -> None:
    """AWS's endpoints are regional: a client of us-west-2 pointed at this us-east-1 stack
    would otherwise read and write another region's queues under this one's ARNs."""
    elsewhere = boto3.session.Session().client(
        "batch", endpoint_url=endpoint, region_name="us-west-2", aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=Config(retries={"max_attempts": 0}))
    with pytest.raises(ClientError) as info:
        elsewhere.describe_job_queues()
    error = info.value.response["Error"]
    # As AWS refuses a signature scoped to another region (the stack verifies signatures).
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Code"] == "InvalidSignatureException"
    assert "us-east-1" in error["Message"] and "us-west-2" in error["Message"], error
    # Other services are the emulator's, which keeps every region apart itself.
    make_client("s3", endpoint).list_buckets()
