"""End-to-end fixtures: ONE local stack for the e2e package (it sets os.environ) and
the unmodified boto3 ``batch`` and ``logs`` clients pointed at it."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest
from batchplane.local.stack import LocalStack

from .support import (
    ACCESS_KEY,
    CALLERS,
    HELLO,
    SECRET_KEY,
    Env,
    Raw,
    ec2_resources,
    fargate_resources,
    make_client,
    raw_request,
    uniq,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterable[LocalStack]:
    # As `batchplane local up` runs by default: on a data directory, with its worker
    # process (local/worker.py). Signatures are verified: only the keys the tests'
    # clients sign with are known. Four GPUs to share, as on a machine with four
    # (tests/e2e/test_gpus.py).
    with LocalStack(port=0, credentials={ACCESS_KEY: SECRET_KEY, **CALLERS}, gpus=4,
                    data_dir=tmp_path_factory.mktemp("e2e-stack"), workers=True) as s:
        yield s


@pytest.fixture(scope="package")
def endpoint(stack: LocalStack) -> str:
    return stack.endpoint


@pytest.fixture(scope="package")
def batch(endpoint: str) -> Any:
    return make_client("batch", endpoint)


@pytest.fixture(scope="package")
def logs(endpoint: str) -> Any:
    return make_client("logs", endpoint)


@pytest.fixture(scope="package")
def env(batch: Any) -> Env:
    e = Env(
        ec2_ce=uniq("ec2"),
        fargate_ce=uniq("fargate"),
        held_ce=uniq("held"),
        queue=uniq("q"),
        fargate_queue=uniq("fq"),
        held_queue=uniq("hq"),
        jobdef=uniq("hello"),
        fargate_jobdef=uniq("hello-fargate"),
    )
    batch.create_compute_environment(
        computeEnvironmentName=e.ec2_ce,
        type="MANAGED",
        state="ENABLED",
        computeResources=ec2_resources(),
    )
    batch.create_compute_environment(
        computeEnvironmentName=e.fargate_ce,
        type="MANAGED",
        computeResources=fargate_resources(),
    )
    batch.create_compute_environment(
        computeEnvironmentName=e.held_ce,
        type="MANAGED",
        state="DISABLED",
        computeResources=ec2_resources(),
    )
    for queue, ce in (
        (e.queue, e.ec2_ce),
        (e.fargate_queue, e.fargate_ce),
        (e.held_queue, e.held_ce),
    ):
        batch.create_job_queue(
            jobQueueName=queue,
            priority=10,
            state="ENABLED",
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
        )
    batch.register_job_definition(
        jobDefinitionName=e.jobdef,
        type="container",
        containerProperties={
            "image": "public.ecr.aws/docker/library/busybox:latest",
            "command": HELLO,
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "128"},
            ],
        },
    )
    batch.register_job_definition(
        jobDefinitionName=e.fargate_jobdef,
        type="container",
        platformCapabilities=["FARGATE"],
        containerProperties={
            "image": "public.ecr.aws/docker/library/busybox:latest",
            "command": HELLO,
            "resourceRequirements": [
                {"type": "VCPU", "value": "0.25"},
                {"type": "MEMORY", "value": "512"},
            ],
            "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
            "networkConfiguration": {"assignPublicIp": "ENABLED"},
            "fargatePlatformConfiguration": {"platformVersion": "LATEST"},
        },
    )
    return e


@pytest.fixture(scope="package")
def raw(endpoint: str) -> Callable[..., Raw]:
    def post(
        path: str, body: Any = None, *, method: str = "POST", headers: dict[str, str] | None = None,
        **how: Any,
    ) -> Raw:
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
        return raw_request(endpoint, method, path, body, headers, **how)

    return post
