"""The local task metadata endpoint: what it answers for unknown tasks and paths, and
that a stack started again on the same data directory serves on the same port, so that
attempts it adopts still reach it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from batchplane.local.metadata import MetadataEndpoint

if TYPE_CHECKING:
    from pathlib import Path

TASK = {"TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/ce/abc", "Containers": [{"DockerId": "abc"}]}


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@pytest.fixture
def endpoint(tmp_path: Path) -> Any:
    served = MetadataEndpoint(lambda task_id: TASK if task_id == "abc" else None, tmp_path)
    yield served
    served.close()


def test_container_and_task_metadata(endpoint: MetadataEndpoint) -> None:
    env = endpoint.environment("abc")
    assert _get(env["ECS_CONTAINER_METADATA_URI_V4"]) == (200, {"DockerId": "abc"})
    assert _get(env["ECS_CONTAINER_METADATA_URI"] + "/task") == (200, TASK)


@pytest.mark.parametrize("path", ["/v4/nope", "/v4/abc/stats", "/v4/abc/task/stats", "/v4/abc/other", "/", "/v9/abc"])
def test_what_it_does_not_have_is_404_with_a_reason(endpoint: MetadataEndpoint, path: str) -> None:
    status, body = _get(endpoint.base_url() + path)
    assert status == 404 and body["error"]


def test_started_again_it_serves_on_the_same_port(tmp_path: Path, endpoint: MetadataEndpoint) -> None:
    first = endpoint.base_url()
    endpoint.close()
    again = MetadataEndpoint(lambda _: TASK, tmp_path)
    try:
        assert again.base_url() == first
    finally:
        again.close()
