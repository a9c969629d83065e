"""Events out and triggers in, through the local stack's one endpoint with the unmodified
boto3 clients: state change events reach a user's SQS queue through a rule, put_object
starts a job, a duplicated S3 event starts one, schedules fire on a clock the test moves."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from batchplane.client import BatchplaneClient, BatchplaneError

from .support import (
    Env,
    cli_env,
    describe,
    ec2_resources,
    job_output,
    make_client,
    uniq,
    wait_done,
    wait_status,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from batchplane.local.stack import LocalStack

TRANSITIONS = ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]


@pytest.fixture(scope="module")
def clients(endpoint: str) -> dict[str, Any]:
    return {name: make_client(name, endpoint) for name in ("sqs", "events", "s3")}


@pytest.fixture(scope="module")
def ext(endpoint: str) -> BatchplaneClient:
    return BatchplaneClient(endpoint, "us-east-1")


@pytest.fixture
def subscribe(
    clients: dict[str, Any],
) -> Callable[[dict[str, Any]], Callable[[], list[dict[str, Any]]]]:
    """A new SQS queue with a rule on the default bus sending it the events that match
    ``pattern``; returns a function that receives (and deletes) what arrived."""
    sqs, events = clients["sqs"], clients["events"]
    created: list[str] = []

    def make(pattern: dict[str, Any]) -> Callable[[], list[dict[str, Any]]]:
        name = uniq("sub")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name=name, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
        created.append(name)

        def receive() -> list[dict[str, Any]]:
            out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for m in out:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            return [json.loads(m["Body"]) for m in out]

        return receive

    yield make
    for name in created:
        events.remove_targets(Rule=name, Ids=["queue"])
        events.delete_rule(Name=name)


def _until(what: str, probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout}s")
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _jobs_named(batch: Any, queue: str, name: str) -> list[dict[str, Any]]:
    """The queue's jobs of that name (ListJobs lists each once per answer)."""
    return batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])[
        "jobSummaryList"
    ]


# -- events out -----------------------------------------------------------------------------


def test_a_subscribed_queue_receives_every_transition_in_order(
    batch: Any, env: Env, subscribe: Any
) -> None:
    name = uniq("evented")
    receive = subscribe(
        {
            "source": ["batchplane"],
            "detail-type": ["Batch Job State Change"],
            "detail": {"jobName": [name]},
        }
    )
    job_id = batch.submit_job(jobName=name, jobQueue=env.queue, jobDefinition=env.jobdef)["jobId"]
    final = wait_done(batch, job_id)
    assert final["status"] == "SUCCEEDED", final

    events: dict[str, dict[str, Any]] = {}

    def all_arrived() -> bool:
        for event in receive():  # a repeat has the same batchplaneEventId: keep one
            events[event["detail"]["batchplaneEventId"]] = event
        # A standard SQS queue need not hand messages over in the order they were sent.
        return {e["detail"]["status"] for e in events.values()} >= set(TRANSITIONS)

    try:
        _until("every transition's event", all_arrived, timeout=30)
    except BaseException:
        seen = sorted((e["detail"]["batchplaneEventId"], e["detail"]["status"]) for e in events.values())
        print(f"events that did arrive for {job_id}: {seen}")
        raise
    ordered = sorted(
        events.values(), key=lambda e: int(e["detail"]["batchplaneEventId"].rsplit(":", 1)[1])
    )
    assert [e["detail"]["status"] for e in ordered] == TRANSITIONS  # nothing for SUBMITTED
    times = [datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in ordered]
    assert times == sorted(times), times
    for event in ordered:
        assert event["source"] == "batchplane" and event["detail-type"] == "Batch Job State Change"
        assert event["resources"] == [final["jobArn"]] and event["version"] == "0"
        assert event["detail"]["batchplaneEventId"].startswith(f"{job_id}:")
    last = dict(ordered[-1]["detail"])
    del last["batchplaneEventId"]
    assert last == describe(batch, job_id)  # the job exactly as DescribeJobs shows it


