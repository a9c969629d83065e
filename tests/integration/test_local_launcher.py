"""Local mode's task launcher answers DescribeTasks as ECS would (the tick's reconcile)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from batchplane.adapters.ecs import LOG_GROUP
from batchplane.local.launcher import LocalProcessLauncher
from batchplane.ports import LaunchRequest, started_by
from moto import mock_aws


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=LOG_GROUP)
        yield client


def _request(command: list[str]) -> LaunchRequest:
    job = {"jobId": "job-1", "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/hello:1",
           "container": {"command": command, "resourceRequirements": [
               {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]}}
    ce = {"computeEnvironmentName": "ce", "type": "MANAGED", "computeResources": {
        "type": "EC2", "maxvCpus": 4, "instanceTypes": ["m5.large"]}}
    return LaunchRequest(job=job, attempt=1, run=1, queue_name="q", compute_environment=ce,
                         environment={"AWS_BATCH_JOB_ID": "job-1"})


def test_describe_reports_a_task_as_its_last_event_did_and_unknown_tasks_as_missing(logs: Any) -> None:
    events: list[dict[str, Any]] = []
    stopped = threading.Event()

    def publish(event: dict[str, Any]) -> None:
        events.append(event)
        if event["detail"]["lastStatus"] == "STOPPED":
            stopped.set()

    launcher = LocalProcessLauncher(publish, logs)
    arn = launcher.launch(_request(["sh", "-c", "exit 3"]))
    assert stopped.wait(30)
    unknown = arn.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
    tasks, missing = launcher.describe([arn, unknown])
    assert missing == [unknown]
    assert tasks == [events[-1]["detail"]]
    assert tasks[0]["lastStatus"] == "STOPPED" and tasks[0]["containers"][0]["exitCode"] == 3
    assert tasks[0]["startedBy"] == started_by(1)
