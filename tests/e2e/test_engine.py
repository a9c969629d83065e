"""The scheduling and execution engine through the local stack (issue 3's scenarios):
queue priority on a shared environment, fair share, resource reasons and time-limit
actions, retries and evaluateOnExit, timeouts, Spot interruptions, preemption, and two
schedulers racing for the same jobs."""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from batchplane import clock
from batchplane.wiring import services

from .support import cli_env, ec2_resources, job_output, uniq, wait_done, wait_for, wait_status

if TYPE_CHECKING:
    import pytest
    from batchplane.local.stack import LocalStack


def _environment(batch: Any, vcpus: int, *, enabled: bool = True, kind: str = "EC2", **resources: Any) -> str:
    name = uniq("ce")
    batch.create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        state="ENABLED" if enabled else "DISABLED",
        computeResources=ec2_resources(type=kind, maxvCpus=vcpus, **resources),
    )
    return name


def _queue(batch: Any, ce: str, priority: int = 1, **extra: Any) -> str:
    name = uniq("q")
    batch.create_job_queue(
        jobQueueName=name, priority=priority, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}], **extra
    )
    return name


def _definition(batch: Any, command: list[str], vcpus: str = "1", memory: str = "128", **extra: Any) -> str:
    name = uniq("jd")
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "busybox",
            "command": command,
            "resourceRequirements": [{"type": "VCPU", "value": vcpus}, {"type": "MEMORY", "value": memory}],
        },
        **extra,
    )
    return name


def _submit(batch: Any, queue: str, jd: str, n: int = 1, **extra: Any) -> list[str]:
    return [batch.submit_job(jobName=uniq("j"), jobQueue=queue, jobDefinition=jd, **extra)["jobId"] for _ in range(n)]


def _all_runnable(batch: Any, ids: list[str]) -> None:
    for job_id in ids:
        wait_status(batch, job_id, "RUNNABLE")


def test_higher_priority_queue_starts_first_on_a_shared_environment(batch: Any) -> None:
    ce = _environment(batch, 2, enabled=False)
    high, low = _queue(batch, ce, priority=10), _queue(batch, ce, priority=1)
    jd = _definition(batch, ["sleep", "0.3"])
    low_ids = _submit(batch, low, jd, 3)
    high_ids = _submit(batch, high, jd, 3)
    _all_runnable(batch, low_ids + high_ids)
    batch.update_compute_environment(computeEnvironment=ce, state="ENABLED")
    done = {j: wait_done(batch, j, timeout=30) for j in low_ids + high_ids}
    assert all(d["status"] == "SUCCEEDED" for d in done.values())
    assert max(done[j]["startedAt"] for j in high_ids) <= min(done[j]["startedAt"] for j in low_ids)


def test_fair_share_gives_the_half_weight_share_twice_the_capacity(batch: Any) -> None:
    policy = batch.create_scheduling_policy(
        name=uniq("fs"),
        fairsharePolicy={
            "shareDecaySeconds": 0,
            "computeReservation": 0,
            "shareDistribution": [
                {"shareIdentifier": "A", "weightFactor": 1.0},
                {"shareIdentifier": "B", "weightFactor": 0.5},
            ],
        },
    )["arn"]
    ce = _environment(batch, 6, enabled=False)
    queue = _queue(batch, ce, schedulingPolicyArn=policy)
    jd = _definition(batch, ["sleep", "30"])
    ids = {share: _submit(batch, queue, jd, 8, shareIdentifier=share) for share in ("A", "B")}
    _all_runnable(batch, ids["A"] + ids["B"])
    batch.update_compute_environment(computeEnvironment=ce, state="ENABLED")
    running: dict[str, int] = {}
    for share in ("A", "B"):
        running[share] = 0
    for share, job_ids in ids.items():
        for job_id in job_ids:
            job = wait_for(batch, job_id, lambda _: True)
            running[share] += job["status"] in ("STARTING", "RUNNING")
    # Poll until the first pass has filled the environment, then compare the shares.
    wait_for(batch, ids["B"][3], lambda j: j["status"] in ("STARTING", "RUNNING"))
    jobs = batch.describe_jobs(jobs=ids["A"] + ids["B"])["jobs"]
    counts = collections.Counter(j["shareIdentifier"] for j in jobs if j["status"] in ("STARTING", "RUNNING"))
    assert counts == {"A": 2, "B": 4}
    snapshot = batch.get_job_queue_snapshot(jobQueue=queue)
    usage = snapshot["queueUtilization"]["fairshareUtilization"]
    assert usage["activeShareCount"] == 2
    assert len(snapshot["frontOfQueue"]["jobs"]) == 10
    for job_id in ids["A"] + ids["B"]:
        batch.terminate_job(jobId=job_id, reason="test over")


