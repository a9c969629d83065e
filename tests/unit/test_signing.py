"""The client-side hook that lets the unmodified batch client call API Gateway."""

from __future__ import annotations

from typing import Any

import boto3
from batchplane.signing import sign_for_api_gateway
from botocore.awsrequest import AWSResponse


def _sent_authorization(client: Any) -> str:
    seen: dict[str, str] = {}

    def capture(request: Any, **_: Any) -> AWSResponse:
        seen["auth"] = request.headers["Authorization"].decode() if isinstance(
            request.headers["Authorization"], bytes) else request.headers["Authorization"]

        class Raw:
            def stream(self, **_: Any) -> Any:
                yield b'{"jobs": []}'

        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, Raw())

    client.meta.events.register("before-send.batch", capture)
    client.describe_jobs(jobs=["x"])
    return seen["auth"]


def _client() -> Any:
    return boto3.client("batch", region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="secret", endpoint_url="https://api.example/prod")


def test_unmodified_client_signs_for_batch() -> None:
    assert "/eu-west-1/batch/aws4_request" in _sent_authorization(_client())


def test_hooked_client_signs_for_execute_api_and_keeps_its_region() -> None:
    auth = _sent_authorization(sign_for_api_gateway(_client()))
    assert "Credential=AKIDEXAMPLE/" in auth
    assert "/eu-west-1/execute-api/aws4_request" in auth
