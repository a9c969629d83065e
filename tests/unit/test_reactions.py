"""Which table changes wake the scheduler for a pass."""

from __future__ import annotations

import pytest
from batchplane.service.reactions import resource_wakes_scheduler, wakes_scheduler


@pytest.mark.parametrize(("pk", "sk", "wakes"), [
    ("CE#spot", "#", True),  # an environment created, resized or enabled
    ("JQ#default", "#", True),  # a queue created or its environments reordered
    ("SP#fair", "#", True),  # a fair-share policy changed
    ("CE#spot", "USAGE", False),  # moves with the job whose record decides
    ("ARRAY#4c3a", "COUNT#03", False),  # a child's counter, likewise
    ("ARRAY#4c3a", "CHUNK#000500", False),
    ("DEPS#4c3a", "JOB#9f1b", False),
    ("JD#render", "#", False),  # a new job definition revision places nothing
    ("SUBMIT#token", "#", False),
])
def test_only_environments_queues_and_policies_wake_the_scheduler(pk: str, sk: str, wakes: bool) -> None:
    assert resource_wakes_scheduler({"pk": pk, "sk": sk}) is wakes


@pytest.mark.parametrize(("before", "after", "wakes"), [
    (None, "SUBMITTED", False),
    ("PENDING", "RUNNABLE", True),  # work arrived
    ("RUNNING", "SUCCEEDED", True),  # capacity freed
    ("STARTING", "RUNNABLE", True),  # requeued: both
    ("STARTING", "RUNNING", False),
    ("RUNNING", "RUNNING", False),  # a task ARN or reason recorded
])
def test_a_job_wakes_the_scheduler_when_work_arrives_or_capacity_frees(
    before: str | None, after: str, wakes: bool
) -> None:
    old = {"status": before} if before else None
    assert wakes_scheduler({"status": after}, old) is wakes
