"""The publisher and triggers functions with the sample events in events/publisher and
events/triggers, against moto: state change events reach a rule's SQS queue, S3 events
and schedule firings submit one job however often they are delivered."""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from batchplane import aws
from batchplane.wiring import services

from .conftest import api_call, load_event

if TYPE_CHECKING:
    from batchplane.local.router import Function

JOB_ID = "4c3a0d0e-1111-4e8f-9a55-7d3cbe0f0001"
GROUP = "batchplane-jobs"


@pytest.fixture
def state_changes(moto_env: dict[str, Any]) -> Any:  # noqa: ARG001 - requested for its side effect (usefixtures does not apply to fixtures)
    """An SQS queue subscribed to batchplane's state change events by a rule."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="state-changes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="batch-jobs",
        EventPattern=json.dumps(
            {"source": ["batchplane"], "detail-type": ["Batch Job State Change"]}
        ),
    )
    events.put_targets(Rule="batch-jobs", Targets=[{"Id": "q", "Arn": arn}])

    def received() -> list[dict[str, Any]]:
        out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in out]

    return received


def test_a_status_change_record_is_published_with_the_new_image(
    functions: dict[str, Function], state_changes: Any
) -> None:
    sample = load_event("publisher/stream-running.json")
    assert functions["PublisherFunction"].invoke(sample) == {"batchItemFailures": []}
    (event,) = state_changes()
    assert event["source"] == "batchplane" and event["detail-type"] == "Batch Job State Change"
    assert event["resources"] == [f"arn:aws:batch:us-east-1:123456789012:job/{JOB_ID}"]
    assert event["time"] == "2024-11-22T04:41:11Z"
    detail = event["detail"]
    assert detail.pop("batchplaneEventId") == f"{JOB_ID}:4"
    assert detail["status"] == "RUNNING" and detail["startedAt"] == 1732250471456
    assert detail["container"]["logStreamName"].startswith("hello/default/")
    # The same record again (a retried batch) gives the same batchplaneEventId.
    functions["PublisherFunction"].invoke(load_event("publisher/stream-running.json"))
    (repeat,) = state_changes()
    assert repeat["detail"]["batchplaneEventId"] == f"{JOB_ID}:4"


@pytest.mark.parametrize(("record", "change"), [
    ("stream-ce-insert.json", "ce-created.json"),
    ("stream-ce-modify.json", "ce-updated.json"),
    ("stream-ce-remove.json", "ce-deleted.json"),
])
@pytest.mark.usefixtures("moto_env")
def test_compute_environment_writes_become_the_events_the_provisioner_takes(
    functions: dict[str, Function], record: str, change: str
) -> None:
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="environment-changes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # The provisioner's rule, as template.yaml declares it.
    events.put_rule(Name="provisioner", EventPattern=json.dumps(
        {"source": ["batchplane"], "detail-type": ["batchplane Compute Environment Change"]}))
    events.put_targets(Rule="provisioner", Targets=[{"Id": "q", "Arn": arn}])
    assert functions["PublisherFunction"].invoke(load_event(f"publisher/{record}")) == {"batchItemFailures": []}
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    event, sample = json.loads(message["Body"]), load_event(f"provisioner/{change}")
    assert event["resources"] == sample["resources"]
    assert event["detail"] == sample["detail"]  # the provisioner's sample is what is published


def test_a_write_that_keeps_the_status_publishes_nothing(
    functions: dict[str, Function], state_changes: Any
) -> None:
    out = functions["PublisherFunction"].invoke(
        load_event("publisher/stream-no-status-change.json")
    )
    assert out == {"batchItemFailures": []}
    assert state_changes() == []


def test_a_failed_put_is_retried_from_that_record_on(
    functions: dict[str, Function], state_changes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unchanged = load_event("publisher/stream-no-status-change.json")["Records"][0]
    running = load_event("publisher/stream-running.json")["Records"][0]
    later = copy.deepcopy(unchanged)
    later["dynamodb"]["SequenceNumber"] = "1405700000000035063642099"
    real = aws.client("events")

    class Throttled:
        def put_events(self, **_: Any) -> dict[str, Any]:
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}],
            }

    monkeypatch.setitem(aws._clients, "events", Throttled())
    out = functions["PublisherFunction"].invoke({"Records": [unchanged, running, later]})
    failed = [f["itemIdentifier"] for f in out["batchItemFailures"]]
    assert failed == [running["dynamodb"]["SequenceNumber"], later["dynamodb"]["SequenceNumber"]]
    assert state_changes() == []
    monkeypatch.setitem(aws._clients, "events", real)
    assert functions["PublisherFunction"].invoke({"Records": [running, later]}) == {
        "batchItemFailures": []
    }
    assert [e["detail"]["status"] for e in state_changes()] == ["RUNNING"]


# -- S3 triggers --------------------------------------------------------------------------------


def _trigger(api: Function, **extra: Any) -> tuple[int, dict[str, Any]]:
    return api_call(
        api,
        "batchplane/createtrigger",
        {
            "triggerName": "ingest",
            "bucket": "batchplane-inputs",
            "prefix": "incoming/",
            "jobQueue": "default",
            "jobDefinition": "hello",
            "parameters": {"mode": "fast"},
            **extra,
        },
    )


def _jobs(status: str = "RUNNABLE") -> list[dict[str, Any]]:
    """The default queue's jobs (SubmitJob admits a job that waits for nothing at once)."""
    return services().jobs.list({"jobQueue": "default", "jobStatus": status})["jobSummaryList"]


