"""SubmitJob, DescribeJobs, ListJobs, CancelJob, TerminateJob, and the moves of a job
that events cause (scheduling, task started, task stopped)."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Any

from .. import arns
from ..clock import now_ms
from ..config import settings
from ..domain import checks, compute, jobdefs
from ..domain import jobs as rules
from ..domain import scheduling
from ..errors import ClientException, ConflictError
from ..ports import LaunchRequest, TaskLauncher
from ..store import DynamoStore, Item
from .resources import Resources, _page_size

log = logging.getLogger(__name__)

JOB_SK = "JOB"
MAX_DESCRIBE = 100
LIST_STATUSES = rules.STATUSES
SUBMIT_KEY_TTL_S = 24 * 3600


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def _listing(queue: str, status: str) -> str:
    return f"JOBS#{queue}#{status}"


def _mvcpus(doc: dict[str, Any]) -> int:
    return int(round(jobdefs.requirements(doc["container"])["VCPU"] * 1000))


class Jobs:
    def __init__(self, store: DynamoStore, launcher: TaskLauncher | None = None) -> None:
        self.store = store
        self.resources = Resources(store)
        self.launcher = launcher

    # -- persistence of one job ---------------------------------------------------------

    def _index(self, item: Item) -> None:
        """Keep the listing keys and retention in step with the job's status."""
        doc = item.doc
        status = doc["status"]
        item.gsi1pk = _listing(item.extra["queue"], status)
        # Retried attempts go back to the front of their queue (rank 0), as in AWS Batch.
        rank = "0" if status == rules.RUNNABLE and doc["attempts"] else "1"
        item.gsi1sk = f"{rank}{doc['createdAt']:013d}#{doc['jobId']}"
        item.extra["status"] = status
        if status in rules.TERMINAL:
            item.extra["expiresAt"] = now_ms() // 1000 + settings().job_retention_days * 86400

    def get(self, job_id: str) -> Item | None:
        return self.store.get(job_pk(job_id), JOB_SK)

    def save(self, item: Item) -> None:
        """Compare-and-swap the job; ConflictError if it changed since it was read."""
        self._index(item)
        self.store.replace(item)

    # -- SubmitJob --------------------------------------------------------------------

    def submit(self, request: dict[str, Any], *, request_key: str | None = None) -> dict[str, Any]:
        """Create a SUBMITTED job. ``request_key`` (the SDK's invocation id with the caller)
        makes a retried call return the job the first call created."""
        rules.validate_submit(request)
        queue = self.resources.job_queue(request["jobQueue"]).doc
        if queue["state"] != "ENABLED":
            raise ClientException(
                f"Job queue {queue['jobQueueName']} is DISABLED and accepts no new jobs: "
                "enable it with UpdateJobQueue state=ENABLED."
            )
        definition = self.resources.job_definition(request["jobDefinition"], active_only=True).doc
        if definition["type"] != "container":
            raise ClientException(
                f"Job definition {definition['jobDefinitionName']} is {definition['type']}: "
                "batchplane runs container jobs only for now."
            )
        self._check_share(request, queue)
        self._check_platform(queue, definition)
        for unsupported in ("arrayProperties", "dependsOn", "nodeOverrides"):
            if request.get(unsupported):
                raise ClientException(f"{unsupported} is not supported yet by batchplane.")

        if request_key:
            existing = self.store.get(f"SUBMIT#{request_key}", "#")
            if existing:
                return existing.doc
        job_id = str(uuid.uuid4())
        doc = rules.new_job(
            request,
            job_id=job_id,
            job_arn=arns.job_arn(job_id),
            queue=queue,
            definition=definition,
            now=now_ms(),
        )
        item = Item(pk=job_pk(job_id), sk=JOB_SK, doc=doc, extra={"queue": queue["jobQueueName"]})
        self._index(item)
        answer = {"jobArn": doc["jobArn"], "jobName": doc["jobName"], "jobId": job_id}
        ops = [self.store.put_new_op(item)]
        if request_key:
            ops.append(
                self.store.put_new_op(
                    Item(
                        pk=f"SUBMIT#{request_key}", sk="#", doc=answer,
                        extra={"expiresAt": now_ms() // 1000 + SUBMIT_KEY_TTL_S},
                    )
                )
            )
        try:
            self.store.transact(ops)
        except ConflictError:
            # The same request landed first on another try: answer with that job.
            existing = self.store.get(f"SUBMIT#{request_key}", "#") if request_key else None
            if existing is None:
                raise
            return existing.doc
        return answer

    def _check_share(self, request: dict[str, Any], queue: dict[str, Any]) -> None:
        fair_share = bool(queue.get("schedulingPolicyArn"))
        share = request.get("shareIdentifier")
        if fair_share and not share:
            raise ClientException(
                f"Job queue {queue['jobQueueName']} has a fair-share scheduling policy: "
                "SubmitJob needs a shareIdentifier."
            )
        if share and not fair_share:
            raise ClientException(
                f"Job queue {queue['jobQueueName']} has no scheduling policy: shareIdentifier "
                "applies only to fair-share queues."
            )
        if "schedulingPriorityOverride" in request and not fair_share:
            raise ClientException(
                "schedulingPriorityOverride applies only to fair-share job queues."
            )

    def _check_platform(self, queue: dict[str, Any], definition: dict[str, Any]) -> None:
        wanted = definition.get("platformCapabilities", ["EC2"])[0]
        ces = [self.resources.store.get(f"CE#{arns.name_from(e['computeEnvironment'], 'compute-environment')}", "#")
               for e in queue["computeEnvironmentOrder"]]
        platforms = {compute.platform(i.doc) for i in ces if i is not None}
        if platforms and wanted not in platforms:
            raise ClientException(
                f"Job definition {definition['jobDefinitionName']} has platformCapabilities "
                f"{wanted} but job queue {queue['jobQueueName']} runs on "
                f"{'/'.join(sorted(platforms))} compute environments."
            )

    # -- DescribeJobs / ListJobs ------------------------------------------------------

    def describe(self, request: dict[str, Any]) -> dict[str, Any]:
        ids = request.get("jobs")
        if not isinstance(ids, list) or not ids:
            raise ClientException("jobs is required: list 1 to 100 job IDs.")
        if len(ids) > MAX_DESCRIBE:
            raise ClientException(f"DescribeJobs takes at most {MAX_DESCRIBE} job IDs; got {len(ids)}.")
        wanted = [arns.name_from(i, "job") for i in checks.strings(ids, "jobs")]
        found = {i.doc["jobId"]: i.doc for i in self.store.batch_get([(job_pk(j), JOB_SK) for j in wanted])}
        return {"jobs": [found[j] for j in dict.fromkeys(wanted) if j in found]}

    def list(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("arrayJobId") or request.get("multiNodeJobId"):
            raise ClientException("Listing array or multi-node children is not supported yet.")
        if not request.get("jobQueue"):
            raise ClientException("ListJobs needs jobQueue.")
        queue = self.resources.job_queue(request["jobQueue"]).doc["jobQueueName"]
        limit = _page_size(request.get("maxResults"), 100, 1000)
        filters = _filters(request.get("filters"))
        if filters:
            statuses = LIST_STATUSES
        else:
            status = request.get("jobStatus") or rules.RUNNING
            checks.one_of(status, LIST_STATUSES, "jobStatus")
            statuses = (status,)
        position = _decode_position(request.get("nextToken"), len(statuses))
        summaries: list[dict[str, Any]] = []
        index, token = position
        while index < len(statuses) and len(summaries) < limit:
            items, token = self.store.query_index(
                _listing(queue, statuses[index]), limit=limit - len(summaries), token=token
            )
            summaries += [rules.summary(i.doc) for i in items if _matches(i.doc, filters)]
            if token is None:
                index += 1
        out: dict[str, Any] = {"jobSummaryList": summaries}
        if index < len(statuses):
            out["nextToken"] = json.dumps({"s": index, "t": token})
        return out

    # -- CancelJob / TerminateJob -----------------------------------------------------

    def cancel(self, request: dict[str, Any], *, terminate: bool = False) -> dict[str, Any]:
        job_id = request.get("jobId")
        reason = request.get("reason")
        if not isinstance(job_id, str) or not job_id:
            raise ClientException("jobId is required.")
        if not isinstance(reason, str) or not reason:
            raise ClientException("reason is required: say why the job is stopped (up to 1024 characters).")
        if len(reason) > rules.MAX_REASON:
            raise ClientException(f"reason must be at most {rules.MAX_REASON} characters; got {len(reason)}.")
        while True:
            item = self.get(arns.name_from(job_id, "job"))
            if item is None:
                raise ClientException(f"Job {job_id} does not exist.")
            doc = item.doc
            status = doc["status"]
            if status in rules.QUEUED:
                doc["isCancelled"] = True
                if terminate:
                    doc["isTerminated"] = True
                rules.move(doc, rules.FAILED, reason)
                doc["stoppedAt"] = now_ms()
            elif terminate and status in (rules.STARTING, rules.RUNNING) and not doc["isTerminated"]:
                doc["isTerminated"] = True
                doc["statusReason"] = reason
            else:
                return {}  # CancelJob leaves STARTING/RUNNING alone; terminal jobs stay as they are
            try:
                self.save(item)
            except ConflictError:
                continue  # the job moved meanwhile: decide again on its new state
            task = doc["container"].get("taskArn")
            if doc["status"] != rules.FAILED and task and self.launcher:
                self.launcher.stop(task, reason)
            return {}

    # -- reactions to events ----------------------------------------------------------

    def promote(self, job_id: str) -> None:
        """SUBMITTED -> RUNNABLE (PENDING once dependencies exist)."""
        item = self.get(job_id)
        if item is None or item.doc["status"] != rules.SUBMITTED:
            return
        rules.move(item.doc, rules.RUNNABLE)
        try:
            self.save(item)
        except ConflictError:
            pass  # moved by someone else (cancelled, or promoted by a duplicate event)

    def schedule(self, *, sweep: bool = False) -> int:
        """One scheduling pass over every queue; returns how many attempts were dispatched.
        ``sweep`` (the periodic tick) also promotes SUBMITTED jobs whose stream record was
        lost, so that no job waits forever."""
        queues_docs = self.resources.all_job_queues()
        if sweep:
            for q in queues_docs:
                stale, _ = self.store.query_index(_listing(q["jobQueueName"], rules.SUBMITTED), limit=1000)
                for item in stale:
                    self.promote(item.doc["jobId"])
        ce_items = self.store.query_index("CE")[0]
        environments: dict[str, scheduling.Environment] = {}
        for ce in ce_items:
            doc = ce.doc
            ceiling = compute.max_vcpus(doc)
            usage = self.store.counters(ce.pk, "USAGE")
            environments[doc["computeEnvironmentArn"]] = scheduling.Environment(
                name=doc["computeEnvironmentArn"],
                enabled=doc["state"] == "ENABLED" and doc["status"] == "VALID",
                platform=compute.platform(doc),
                max_mvcpus=None if ceiling is None else ceiling * 1000,
                used_mvcpus=usage.get("mvcpus", 0),
            )
        queues = []
        runnable: dict[str, list[scheduling.Candidate]] = {}
        items_by_id: dict[str, Item] = {}
        for q in queues_docs:
            queues.append(
                scheduling.Queue(
                    name=q["jobQueueName"],
                    priority=q["priority"],
                    environments=[e["computeEnvironment"] for e in q["computeEnvironmentOrder"]],
                )
            )
            items, _ = self.store.query_index(_listing(q["jobQueueName"], rules.RUNNABLE), limit=500)
            runnable[q["jobQueueName"]] = [
                scheduling.Candidate(
                    job_id=i.doc["jobId"],
                    queue=q["jobQueueName"],
                    mvcpus=_mvcpus(i.doc),
                    platform=i.doc.get("platformCapabilities", ["EC2"])[0],
                    reason=i.doc.get("statusReason"),
                )
                for i in items
            ]
            items_by_id.update({i.doc["jobId"]: i for i in items})
        result = scheduling.plan(queues, environments, runnable)
        dispatched = 0
        for candidate, ce_arn in result.placements:
            ce_doc = next(c.doc for c in ce_items if c.doc["computeEnvironmentArn"] == ce_arn)
            if self._dispatch(items_by_id[candidate.job_id], ce_doc):
                dispatched += 1
        for job_id, reason in result.reasons.items():
            item = items_by_id[job_id]
            item.doc["statusReason"] = reason
            try:
                self.save(item)
            except ConflictError:
                pass  # it moved on; the reason no longer matters
        return dispatched

    def _dispatch(self, item: Item, ce: dict[str, Any]) -> bool:
        """RUNNABLE -> STARTING and the capacity it takes, in one transaction; then launch.
        The transaction is what makes each attempt start once however many schedulers run."""
        doc = item.doc
        attempt = len(doc["attempts"]) + 1
        rules.move(doc, rules.STARTING, None)
        doc.pop("statusReason", None)
        item.extra["ce"] = ce["computeEnvironmentName"]
        item.extra["attempt"] = attempt
        self._index(item)
        ceiling = compute.max_vcpus(ce)
        mvcpus = _mvcpus(doc)
        limits = None if ceiling is None else {"mvcpus": ceiling * 1000}
        try:
            self.store.transact([
                self.store.replace_op(item),
                self.store.add_op(f"CE#{ce['computeEnvironmentName']}", "USAGE", {"mvcpus": mvcpus}, limits),
            ])
        except ConflictError:
            return False  # another scheduler took it, or the capacity went meanwhile
        request = LaunchRequest(
            job=doc,
            attempt=attempt,
            queue_name=item.extra["queue"],
            compute_environment=ce,
            environment=attempt_environment(doc, item.extra["queue"], ce["computeEnvironmentName"], attempt),
        )
        assert self.launcher is not None, "scheduling needs a task launcher"
        try:
            task_arn = self.launcher.launch(request)
        except Exception as e:  # noqa: BLE001 - any launch failure ends the attempt, never loses the job
            log.exception("launch failed for %s", doc["jobId"])
            self.task_stopped(doc["jobId"], attempt, task_arn=None, exit_code=None,
                              reason=str(e)[:255], status_reason="Task failed to start", retryable=True)
            return False
        self._record_task(doc["jobId"], attempt, task_arn)
        return True

    def _record_task(self, job_id: str, attempt: int, task_arn: str) -> None:
        while True:
            item = self.get(job_id)
            if item is None or item.extra.get("attempt") != attempt or item.doc["status"] not in (rules.STARTING, rules.RUNNING):
                return
            if item.doc["container"].get("taskArn") == task_arn:
                return
            item.doc["container"]["taskArn"] = task_arn
            try:
                self.save(item)
                return
            except ConflictError:
                continue

    def task_running(self, job_id: str, attempt: int, *, task_arn: str, log_stream: str | None, started_at: int) -> None:
        """STARTING -> RUNNING when the attempt's task reports it runs."""
        while True:
            item = self.get(job_id)
            if item is None or item.extra.get("attempt") != attempt or item.doc["status"] != rules.STARTING:
                return  # duplicate, late or foreign event
            doc = item.doc
            rules.move(doc, rules.RUNNING)
            doc["startedAt"] = started_at
            doc["container"]["taskArn"] = task_arn
            if log_stream:
                doc["container"]["logStreamName"] = log_stream
            try:
                self.save(item)
                return
            except ConflictError:
                continue

    def task_stopped(
        self,
        job_id: str,
        attempt: int,
        *,
        task_arn: str | None,
        exit_code: int | None,
        reason: str | None,
        status_reason: str,
        log_stream: str | None = None,
        started_at: int | None = None,
        retryable: bool = True,
    ) -> str | None:
        """End the attempt and free its capacity, in one transaction; returns the new status,
        or None when the event was a duplicate or late."""
        while True:
            item = self.get(job_id)
            if item is None or item.extra.get("attempt") != attempt:
                return None
            doc = item.doc
            if doc["status"] not in (rules.STARTING, rules.RUNNING):
                return None
            if task_arn:
                doc["container"]["taskArn"] = task_arn
            if log_stream:
                doc["container"].setdefault("logStreamName", log_stream)
            if started_at and not doc.get("startedAt"):
                doc["startedAt"] = started_at
            terminated = bool(doc.get("isTerminated"))
            final_reason = doc.get("statusReason") if terminated else status_reason
            status = rules.finish_attempt(
                doc,
                exit_code=exit_code,
                reason=reason,
                status_reason=final_reason or status_reason,
                now=now_ms(),
                retryable=retryable and not terminated,
            )
            ce = item.extra.pop("ce", None)
            self._index(item)
            ops = [self.store.replace_op(item)]
            if ce:
                ops.append(self.store.add_op(f"CE#{ce}", "USAGE", {"mvcpus": -_mvcpus(doc)}))
            try:
                self.store.transact(ops)
                return status
            except ConflictError:
                continue


def attempt_environment(doc: dict[str, Any], queue: str, ce: str, attempt: int) -> dict[str, str]:
    """The variables every attempt sees: the user's, then AWS_BATCH_* (which users cannot set)."""
    env = {v["name"]: v.get("value", "") for v in doc["container"].get("environment", [])}
    env.update(
        {
            "AWS_BATCH_JOB_ID": doc["jobId"],
            "AWS_BATCH_JQ_NAME": queue,
            "AWS_BATCH_CE_NAME": ce,
            "AWS_BATCH_JOB_ATTEMPT": str(attempt),
        }
    )
    return env


def request_key(caller: str, invocation_id: str | None, body: bytes | str) -> str | None:
    """The submission key for SubmitJob retries (see docs: botocore resends the same
    amz-sdk-invocation-id on every retry of one call)."""
    if not invocation_id:
        return None
    raw = body.encode() if isinstance(body, str) else body
    return hashlib.sha256(f"{caller}\0{invocation_id}\0".encode() + raw).hexdigest()


# -- ListJobs filters and paging ------------------------------------------------------

_FILTER_NAMES = ("JOB_NAME", "JOB_DEFINITION", "BEFORE_CREATED_AT", "AFTER_CREATED_AT", "SHARE_IDENTIFIER")


def _filters(value: Any) -> list[tuple[str, list[str]]]:
    if not value:
        return []
    if not isinstance(value, list):
        raise ClientException("filters must be a list of {name, values}.")
    out = []
    for f in value:
        name = f.get("name") if isinstance(f, dict) else None
        checks.one_of(name, _FILTER_NAMES, "filters.name")
        values = checks.strings(f.get("values"), "filters.values")
        if len(values) != 1:
            raise ClientException(f"Filter {name} takes exactly one value.")
        if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT") and not values[0].isdigit():
            raise ClientException(f"Filter {name} takes a time in milliseconds since the epoch.")
        out.append((name, values))
    return out


def _like(pattern: str, value: str, *, fold: bool) -> bool:
    if fold:
        pattern, value = pattern.lower(), value.lower()
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def _matches(doc: dict[str, Any], filters: list[tuple[str, list[str]]]) -> bool:
    for name, (value,) in filters:
        if name == "JOB_NAME" and not _like(value, doc["jobName"], fold=True):
            return False
        if name == "JOB_DEFINITION":
            jd = doc["jobDefinition"]
            short = arns.name_from(jd, "job-definition")
            wanted = arns.name_from(value, "job-definition")
            if not (_like(wanted, short, fold=False) or _like(wanted, short.split(":")[0], fold=False)):
                return False
        if name == "BEFORE_CREATED_AT" and not doc["createdAt"] < int(value):
            return False
        if name == "AFTER_CREATED_AT" and not doc["createdAt"] > int(value):
            return False
        if name == "SHARE_IDENTIFIER" and doc.get("shareIdentifier") != value:
            return False
    return True


def _decode_position(token: Any, n: int) -> tuple[int, str | None]:
    if not token:
        return 0, None
    try:
        pos = json.loads(token)
        index, inner = int(pos["s"]), pos["t"]
    except (ValueError, TypeError, KeyError) as e:
        raise ClientException("The nextToken is not valid: use the value ListJobs returned.") from e
    if not 0 <= index < n or (inner is not None and not isinstance(inner, str)):
        raise ClientException("The nextToken is not valid: use the value ListJobs returned.")
    return index, inner
