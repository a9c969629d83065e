"""Triggers (S3 object created -> job) and schedules (rate/cron -> job): their management
API and the submissions they make (stored as store/triggers.py says).

Submissions go through Jobs.submit with a request key made from their cause, so an S3
event or a schedule firing delivered twice (EventBridge and Lambda retry) gives one job.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import arns
from ..clock import now_ms
from ..domain import jobs as rules
from ..domain import triggers as domain
from ..errors import ClientException, ConflictError
from .named import MAX_REFS, page_size

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..ports import ScheduleBackend
    from ..store import Item
    from ..store.repositories import Repositories
    from .jobs import Jobs

log = logging.getLogger(__name__)


def _check_jobs(jobs: Jobs, doc: dict[str, Any], name: str, reserved: tuple[str, ...]) -> None:
    """Fail now, not at the first object or firing, when the jobs could not be submitted."""
    jobs.resources.job_queue(doc["jobQueue"])
    jobs.resources.job_definition(doc["jobDefinition"], active_only=True)
    sample = domain.submit_request(doc, name=name, parameters=dict.fromkeys(reserved, "x"), tag="t")
    rules.validate_submit(sample)


def _names(request: dict[str, Any], field: str) -> list[str] | None:
    names = request.get(field)
    if names is None:
        return None
    if (
        not isinstance(names, list)
        or not all(isinstance(n, str) for n in names)
        or len(names) > MAX_REFS
    ):
        raise ClientException(f"{field} must be a list of at most 100 names.")
    return names


class Triggers:
    def __init__(self, repos: Repositories, jobs: Jobs) -> None:
        self.store = repos.store
        self.jobs = jobs
        self.triggers = repos.triggers

    def _get(self, name: Any) -> Item:
        item = self.triggers.get(domain.trigger_name(name))
        if item is None:
            raise ClientException(
                f"Trigger {name} does not exist: list them with DescribeTriggers."
            )
        return item

    # -- management -------------------------------------------------------------------

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        name = domain.trigger_name(request.get("triggerName"))
        doc = domain.new_trigger(request, arn=arns.arn("trigger", name), now=now_ms())
        _check_jobs(self.jobs, doc, name, domain.TRIGGER_PARAMETERS)
        try:
            self.triggers.create(name, doc)
        except ConflictError as e:
            raise ClientException(
                f"Trigger {name} already exists: update it with UpdateTrigger or delete it first."
            ) from e
        return {"triggerName": name, "triggerArn": doc["triggerArn"]}

    def describe(self, request: dict[str, Any]) -> dict[str, Any]:
        names = _names(request, "triggerNames")
        if names:
            return {"triggers": [i.doc for i in self.triggers.get_many(names)]}
        limit = page_size(request.get("maxResults"), 100, 1000)
        items, token = self.triggers.page(limit=limit, token=request.get("nextToken"), bucket=request.get("bucket"))
        out: dict[str, Any] = {"triggers": [i.doc for i in items]}
        if token:
            out["nextToken"] = token
        return out

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        item = self._get(request.get("triggerName"))
        item.doc = domain.updated(item.doc, request, "trigger")
        _check_jobs(self.jobs, item.doc, item.doc["triggerName"], domain.TRIGGER_PARAMETERS)
        try:
            self.triggers.replace(item)
        except ConflictError as e:
            raise ClientException(
                "The trigger changed while it was updated: retry the request."
            ) from e
        return {"triggerName": item.doc["triggerName"], "triggerArn": item.doc["triggerArn"]}

    def delete(self, request: dict[str, Any]) -> dict[str, Any]:
        item = self._get(request.get("triggerName"))
        self.triggers.delete(item.doc["triggerName"])
        return {}

    # -- S3 Object Created ------------------------------------------------------------

    def on_object_created(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Submit one job per matching trigger for the object of an S3 "Object Created"
        event. A trigger whose job cannot be submitted (queue disabled, definition
        deregistered) is reported and skipped: retrying the event would not help."""
        obj = domain.created_object(event)
        if obj is None:
            return []
        items, _ = self.triggers.page(bucket=obj.bucket)
        results = []
        for item in items:
            trigger = item.doc
            if not domain.matches(trigger, obj):
                continue
            name = trigger["triggerName"]
            request = domain.submit_request(
                trigger,
                name=name,
                parameters={"bucket": obj.bucket, "key": obj.key},
                tag=domain.TRIGGER_TAG,
            )
            try:
                job = self.jobs.submit(request, request_key=obj.request_key(name))
            except ClientException as e:
                log.error(
                    "trigger %s could not submit a job for s3://%s/%s: %s",
                    name,
                    obj.bucket,
                    obj.key,
                    e.message,
                )
                results.append({"triggerName": name, "error": e.message})
                continue
            results.append({"triggerName": name, **job})
        return results