@pytest.mark.parametrize("tag", [None, "off"])
def test_a_queue_tagged_child_events_off_publishes_no_events_for_array_children(
    batch: Any, env: Env, subscribe: Any, tag: str | None
) -> None:
    queue = uniq("quiet" if tag else "loud")
    batch.create_job_queue(
        jobQueueName=queue, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env.ec2_ce}],
        **({"tags": {"batchplane:child-events": tag}} if tag else {}),
    )
    name = uniq("array-events")
    receive = subscribe({"source": ["batchplane"], "detail-type": ["Batch Job State Change"],
                         "detail": {"jobName": [name]}})
    parent = batch.submit_job(jobName=name, jobQueue=queue, jobDefinition=env.jobdef,
                              arrayProperties={"size": 3})["jobId"]
    assert wait_done(batch, parent, timeout=30)["status"] == "SUCCEEDED"
    seen: list[dict[str, Any]] = []

    def parent_ended() -> bool:
        seen.extend(e["detail"] for e in receive())
        return any(d["jobId"] == parent and d["status"] == "SUCCEEDED" for d in seen)

    _until("the parent's SUCCEEDED event", parent_ended, timeout=30)
    seen.extend(e["detail"] for e in receive())  # a child's event sent before it, delivered after
    children = {d["jobId"] for d in seen if d["jobId"] != parent}
    assert {d["status"] for d in seen if d["jobId"] == parent} >= {"PENDING", "SUCCEEDED"}
    if tag == "off":
        assert children == set()
    else:
        assert children == {f"{parent}:{i}" for i in range(3)}


# -- S3 triggers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_jobdef(batch: Any) -> str:
    name = uniq("echo-object")
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "public.ecr.aws/docker/library/busybox:latest",
            "command": ["sh", "-c", "echo object Ref::bucket Ref::key"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "64"},
            ],
        },
    )
    return name


