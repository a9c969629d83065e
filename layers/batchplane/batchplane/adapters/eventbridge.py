"""Events out: every job status change becomes a "Batch Job State Change" event.

The events are made from the table's stream (NEW_AND_OLD_IMAGES), never by the code that
changes a job: a change is committed to DynamoDB first and its stream record stays until
the publisher has put the event, so a crash anywhere loses no event (it can only repeat
one). The event is AWS Batch's:

    {"version": "0", "id", "detail-type": "Batch Job State Change", "source", "account",
     "time", "region", "resources": [jobArn], "detail": <the job as DescribeJobs shows it>}

with two differences:

- ``source`` is ``BATCHPLANE_EVENT_SOURCE`` (default ``batchplane``): EventBridge keeps
  ``aws.*`` sources for AWS services. A rule written for AWS Batch changes one line,
  ``"source": ["aws.batch"]`` -> ``"source": ["batchplane"]``.
- ``detail.batchplaneEventId`` is ``<jobId>:<version>``, the job item's version that made
  the change. PutEvents lets EventBridge choose the event ``id``, and a record retried
  after a crash is put again with a new ``id``, so consumers deduplicate on
  ``batchplaneEventId`` instead; the version also orders one job's events.

No event is made for SUBMITTED (as in AWS Batch), nor for writes that keep the status.

Beyond AWS Batch, every write of a compute environment (created, updated, deleted,
including the provisioner's own desiredvCpus and status) becomes a
"batchplane Compute Environment Change" event, ``detail`` = ``{"change": "CREATED" |
"UPDATED" | "DELETED", "computeEnvironment": <as DescribeComputeEnvironments shows it,
before deletion for DELETED>}``. The provisioner is woken by them, so that the table's
stream has two readers (scheduler and publisher), the most DynamoDB Streams advises per
shard.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from ..config import settings
from ..domain import jobs as rules
from ..store.dynamodb import Item, deserialize
from ..store.jobs import is_job
from ..store.resources import is_compute_environment

log = logging.getLogger(__name__)

DETAIL_TYPE = "Batch Job State Change"
ENVIRONMENT_CHANGE = "batchplane Compute Environment Change"
_CHANGES = {"INSERT": "CREATED", "MODIFY": "UPDATED", "REMOVE": "DELETED"}
EVENT_ID = "batchplaneEventId"
MAX_ENTRY_BYTES = 256 * 1024  # PutEvents' limit for one entry, and for one call's entries
PUT_EVENTS_ENTRIES = 10  # PutEvents' limit of entries per call


def state_change(record: dict[str, Any]) -> dict[str, Any] | None:
    """The PutEvents entry for one DynamoDB stream record (as Lambda delivers it), or None
    when the record is not a job status change."""
    stream = record.get("dynamodb") or {}
    if "NewImage" not in stream:
        return None  # REMOVE (TTL expiry): the job did not change status
    new = deserialize(stream["NewImage"])
    if not is_job(new) or new.get("events") == "off":
        return None  # not a job, or a child of an array whose queue turned them off
    doc = new["doc"]
    status = doc["status"]
    old_status = (stream.get("OldImage") or {}).get("status", {}).get("S")
    if status in (rules.SUBMITTED, old_status):
        return None
    detail = {**doc, EVENT_ID: f"{doc['jobId']}:{new['version']}"}
    # When the change was committed: the stream record's time (the job document has no
    # time for every status).
    at = stream.get("ApproximateCreationDateTime")
    when = datetime.fromtimestamp(float(at), UTC) if at is not None else datetime.now(UTC)
    s = settings()
    entry = {
        "Time": when,
        "Source": s.event_source,
        "DetailType": DETAIL_TYPE,
        "Resources": [doc["jobArn"]],
        "Detail": json.dumps(detail, separators=(",", ":")),
        "EventBusName": s.event_bus_name,
    }
    if _size(entry) > MAX_ENTRY_BYTES:
        entry["Detail"] = json.dumps(_trimmed(detail), separators=(",", ":"))
    return entry


def environment_change(record: dict[str, Any]) -> dict[str, Any] | None:
    """The PutEvents entry for a stream record of a compute environment item, or None
    when the record is of something else."""
    stream = record.get("dynamodb") or {}
    if not is_compute_environment(deserialize(stream.get("Keys") or {})):
        return None
    image = stream.get("NewImage") or stream.get("OldImage")
    if not image:
        return None
    doc = Item.from_dynamo(image).doc
    detail = {"change": _CHANGES.get(record.get("eventName", ""), "UPDATED"), "computeEnvironment": doc}
    s = settings()
    return {
        "Source": s.event_source,
        "DetailType": ENVIRONMENT_CHANGE,
        "Resources": [doc["computeEnvironmentArn"]],
        "Detail": json.dumps(detail, separators=(",", ":")),
        "EventBusName": s.event_bus_name,
    }


def _size(entry: dict[str, Any]) -> int:
    """PutEvents' own size formula for one entry."""
    return (
        14  # Time
        + len(entry["Source"].encode())
        + len(entry["DetailType"].encode())
        + len(entry["Detail"].encode())
        + sum(len(r.encode()) for r in entry["Resources"])
    )