class Schedules:
    def __init__(self, repos: Repositories, jobs: Jobs, backend: Callable[[], ScheduleBackend]) -> None:
        self.store = repos.store
        self.jobs = jobs
        self._make_backend = backend
        self._backend: ScheduleBackend | None = None
        self.schedules = repos.schedules

    @property
    def backend(self) -> ScheduleBackend:
        # Made on first use: reading schedules needs no Scheduler (nor its settings).
        if self._backend is None:
            self._backend = self._make_backend()
        return self._backend

    def _get(self, name: Any) -> Item:
        item = self.schedules.get(domain.schedule_name(name))
        if item is None:
            raise ClientException(
                f"Schedule {name} does not exist: list them with DescribeSchedules."
            )
        return item

    # -- management -------------------------------------------------------------------

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        name = domain.schedule_name(request.get("scheduleName"))
        doc = domain.new_schedule(request, arn=arns.arn("schedule", name), now=now_ms())
        _check_jobs(self.jobs, doc, name, domain.SCHEDULE_PARAMETERS)
        try:
            self.schedules.create(name, doc)
        except ConflictError as e:
            raise ClientException(
                f"Schedule {name} already exists: update it with UpdateSchedule or delete it first."
            ) from e
        try:
            self.backend.put(doc)
        except Exception:
            self.schedules.delete(name)  # no half-created schedule
            raise
        return {"scheduleName": name, "scheduleArn": doc["scheduleArn"]}

    def describe(self, request: dict[str, Any]) -> dict[str, Any]:
        names = _names(request, "scheduleNames")
        if names:
            return {"schedules": [i.doc for i in self.schedules.get_many(names)]}
        limit = page_size(request.get("maxResults"), 100, 1000)
        items, token = self.schedules.page(limit=limit, token=request.get("nextToken"))
        out: dict[str, Any] = {"schedules": [i.doc for i in items]}
        if token:
            out["nextToken"] = token
        return out

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        """Change a schedule (state ENABLED/DISABLED, expression, time zone, overlap policy,
        job fields). The table is written first: a disabled schedule submits nothing more
        even while EventBridge Scheduler still fires it."""
        item = self._get(request.get("scheduleName"))
        item.doc = domain.updated(item.doc, request, "schedule")
        _check_jobs(self.jobs, item.doc, item.doc["scheduleName"], domain.SCHEDULE_PARAMETERS)
        try:
            self.store.replace(item)
        except ConflictError as e:
            raise ClientException(
                "The schedule changed while it was updated: retry the request."
            ) from e
        self.backend.put(item.doc)
        return {"scheduleName": item.doc["scheduleName"], "scheduleArn": item.doc["scheduleArn"]}

    def delete(self, request: dict[str, Any]) -> dict[str, Any]:
        item = self._get(request.get("scheduleName"))
        self.backend.delete(item.doc["scheduleName"])
        self.schedules.delete(item.doc["scheduleName"])
        return {}

    # -- firings ----------------------------------------------------------------------

    def fire(self, name: str, scheduled_time: str) -> dict[str, Any]:
        """Handle one firing (EventBridge Scheduler's Input, see
        adapters/eventbridge_scheduler.py). The decision (submit or skip) is written on the
        schedule before the job is submitted, so a retried firing finishes what the first
        try decided, and gets the same job."""
        while True:
            item = self.schedules.get(name)
            if item is None:
                return {
                    "scheduleName": name,
                    "scheduledTime": scheduled_time,
                    "outcome": "NO_SCHEDULE",
                }
            doc = item.doc
            seen = domain.run_of(doc, scheduled_time)
            if seen is not None:
                if seen["outcome"] != domain.SUBMITTED or seen.get("jobId"):
                    return {"scheduleName": name, **seen}  # a duplicate of a finished firing
                break  # decided SUBMITTED, the job may not exist yet: submit (idempotent)
            if doc["state"] != domain.ENABLED:
                return {
                    "scheduleName": name,
                    "scheduledTime": scheduled_time,
                    "outcome": "DISABLED",
                }
            last = doc.get("lastJobId")
            last_status = self._status(last)
            run: dict[str, Any] = {"scheduledTime": scheduled_time, "outcome": domain.SUBMITTED}
            if domain.overlaps(doc, last_status):
                run = {
                    "scheduledTime": scheduled_time,
                    "outcome": domain.SKIPPED,
                    "reason": f"Job {last} is still {last_status} (overlapPolicy SKIP)",
                }
            domain.record_run(doc, run)
            try:
                self.store.replace(item)
            except ConflictError:
                continue
            if run["outcome"] == domain.SKIPPED:
                log.info("schedule %s skipped %s: %s", name, scheduled_time, run["reason"])
                return {"scheduleName": name, **run}
            break
        request = domain.submit_request(
            doc, name=name, parameters={"scheduledTime": scheduled_time}, tag=domain.SCHEDULE_TAG
        )
        try:
            job = self.jobs.submit(request, request_key=domain.firing_key(doc, scheduled_time))
            run = {
                "scheduledTime": scheduled_time,
                "outcome": domain.SUBMITTED,
                "jobId": job["jobId"],
            }
        except ClientException as e:
            log.error(
                "schedule %s could not submit its job for %s: %s", name, scheduled_time, e.message
            )
            run = {"scheduledTime": scheduled_time, "outcome": domain.FAILED, "reason": e.message}
        self._record(name, run)
        return {"scheduleName": name, **run}

    def _status(self, job_id: str | None) -> str | None:
        if not job_id:
            return None
        item = self.jobs.get(job_id)
        return item.doc["status"] if item else None

    def _record(self, name: str, run: dict[str, Any]) -> None:
        while True:
            item = self.schedules.get(name)
            if item is None:
                return  # deleted meanwhile
            domain.record_run(item.doc, run)
            try:
                self.store.replace(item)
                return
            except ConflictError:
                continue
