"""Triggers and schedules: what submits a job without a person calling SubmitJob.

A *trigger* submits one job per object created in an S3 bucket (optionally only for keys
with a prefix and/or suffix); the job gets the object's ``bucket`` and ``key`` as
parameters (``Ref::bucket``, ``Ref::key`` in the command). A *schedule* submits one job per
firing of a rate() or cron() expression; its job gets ``scheduledTime`` (ISO 8601, UTC).

Both are stored as their API documents. Every submission carries a request key derived
from what caused it (the S3 object write, the schedule firing), so a cause delivered twice
still gives one job.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ClientException
from . import checks, jobdefs, schedules
from .jobs import TERMINAL

ENABLED, DISABLED = "ENABLED", "DISABLED"
STATES = (ENABLED, DISABLED)
SKIP, ALLOW = "SKIP", "ALLOW"
OVERLAP_POLICIES = (SKIP, ALLOW)
SUBMITTED, SKIPPED, FAILED = "SUBMITTED", "SKIPPED", "FAILED"
TRIGGER_PARAMETERS = ("bucket", "key")
SCHEDULE_PARAMETERS = ("scheduledTime",)
TRIGGER_TAG = "batchplane:trigger"
SCHEDULE_TAG = "batchplane:schedule"
MAX_RUNS = 10  # firings remembered per schedule (duplicates and retries are matched against them)
MAX_AFFIX = 1024

_TRIGGER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
# EventBridge Scheduler names schedules with [0-9a-zA-Z-_.]{1,64}; batchplane keeps the
# Batch naming rules inside that.
_SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

_JOB_FIELDS = (
    "jobQueue",
    "jobDefinition",
    "jobName",
    "parameters",
    "containerOverrides",
    "shareIdentifier",
)
TRIGGER_FIELDS = ("triggerName", "bucket", "prefix", "suffix", "state", *_JOB_FIELDS)
SCHEDULE_FIELDS = (
    "scheduleName",
    "scheduleExpression",
    "scheduleExpressionTimezone",
    "overlapPolicy",
    "state",
    *_JOB_FIELDS,
)


# -- requests -------------------------------------------------------------------------


def _name(value: Any, pattern: re.Pattern[str], what: str, limit: int) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ClientException(
            f"{what} {value!r} is not valid: use 1 to {limit} letters, numbers, hyphens (-) "
            "and underscores (_), starting with a letter or number."
        )
    return value


def trigger_name(value: Any) -> str:
    return _name(value, _TRIGGER_NAME, "triggerName", 128)


def schedule_name(value: Any) -> str:
    return _name(value, _SCHEDULE_NAME, "scheduleName", 64)


def _known(request: dict[str, Any], fields: tuple[str, ...], operation: str) -> None:
    unknown = sorted(set(request) - set(fields))
    if unknown:
        raise ClientException(
            f"{operation} does not take {', '.join(unknown)}; it takes {', '.join(fields)}."
        )


def _job_fields(request: dict[str, Any], reserved: tuple[str, ...], source: str) -> dict[str, Any]:
    """The SubmitJob part shared by triggers and schedules, checked for shape."""
    out: dict[str, Any] = {}
    for key in ("jobQueue", "jobDefinition"):
        if not isinstance(request.get(key), str) or not request[key]:
            raise ClientException(
                f"{key} is required: name the {key[3:].lower()} (name or ARN) the jobs go to."
            )
        out[key] = request[key]
    if request.get("jobName") is not None:
        out["jobName"] = checks.job_name(request["jobName"])
    params = request.get("parameters") or {}
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise ClientException("parameters must be a map of strings to strings.")
    taken = sorted(set(params) & set(reserved))
    if taken:
        raise ClientException(
            f"parameters {', '.join(taken)} are set by the {source} for each job; "
            f"use other names (Ref::{reserved[0]} already gives you the value)."
        )
    out["parameters"] = dict(params)
    share = request.get("shareIdentifier")
    if share is not None:
        if not isinstance(share, str) or not share:
            raise ClientException(
                "shareIdentifier must be a non-empty string (for fair-share job queues)."
            )
        out["shareIdentifier"] = share
    overrides = request.get("containerOverrides")
    if overrides is not None:
        if not isinstance(overrides, dict):
            raise ClientException("containerOverrides must be an object, as in SubmitJob.")
        # Checked as SubmitJob checks them, now: not at each job the source would submit.
        out["containerOverrides"] = jobdefs.container_overrides(overrides, "containerOverrides")
    return out


def _state(value: Any) -> str:
    return ENABLED if value is None else checks.one_of(value, STATES, "state")


def new_trigger(request: dict[str, Any], *, arn: str, now: int) -> dict[str, Any]:
    """The stored document of a trigger from a CreateTrigger request (shape checks only;
    the job queue and job definition are checked against the store by the service)."""
    _known(request, TRIGGER_FIELDS, "CreateTrigger")
    name = trigger_name(request.get("triggerName"))
    bucket = request.get("bucket")
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ClientException(
            f"bucket {bucket!r} is not an S3 bucket name: use 3 to 63 lower-case letters, "
            "numbers, dots and hyphens (the bucket name, not its ARN)."
        )
    doc: dict[str, Any] = {
        "triggerName": name,
        "triggerArn": arn,
        "state": _state(request.get("state")),
        "bucket": bucket,
    }
    for affix in ("prefix", "suffix"):
        value = request.get(affix)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > MAX_AFFIX:
            raise ClientException(f"{affix} must be a string of at most {MAX_AFFIX} characters.")
        doc[affix] = value
    doc.update(_job_fields(request, TRIGGER_PARAMETERS, "trigger"))
    doc["createdAt"] = now
    return doc


def new_schedule(request: dict[str, Any], *, arn: str, now: int) -> dict[str, Any]:
    """The stored document of a schedule from a CreateSchedule request."""
    _known(request, SCHEDULE_FIELDS, "CreateSchedule")
    name = schedule_name(request.get("scheduleName"))
    expression = request.get("scheduleExpression")
    parsed = schedules.parse(expression)
    zone_name = request.get("scheduleExpressionTimezone") or "UTC"
    zone = schedules.time_zone(zone_name)
    if schedules.next_after(parsed, now / 1000, anchor=now / 1000, zone=zone) is None:
        raise ClientException(
            f"scheduleExpression {expression!r} never fires after now: check its year field."
        )
    policy = request.get("overlapPolicy") or SKIP
    checks.one_of(policy, OVERLAP_POLICIES, "overlapPolicy")
    doc: dict[str, Any] = {
        "scheduleName": name,
        "scheduleArn": arn,
        "state": _state(request.get("state")),
        "scheduleExpression": str(expression).strip(),  # parse() took it: a string
        "scheduleExpressionTimezone": zone_name,
        "overlapPolicy": policy,
    }
    doc.update(_job_fields(request, SCHEDULE_PARAMETERS, "schedule"))
    doc["createdAt"] = now
    return doc


def updated(doc: dict[str, Any], request: dict[str, Any], kind: str) -> dict[str, Any]:
    """``doc`` with the fields an Update request changes; the name cannot change."""
    name_field = f"{kind}Name"
    fields = TRIGGER_FIELDS if kind == "trigger" else SCHEDULE_FIELDS
    operation = f"Update{kind.capitalize()}"
    _known(request, fields, operation)
    changes = {k: v for k, v in request.items() if k != name_field}
    if not changes:
        raise ClientException(
            f"{operation} needs at least one field to change besides {name_field}."
        )
    keep = {k: v for k, v in doc.items() if k in fields}
    merged = {**keep, **changes}
    build = new_trigger if kind == "trigger" else new_schedule
    fresh = build(merged, arn=doc[f"{kind}Arn"], now=doc["createdAt"])
    # Bookkeeping (runs, last job) survives the update.
    return {**{k: v for k, v in doc.items() if k not in fields}, **fresh}


def submit_request(
    doc: dict[str, Any], *, name: str, parameters: dict[str, str], tag: str
) -> dict[str, Any]:
    """The SubmitJob request for one job of a trigger or schedule."""
    request: dict[str, Any] = {
        "jobName": doc.get("jobName") or name,
        "jobQueue": doc["jobQueue"],
        "jobDefinition": doc["jobDefinition"],
        "parameters": {**doc.get("parameters", {}), **parameters},
        "tags": {tag: name},
    }
    for optional in ("containerOverrides", "shareIdentifier"):
        if doc.get(optional):
            request[optional] = doc[optional]
    return request


# -- S3 objects -------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedObject:
    """One object write, as an S3 "Object Created" EventBridge event describes it."""

    bucket: str
    key: str
    version_id: str
    sequencer: str
    etag: str

    def request_key(self, trigger: str) -> str:
        """Identifies the submission of this write by ``trigger``: a redelivered event has
        the same bucket, key, version, sequencer and ETag; a new write of the same key has
        a new sequencer (and version)."""
        raw = "\0".join(
            ("s3", trigger, self.bucket, self.key, self.version_id, self.sequencer, self.etag)
        )
        return hashlib.sha256(raw.encode()).hexdigest()


def created_object(event: dict[str, Any]) -> CreatedObject | None:
    """The object of an S3 "Object Created" event, or None for any other event."""
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        return None
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    if not isinstance(bucket, str) or not isinstance(obj.get("key"), str):
        return None
    return CreatedObject(
        bucket=bucket,
        key=obj["key"],  # EventBridge events carry the key as written (not URL-encoded)
        version_id=str(obj.get("version-id") or ""),
        sequencer=str(obj.get("sequencer") or ""),
        etag=str(obj.get("etag") or obj.get("eTag") or ""),
    )


def matches(trigger: dict[str, Any], obj: CreatedObject) -> bool:
    return (
        trigger["state"] == ENABLED
        and trigger["bucket"] == obj.bucket
        and obj.key.startswith(trigger.get("prefix", ""))
        and obj.key.endswith(trigger.get("suffix", ""))
    )


# -- schedule firings -------------------------------------------------------------------


def firing_key(schedule: dict[str, Any], scheduled_time: str) -> str:
    """Identifies the submission of one firing (a schedule deleted and created again under
    the same name is another schedule: its createdAt differs)."""
    raw = "\0".join(
        ("schedule", schedule["scheduleName"], str(schedule["createdAt"]), scheduled_time)
    )
    return hashlib.sha256(raw.encode()).hexdigest()


def run_of(schedule: dict[str, Any], scheduled_time: str) -> dict[str, Any] | None:
    """What was decided for this firing already, if it was seen before."""
    return next((r for r in schedule.get("runs", []) if r["scheduledTime"] == scheduled_time), None)


def record_run(schedule: dict[str, Any], run: dict[str, Any]) -> None:
    """Remember a firing's outcome (newest first, the last MAX_RUNS)."""
    runs = [r for r in schedule.get("runs", []) if r["scheduledTime"] != run["scheduledTime"]]
    schedule["runs"] = sorted([run, *runs], key=lambda r: r["scheduledTime"], reverse=True)[
        :MAX_RUNS
    ]
    if run.get("jobId") and run["outcome"] == SUBMITTED:
        newest = max(
            (r for r in schedule["runs"] if r.get("jobId")), key=lambda r: r["scheduledTime"]
        )
        schedule["lastJobId"] = newest["jobId"]


def overlaps(schedule: dict[str, Any], last_job_status: str | None) -> bool:
    """Whether this firing is skipped: SKIP policy and the previous job still active."""
    return (
        schedule["overlapPolicy"] == SKIP
        and last_job_status is not None
        and last_job_status not in TERMINAL
    )