def test_oversized_job_waits_with_the_resource_reason_then_a_time_limit_cancels_it(
    batch: Any, stack: LocalStack
) -> None:
    ce = _environment(batch, 4)
    queue = _queue(
        batch,
        ce,
        jobStateTimeLimitActions=[
            {
                "reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
                "state": "RUNNABLE",
                "maxTimeSeconds": 600,
                "action": "CANCEL",
            }
        ],
    )
    (job_id,) = _submit(batch, queue, _definition(batch, ["true"], vcpus="64"))
    job = wait_for(
        batch, job_id, lambda j: (j.get("statusReason") or "").startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    )
    assert job["status"] == "RUNNABLE"
    stack.tick()
    assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNABLE"  # not yet
    clock.advance(601)
    stack.tick()
    job = wait_done(batch, job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == (
        "Canceled by JobStateTimeLimit action due to reason: MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
    )


def test_a_job_larger_than_every_instance_type_waits_with_the_resource_reason(batch: Any) -> None:
    # Within maxvCpus, but 64 GiB is more than an m5.large (8 GiB) can ever hold.
    queue = _queue(batch, _environment(batch, 16, instanceTypes=["m5.large"]))
    (big,) = _submit(batch, queue, _definition(batch, ["true"], memory="65536"))
    (small,) = _submit(batch, queue, _definition(batch, ["true"]))
    job = wait_for(
        batch, big, lambda j: (j.get("statusReason") or "").startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    )
    assert job["status"] == "RUNNABLE"
    assert wait_done(batch, small)["status"] == "SUCCEEDED"  # it does not block the queue
    batch.cancel_job(jobId=big, reason="test over")


def test_local_attempts_are_packed_on_instances_of_the_environment_types(batch: Any) -> None:
    # 4 vCPUs of m5.large (2 vCPUs, 8 GiB): two instances. Each job takes 1 vCPU and 6 GB,
    # so one fits per instance: two run, the third finds no room though vCPUs remain.
    queue = _queue(batch, _environment(batch, 4, instanceTypes=["m5.large"]))
    ids = _submit(batch, queue, _definition(batch, ["sleep", "1"], memory="6000"), 3)
    waiting = wait_for(batch, ids[2], lambda j: (j.get("statusReason") or "").startswith("CAPACITY:"))
    assert waiting["status"] == "RUNNABLE" and waiting["attempts"] == []
    first, second = (wait_done(batch, j) for j in ids[:2])
    instances = {j["container"]["containerInstanceArn"] for j in (first, second)}
    assert len(instances) == 2  # one job per instance: memory, not vCPUs, was the limit
    # The first job to end frees an instance, which ends the third one's wait at once.
    third = wait_done(batch, ids[2], timeout=20)
    assert third["status"] == "SUCCEEDED" and len(third["attempts"]) == 1
    assert third["container"]["containerInstanceArn"] in instances
    assert third["startedAt"] >= min(first["stoppedAt"], second["stoppedAt"])


def test_failing_job_runs_every_attempt_with_its_number(batch: Any, logs: Any) -> None:
    ce = _environment(batch, 2)
    queue = _queue(batch, ce)
    jd = _definition(batch, ["sh", "-c", "echo attempt $AWS_BATCH_JOB_ATTEMPT; exit 1"], retryStrategy={"attempts": 3})
    (job_id,) = _submit(batch, queue, jd)
    job = wait_done(batch, job_id, timeout=20)
    assert job["status"] == "FAILED"
    assert len(job["attempts"]) == 3
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [1, 1, 1]
    seen = [job_output(batch, logs, {"attempts": [a]}, expect="attempt") for a in job["attempts"]]
    assert [lines[-1] for lines in seen] == ["attempt 1", "attempt 2", "attempt 3"]


def test_evaluate_on_exit_exit_rule_stops_retries(batch: Any) -> None:
    ce = _environment(batch, 2)
    queue = _queue(batch, ce)
    jd = _definition(
        batch,
        ["sh", "-c", "exit 1"],
        retryStrategy={"attempts": 3, "evaluateOnExit": [{"onExitCode": "1", "action": "exit"}]},
    )
    (job_id,) = _submit(batch, queue, jd)
    job = wait_done(batch, job_id)
    assert job["status"] == "FAILED" and len(job["attempts"]) == 1


def test_attempt_past_its_timeout_is_stopped_and_not_retried(batch: Any, stack: LocalStack) -> None:
    ce = _environment(batch, 2)
    queue = _queue(batch, ce)
    jd = _definition(batch, ["sleep", "30"], timeout={"attemptDurationSeconds": 60}, retryStrategy={"attempts": 3})
    (job_id,) = _submit(batch, queue, jd)
    wait_status(batch, job_id, "RUNNING")
    clock.advance(61)
    stack.tick()
    job = wait_done(batch, job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(job["attempts"]) == 1


def test_local_interrupt_retries_the_job_elsewhere(batch: Any, endpoint: str) -> None:
    ce = _environment(batch, 2, kind="SPOT")
    queue = _queue(batch, ce)
    jd = _definition(
        batch, ["sh", "-c", 'if [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ]; then sleep 30; fi'], retryStrategy={"attempts": 2}
    )
    (job_id,) = _submit(batch, queue, jd)
    wait_status(batch, job_id, "RUNNING")
    out = subprocess.run(
        [sys.executable, "-m", "batchplane.cli", "local", "interrupt", job_id],
        # Only the endpoint is set: the CLI signs with the stack's default key.
        env={k: v for k, v in cli_env(AWS_ENDPOINT_URL=endpoint).items() if not k.startswith("AWS_SECRET")
             and k != "AWS_ACCESS_KEY_ID"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    instance = out.stdout.split()[2]
    job = wait_done(batch, job_id, timeout=20)
    assert job["status"] == "SUCCEEDED"
    assert [a["statusReason"] for a in job["attempts"]] == [
        f"Host EC2 (instance {instance}) terminated.",
        "Essential container in task exited",
    ]


def test_preempting_queue_requeues_lower_priority_work(batch: Any) -> None:
    ce = _environment(batch, 2)
    low = _queue(batch, ce, priority=1)
    high = _queue(batch, ce, priority=10, tags={"batchplane:preemption": "enabled"})
    long_jd = _definition(batch, ["sleep", "30"])
    victims = _submit(batch, low, long_jd, 2)
    for job_id in victims:
        wait_status(batch, job_id, "RUNNING")
    (urgent,) = _submit(batch, high, _definition(batch, ["sleep", "2"]))
    # While the urgent job holds the capacity, one victim waits requeued.
    wait_status(batch, urgent, "RUNNING", timeout=20)
    requeued = [j for j in batch.describe_jobs(jobs=victims)["jobs"] if j["status"] == "RUNNABLE"]
    assert len(requeued) == 1
    assert requeued[0]["statusReason"].startswith(f"Preempted by job {urgent} of higher-priority job queue {high}")
    assert requeued[0]["attempts"] == []  # no attempt spent
    assert wait_done(batch, urgent, timeout=20)["status"] == "SUCCEEDED"
    wait_status(batch, requeued[0]["jobId"], "RUNNING", timeout=20)  # it runs again
    for job_id in victims:
        batch.terminate_job(jobId=job_id, reason="test over")


def test_two_schedulers_racing_dispatch_each_attempt_once(
    batch: Any, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.launcher is not None
    launches: collections.Counter[tuple[str, int]] = collections.Counter()
    real_launch = stack.launcher.launch

    def counting_launch(request: Any) -> str:
        launches[(request.job["jobId"], request.attempt)] += 1
        return real_launch(request)

    monkeypatch.setattr(stack.launcher, "launch", counting_launch)
    ce = _environment(batch, 4, enabled=False)
    queue = _queue(batch, ce)
    ids = _submit(batch, queue, _definition(batch, ["sleep", "1"]), 8)
    _all_runnable(batch, ids)
    # Enable it behind the stream's back, then race two passes (the stream's own pass
    # may join in: three racers are fine).
    ce_item = services().store.get(f"CE#{ce}", "#")
    assert ce_item is not None
    ce_item.doc["state"] = "ENABLED"
    services().store.replace(ce_item)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def race() -> None:
        barrier.wait()
        results.append(services().scheduler.schedule())

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for job_id in ids:
        assert wait_done(batch, job_id, timeout=30)["status"] == "SUCCEEDED"
    mine = {key: n for key, n in launches.items() if key[0] in ids}
    assert sorted(mine) == sorted((j, 1) for j in ids)
    assert set(mine.values()) == {1}
    assert sum(results) <= 4  # the passes together never exceed the environment
