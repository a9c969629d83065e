"""Defects the fault harness found, each pinned by the one fault that shows it (the
harness's world, no random faults, no reordering)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import pytest

from .harness import Result, run
from .injector import Injector, Rule

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


def _run(workload: list, *rules: Rule) -> Result:
    injector = Injector(0, rules=list(rules))
    result = run(0, chaos=False, injector=injector, workload=workload)
    assert injector.fired, "the fault never fired: the test tests nothing"
    return result


def test_an_array_whose_fan_out_start_was_lost_still_runs() -> None:
    """StartExecution of the fan-out failed (before it was sent) after the parent was
    marked as fanning out: the stream's redelivery finds the mark and starts nothing, so
    nothing ever would. The tick's sweep of long-PENDING jobs starts it again."""
    result = _run([("submit", "arr", {"jobDefinition": "ok", "arrayProperties": {"size": 3}}, "SUCCEEDED")],
                  Rule("SchedulerFunction", "StartExecution", "before:500"))
    assert result.outcomes == {"arr": "SUCCEEDED"}, result.violations
    assert not result.violations


def test_a_timeout_whose_stop_task_was_lost_is_stopped_at_the_next_tick() -> None:
    """The tick marked the timed-out attempt as stopping, then StopTask failed: the next
    ticks saw the mark and never asked again, and the job ran for good."""
    result = _run([("submit", "t", {"jobDefinition": "sleep", "timeout": {"attemptDurationSeconds": 60}}, "FAILED")],
                  Rule("SchedulerFunction", "StopTask", "before:throttle"))
    assert result.outcomes == {"t": "FAILED"}, result.violations
    assert not result.violations


def test_a_terminate_whose_stop_task_was_lost_still_stops_the_task() -> None:
    """TerminateJob marked the job terminated, then StopTask failed; the client's retry
    finds it marked and stops nothing."""
    result = _run([("submit", "long", {"jobDefinition": "sleep"}, "FAILED"),
                   ("wait-running", "long", {}, None),
                   ("terminate", "long", {}, None)],
                  Rule("ApiFunction", "StopTask", "before:timeout"))
    assert result.outcomes == {"long": "FAILED"}, result.violations
    assert not result.violations


def test_an_array_whose_fan_out_gave_up_ends_failed() -> None:
    """A chunk failed through all its Step Functions retries after counting its children
    and creating one: the Failed state terminates the array, whose cascade skipped the
    children never created, so the counters kept them RUNNABLE and the parent (and what
    depends on it) stayed PENDING for good."""
    result = _run([("submit", "arr", {"jobDefinition": "ok", "arrayProperties": {"size": 3}}, "FAILED"),
                   ("submit", "agg", {"jobDefinition": "ok", "dependsOn": ["arr"]}, "FAILED")],
                  Rule("ArraysFunction", "PutItem", "before:500", nth=2, times=7))
    assert result.outcomes == {"arr": "FAILED", "agg": "FAILED"}, result.violations
    # A child that ran before the cascade reached it may have succeeded.
    assert [v for v in result.violations if not re.match(r"wrong outcome: arr \S+:\d+ ", v)] == []


def test_an_array_whose_fan_out_failed_step_gave_up_too_is_fanned_out_again() -> None:
    """The arrays function failed through the chunk's retries and then through the Failed
    step's own: the execution ended FAILED with nothing recorded on the parent, and the
    tick's restart under the same execution name was refused (ExecutionAlreadyExists),
    so the parent stayed PENDING for good. The tick starts it again under a new name."""
    result = _run([("submit", "arr", {"jobDefinition": "ok", "arrayProperties": {"size": 3}}, "SUCCEEDED")],
                  # 7 tries of the chunk, then 7 of the Failed step: each reads the parent first.
                  Rule("ArraysFunction", "GetItem", "before:500", times=14))
    assert result.outcomes == {"arr": "SUCCEEDED"}, result.violations
    assert not result.violations


@pytest.mark.parametrize("seed", range(4))
def test_multinode_jobs_under_random_faults_end_once_with_every_node_ended(seed: int) -> None:
    """Multi-node parallel jobs (service/nodes.py) with random faults in every handler,
    events duplicated and reordered: each job ends as its main node did, every node ends,
    no task runs twice; a retried job's nodes run once per attempt."""
    workload = [("submit", "par", {"jobDefinition": "mnp"}, "SUCCEEDED"),
                ("submit", "par-retry", {"jobDefinition": "mnp-retry"}, "SUCCEEDED"),
                ("submit", "after-par", {"jobDefinition": "ok", "dependsOn": ["par"]}, "SUCCEEDED")]
    result = run(1000 + seed, workload=workload)
    assert result.outcomes == {"par": "SUCCEEDED", "par-retry": "SUCCEEDED", "after-par": "SUCCEEDED"}, \
        result.violations
    assert not result.violations
    assert result.jobs == 3 + 6  # the nodes are jobs of their own
