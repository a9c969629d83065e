"""Local mode's emulator: moto's server on loopback, with connections kept alive."""

from __future__ import annotations

import http.client
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from batchplane.local import emulator as emulator_module
from batchplane.local.emulator import Emulator
from botocore.config import Config
from moto.dynamodb.responses import DynamoHandler
from moto.server import create_backend_app

if TYPE_CHECKING:
    from collections.abc import Iterator

SIGNATURE = "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=x"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    e = Emulator()
    endpoint = e.start()
    yield endpoint
    e.stop()


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def test_one_connection_carries_many_requests(emulator: str) -> None:
    conn = http.client.HTTPConnection(emulator.split("//", 1)[1], timeout=10)
    for _ in range(3):
        conn.request("POST", "/", body="{}", headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0",
            "Authorization": SIGNATURE.format("dynamodb")})
        response = conn.getresponse()
        assert response.status == 200
        assert "TableNames" in json.loads(response.read())
        assert response.getheader("Connection") is None  # not "close"
    conn.close()


def test_chunked_bodies_and_head_responses_keep_their_lengths(emulator: str) -> None:
    s3 = _client(emulator, "s3")
    s3.create_bucket(Bucket="chunks")
    conn = http.client.HTTPConnection(emulator.split("//", 1)[1], timeout=10)
    # A body of unknown length comes chunked; the next request still reads cleanly.
    conn.request("PUT", "/chunks/k", body=iter([b"hello ", b"world"]), encode_chunked=True,
                 headers={"Authorization": SIGNATURE.format("s3")})
    put = conn.getresponse()
    put.read()
    assert put.status == 200
    conn.request("HEAD", "/chunks/k", headers={"Authorization": SIGNATURE.format("s3")})
    head = conn.getresponse()
    assert head.status == 200 and head.getheader("Content-Length") == "11"
    assert head.read() == b""  # no body after a HEAD, however long the object
    conn.close()
    assert s3.get_object(Bucket="chunks", Key="k")["Body"].read() == b"hello world"


def test_a_request_moto_fails_on_is_a_500_and_the_server_keeps_serving(
    emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(_self: Any) -> str:
        raise RuntimeError("moto bug")

    monkeypatch.setattr(DynamoHandler, "list_tables", crash)
    ddb = boto3.client("dynamodb", endpoint_url=emulator, region_name="us-east-1",
                       config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ddb.exceptions.ClientError) as failed:
        ddb.list_tables()
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    monkeypatch.undo()
    assert isinstance(ddb.list_tables()["TableNames"], list)  # served again


def test_events_and_logs_requests_get_the_answers_moto_s_app_gives(emulator: str) -> None:
    """Requests to the port for the JSON services moto serves at "/" (Logs, EventBridge,
    ECS, Step Functions) skip moto's Flask app for the handler it would route them to;
    their answers are the app's, errors included."""
    host = emulator.split("//", 1)[1]
    requests = [
        ("logs", "Logs_20140328.DescribeLogGroups", {}),
        ("logs", "Logs_20140328.CreateLogStream", {"logGroupName": "missing", "logStreamName": "s"}),
        ("events", "AWSEvents.PutEvents", {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}] * 11}),
        ("events", "AWSEvents.ListRules", {}),
    ]
    flask_app = emulator_module._Dispatcher(create_backend_app)  # moto's app itself, to compare with
    answers = []
    for service, target, body in requests:
        headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1",
                   "Authorization": SIGNATURE.format(service)}
        conn = http.client.HTTPConnection(host, timeout=10)
        conn.request("POST", "/", body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        answers.append((response.status, response.getheader("Content-Type"), json.loads(response.read() or b"{}")))
        conn.close()
        environ = emulator_module._wsgi({"REQUEST_METHOD": "POST", "PATH_INFO": "/", "SERVER_NAME": "127.0.0.1",
                                "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                                "HTTP_HOST": host, "CONTENT_TYPE": headers["Content-Type"],
                                "HTTP_X_AMZ_TARGET": target, "HTTP_AUTHORIZATION": headers["Authorization"]},
                               json.dumps(body).encode())
        status, data = emulator_module._call(flask_app, environ)
        expected = dict(status["headers"]).get("Content-Type")
        assert answers[-1] == (int(status["status"].split()[0]), expected, json.loads(data or b"{}")), target
    assert [a[0] for a in answers] == [200, 400, 400, 200]


def test_the_control_plane_s_own_requests_carry_sigv4_s_scope_without_its_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An attached client's requests never leave the process and moto checks no signature,
    so they are not signed; moto still finds the account, region and service in the
    credential scope. S3's own signing (s3v4) is left alone."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    e = Emulator()
    endpoint = e.start()
    try:
        seen: dict[str, str] = {}

        def keep(request: Any, **_: Any) -> None:
            seen[request.url] = request.headers["Authorization"].decode() \
                if isinstance(request.headers["Authorization"], bytes) else request.headers["Authorization"]

        logs = e.attach(boto3.client("logs", endpoint_url=endpoint, region_name="eu-west-1"))
        s3 = e.attach(boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1"))
        for c in (logs, s3):
            c.meta.events.register("before-send", keep)
        logs.create_log_group(logGroupName="/scoped")
        s3.create_bucket(Bucket="scoped", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        signed_logs, signed_s3 = seen[endpoint + "/"], seen[endpoint + "/scoped"]
        assert "Credential=testing/" in signed_logs and "/eu-west-1/logs/aws4_request" in signed_logs
        assert signed_logs.endswith("Signature=" + "0" * 64)
        assert not signed_s3.endswith("0" * 64)  # S3 keeps its real signature
        # Served in the scope's region, as a signed request from outside would be.
        assert [g["logGroupName"] for g in _client(endpoint, "logs").describe_log_groups()["logGroups"]] == []
        outside = boto3.client("logs", endpoint_url=endpoint, region_name="eu-west-1")
        assert [g["logGroupName"] for g in outside.describe_log_groups()["logGroups"]] == ["/scoped"]
    finally:
        e.stop()
