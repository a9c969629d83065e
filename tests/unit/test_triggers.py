"""The pure parts of events out and triggers in: schedule expressions, trigger and
schedule documents, S3 object identity, firing bookkeeping, state change entries and the
local clock."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from batchplane.adapters import eventbridge as events_out
from batchplane.domain import schedules
from batchplane.domain import triggers as domain
from batchplane.errors import ClientException
from batchplane.local.bus import LocalClock, _with_unique_s3_fields
from batchplane.store.dynamodb import serialize
from hypothesis import given
from hypothesis import strategies as st

UTC_ZONE = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def ts(text: str, zone: ZoneInfo = UTC_ZONE) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def iso(t: float, zone: ZoneInfo = UTC_ZONE) -> str:
    return datetime.fromtimestamp(t, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M %a")


def firings(expression: str, start: str, n: int, zone: ZoneInfo = UTC_ZONE) -> list[str]:
    parsed = schedules.parse(expression)
    t = ts(start, zone)
    out = []
    for _ in range(n):
        nxt = schedules.next_after(parsed, t, anchor=t, zone=zone)
        assert nxt is not None
        out.append(iso(nxt, zone))
        t = nxt
    return out


# -- rate ---------------------------------------------------------------------------------


def test_rate_fires_at_its_start_then_every_period() -> None:
    rate = schedules.parse("rate(5 minutes)")
    assert rate == schedules.Rate(300)
    start = 1_000_000.0
    assert schedules.next_after(rate, start - 0.001, anchor=start, zone=UTC_ZONE) == start
    assert schedules.next_after(rate, start, anchor=start, zone=UTC_ZONE) == start + 300
    assert schedules.next_after(rate, start + 301, anchor=start, zone=UTC_ZONE) == start + 600


@given(period=st.integers(1, 10_000), offset=st.floats(0, 1e7, allow_nan=False))
def test_rate_next_is_the_first_grid_point_after(period: int, offset: float) -> None:
    rate, anchor = schedules.Rate(period), 1_700_000_000.0
    after = anchor + offset
    nxt = rate.next_after(after, anchor)
    assert after < nxt <= after + period + 1e-6
    assert abs(((nxt - anchor) / period) - round((nxt - anchor) / period)) < 1e-6


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("rate(1 minutes)", "rate(1 minute)"),
        ("rate(5 minute)", "rate(5 minutes)"),
        ("rate(0 minutes)", "at least 1"),
        ("rate(2 weeks)", "minute(s), hour(s) or day(s)"),
        ("rate(five minutes)", "positive whole"),
        ("every 5 minutes", "rate(5 minutes)"),
        ("at(2030-01-01T00:00:00)", "not supported"),
        ("", "required"),
    ],
)
def test_bad_rate_expressions_say_what_to_write(expression: str, words: str) -> None:
    with pytest.raises(ClientException) as e:
        schedules.parse(expression)
    assert words in e.value.message


# -- cron ---------------------------------------------------------------------------------


def test_cron_every_day_at_noon() -> None:
    assert firings("cron(0 12 * * ? *)", "2024-03-01 12:00", 2) == [
        "2024-03-02 12:00 Sat",
        "2024-03-03 12:00 Sun",
    ]


def test_cron_weekdays_with_names_and_steps() -> None:
    got = firings("cron(0/30 9 ? * MON-FRI *)", "2024-03-01 09:45", 3)  # a Friday
    assert got == ["2024-03-04 09:00 Mon", "2024-03-04 09:30 Mon", "2024-03-05 09:00 Tue"]


def test_cron_last_day_nearest_weekday_and_nth_weekday() -> None:
    assert firings("cron(0 0 L * ? *)", "2024-01-31 01:00", 2) == [
        "2024-02-29 00:00 Thu",
        "2024-03-31 00:00 Sun",
    ]
    # 2024-06-01 is a Saturday: 1W is Monday the 3rd; 2024-09-30 is a Monday (LW).
    assert firings("cron(0 0 1W * ? *)", "2024-05-15 00:00", 2) == [
        "2024-06-03 00:00 Mon",
        "2024-07-01 00:00 Mon",
    ]
    assert firings("cron(0 0 LW * ? *)", "2024-09-01 00:00", 1) == ["2024-09-30 00:00 Mon"]
    assert firings("cron(0 8 ? * 3#2 *)", "2024-01-01 00:00", 2) == [
        "2024-01-09 08:00 Tue",
        "2024-02-13 08:00 Tue",
    ]
    assert firings("cron(0 8 ? * 6L *)", "2024-01-01 00:00", 1) == ["2024-01-26 08:00 Fri"]


def test_cron_in_a_time_zone_follows_wall_clock_across_dst() -> None:
    # Paris moves from UTC+1 to UTC+2 on 2024-03-31: 09:00 local stays 09:00 local.
    parsed = schedules.parse("cron(0 9 * * ? *)")
    t = ts("2024-03-30 08:00", PARIS)
    first = schedules.next_after(parsed, t, anchor=t, zone=PARIS)
    assert first is not None
    second = schedules.next_after(parsed, first, anchor=t, zone=PARIS)
    assert second is not None
    assert (iso(first, PARIS), iso(second, PARIS)) == (
        "2024-03-30 09:00 Sat",
        "2024-03-31 09:00 Sun",
    )
    assert second - first == 23 * 3600  # the day was an hour short


def test_cron_skips_a_wall_time_that_dst_removes_and_fires_a_repeated_one_once() -> None:
    # 02:30 does not exist in New York on 2024-03-10 and happens twice on 2024-11-03.
    spring = firings("cron(30 2 * * ? *)", "2024-03-09 03:00", 2, NEW_YORK)
    assert spring == ["2024-03-11 02:30 Mon", "2024-03-12 02:30 Tue"]
    fall = firings("cron(30 1 * * ? *)", "2024-11-02 03:00", 2, NEW_YORK)
    assert fall == ["2024-11-03 01:30 Sun", "2024-11-04 01:30 Mon"]


def test_cron_with_past_years_never_fires_again() -> None:
    parsed = schedules.parse("cron(0 0 1 1 ? 1999)")
    assert schedules.next_after(parsed, ts("2024-01-01 00:00"), anchor=0, zone=UTC_ZONE) is None


@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    weekdays=st.sets(st.integers(1, 7), min_size=1),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    zone=st.sampled_from([UTC_ZONE, PARIS, NEW_YORK, ZoneInfo("Asia/Kolkata")]),
)
def test_cron_next_firing_matches_every_field(
    minute: int, hour: int, weekdays: set[int], start: datetime, zone: ZoneInfo
) -> None:
    expression = f"cron({minute} {hour} ? * {','.join(map(str, sorted(weekdays)))} *)"
    parsed = schedules.parse(expression)
    after = start.replace(tzinfo=UTC).timestamp()
    nxt = schedules.next_after(parsed, after, anchor=after, zone=zone)
    assert nxt is not None and nxt > after
    local = datetime.fromtimestamp(nxt, UTC).astimezone(zone)
    assert (local.minute, local.hour) == (minute, hour)
    assert local.isoweekday() % 7 + 1 in weekdays
    assert nxt - after <= 8 * 86400 + 3600  # within a week (plus a DST hour)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("cron(0 12 * * *)", "5 fields, not 6"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(60 12 * * ? *)", "out of range"),
        ("cron(0 12 * FOO ? *)", "JAN-DEC"),
        ("cron(0 12 ? * MON-FOO *)", "SUN-SAT"),
        ("cron(0 12-3 * * ? *)", "low to high"),
        ("cron(0/0 12 * * ? *)", "positive whole step"),
    ],
)
def test_bad_cron_expressions_say_what_is_wrong(expression: str, words: str) -> None:
    with pytest.raises(ClientException) as e:
        schedules.parse(expression)
    assert words in e.value.message


def test_time_zones() -> None:
    assert schedules.time_zone(None) == UTC_ZONE
    assert schedules.time_zone("Europe/Paris") == PARIS
    with pytest.raises(ClientException, match="IANA"):
        schedules.time_zone("Mars/Olympus")


# -- trigger and schedule documents ---------------------------------------------------------

TRIGGER = {
    "triggerName": "ingest",
    "bucket": "my-inputs",
    "prefix": "in/",
    "suffix": ".csv",
    "jobQueue": "q",
    "jobDefinition": "jd",
    "parameters": {"mode": "fast"},
}
SCHEDULE = {
    "scheduleName": "nightly",
    "scheduleExpression": "cron(0 2 * * ? *)",
    "scheduleExpressionTimezone": "Europe/Paris",
    "jobQueue": "q",
    "jobDefinition": "jd",
}
NOW = 1_732_250_000_000


def test_new_trigger_document() -> None:
    doc = domain.new_trigger(TRIGGER, arn="arn:t", now=NOW)
    assert doc == {**TRIGGER, "triggerArn": "arn:t", "state": "ENABLED", "createdAt": NOW}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"bucket": "arn:aws:s3:::my-inputs"}, "not an S3 bucket name"),
        ({"bucket": "My_Bucket"}, "not an S3 bucket name"),
        ({"triggerName": "-x"}, "starting with a letter or number"),
        ({"jobQueue": None}, "jobQueue is required"),
        ({"parameters": {"key": "x"}}, "set by the trigger"),
        ({"parameters": {"n": 1}}, "map of strings"),
        ({"state": "ON"}, "ENABLED, DISABLED"),
        ({"colour": "red"}, "does not take colour"),
        ({"containerOverrides": []}, "must be an object"),
    ],
)
def test_bad_trigger_requests_say_what_to_change(change: dict, words: str) -> None:
    with pytest.raises(ClientException) as e:
        domain.new_trigger({**TRIGGER, **change}, arn="arn:t", now=NOW)
    assert words in e.value.message


def test_new_schedule_document_and_its_checks() -> None:
    doc = domain.new_schedule(SCHEDULE, arn="arn:s", now=NOW)
    assert doc["overlapPolicy"] == "SKIP" and doc["state"] == "ENABLED" and doc["parameters"] == {}
    with pytest.raises(ClientException, match="overlapPolicy"):
        domain.new_schedule({**SCHEDULE, "overlapPolicy": "QUEUE"}, arn="arn:s", now=NOW)
    with pytest.raises(ClientException, match="never fires"):
        domain.new_schedule(
            {**SCHEDULE, "scheduleExpression": "cron(0 2 * * ? 2001)"}, arn="arn:s", now=NOW
        )
    with pytest.raises(ClientException, match="1 to 64"):
        domain.new_schedule({**SCHEDULE, "scheduleName": "n" * 65}, arn="arn:s", now=NOW)
    with pytest.raises(ClientException, match="scheduledTime"):
        domain.new_schedule(
            {**SCHEDULE, "parameters": {"scheduledTime": "x"}}, arn="arn:s", now=NOW
        )


def test_update_keeps_the_name_and_the_bookkeeping() -> None:
    doc = domain.new_schedule(SCHEDULE, arn="arn:s", now=NOW)
    doc["runs"] = [{"scheduledTime": "2024-01-01T00:00:00Z", "outcome": "SKIPPED"}]
    changed = domain.updated(doc, {"scheduleName": "nightly", "state": "DISABLED"}, "schedule")
    assert changed["state"] == "DISABLED" and changed["runs"] == doc["runs"]
    assert changed["createdAt"] == NOW and changed["scheduleArn"] == "arn:s"
    with pytest.raises(ClientException, match="at least one field"):
        domain.updated(doc, {"scheduleName": "nightly"}, "schedule")
    with pytest.raises(ClientException, match="not valid"):
        domain.updated(
            doc, {"scheduleName": "nightly", "scheduleExpression": "rate(1 minutes)"}, "schedule"
        )


def test_submit_request_adds_the_cause_parameters_and_tag() -> None:
    doc = domain.new_trigger(
        {**TRIGGER, "containerOverrides": {"command": ["x"]}}, arn="arn:t", now=NOW
    )
    request = domain.submit_request(
        doc, name="ingest", parameters={"bucket": "b", "key": "k"}, tag=domain.TRIGGER_TAG
    )
    assert request == {
        "jobName": "ingest",
        "jobQueue": "q",
        "jobDefinition": "jd",
        "parameters": {"mode": "fast", "bucket": "b", "key": "k"},
        "tags": {"batchplane:trigger": "ingest"},
        "containerOverrides": {"command": ["x"]},
    }


# -- S3 objects ---------------------------------------------------------------------------


def s3_event(key: str = "in/a.csv", sequencer: str = "0A1", **object_fields: str) -> dict:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {
            "bucket": {"name": "my-inputs"},
            "object": {"key": key, "etag": "e1", "sequencer": sequencer, **object_fields},
        },
    }


def test_created_object_and_matching() -> None:
    doc = domain.new_trigger(TRIGGER, arn="arn:t", now=NOW)
    obj = domain.created_object(s3_event())
    assert obj == domain.CreatedObject("my-inputs", "in/a.csv", "", "0A1", "e1")
    assert domain.matches(doc, obj)
    assert not domain.matches(doc, domain.created_object(s3_event("out/a.csv")))
    assert not domain.matches(doc, domain.created_object(s3_event("in/a.json")))
    assert not domain.matches({**doc, "state": "DISABLED"}, obj)
    assert domain.created_object({**s3_event(), "detail-type": "Object Deleted"}) is None
    assert domain.created_object({"source": "aws.ecs"}) is None


def test_a_redelivered_event_has_the_same_key_and_a_new_write_another() -> None:
    first = domain.created_object(s3_event())
    again = domain.created_object(s3_event())
    rewritten = domain.created_object(s3_event(sequencer="0A2"))
    assert first and again and rewritten
    assert first.request_key("ingest") == again.request_key("ingest")
    assert first.request_key("ingest") != rewritten.request_key("ingest")
    assert first.request_key("ingest") != first.request_key("other")
    # moto spells the ETag eTag; AWS etag. Either identifies the object.
    assert domain.created_object(s3_event(etag="", eTag="e9")).etag == "e9"  # type: ignore[union-attr]


# -- schedule firings ---------------------------------------------------------------------


def test_runs_are_remembered_newest_first_and_capped() -> None:
    doc = domain.new_schedule(SCHEDULE, arn="arn:s", now=NOW)
    for i in range(12):
        domain.record_run(
            doc,
            {
                "scheduledTime": f"2024-01-01T00:{i:02d}:00Z",
                "outcome": "SUBMITTED",
                "jobId": f"j{i}",
            },
        )
    assert len(doc["runs"]) == domain.MAX_RUNS
    assert doc["runs"][0]["jobId"] == "j11" and doc["lastJobId"] == "j11"
    assert domain.run_of(doc, "2024-01-01T00:05:00Z") == {
        "scheduledTime": "2024-01-01T00:05:00Z",
        "outcome": "SUBMITTED",
        "jobId": "j5",
    }
    # A late retry of an older firing does not move lastJobId back.
    domain.record_run(
        doc, {"scheduledTime": "2024-01-01T00:03:00Z", "outcome": "SUBMITTED", "jobId": "late"}
    )
    assert doc["lastJobId"] == "j11"


def test_overlap_policy() -> None:
    skip = domain.new_schedule(SCHEDULE, arn="arn:s", now=NOW)
    allow = {**skip, "overlapPolicy": "ALLOW"}
    assert domain.overlaps(skip, "RUNNING") and domain.overlaps(skip, "RUNNABLE")
    assert not domain.overlaps(skip, "SUCCEEDED") and not domain.overlaps(skip, None)
    assert not domain.overlaps(allow, "RUNNING")


def test_firing_keys() -> None:
    doc = domain.new_schedule(SCHEDULE, arn="arn:s", now=NOW)
    key = domain.firing_key(doc, "2024-01-01T00:00:00Z")
    assert key == domain.firing_key(dict(doc), "2024-01-01T00:00:00Z")
    assert key != domain.firing_key(doc, "2024-01-01T00:01:00Z")
    assert key != domain.firing_key({**doc, "createdAt": NOW + 1}, "2024-01-01T00:00:00Z")


# -- state change entries -----------------------------------------------------------------

JOB = {
    "jobArn": "arn:aws:batch:us-east-1:123456789012:job/j1",
    "jobId": "j1",
    "jobName": "n",
    "status": "RUNNING",
    "createdAt": 1,
    "attempts": [],
    "container": {},
    "jobQueue": "arn:q",
    "jobDefinition": "arn:jd",
}


def stream_record(old_status: str | None, new_status: str | None, version: int = 4) -> dict:
    def image(status: str, v: int) -> dict:
        return serialize(
            {
                "pk": "JOB#j1",
                "sk": "JOB",
                "doc": {**JOB, "status": status},
                "version": v,
                "status": status,
            }
        )

    dynamodb: dict = {
        "Keys": serialize({"pk": "JOB#j1", "sk": "JOB"}),
        "ApproximateCreationDateTime": 1732250471,
    }
    if old_status:
        dynamodb["OldImage"] = image(old_status, version - 1)
    if new_status:
        dynamodb["NewImage"] = image(new_status, version)
    return {"eventName": "MODIFY", "dynamodb": dynamodb}


def test_a_status_change_is_the_job_as_describe_jobs_shows_it() -> None:
    entry = events_out.state_change(stream_record("STARTING", "RUNNING"))
    assert entry is not None
    assert entry["Source"] == "batchplane" and entry["DetailType"] == "Batch Job State Change"
    assert entry["Resources"] == [JOB["jobArn"]]
    assert entry["Time"] == datetime(2024, 11, 22, 4, 41, 11, tzinfo=UTC)
    assert json.loads(entry["Detail"]) == {**JOB, "batchplaneEventId": "j1:4"}


def test_no_event_for_submitted_same_status_removals_or_other_items() -> None:
    assert events_out.state_change(stream_record(None, "SUBMITTED", 1)) is None
    assert events_out.state_change(stream_record("RUNNING", "RUNNING")) is None
    assert events_out.state_change(stream_record("SUCCEEDED", None)) is None
    other = stream_record("RUNNING", "SUCCEEDED")
    other["dynamodb"]["NewImage"]["sk"] = {"S": "#"}
    assert events_out.state_change(other) is None
    assert events_out.state_change(stream_record(None, "PENDING", 1)) is not None


def test_an_oversized_job_is_published_as_its_summary() -> None:
    record = stream_record("RUNNING", "SUCCEEDED")
    big = {**JOB, "status": "SUCCEEDED", "parameters": {"p": "x" * 300_000}}
    record["dynamodb"]["NewImage"]["doc"] = serialize({"doc": big})["doc"]
    entry = events_out.state_change(record)
    assert entry is not None
    detail = json.loads(entry["Detail"])
    assert (
        detail["detailTruncated"] is True and detail["jobId"] == "j1" and "parameters" not in detail
    )
    assert detail["batchplaneEventId"] == "j1:4"


class RecordingBus:
    """A PutEvents stand-in that records each call and fails the entries asked to."""

    def __init__(self, fail_entry: int | None = None, fail_call: int | None = None) -> None:
        self.calls: list[list[dict]] = []
        self.fail_entry = fail_entry  # fail this entry (position in the batch) ...
        self.fail_call = fail_call  # ... or raise on this call

    def put_events(self, Entries: list) -> dict:  # noqa: N803 - boto3's name
        if len(self.calls) == self.fail_call:
            self.calls.append(Entries)
            raise ConnectionError("endpoint unreachable")
        before = sum(len(c) for c in self.calls)
        self.calls.append(Entries)
        results = [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow"}
                   if before + i == self.fail_entry else {"EventId": "e"} for i in range(len(Entries))]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def numbered(n: int) -> list[dict]:
    """``n`` status change records of job j1, versions 1..n, sequence numbers s1..sn."""
    records = []
    for v in range(1, n + 1):
        r = stream_record("STARTING" if v % 2 else "RUNNING", "RUNNING" if v % 2 else "STARTING", v)
        r["dynamodb"]["SequenceNumber"] = f"s{v}"
        records.append(r)
    return records


def test_a_batch_is_published_ten_entries_to_a_call_in_order() -> None:
    bus = RecordingBus()
    records = numbered(23)
    records.insert(5, {**stream_record("RUNNING", "RUNNING"), "dynamodb": {
        **stream_record("RUNNING", "RUNNING")["dynamodb"], "SequenceNumber": "same"}})
    assert events_out.StateChangePublisher(bus).publish_records(records) == []
    assert [len(c) for c in bus.calls] == [10, 10, 3]  # the unchanged status makes no entry
    ids = [json.loads(e["Detail"])["batchplaneEventId"] for c in bus.calls for e in c]
    assert ids == [f"j1:{v}" for v in range(1, 24)]


def test_a_call_never_carries_more_than_256_kb_of_entries() -> None:
    bus = RecordingBus()
    records = numbered(4)
    for r in records:  # each entry about 100 KB: two fit in a call, not three
        status = r["dynamodb"]["NewImage"]["status"]["S"]
        doc = {**JOB, "status": status, "parameters": {"p": "x" * 100_000}}
        r["dynamodb"]["NewImage"]["doc"] = serialize({"doc": doc})["doc"]
    assert events_out.StateChangePublisher(bus).publish_records(records) == []
    assert [len(c) for c in bus.calls] == [2, 2]


@pytest.mark.parametrize(("bus", "first_failed", "calls"), [
    (RecordingBus(fail_entry=13), 14, 2),  # the 14th entry, in the second call
    (RecordingBus(fail_call=1), 11, 2),  # the second call raised: all of its records
    (RecordingBus(fail_entry=0), 1, 1),
])
def test_a_failure_reports_the_first_record_not_published_and_every_later_one(
    bus: RecordingBus, first_failed: int, calls: int
) -> None:
    failed = events_out.StateChangePublisher(bus).publish_records(numbered(25))
    assert failed == [f"s{v}" for v in range(first_failed, 26)]
    assert len(bus.calls) == calls  # nothing after the failed call is put


# -- local mode helpers ---------------------------------------------------------------------


def test_local_clock_maps_past_real_times_with_the_offset_of_their_moment() -> None:
    offset = {"ms": 0}

    def now_ms() -> int:
        return int(time.time() * 1000) + offset["ms"]

    def move(seconds: float) -> None:
        offset["ms"] += int(seconds * 1000)

    local = LocalClock(now_ms, move)
    before = time.time()
    local.advance(60)
    assert local.now() >= before + 60 - 0.01  # the clock reads whole milliseconds
    assert abs(local.at(before - 1) - (before - 1)) < 0.01  # before the move: no offset
    assert abs(local.at(time.time()) - local.now()) < 0.01
    move(30)  # moved elsewhere (another test, the service): seen at the next look
    local.observe()
    assert abs(local.at(time.time()) - local.now()) < 0.01


def test_moto_s3_placeholders_become_unique_per_message() -> None:
    moto_event = {
        "source": "aws.s3",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail": {"object": {"key": "k", "eTag": "e", "sequencer": "617f08299329d189"}},
    }
    a = _with_unique_s3_fields(json.loads(json.dumps(moto_event)), "message-1")
    again = _with_unique_s3_fields(json.loads(json.dumps(moto_event)), "message-1")
    b = _with_unique_s3_fields(json.loads(json.dumps(moto_event)), "message-2")
    assert a == again and a["detail"]["object"]["sequencer"] != b["detail"]["object"]["sequencer"]
    assert a["id"] != b["id"] and a["detail"]["object"]["etag"] == "e"


def test_schedule_timestamps_in_iso() -> None:
    assert (
        iso(ts("2024-01-01 00:00") + timedelta(hours=1).total_seconds()) == "2024-01-01 01:00 Mon"
    )
