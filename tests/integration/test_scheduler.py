"""Scheduling passes against moto, driven one event at a time so that races between
passes and task events can be staged exactly."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pytest
from batchplane import aws, clock, metering, wiring
from batchplane.ports import CapacityUnavailable, LaunchFailed
from batchplane.service import scheduler as scheduling
from batchplane.service import watchdog
from batchplane.wiring import services

from .conftest import api_call, load_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from batchplane.local.router import Function


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


def _after_usage_read(monkeypatch: pytest.MonkeyPatch, action: Callable[[], object]) -> None:
    """Run ``action`` once, when the next pass has listed the jobs and read the
    environment's usage, before it dispatches."""
    store = services().store
    real_counters, done = store.counters, []

    def counters(pk: str, sk: str) -> dict[str, int]:
        out = real_counters(pk, sk)
        if pk == "CE#ec2" and not done:
            done.append(action())
        return out

    monkeypatch.setattr(store, "counters", counters)


def test_a_victim_requeued_between_reads_does_not_make_the_pass_preempt_another(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    low, urgent, victim = _preempting(functions)
    # The victim's task stops while the next pass is between reading the environment's
    # usage (still counting the victim) and listing what runs (no longer listing it).
    def victim_stops() -> None:
        _task_stops(functions, moto_env, ec2_environment["cluster"], victim)
        assert _job(victim)["status"] == "RUNNABLE"

    _after_usage_read(monkeypatch, victim_stops)
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


def _runnable(functions: dict[str, Function], n: int) -> list[str]:
    """``n`` jobs of the queue "default", admitted (RUNNABLE) but not yet placed."""
    api = functions["ApiFunction"]
    jobs = [api_call(api, "submitjob", {"jobName": f"j{i}", "jobQueue": "default", "jobDefinition": "hello"})[1]
            ["jobId"] for i in range(n)]
    for job_id in jobs:
        services().watchdog.promote(job_id)
    assert {_job(j)["status"] for j in jobs} == {"RUNNABLE"}
    return jobs


def _transactions(monkeypatch: pytest.MonkeyPatch) -> list[list[dict[str, Any]]]:
    """Every transaction the store is asked to write from now on (committed or not)."""
    store = services().store
    real, seen = store.transact, []

    def transact(ops: list[dict[str, Any]]) -> None:
        seen.append(ops)
        real(ops)

    monkeypatch.setattr(store, "transact", transact)
    return seen


def _usage() -> int:
    return services().store.counters("CE#ec2", "USAGE").get("mvcpus", 0)


@pytest.mark.usefixtures("ec2_environment")
def test_a_pass_moves_the_jobs_it_places_on_one_environment_in_one_transaction(
    functions: dict[str, Function], monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = _runnable(functions, 4)
    transactions = _transactions(monkeypatch)
    assert services().scheduler.schedule() == 4
    (group,) = transactions
    puts = [op["Put"]["Item"]["pk"]["S"] for op in group if "Put" in op]
    updates = [op["Update"]["Key"]["pk"]["S"] for op in group if "Update" in op]
    assert sorted(puts) == sorted(f"JOB#{j}" for j in jobs) and updates == ["CE#ec2"]
    assert {_job(j)["status"] for j in jobs} == {"STARTING"}
    assert len({_job(j)["container"]["taskArn"] for j in jobs}) == 4
    assert _usage() == 4000


@pytest.mark.usefixtures("ec2_environment")
def test_a_job_that_changed_meanwhile_leaves_the_rest_of_its_group_to_start(
    functions: dict[str, Function], monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = _runnable(functions, 4)

    def cancel_first() -> None:
        status, _ = api_call(functions["ApiFunction"], "canceljob", {"jobId": jobs[0], "reason": "not needed"})
        assert status == 200

    _after_usage_read(monkeypatch, cancel_first)
    transactions = _transactions(monkeypatch)
    assert services().scheduler.schedule() == 3
    assert len(transactions) == 1 + 4  # the group, refused; then each job on its own
    assert _job(jobs[0])["status"] == "FAILED"
    assert [_job(j)["status"] for j in jobs[1:]] == ["STARTING"] * 3
    assert _usage() == 3000


@pytest.mark.usefixtures("ec2_environment")
def test_a_group_larger_than_the_room_left_starts_what_fits(
    functions: dict[str, Function], monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = _runnable(functions, 4)
    store = services().store
    # Another scheduler takes 2 of the environment's 4 vCPUs.
    _after_usage_read(monkeypatch, lambda: store.transact([store.add_op("CE#ec2", "USAGE", {"mvcpus": 2000})]))
    assert services().scheduler.schedule() == 2
    assert sorted(_job(j)["status"] for j in jobs) == ["RUNNABLE"] * 2 + ["STARTING"] * 2
    assert _usage() == 4000


class Crash(BaseException):
    """The scheduler's Lambda dying (timeout, out of memory) between commit and RunTask."""


def _pass_dies_before_run_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scheduling pass commits its dispatch, then dies before any RunTask."""

    def crash(_request: Any) -> str:
        raise Crash

    monkeypatch.setattr(services().scheduler.launcher, "launch", crash)
    with pytest.raises(Crash):
        services().scheduler.schedule()
    monkeypatch.undo()


def test_an_attempt_whose_launch_was_lost_is_launched_by_a_later_tick(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = _runnable(functions, 2)
    _pass_dies_before_run_task(monkeypatch)
    assert [_job(j)["status"] for j in jobs] == ["STARTING"] * 2
    assert not any("taskArn" in _job(j)["container"] for j in jobs)
    tick = load_event("scheduler/tick.json")
    functions["SchedulerFunction"].invoke(tick)
    assert not any("taskArn" in _job(j)["container"] for j in jobs)  # its pass may still be launching
    clock.advance(301)
    functions["SchedulerFunction"].invoke(tick)
    arns = {_job(j)["container"]["taskArn"] for j in jobs}
    assert arns == set(moto_env["ecs"].list_tasks(cluster=ec2_environment["cluster"])["taskArns"])
    assert len(arns) == 2 and _usage() == 2000


@pytest.mark.usefixtures("ec2_environment")
def test_a_launch_that_finds_no_room_leaves_the_rest_of_its_group_started(
    functions: dict[str, Function], monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = _runnable(functions, 4)
    launcher = services().scheduler.launcher
    real_launch = launcher.launch

    def launch(request: Any) -> str:
        if request.job["jobId"] == jobs[2]:
            raise CapacityUnavailable("RESOURCE:MEMORY")
        return real_launch(request)

    monkeypatch.setattr(launcher, "launch", launch)
    assert services().scheduler.schedule() == 3
    assert [_job(j)["status"] for j in jobs] == ["STARTING", "STARTING", "RUNNABLE", "STARTING"]
    assert _job(jobs[2])["statusReason"].startswith("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY")
    assert all("taskArn" in _job(j)["container"] for j in jobs if j != jobs[2])
    assert _usage() == 3000


def _tasks(moto_env: dict[str, Any], cluster: str) -> list[str]:
    return moto_env["ecs"].list_tasks(cluster=cluster)["taskArns"]


def test_a_launch_that_started_its_task_but_raised_runs_it_once(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RunTask started the task, then the answer was lost (a timeout): asking again with
    the same clientToken finds that task; the attempt is not ended, nor a second task run."""
    monkeypatch.setattr(scheduling, "LAUNCH_RETRY_PAUSES", (0, 0))
    (job,) = _runnable(functions, 1)
    launcher = services().scheduler.launcher
    real_launch, calls = launcher.launch, []

    def launch(request: Any) -> str:
        calls.append(request.run)
        arn = real_launch(request)
        if len(calls) == 1:
            raise TimeoutError("Read timeout on endpoint URL")
        return arn

    monkeypatch.setattr(launcher, "launch", launch)
    assert services().scheduler.schedule() == 1
    assert calls == [1, 1]
    doc = _job(job)
    assert doc["status"] == "STARTING" and doc["attempts"] == []
    assert [doc["container"]["taskArn"]] == _tasks(moto_env, ec2_environment["cluster"])


def test_a_launch_without_an_answer_is_tried_again_by_the_tick_without_spending_an_attempt(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduling, "LAUNCH_RETRY_PAUSES", (0, 0))
    (job,) = _runnable(functions, 1)
    launcher = services().scheduler.launcher
    real_launch, down = launcher.launch, [True]

    def launch(request: Any) -> str:
        if down[0]:
            raise ConnectionError("Could not connect to the endpoint URL")
        return real_launch(request)

    monkeypatch.setattr(launcher, "launch", launch)
    assert services().scheduler.schedule() == 0
    doc = _job(job)
    assert doc["status"] == "STARTING" and doc["attempts"] == [] and "taskArn" not in doc["container"]
    tick = load_event("scheduler/tick.json")
    down[0] = False
    functions["SchedulerFunction"].invoke(tick)
    assert "taskArn" not in _job(job)["container"], "launched again before the unsure launch's grace"
    clock.advance(watchdog.UNSURE_LAUNCH_GRACE_MS / 1000 + 1)
    functions["SchedulerFunction"].invoke(tick)
    doc = _job(job)
    assert doc["attempts"] == [] and [doc["container"]["taskArn"]] == _tasks(moto_env, ec2_environment["cluster"])
    assert _usage() == 1000


@pytest.mark.usefixtures("ec2_environment")
def test_launches_that_never_answer_end_the_attempt_after_the_last_try(
    functions: dict[str, Function], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduling, "LAUNCH_RETRY_PAUSES", (0, 0))
    (job,) = _runnable(functions, 1)

    def launch(_request: Any) -> str:
        raise ConnectionError("Could not connect to the endpoint URL")

    monkeypatch.setattr(services().scheduler.launcher, "launch", launch)
    services().scheduler.schedule()
    tick = load_event("scheduler/tick.json")
    for _ in range(scheduling.MAX_LAUNCH_ERRORS - 1):
        assert _job(job)["status"] == "STARTING"
        clock.advance(watchdog.UNSURE_LAUNCH_GRACE_MS / 1000 + 1)
        functions["SchedulerFunction"].invoke(tick)
    doc = _job(job)
    assert doc["status"] == "FAILED", doc["status"]
    assert [a["statusReason"] for a in doc["attempts"]] == ["Task failed to start"]
    assert "Could not connect" in doc["attempts"][0]["container"]["reason"]
    assert _usage() == 0


@pytest.mark.usefixtures("ec2_environment")
def test_a_refused_launch_ends_the_attempt_at_once(
    functions: dict[str, Function], monkeypatch: pytest.MonkeyPatch,
) -> None:
    (job,) = _runnable(functions, 1)
    calls = []

    def launch(request: Any) -> str:
        calls.append(request.run)
        raise LaunchFailed("RunTask failed: [{'reason': 'MISSING'}]")

    monkeypatch.setattr(services().scheduler.launcher, "launch", launch)
    services().scheduler.schedule()
    doc = _job(job)
    assert calls == [1] and doc["status"] == "FAILED"
    assert doc["attempts"][0]["statusReason"] == "Task failed to start"
    assert _usage() == 0


def test_a_lost_launch_past_its_timeout_is_launched_and_stopped(
    functions: dict[str, Function], ec2_environment: dict[str, Any], moto_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, submitted = api_call(functions["ApiFunction"], "submitjob", {
        "jobName": "short", "jobQueue": "default", "jobDefinition": "hello", "timeout": {"attemptDurationSeconds": 60}})
    job = submitted["jobId"]
    services().watchdog.promote(job)
    _pass_dies_before_run_task(monkeypatch)
    launcher = services().scheduler.launcher
    real_stop, stopped = launcher.stop, []

    def stop(task_arn: str, reason: str) -> None:
        stopped.append((task_arn, reason))
        real_stop(task_arn, reason)

    monkeypatch.setattr(launcher, "stop", stop)
    clock.advance(301)
    functions["SchedulerFunction"].invoke(load_event("scheduler/tick.json"))
    task_arn = _job(job)["container"]["taskArn"]
    assert stopped == [(task_arn, "Job attempt duration exceeded timeout")]
    task = moto_env["ecs"].describe_tasks(cluster=ec2_environment["cluster"], tasks=[task_arn])["tasks"][0]
    assert task["desiredStatus"] == "STOPPED"


@pytest.mark.usefixtures("ec2_environment")
def test_a_groups_launches_are_metered_to_the_pass_that_made_them(
    functions: dict[str, Function],
) -> None:
    jobs = _runnable(functions, 4)
    metering.reset()
    metering.enable()
    aws.reset()  # clients made from now on are metered
    wiring.reset()
    try:
        with metering.scope("SchedulerFunction:stream"):
            assert services().scheduler.schedule() == 4
        scopes = {scope for scope, _, _ in metering.snapshot().counts}
    finally:
        metering.disable()
        metering.reset()
        aws.reset()
        wiring.reset()
    assert scopes == {"SchedulerFunction:stream"}  # the launch threads' calls included
    assert {_job(j)["status"] for j in jobs} == {"STARTING"}


def _second_environment(functions: dict[str, Function], moto_env: dict[str, Any], queue: str,
                        environment: str | None = None) -> None:
    """The job queue ``queue`` (priority 1, as "default") on ``environment``: a new
    4-vCPU environment with its own container instance, or "ec2" when None."""
    api = functions["ApiFunction"]
    if environment is not None:
        status, _ = api_call(api, "createcomputeenvironment", {
            "computeEnvironmentName": environment, "type": "MANAGED",
            "computeResources": {"type": "EC2", "minvCpus": 0, "maxvCpus": 4, "instanceTypes": ["m5"],
                                 "subnets": [moto_env["subnet"]], "instanceRole": "ecsInstanceRole"},
        })
        assert status == 200
        _, described = api_call(api, "describecomputeenvironments", {"computeEnvironments": [environment]})
        instance = moto_env["ec2"].run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                                 InstanceType="m5.xlarge")["Instances"][0]
        moto_env["ecs"].register_container_instance(
            cluster=described["computeEnvironments"][0]["ecsClusterArn"],
            instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]}),
        )
    status, _ = api_call(api, "createjobqueue", {
        "jobQueueName": queue, "priority": 1,
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": environment or "ec2"}],
    })
    assert status == 200


def _runnable_on(functions: dict[str, Function], queue: str) -> str:
    _, submitted = api_call(functions["ApiFunction"], "submitjob",
                            {"jobName": "other", "jobQueue": queue, "jobDefinition": "hello"})
    services().watchdog.promote(submitted["jobId"])
    return submitted["jobId"]


def _launch_order(monkeypatch: pytest.MonkeyPatch, first: Callable[[], object] | None = None) -> list[str]:
    """The job of each launch from now on, in order; ``first`` runs at the first launch."""
    launcher = services().scheduler.launcher
    real_launch, order, lock = launcher.launch, [], threading.Lock()

    def launch(request: Any) -> str:
        with lock:  # a group's launches run in threads
            if not order and first is not None:
                first()
            order.append(request.job["jobId"])
        return real_launch(request)

    monkeypatch.setattr(launcher, "launch", launch)
    return order


@pytest.mark.usefixtures("ec2_environment")
def test_a_job_another_queue_gets_during_a_pass_waits_one_round_not_the_whole_pass(
    functions: dict[str, Function], moto_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17 item 5: behind a large array, a job of another queue waited until the
    pass had launched every child it placed (500 of them), then for the next pass."""
    _second_environment(functions, moto_env, "side", "side-ce")
    monkeypatch.setattr(scheduling, "ROUND_DISPATCHES", 2)
    jobs = _runnable(functions, 4)
    other: list[str] = []
    order = _launch_order(monkeypatch, first=lambda: other.append(_runnable_on(functions, "side")))
    assert services().scheduler.schedule() == 5
    # Round 1 launches two jobs of "default" (in parallel: one group); round 2 sees the
    # new job and takes turns.
    assert set(order[:2]) == set(jobs[:2]) and order[2:] == [jobs[2], other[0], jobs[3]]
    assert {_job(j)["status"] for j in [*jobs, *other]} == {"STARTING"}


@pytest.mark.usefixtures("ec2_environment")
def test_a_pass_goes_on_past_the_window_of_jobs_it_lists(
    functions: dict[str, Function], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A queue with more RUNNABLE jobs than one listing holds: the rest used to wait for
    the next record that wakes the scheduler, or for the tick a minute later."""
    monkeypatch.setattr(scheduling, "RUNNABLE_WINDOW", 2)
    jobs = _runnable(functions, 4)
    assert services().scheduler.schedule() == 4
    assert {_job(j)["status"] for j in jobs} == {"STARTING"}


@pytest.mark.usefixtures("ec2_environment")
def test_queues_sharing_an_environment_take_turns_within_a_round(
    functions: dict[str, Function], moto_env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _second_environment(functions, moto_env, "zz-queue")
    monkeypatch.setattr(scheduling, "ROUND_DISPATCHES", 2)
    jobs = _runnable(functions, 3)
    other = _runnable_on(functions, "zz-queue")
    order = _launch_order(monkeypatch)
    assert services().scheduler.schedule() == 4
    assert set(order[:2]) == {jobs[0], other} and set(order[2:]) == set(jobs[1:])


@pytest.mark.usefixtures("ec2_environment")
def test_a_policy_named_by_its_name_cannot_be_deleted_while_a_queue_uses_it(
    functions: dict[str, Function],
) -> None:
    """Found by the fuzzer: the queue kept the policy's name, DeleteSchedulingPolicy looked
    for its ARN, deleted it, and every later scheduling round failed on the queue."""
    api = functions["ApiFunction"]
    status, policy = api_call(api, "createschedulingpolicy", {"name": "echo", "fairsharePolicy": {}})
    assert status == 200
    status, _ = api_call(api, "createjobqueue", {
        "jobQueueName": "fair", "priority": 1, "schedulingPolicyArn": "echo",
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ec2"}]})
    assert status == 200
    assert services().resources.job_queue("fair").doc["schedulingPolicyArn"] == policy["arn"]
    status, answer = api_call(api, "deleteschedulingpolicy", {"arn": "echo"})
    assert status == 400 and "used by job queue(s) fair" in answer["message"], answer


@pytest.mark.usefixtures("ec2_environment", "moto_env")
def test_a_queue_whose_policy_is_gone_or_a_job_that_cannot_be_read_stops_no_other_queue(
    functions: dict[str, Function],
) -> None:
    """Older code could leave both behind (a policy deleted while in use, a VCPU of 400
    nines): each failed the whole round, so no job of any queue was dispatched."""
    api = functions["ApiFunction"]
    api_call(api, "createschedulingpolicy", {"name": "gone", "fairsharePolicy": {}})
    api_call(api, "createjobqueue", {"jobQueueName": "orphan", "priority": 5, "schedulingPolicyArn": "gone",
                                     "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ec2"}]})
    resources = services().resources
    resources.policies.delete("gone")  # as the old in-use check let through
    bad, good = _runnable(functions, 2)
    item = services().jobs.get(bad)
    assert item is not None
    item.doc["container"]["resourceRequirements"] = [{"type": "VCPU", "value": "9" * 400},
                                                     {"type": "MEMORY", "value": "128"}]
    services().jobs.jobs.save(item)
    assert services().scheduler.schedule() == 1
    assert _job(good)["status"] == "STARTING" and _job(bad)["status"] == "RUNNABLE"
