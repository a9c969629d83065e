"""Where batchplane answered differently from AWS Batch, through the unmodified boto3
client: unknown jobs for CancelJob/TerminateJob, array dependency types on plain jobs,
the request id of every response, unknown instance types, and values a process cannot
take."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from .support import Raw
from .test_resources import client_error

# -- CancelJob / TerminateJob of a job batchplane does not know ---------------------------


@pytest.mark.parametrize("operation", ["cancel_job", "terminate_job"])
def test_stopping_an_unknown_job_answers_200_and_an_empty_body(
    batch: Any, raw: Callable[..., Raw], operation: str
) -> None:
    """AWS Batch answers CancelJob and TerminateJob of any job id with HTTP 200 and {}
    (aws/aws-cli#2551: terminate-job of "Whatever-string" returns 200 with body {})."""
    for job_id in (str(uuid.uuid4()), "no-such-job", f"{uuid.uuid4()}:3"):
        out = getattr(batch, operation)(jobId=job_id, reason="not there")
        assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert {k: v for k, v in out.items() if k != "ResponseMetadata"} == {}
    path = "/v1/canceljob" if operation == "cancel_job" else "/v1/terminatejob"
    resp = raw(path, {"jobId": str(uuid.uuid4()), "reason": "not there"})
    assert (resp.status, resp.json) == (200, {})
    # The request itself must still be well formed.
    client_error(getattr(batch, operation), "reason", jobId=str(uuid.uuid4()), reason="")
