"""Calling a deployed batchplane with the unmodified boto3 ``batch`` client.

API Gateway's IAM authorization accepts SigV4 signatures for the service name
``execute-api``; botocore signs Batch calls for ``batch``. One event handler on the client
changes only the signing name; everything else (operations, shapes, retries) stays the
SDK's own::

    batch = sign_for_api_gateway(boto3.client(
        "batch", endpoint_url="https://<api-id>.execute-api.<region>.amazonaws.com/prod"))

The same works for the AWS CLI through a botocore plugin that calls it on "batch" clients.
Local mode needs none of this: it accepts any signature.
"""

from __future__ import annotations

from typing import Any


def _execute_api(request: Any, **_: Any) -> None:
    request.context.setdefault("signing", {})["signing_name"] = "execute-api"


def sign_for_api_gateway(client: Any) -> Any:
    """Make ``client`` (a boto3 ``batch`` client) sign for API Gateway; returns it."""
    client.meta.events.register("before-sign.batch", _execute_api)
    return client