@pytest.mark.usefixtures("ec2_environment")
def test_an_s3_event_submits_one_job_even_when_delivered_twice(
    functions: dict[str, Function]
) -> None:
    status, body = _trigger(functions["ApiFunction"])
    assert status == 200, body
    assert body == {
        "triggerName": "ingest",
        "triggerArn": "arn:aws:batch:us-east-1:123456789012:trigger/ingest",
    }
    first = functions["TriggersFunction"].invoke(load_event("triggers/s3-object-created.json"))
    again = functions["TriggersFunction"].invoke(load_event("triggers/s3-object-created.json"))
    (submitted,) = first["submissions"]
    assert again["submissions"] == first["submissions"]
    assert len(_jobs()) == 1
    job = services().jobs.get(submitted["jobId"]).doc  # type: ignore[union-attr]
    assert job["jobName"] == "ingest"
    assert job["parameters"] == {
        "mode": "fast",
        "bucket": "batchplane-inputs",
        "key": "incoming/data 1.csv",
    }
    assert job["tags"] == {"batchplane:trigger": "ingest"}
    # Another write of the same key (new sequencer) is another job.
    rewrite = load_event("triggers/s3-object-created.json")
    rewrite["detail"]["object"]["sequencer"] = "00674019CB1B6C2A99"
    functions["TriggersFunction"].invoke(rewrite)
    assert len(_jobs()) == 2


@pytest.mark.usefixtures("ec2_environment")
def test_keys_outside_the_prefix_and_disabled_triggers_submit_nothing(
    functions: dict[str, Function]
) -> None:
    _trigger(functions["ApiFunction"])
    other = load_event("triggers/s3-object-created.json")
    other["detail"]["object"]["key"] = "archive/data 1.csv"
    assert functions["TriggersFunction"].invoke(other) == {"submissions": []}
    status, _ = api_call(
        functions["ApiFunction"],
        "batchplane/updatetrigger",
        {"triggerName": "ingest", "state": "DISABLED"},
    )
    assert status == 200
    assert functions["TriggersFunction"].invoke(load_event("triggers/s3-object-created.json")) == {
        "submissions": []
    }
    _, described = api_call(
        functions["ApiFunction"], "batchplane/describetriggers", {"bucket": "batchplane-inputs"}
    )
    assert [t["state"] for t in described["triggers"]] == ["DISABLED"]
    assert _jobs() == []


@pytest.mark.usefixtures("ec2_environment")
def test_trigger_mistakes_are_client_exceptions(
    functions: dict[str, Function]
) -> None:
    api = functions["ApiFunction"]
    status, body = _trigger(api, jobQueue="nope")
    assert (
        status == 400
        and body["__type"] == "ClientException"
        and "nope does not exist" in body["message"]
    )
    status, body = _trigger(api, parameters={"key": "x"})
    assert status == 400 and "set by the trigger" in body["message"]
    assert _trigger(api)[0] == 200
    status, body = _trigger(api)
    assert status == 400 and "already exists" in body["message"]
    status, body = api_call(api, "batchplane/deletetrigger", {"triggerName": "missing"})
    assert status == 400 and "does not exist" in body["message"]
    status, body = api_call(api, "batchplane/maketrigger", {})
    assert status == 400 and "createtrigger" in body["message"]


# -- schedules ----------------------------------------------------------------------------------


