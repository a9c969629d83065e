"""Local mode's PutEvents (moto_fixes.put_events): moto's answers and deliveries, with each
event's message built once. Rules with SQS targets show what each rule received."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from batchplane.local.emulator import Emulator

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    emulator = Emulator()
    endpoint = emulator.start()
    yield {name: boto3.client(name, endpoint_url=endpoint, region_name="us-east-1") for name in ("events", "sqs")}
    emulator.stop()


def _rule(clients: dict[str, Any], name: str, pattern: dict[str, Any]) -> str:
    url = clients["sqs"].create_queue(QueueName=name)["QueueUrl"]
    arn = clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    clients["events"].put_rule(Name=name, EventPattern=json.dumps(pattern))
    clients["events"].put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    return url


def _received(sqs: Any, url: str) -> list[dict[str, Any]]:
    out = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        out += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(messages)])


def test_each_rule_gets_the_events_it_matches_each_its_own(clients: dict[str, Any]) -> None:
    batch = _rule(clients, "batch", {"source": ["aws.batch"]})
    succeeded = _rule(clients, "succeeded", {"source": ["aws.batch"], "detail": {"status": ["SUCCEEDED"]}})
    other = _rule(clients, "other", {"source": ["aws.ecs"]})
    entries = [{"Source": "aws.batch", "DetailType": "Batch Job State Change", "Resources": ["arn:job/1"],
                "Detail": json.dumps({"jobId": str(i), "status": status})}
               for i, status in enumerate(["RUNNING", "SUCCEEDED", "FAILED"])]
    out = clients["events"].put_events(Entries=entries)
    assert out["FailedEntryCount"] == 0
    ids = [e["EventId"] for e in out["Entries"]]

    got = _received(clients["sqs"], batch)
    assert sorted(m["id"] for m in got) == sorted(ids)
    one = next(m for m in got if m["id"] == ids[0])
    assert one["detail"] == {"jobId": "0", "status": "RUNNING"}
    assert (one["source"], one["detail-type"]) == ("aws.batch", "Batch Job State Change")
    assert one["resources"] == ["arn:job/1"]
    assert one["region"] == "us-east-1" and one["time"]
    assert [m["id"] for m in _received(clients["sqs"], succeeded)] == [ids[1]]
    assert _received(clients["sqs"], other) == []


def test_entries_it_refuses_are_answered_as_moto_answers_them(clients: dict[str, Any]) -> None:
    queue = _rule(clients, "all", {"source": ["app"]})
    events = clients["events"]
    out = events.put_events(Entries=[
        {"Source": "app", "DetailType": "t", "Detail": "{not json"},
        {"Source": "app", "Detail": "{}"},
        {"Source": "app", "DetailType": "t", "Detail": '{"ok": true}'},
    ])
    assert out["FailedEntryCount"] == 2
    assert out["Entries"][0]["ErrorCode"] == "MalformedDetail"
    assert out["Entries"][1]["ErrorCode"] == "InvalidArgument" and "DetailType" in out["Entries"][1]["ErrorMessage"]
    assert [m["detail"] for m in _received(clients["sqs"], queue)] == [{"ok": True}]
    with pytest.raises(events.exceptions.ClientError, match="less than or equal to 10"):
        events.put_events(Entries=[{"Source": "app", "DetailType": "t", "Detail": "{}"}] * 11)