def _trimmed(detail: dict[str, Any]) -> dict[str, Any]:
    """A job too large for one event (huge environment, parameters or reasons): its
    summary, with ``detailTruncated`` so consumers know to call DescribeJobs."""
    out = rules.summary(detail)
    out.update({k: detail[k] for k in ("jobQueue", EVENT_ID) if k in detail})
    out["detailTruncated"] = True
    return out


class StateChangePublisher:
    """Puts state change entries on the bus (boto3 ``events``; moto's in local mode)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def publish_records(self, records: list[dict[str, Any]]) -> list[str]:
        """Publish the changes a batch of stream records shows, up to 10 to a PutEvents
        call (a tenth of the calls, and of the waiting, of one call per record).

        Returns the sequence numbers of the first record whose entry was not put and of
        every record after it, for the batch's partial response: Lambda retries from
        there, so one job's events keep their order. Entries of that call which did go
        through are put again by the retry, with the same ``batchplaneEventId``."""
        sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
        made = [(i, state_change(r) or environment_change(r)) for i, r in enumerate(records)]
        for call in _calls([(i, e) for i, e in made if e is not None]):
            failed = self._put([e for _, e in call])
            if failed is not None:
                return sequence[call[failed][0]:]
        return []

    def _put(self, entries: list[dict[str, Any]]) -> int | None:
        """Put ``entries`` in one call: None, or the position of the first entry that
        EventBridge did not take."""
        try:
            out = self.client.put_events(Entries=entries)
        except Exception:  # noqa: BLE001 - throttled or unreachable: retried from here
            log.warning("PutEvents failed", exc_info=True)
            return 0
        if not out.get("FailedEntryCount"):
            return None
        results = out.get("Entries", [])
        failed = [i for i, e in enumerate(results) if e.get("ErrorCode")]
        log.warning("EventBridge failed %s of %s entries: %s", out["FailedEntryCount"], len(entries),
                    "; ".join(f"{results[i]['ErrorCode']}: {results[i].get('ErrorMessage', '')}" for i in failed))
        return failed[0] if failed else 0


def _calls(entries: list[tuple[int, dict[str, Any]]]) -> list[list[tuple[int, dict[str, Any]]]]:
    """Consecutive entries grouped as PutEvents takes them: at most 10 to a call and
    MAX_ENTRY_BYTES in all."""
    calls: list[list[tuple[int, dict[str, Any]]]] = []
    size = 0
    for item in entries:
        n = _size(item[1])
        if not calls or len(calls[-1]) == PUT_EVENTS_ENTRIES or size + n > MAX_ENTRY_BYTES:
            calls.append([])
            size = 0
        calls[-1].append(item)
        size += n
    return calls