@pytest.fixture
def scheduler(moto_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: ARG001 - requested for its side effect (usefixtures does not apply to fixtures)
    account = "us-east-1:123456789012"
    for key, value in {
        "BATCHPLANE_SCHEDULE_GROUP": GROUP,
        "BATCHPLANE_SCHEDULE_TARGET_ARN": f"arn:aws:lambda:{account}:function:bp-TriggersFunction",
        "BATCHPLANE_SCHEDULE_ROLE_ARN": "arn:aws:iam::123456789012:role/bp-ScheduleInvokeRole",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("scheduler")
    client.create_schedule_group(Name=GROUP)
    return client


def _firing(scheduled_time: str = "2024-11-22T04:42:00Z") -> dict[str, Any]:
    event = load_event("triggers/schedule-firing.json")
    event["scheduledTime"] = scheduled_time
    return event


@pytest.mark.usefixtures("ec2_environment")
def test_a_schedule_becomes_an_eventbridge_schedule_and_each_firing_one_job(
    functions: dict[str, Function],
    scheduler: Any,
) -> None:
    api, fn = functions["ApiFunction"], functions["TriggersFunction"]
    status, body = api_call(
        api,
        "batchplane/createschedule",
        {
            "scheduleName": "nightly",
            "scheduleExpression": "cron(0 2 * * ? *)",
            "scheduleExpressionTimezone": "Europe/Paris",
            "jobQueue": "default",
            "jobDefinition": "hello",
        },
    )
    assert status == 200, body
    remote = scheduler.get_schedule(Name="nightly", GroupName=GROUP)
    assert remote["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert remote["ScheduleExpressionTimezone"] == "Europe/Paris" and remote["State"] == "ENABLED"
    assert remote["Target"]["Arn"].endswith(":function:bp-TriggersFunction")
    assert json.loads(remote["Target"]["Input"]) == {
        "schedule": "nightly",
        "scheduledTime": "<aws.scheduler.scheduled-time>",
        "executionId": "<aws.scheduler.execution-id>",
    }

    first = fn.invoke(load_event("triggers/schedule-firing.json"))
    assert first["outcome"] == "SUBMITTED"
    assert (
        fn.invoke(load_event("triggers/schedule-firing.json")) == first
    )  # delivered twice: one job
    job = services().jobs.get(first["jobId"]).doc  # type: ignore[union-attr]
    assert job["parameters"]["scheduledTime"] == "2024-11-22T04:42:00Z"
    assert job["tags"] == {"batchplane:schedule": "nightly"}

    # The first job is still queued: SKIP (the default) skips the next firing, ALLOW runs it.
    skipped = fn.invoke(_firing("2024-11-23T01:00:00Z"))
    assert skipped["outcome"] == "SKIPPED" and first["jobId"] in skipped["reason"]
    assert (
        api_call(
            api, "batchplane/updateschedule", {"scheduleName": "nightly", "overlapPolicy": "ALLOW"}
        )[0]
        == 200
    )
    allowed = fn.invoke(_firing("2024-11-24T01:00:00Z"))
    assert allowed["outcome"] == "SUBMITTED" and allowed["jobId"] != first["jobId"]
    assert len(_jobs()) == 2

    _, described = api_call(api, "batchplane/describeschedules", {"scheduleNames": ["nightly"]})
    (schedule,) = described["schedules"]
    assert [r["outcome"] for r in schedule["runs"]] == ["SUBMITTED", "SKIPPED", "SUBMITTED"]
    assert schedule["lastJobId"] == allowed["jobId"]


@pytest.mark.usefixtures("ec2_environment")
def test_disable_and_delete_reach_eventbridge_scheduler(
    functions: dict[str, Function],
    scheduler: Any,
) -> None:
    api, fn = functions["ApiFunction"], functions["TriggersFunction"]
    api_call(
        api,
        "batchplane/createschedule",
        {
            "scheduleName": "nightly",
            "scheduleExpression": "rate(1 day)",
            "jobQueue": "default",
            "jobDefinition": "hello",
        },
    )
    assert (
        api_call(
            api, "batchplane/updateschedule", {"scheduleName": "nightly", "state": "DISABLED"}
        )[0]
        == 200
    )
    assert scheduler.get_schedule(Name="nightly", GroupName=GROUP)["State"] == "DISABLED"
    assert fn.invoke(_firing())["outcome"] == "DISABLED"
    assert api_call(api, "batchplane/deleteschedule", {"scheduleName": "nightly"})[0] == 200
    assert scheduler.list_schedules(GroupName=GROUP)["Schedules"] == []
    assert fn.invoke(_firing())["outcome"] == "NO_SCHEDULE"
    assert _jobs() == []


@pytest.mark.usefixtures("ec2_environment")
def test_schedule_mistakes_are_client_exceptions(
    functions: dict[str, Function], scheduler: Any
) -> None:
    api = functions["ApiFunction"]
    base = {
        "scheduleName": "s",
        "scheduleExpression": "rate(5 minutes)",
        "jobQueue": "default",
        "jobDefinition": "hello",
    }
    for change, words in (
        ({"scheduleExpression": "rate(5 minute)"}, "rate(5 minutes)"),
        ({"scheduleExpressionTimezone": "Paris"}, "IANA"),
        ({"jobDefinition": "gone"}, "does not exist"),
        ({"overlapPolicy": "NEVER"}, "SKIP, ALLOW"),
    ):
        status, body = api_call(api, "batchplane/createschedule", {**base, **change})
        assert status == 400 and body["__type"] == "ClientException", body
        assert words in body["message"], body
    assert scheduler.list_schedules(GroupName=GROUP)["Schedules"] == []