def test_compute_environment_changes_wake_the_provisioner_through_the_bus(
    batch: Any, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provisioner reads no stream: the publisher's events reach it by its rule."""
    assert stack.router is not None
    provisioner = stack.router.functions["ProvisionerFunction"]
    real_invoke = provisioner.invoke
    changes: list[dict[str, Any]] = []

    def recording(event: dict[str, Any]) -> Any:
        if event.get("detail-type") == "batchplane Compute Environment Change":
            changes.append(event["detail"])
        return real_invoke(event)

    monkeypatch.setattr(provisioner, "invoke", recording)
    name = uniq("ce")
    batch.create_compute_environment(computeEnvironmentName=name, type="MANAGED",
                                     computeResources=ec2_resources(minvCpus=0, maxvCpus=8))
    batch.update_compute_environment(computeEnvironment=name, computeResources={"minvCpus": 4})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(
        c["change"] == "UPDATED" and c["computeEnvironment"]["computeResources"]["minvCpus"] == 4 for c in changes
    ):
        time.sleep(0.05)
    mine = [c for c in changes if c["computeEnvironment"]["computeEnvironmentName"] == name]
    assert mine[0]["change"] == "CREATED"
    assert any(c["change"] == "UPDATED" and c["computeEnvironment"]["computeResources"]["minvCpus"] == 4 for c in mine)
    ce = batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    assert ce["computeResources"]["desiredvCpus"] == 4


@pytest.fixture
def bucket(clients: dict[str, Any]) -> str:
    """A bucket with EventBridge notifications on (what a trigger's bucket needs)."""
    name = uniq("inputs").lower()
    clients["s3"].create_bucket(Bucket=name)
    clients["s3"].put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    return name


def test_put_object_starts_a_job_with_the_bucket_and_key_as_parameters(
    batch: Any,
    logs: Any,
    env: Env,
    clients: dict[str, Any],
    ext: BatchplaneClient,
    echo_jobdef: str,
    bucket: str,
) -> None:
    trigger = uniq("ingest")
    created = ext.call(
        "createtrigger",
        {
            "triggerName": trigger,
            "bucket": bucket,
            "prefix": "incoming/",
            "suffix": ".csv",
            "jobQueue": env.queue,
            "jobDefinition": echo_jobdef,
        },
    )
    assert created["triggerName"] == trigger
    s3 = clients["s3"]
    s3.put_object(Bucket=bucket, Key="incoming/notes.txt", Body=b"no")  # suffix does not match
    s3.put_object(Bucket=bucket, Key="archive/day.csv", Body=b"no")  # prefix does not match
    s3.put_object(Bucket=bucket, Key="incoming/day 1.csv", Body=b"a,b\n")

    (summary,) = _until("put_object started no job", lambda: _jobs_named(batch, env.queue, trigger))
    job = wait_done(batch, summary["jobId"])
    assert job["status"] == "SUCCEEDED", job
    assert job["parameters"] == {"bucket": bucket, "key": "incoming/day 1.csv"}
    assert job["tags"] == {"batchplane:trigger": trigger}
    expected = f"object {bucket} incoming/day 1.csv"
    assert expected in job_output(batch, logs, job, expect=expected)
    assert len(_jobs_named(batch, env.queue, trigger)) == 1
    ext.call("deletetrigger", {"triggerName": trigger})


def test_a_duplicated_s3_event_gives_one_job_and_a_rewrite_another(
    batch: Any,
    env: Env,
    clients: dict[str, Any],
    ext: BatchplaneClient,
    bucket: str,
    stack: LocalStack,
) -> None:
    trigger = uniq("dedupe")
    ext.call(
        "createtrigger",
        {
            "triggerName": trigger,
            "bucket": bucket,
            "jobQueue": env.held_queue,
            "jobDefinition": env.jobdef,
        },
    )
    # S3 delivers at least once: a repeat carries the same object version, sequencer and
    # ETag. The aws.s3 source is S3's own (the front port refuses it to users, as AWS
    # does): the repeat is put through the stack's internal port, where S3 would put it.
    duplicate = {
        "Source": "aws.s3",
        "DetailType": "Object Created",
        "Resources": [f"arn:aws:s3:::{bucket}"],
        "Detail": json.dumps(
            {
                "version": "0",
                "bucket": {"name": bucket},
                "reason": "PutObject",
                "object": {
                    "key": "twice.csv",
                    "size": 3,
                    "etag": "0cc175b9c0f1b6a831c399e269772661",
                    "sequencer": "00674019CB1B6C2A61",
                },
            }
        ),
    }
    assert stack.internal is not None
    as_s3 = make_client("events", f"http://127.0.0.1:{stack.internal.server_address[1]}")
    for _ in range(2):
        assert as_s3.put_events(Entries=[duplicate])["FailedEntryCount"] == 0
    # The same key written twice with the same bytes is two writes: two jobs.
    clients["s3"].put_object(Bucket=bucket, Key="again.csv", Body=b"same")
    clients["s3"].put_object(Bucket=bucket, Key="again.csv", Body=b"same")

    def jobs() -> list[dict[str, Any]]:
        found = _jobs_named(batch, env.held_queue, trigger)
        return found if len(found) >= 3 else []

    found = _until("the three jobs were not submitted", jobs)
    keys = sorted(describe(batch, j["jobId"])["parameters"]["key"] for j in found)
    assert keys == ["again.csv", "again.csv", "twice.csv"]
    time.sleep(0.3)  # a late second twice.csv job would show up by now
    assert len(_jobs_named(batch, env.held_queue, trigger)) == 3
    for j in found:
        batch.cancel_job(jobId=j["jobId"], reason="test over")
    ext.call("deletetrigger", {"triggerName": trigger})


# -- schedules --------------------------------------------------------------------------------


def _runs(ext: BatchplaneClient, name: str) -> list[dict[str, Any]]:
    """The schedule's firings, oldest first, once each has its outcome (a submitted firing
    is written before its job, then completed with the jobId)."""
    (schedule,) = ext.call("describeschedules", {"scheduleNames": [name]})["schedules"]
    runs = list(reversed(schedule.get("runs", [])))
    return [] if any(r["outcome"] == "SUBMITTED" and "jobId" not in r for r in runs) else runs


def _job_ids(batch: Any, queue: str, name: str) -> list[str]:
    return [j["jobId"] for j in _jobs_named(batch, queue, name)]


def _epoch(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def test_a_rate_schedule_submits_on_time_on_the_local_clock(
    stack: LocalStack,
    batch: Any,
    env: Env,
    ext: BatchplaneClient,
) -> None:
    assert stack.bus is not None
    name = uniq("every-minute")
    ext.call(
        "createschedule",
        {
            "scheduleName": name,
            "scheduleExpression": "rate(1 minute)",
            "jobQueue": env.queue,
            "jobDefinition": env.jobdef,
        },
    )
    # Like EventBridge Scheduler, a rate schedule without a start date fires at once.
    (first,) = _until("the first firing did not happen", lambda: _runs(ext, name))
    assert first["outcome"] == "SUBMITTED"
    assert wait_done(batch, first["jobId"])["status"] == "SUCCEEDED"
    assert describe(batch, first["jobId"])["parameters"]["scheduledTime"] == first["scheduledTime"]

    # Just before the minute is up nothing fires; one second after it, exactly one firing.
    start = _epoch(first["scheduledTime"])
    assert stack.bus.advance(start + 59 - stack.bus.clock.now()) == []
    (fired,) = stack.bus.advance(2)
    assert fired["scheduledTime"] == datetime.fromtimestamp(start + 60, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert fired["result"]["outcome"] == "SUBMITTED"
    assert wait_done(batch, fired["result"]["jobId"])["status"] == "SUCCEEDED"
    assert [r["outcome"] for r in _runs(ext, name)] == ["SUBMITTED", "SUBMITTED"]
    ext.call("deleteschedule", {"scheduleName": name})
    assert stack.bus.advance(60) == []


def test_overlap_policy_and_disable_on_the_local_clock(
    stack: LocalStack,
    batch: Any,
    env: Env,
    ext: BatchplaneClient,
) -> None:
    assert stack.bus is not None
    name = uniq("held-schedule")
    ext.call(
        "createschedule",
        {
            "scheduleName": name,
            "scheduleExpression": "rate(5 minutes)",
            "jobQueue": env.held_queue,
            "jobDefinition": env.jobdef,
        },
    )
    (first,) = _until("the first firing did not happen", lambda: _runs(ext, name))
    wait_status(batch, first["jobId"], "RUNNABLE")  # its queue's only CE is disabled: it waits

    (skipped,) = stack.bus.advance(300)
    assert skipped["result"]["outcome"] == "SKIPPED"
    assert first["jobId"] in skipped["result"]["reason"]
    ext.call("updateschedule", {"scheduleName": name, "overlapPolicy": "ALLOW"})
    (allowed,) = stack.bus.advance(300)
    assert allowed["result"]["outcome"] == "SUBMITTED"
    ext.call("updateschedule", {"scheduleName": name, "state": "DISABLED"})
    assert stack.bus.advance(600) == []
    ext.call("updateschedule", {"scheduleName": name, "state": "ENABLED"})
    assert [f["result"]["outcome"] for f in stack.bus.advance(300)] == ["SUBMITTED"]  # no catch-up
    assert [r["outcome"] for r in _runs(ext, name)] == [
        "SUBMITTED",
        "SKIPPED",
        "SUBMITTED",
        "SUBMITTED",
    ]
    ext.call("deleteschedule", {"scheduleName": name})
    for job_id in _job_ids(batch, env.held_queue, name):
        batch.cancel_job(jobId=job_id, reason="test over")


def test_extension_errors_are_client_exceptions(ext: BatchplaneClient, env: Env) -> None:
    with pytest.raises(BatchplaneError) as e:
        ext.call(
            "createschedule",
            {
                "scheduleName": uniq("bad"),
                "scheduleExpression": "cron(0 12 * * * *)",
                "jobQueue": env.queue,
                "jobDefinition": env.jobdef,
            },
        )
    assert e.value.code == "ClientException" and e.value.status == 400
    assert "exactly one of day-of-month and day-of-week" in e.value.message
    with pytest.raises(BatchplaneError) as e:
        ext.call(
            "createtrigger",
            {
                "triggerName": uniq("bad"),
                "bucket": "some-bucket",
                "jobQueue": "no-such-queue",
                "jobDefinition": env.jobdef,
            },
        )
    assert "no-such-queue does not exist" in e.value.message


# -- the CLI ----------------------------------------------------------------------------------


def _cli(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchplane.cli", *args, "--endpoint-url", endpoint],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_manages_triggers_and_schedules(endpoint: str, env: Env) -> None:
    trigger, schedule = uniq("cli-trigger"), uniq("cli-schedule")
    out = _cli(
        endpoint,
        "triggers",
        "create",
        trigger,
        "--bucket",
        "cli-bucket",
        "--prefix",
        "in/",
        "--job-queue",
        env.queue,
        "--job-definition",
        env.jobdef,
        "--parameter",
        "mode=fast",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["triggerName"] == trigger
    out = _cli(endpoint, "triggers", "disable", trigger)
    assert out.returncode == 0, out.stderr
    (listed,) = json.loads(_cli(endpoint, "triggers", "list", trigger).stdout)["triggers"]
    assert listed["state"] == "DISABLED" and listed["parameters"] == {"mode": "fast"}
    out = _cli(
        endpoint,
        "schedules",
        "create",
        schedule,
        "--expression",
        "cron(0 6 ? * MON-FRI *)",
        "--timezone",
        "Europe/Paris",
        "--overlap",
        "ALLOW",
        "--disabled",
        "--job-queue",
        env.queue,
        "--job-definition",
        env.jobdef,
    )
    assert out.returncode == 0, out.stderr
    (listed,) = json.loads(_cli(endpoint, "schedules", "list", schedule).stdout)["schedules"]
    assert (listed["state"], listed["overlapPolicy"], listed["scheduleExpressionTimezone"]) == (
        "DISABLED",
        "ALLOW",
        "Europe/Paris",
    )
    bad = _cli(endpoint, "schedules", "update", schedule, "--expression", "rate(2 minute)")
    assert bad.returncode == 1 and "rate(2 minutes)" in bad.stderr
    assert _cli(endpoint, "schedules", "delete", schedule).returncode == 0
    assert _cli(endpoint, "triggers", "delete", trigger).returncode == 0
    gone = _cli(endpoint, "triggers", "delete", trigger)
    assert gone.returncode == 1 and "does not exist" in gone.stderr
