"""A small client for batchplane's own operations (``POST /v1/batchplane/<operation>``),
signed with SigV4 like the Batch calls of the AWS SDKs, with the same credentials, region
and endpoint settings (``AWS_ENDPOINT_URL_BATCH`` or ``AWS_ENDPOINT_URL``)."""

from __future__ import annotations

import json
import os
from http import HTTPStatus
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.httpsession import URLLib3Session


class BatchplaneError(Exception):
    """The service refused the call; ``code`` is its error type (ClientException ...)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class BatchplaneClient:
    def __init__(self, endpoint_url: str | None = None, region: str | None = None) -> None:
        self.session = botocore.session.get_session()
        endpoint = (
            endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_BATCH")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        if not endpoint:
            raise ValueError(
                "No batchplane endpoint: pass --endpoint-url or set AWS_ENDPOINT_URL_BATCH "
                "(or AWS_ENDPOINT_URL) to the API's URL."
            )
        self.endpoint = endpoint.rstrip("/")
        self.region = region or self.session.get_config_variable("region") or "us-east-1"
        self.http = URLLib3Session()

    def call(self, operation: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.post(f"/v1/batchplane/{operation}", body)

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST ``body`` to ``path`` of the endpoint, signed for the service batch."""
        request = AWSRequest(
            method="POST",
            url=f"{self.endpoint}{path}",
            data=json.dumps(body or {}).encode(),
            headers={"Content-Type": "application/json"},
        )
        credentials = self.session.get_credentials()
        if credentials is not None:
            SigV4Auth(credentials.get_frozen_credentials(), "batch", self.region).add_auth(request)
        response = self.http.send(request.prepare())
        try:
            data = json.loads(response.content or b"{}")
        except ValueError:
            data = {"message": response.content.decode(errors="replace")[:500]}
        if response.status_code >= HTTPStatus.BAD_REQUEST:
            code = response.headers.get("x-amzn-errortype") or data.get("__type") or "Error"
            raise BatchplaneError(code.split(":")[0], data.get("message", ""), response.status_code)
        return data
