"""Scheduling passes against moto, driven one event at a time so that races between
passes and task events can be staged exactly."""

from __future__ import annotations

from typing import Any

import pytest
from batchplane.local.router import Function
from batchplane.wiring import services

from .conftest import api_call, load_event


def _job(job_id: str) -> dict[str, Any]:
    item = services().jobs.get(job_id)
    assert item is not None
    return item.doc


def _task_stops(functions: dict[str, Function], moto_env: dict[str, Any], cluster: str, job_id: str) -> None:
    """ECS's STOPPED event for the job's task, as EventBridge would deliver it."""
    task_arn = _job(job_id)["container"]["taskArn"]
    task = moto_env["ecs"].describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
    event = load_event("events/ecs-task-stopped.json")
    event["detail"].update(taskArn=task_arn, startedBy=task["startedBy"], overrides=task["overrides"],
                           stopCode="UserInitiated", stoppedReason="stopped by batchplane")
    event["detail"]["containers"][0].pop("exitCode")
    functions["EventsFunction"].invoke(event)


def _stopping(job_id: str) -> bool:
    item = services().jobs.get(job_id)
    return item is not None and bool(item.extra.get("stopping"))


def _preempting(functions: dict[str, Function]) -> tuple[list[str], str, str]:
    """Four 1-vCPU jobs fill the 4-vCPU environment; an urgent job of a preempting queue
    arrives and one pass picks a victim. Returns (the four, the urgent job, the victim)."""
    api, scheduler = functions["ApiFunction"], functions["SchedulerFunction"]
    status, _ = api_call(api, "createjobqueue", {
        "jobQueueName": "urgent", "priority": 10, "tags": {"batchplane:preemption": "enabled"},
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ec2"}],
    })
    assert status == 200
    low = [api_call(api, "submitjob", {"jobName": f"low{i}", "jobQueue": "default", "jobDefinition": "hello"})[1]
           ["jobId"] for i in range(4)]
    scheduler.invoke(load_event("scheduler/tick.json"))
    assert {_job(j)["status"] for j in low} == {"STARTING"}
    _, urgent = api_call(api, "submitjob", {"jobName": "urgent", "jobQueue": "urgent", "jobDefinition": "hello"})
    scheduler.invoke(load_event("scheduler/tick.json"))
    stopping = [j for j in low if _stopping(j)]
    assert len(stopping) == 1
    return low, urgent["jobId"], stopping[0]


def test_a_victim_requeued_between_reads_does_not_make_the_pass_preempt_another(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    low, urgent, victim = _preempting(functions)
    # The victim's task stops while the next pass is between reading the environment's
    # usage (still counting the victim) and listing what runs (no longer listing it).
    store = services().store
    real_counters = store.counters

    def counters_then_victim_stops(pk: str, sk: str) -> dict[str, int]:
        out = real_counters(pk, sk)
        if pk == "CE#ec2" and _job(victim)["status"] == "STARTING":
            _task_stops(functions, moto_env, ec2_environment["cluster"], victim)
            assert _job(victim)["status"] == "RUNNABLE"
        return out

    monkeypatch.setattr(store, "counters", counters_then_victim_stops)
    services().scheduler.schedule()
    monkeypatch.undo()
    others = [j for j in low if j != victim]
    assert [_job(j)["status"] for j in others] == ["STARTING"] * 3
    assert not any(_stopping(j) for j in others)
    # The capacity the victim gave back goes to the urgent job.
    services().scheduler.schedule()
    assert _job(urgent)["status"] == "STARTING"
    assert _job(victim)["status"] == "RUNNABLE"


def test_a_preemptor_started_by_another_pass_preempts_nobody(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    low, urgent, victim = _preempting(functions)
    _task_stops(functions, moto_env, ec2_environment["cluster"], victim)
    # A second pass starts the urgent job while this one is between listing the jobs
    # (urgent still RUNNABLE) and reading the environment's usage (urgent counted).
    store = services().store
    real_counters = store.counters
    racing = []

    def other_pass_first(pk: str, sk: str) -> dict[str, int]:
        if pk == "CE#ec2" and not racing:
            racing.append(True)
            assert services().scheduler.schedule() == 1
        return real_counters(pk, sk)

    monkeypatch.setattr(store, "counters", other_pass_first)
    services().scheduler.schedule()
    monkeypatch.undo()
    assert _job(urgent)["status"] == "STARTING"
    others = [j for j in low if j != victim]
    assert not any(_stopping(j) for j in others)
