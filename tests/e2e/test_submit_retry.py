"""SubmitJob retry safety: botocore resends the same ``amz-sdk-invocation-id`` on every retry
of one call, and a retried submission must return the job the first try created."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse
from botocore.config import Config

from .support import Env, Raw, make_client, raw_request, uniq, wait_status

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def _jobs_named(batch: Any, queue: str, name: str) -> list[str]:
    """Every job called ``name`` in ``queue`` (a held queue), once its jobs are RUNNABLE,
    where they stay: a listing taken then does not change under the test."""
    for _ in range(200):
        found = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])
        summaries = found["jobSummaryList"]
        if all(s["status"] == "RUNNABLE" for s in summaries):
            return [s["jobId"] for s in summaries]
        for s in summaries:
            wait_status(batch, s["jobId"], "RUNNABLE")
    raise AssertionError(f"jobs named {name} never settled")


def _cancel(batch: Any, job_ids: list[str]) -> None:
    for job_id in job_ids:
        batch.cancel_job(jobId=job_id, reason="retry test done")


def test_same_invocation_id_same_job(raw: Callable[..., Raw], batch: Any, env: Env) -> None:
    name = uniq("retry")
    body = {"jobName": name, "jobQueue": env.held_queue, "jobDefinition": env.jobdef}
    invocation = str(uuid.uuid4())
    first = raw(
        "/v1/submitjob",
        body,
        headers={"amz-sdk-invocation-id": invocation, "amz-sdk-request": "attempt=1; max=3"},
    )
    second = raw(
        "/v1/submitjob",
        body,
        headers={"amz-sdk-invocation-id": invocation, "amz-sdk-request": "attempt=2; max=3"},
    )
    assert first.status == second.status == 200, (first.body, second.body)
    assert first.json["jobId"] == second.json["jobId"]
    assert first.json == second.json
    assert _jobs_named(batch, env.held_queue, name) == [first.json["jobId"]]

    other = raw("/v1/submitjob", body, headers={"amz-sdk-invocation-id": str(uuid.uuid4())})
    assert other.status == 200
    assert other.json["jobId"] != first.json["jobId"]
    # No invocation id at all: every request is a new submission.
    plain = [raw("/v1/submitjob", body).json["jobId"] for _ in range(2)]
    assert len({first.json["jobId"], other.json["jobId"], *plain}) == 4
    ids = _jobs_named(batch, env.held_queue, name)
    assert sorted(ids) == sorted([first.json["jobId"], other.json["jobId"], *plain])
    _cancel(batch, ids)


def test_invocation_id_is_scoped_to_caller_and_request(
    raw: Callable[..., Raw], batch: Any, env: Env
) -> None:
    """The same invocation id with another body, or from another caller, is another call."""
    name = uniq("scoped")
    invocation = str(uuid.uuid4())
    body = {"jobName": name, "jobQueue": env.held_queue, "jobDefinition": env.jobdef}

    def submit(payload: dict[str, Any], access_key: str | None = None) -> str:
        headers = {"amz-sdk-invocation-id": invocation}
        how = {"key": access_key} if access_key else {}
        resp = raw("/v1/submitjob", payload, headers=headers, **how)
        assert resp.status == 200, resp.body
        return resp.json["jobId"]

    base = submit(body)
    with_params = submit({**body, "parameters": {"p": "1"}})
    by_alice = submit(body, "AKIDALICE")
    by_bob = submit(body, "AKIDBOB")
    assert len({base, with_params, by_alice, by_bob}) == 4
    assert submit(body, "AKIDALICE") == by_alice
    _cancel(batch, _jobs_named(batch, env.held_queue, name))


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def test_boto3_retry_after_a_lost_answer_returns_the_same_job(
    endpoint: str, batch: Any, env: Env
) -> None:
    """The first try reaches the service and creates the job, but its answer is replaced
    by a 500 (as when the API times out after the write). botocore retries with the same
    invocation id; the retry must answer with the job already created."""
    client = make_client(
        "batch", endpoint, config=Config(retries={"mode": "standard", "max_attempts": 3})
    )
    tries: list[dict[str, str]] = []
    created: list[str] = []

    def lose_first_answer(request: Any, **_: Any) -> AWSResponse | None:
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        tries.append(headers)
        if len(tries) > 1:
            return None  # later tries go out normally
        delivered = raw_request(
            endpoint, request.method, urlsplit(request.url).path, request.body, headers, signed=False
        )  # as the client signed it
        assert delivered.status == 200, delivered.body
        created.append(delivered.json["jobId"])
        return AWSResponse(
            request.url,
            500,
            {"x-amzn-errortype": "ServerException"},
            _Body(b'{"__type": "ServerException", "message": "answer lost"}'),
        )

    client.meta.events.register("before-send.batch.SubmitJob", lose_first_answer)
    name = uniq("lost")
    answer = client.submit_job(jobName=name, jobQueue=env.held_queue, jobDefinition=env.jobdef)

    assert len(tries) == 2, "botocore did not retry the 500"
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert tries[0]["amz-sdk-invocation-id"] == tries[1]["amz-sdk-invocation-id"]
    assert tries[1]["amz-sdk-request"].startswith("attempt=2")
    assert answer["jobId"] == created[0]
    assert _jobs_named(batch, env.held_queue, name) == [created[0]]
    _cancel(batch, [created[0]])
