"""Concurrent requests: each gets the answer to its own request, and races between them
end in client errors, never in 5xx."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from batchplane import wiring
from botocore.config import Config
from botocore.exceptions import ClientError

from .support import NO_RETRY, Env, make_client, uniq

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@contextmanager
def eager_thread_switches() -> Iterator[None]:
    """Switch threads as often as possible: races inside this process (the local stack
    runs in it) show up in a handful of requests instead of once in a blue moon."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.fixture(scope="module")
def pooled(endpoint: str) -> Any:
    """One client (boto3 clients are thread-safe) with a connection per worker."""
    return make_client("batch", endpoint, config=NO_RETRY.merge(Config(max_pool_connections=16)))


def _parallel(client: Any, calls: list[Callable[[Any], Any]], workers: int = 12) -> list[Any]:
    def run(call: Callable[[Any], Any]) -> Any:
        try:
            return call(client)
        except ClientError as e:
            return e

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, calls))


def test_concurrent_requests_get_their_own_answers(pooled: Any, batch: Any, env: Env) -> None:
    names = [uniq("par") for _ in range(24)]
    with eager_thread_switches():
        results = _parallel(
            pooled,
            [
                (
                    lambda c, n=n: c.create_compute_environment(
                        computeEnvironmentName=n, type="UNMANAGED"
                    )
                )
                for n in names
            ],
        )
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors[:3]
    assert [r["computeEnvironmentName"] for r in results] == names
    found = batch.describe_compute_environments(computeEnvironments=names)["computeEnvironments"]
    assert sorted(c["computeEnvironmentName"] for c in found) == sorted(names)

    jobs = _parallel(
        pooled,
        [
            (
                lambda c, n=n: c.submit_job(
                    jobName=n, jobQueue=env.held_queue, jobDefinition=env.jobdef
                )
            )
            for n in names[:8]
        ],
    )
    assert [j["jobName"] for j in jobs] == names[:8]
    described = {
        j["jobId"]: j["jobName"]
        for j in batch.describe_jobs(jobs=[j["jobId"] for j in jobs])["jobs"]
    }
    assert described == {j["jobId"]: j["jobName"] for j in jobs}
    for j in jobs:
        batch.cancel_job(jobId=j["jobId"], reason="concurrency test done")


def test_concurrent_deletes_one_wins(pooled: Any, batch: Any) -> None:
    arn = batch.create_scheduling_policy(name=uniq("race"))["arn"]
    with eager_thread_switches():
        results = _parallel(pooled, [lambda c: c.delete_scheduling_policy(arn=arn)] * 12)
    wins = [r for r in results if not isinstance(r, Exception)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 1, results
    for e in losses:
        assert e.response["Error"]["Code"] == "ClientException", e.response
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert batch.describe_scheduling_policies(arns=[arn])["schedulingPolicies"] == []


def test_a_slow_request_does_not_hold_up_the_others(
    pooled: Any, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests are served side by side: while one DescribeJobs waits inside the service,
    DescribeJobQueues calls are answered (one lock per request held every other back)."""
    jobs = wiring.services().jobs
    real_describe = jobs.describe
    inside, release = threading.Event(), threading.Event()

    def slow_describe(body: dict[str, Any], caller: str | None = None) -> dict[str, Any]:
        inside.set()
        assert release.wait(30), "the test never let the slow request go"
        return real_describe(body, caller)

    monkeypatch.setattr(jobs, "describe", slow_describe)
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(pooled.describe_jobs, jobs=["none-such"])
        assert inside.wait(10)
        monkeypatch.setattr(jobs, "describe", real_describe)  # for the requests below
        try:
            for _ in range(3):
                queues = pooled.describe_job_queues(jobQueues=[env.queue])["jobQueues"]
                assert [q["jobQueueName"] for q in queues] == [env.queue]
        finally:
            release.set()
        assert slow.result(timeout=30)["jobs"] == []
