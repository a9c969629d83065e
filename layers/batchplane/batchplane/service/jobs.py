"""SubmitJob, DescribeJobs, ListJobs, CancelJob and TerminateJob."""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

from .. import arns
from ..clock import now_ms
from ..config import settings
from ..domain import arrays, bookkeeping, checks, dependencies, nodes, roles, tenancy
from ..domain import jobs as rules
from ..errors import AccessDeniedException, ClientException, ConflictError
from ..store.jobs import JobStore, mvcpus
from .named import page_size

if TYPE_CHECKING:
    import builtins  # the class has a method named list

    from ..ports import TaskLauncher, Workflows
    from ..store import Item
    from ..store.repositories import Repositories
    from .arrays import Arrays
    from .nodes import Nodes
    from .resources import Resources

log = logging.getLogger(__name__)
MAX_DESCRIBE = 100
LIST_STATUSES = rules.STATUSES
SNAPSHOT_SIZE = 100


class Jobs:
    def __init__(self, repos: Repositories, resources: Resources, arrays: Arrays, multinode: Nodes,
                 launcher: TaskLauncher | None = None, workflows: Workflows | None = None) -> None:
        self.store = repos.store
        self.jobs = repos.jobs
        self.submit_keys = repos.submit_keys
        self.resources = resources
        self.arrays = arrays
        self.multinode = multinode
        self.launcher = launcher  # TerminateJob stops running attempts through it
        self.workflows = workflows  # cancelling an array parent fans out to its children

    def get(self, job_id: str) -> Item | None:
        return self.jobs.get(job_id)

    # -- persistence of one job ---------------------------------------------------------

    # -- SubmitJob --------------------------------------------------------------------

    def submit(self, request: dict[str, Any], *, request_key: str | None = None,
               caller: str | None = None) -> dict[str, Any]:
        """Create a SUBMITTED job. ``request_key`` (the SDK's invocation id with the caller)
        makes a retried call return the job the first call created; ``caller`` is the
        identity that owns it (see domain.tenancy), None for the stack's own."""
        rules.validate_submit(request)
        queue = self.resources.job_queue(request["jobQueue"]).doc
        rules.check_queue_accepts(queue)
        definition = self.resources.job_definition(request["jobDefinition"], active_only=True).doc
        # A definition registered before the stack's PassableRoles changed.
        roles.check_job_definition(definition, settings().passable_roles)
        rules.check_share(request, queue)
        rules.check_platform(queue, definition, self._environments(queue))
        node_props, node_overrides = rules.check_multinode(request, definition)
        size = arrays.array_size(request)
        deps = dependencies.depends_on(request, size)
        named = [d["jobId"] for d in deps if "jobId" in d]
        found = {i.doc["jobId"]: i.doc for i in self._visible(self.jobs.get_many(named), caller)}
        dependencies.check_named(deps, found, size)

        if request_key:
            earlier = self.submit_keys.get(request_key)
            if earlier is not None:
                return earlier
        job_id = str(uuid.uuid4())
        if node_props is not None:
            # The parent carries its main node's container (it runs nothing itself).
            main = node_props["mainNode"]
            definition = {**definition, "containerProperties": nodes.range_container(node_props, main)}
            request = {**request, "containerOverrides": node_overrides[main]}
        doc = rules.new_job(
            request,
            job_id=job_id,
            job_arn=arns.job_arn(job_id),
            queue=queue,
            definition=definition,
            now=now_ms(),
        )
        doc["dependsOn"] = deps
        if size is not None:
            doc["arrayProperties"] = {"size": size}
        item = JobStore.item(doc, queue=queue["jobQueueName"])
        if node_props is not None:
            doc["nodeProperties"] = node_props
            item.job.node_overrides = {str(i): o for i, o in enumerate(node_overrides) if o}
        if caller is not None:
            item.job.owner = caller
        if size is not None and not arrays.child_events(queue):
            item.job.child_events = bookkeeping.OFF  # its children's items carry "events": "off"
        answer = {"jobArn": doc["jobArn"], "jobName": doc["jobName"], "jobId": job_id}
        ops = [self.jobs.new_op(item)]
        if request_key:
            ops.append(self.submit_keys.put_op(request_key, answer))
        try:
            self.store.transact(ops)
        except ConflictError:
            # The same request landed first on another try: answer with that job.
            earlier = self.submit_keys.get(request_key) if request_key else None
            if earlier is None:
                raise
            return earlier
        if size is None and not deps:
            self._admit_now(job_id)
        return answer

    def _admit_now(self, job_id: str) -> None:
        """SUBMITTED -> RUNNABLE at once for a job that waits for nothing, rather than when
        the scheduler reads its stream record: behind a large array's records that took
        a minute, for a job of another queue. The stream's admission then finds it done
        (admit is conditional on SUBMITTED); if this one fails, that one still comes."""
        try:
            self.arrays.dependencies.admit(job_id)
        except Exception:  # noqa: BLE001 - the job is accepted; the stream admits it
            log.warning("admitting %s at submit failed; the stream will", job_id, exc_info=True)

    def _environments(self, queue: dict[str, Any]) -> list[dict[str, Any]]:
        """The compute environments of ``queue`` that exist."""
        order = queue["computeEnvironmentOrder"]
        names = [arns.name_from(e["computeEnvironment"], "compute-environment") for e in order]
        return [i.doc for i in self.resources.environments.get_many(names)]

    # -- DescribeJobs / ListJobs ------------------------------------------------------

    def _visible(self, items: list[Item], caller: str | None) -> list[Item]:
        """The jobs ``caller`` may see (domain.tenancy)."""
        if caller is None:
            return items
        queues: dict[str, bool] = {}
        out = []
        for item in items:
            name = item.job.queue
            if name not in queues:
                queue = self.resources.queues.get(name)
                queues[name] = queue is not None and tenancy.isolated(queue.doc)
            if tenancy.visible(item.job.owner, caller, queues[name]):
                out.append(item)
        return out

    def describe(self, request: dict[str, Any], caller: str | None = None) -> dict[str, Any]:
        ids = request.get("jobs")
        if not isinstance(ids, list) or not ids:
            raise ClientException("jobs is required: list 1 to 100 job IDs.")
        if len(ids) > MAX_DESCRIBE:
            raise ClientException(f"DescribeJobs takes at most {MAX_DESCRIBE} job IDs; got {len(ids)}.")
        wanted = [arns.name_from(i, "job") for i in checks.strings(ids, "jobs")]
        found = {i.doc["jobId"]: i.doc for i in self._visible(self.jobs.get_many(wanted), caller)}
        return {"jobs": [_shown(self.arrays.described(found[j])) for j in dict.fromkeys(wanted) if j in found]}

    def list(self, request: dict[str, Any], caller: str | None = None) -> dict[str, Any]:
        if request.get("multiNodeJobId"):
            return self._list_nodes(request, caller)
        if request.get("arrayJobId"):
            return self._list_children(request, caller)
        if not request.get("jobQueue"):
            raise ClientException("ListJobs needs jobQueue.")
        queue_doc = self.resources.job_queue(request["jobQueue"]).doc
        queue = queue_doc["jobQueueName"]
        # Another identity's jobs are left out of the page (a page may list fewer).
        mine = caller if tenancy.isolated(queue_doc) else None
        limit = page_size(request.get("maxResults"), 100, 1000)
        filters = _filters(request.get("filters"))
        status = request.get("jobStatus")
        if status is not None:
            checks.one_of(status, LIST_STATUSES, "jobStatus")
        if filters:
            # jobStatus is ignored with filters, except beside SHARE_IDENTIFIER (AWS).
            share_only = all(name == "SHARE_IDENTIFIER" for name, _ in filters)
            statuses = (status,) if status and share_only else LIST_STATUSES
            return self._list_newest_first(queue, statuses, filters, limit, request.get("nextToken"), mine)
        # One status: in the order the scheduler takes the jobs (retried RUNNABLE jobs
        # first, then oldest first). AWS documents no order for it; new jobs come last,
        # so paging with nextToken while jobs are submitted misses none and repeats none.
        token = request.get("nextToken")
        if token is not None and not isinstance(token, str):
            raise ClientException(_BAD_TOKEN)
        items, after = self.jobs.page(queue, status or rules.RUNNING, limit=limit, token=token or None)
        out: dict[str, Any] = {"jobSummaryList": [rules.summary(i.doc) for i in items
                                                  if tenancy.visible(i.job.owner, mine, True)]}
        if after is not None:
            out["nextToken"] = after
        return out

    def _list_newest_first(self, queue: str, statuses: tuple[str, ...],
                           filters: builtins.list[tuple[str, builtins.list[str]]],
                           limit: int, token: Any, caller: str | None) -> dict[str, Any]:
        """ListJobs with filters: the queue's matching jobs of ``statuses``, sorted by
        createdAt, newest first, as AWS documents. Each status partition is read newest
        first and the partitions merged; the nextToken is the (createdAt, jobId) of the
        last job listed, and the next page lists only older jobs: jobs submitted while
        a caller pages come before its first page, so they are never listed on a later
        page, and no job is listed twice."""
        before = _decode_cursor(token)
        streams = [self.jobs.newest_first(queue, status, before, limit + 1) for status in statuses]
        summaries: dict[str, dict[str, Any]] = {}
        last = None
        more = False
        for key, item in heapq.merge(*streams, key=lambda pair: pair[0], reverse=True):
            # A job that moved to another status while the partitions were read is read
            # twice, with the same key: one answer lists it once.
            if item.doc["jobId"] in summaries or not _matches(item.doc, filters):
                continue
            if not tenancy.visible(item.job.owner, caller, True):
                continue
            if len(summaries) == limit:
                more = True
                break
            summaries[item.doc["jobId"]] = rules.summary(item.doc)
            last = key
        out: dict[str, Any] = {"jobSummaryList": list(summaries.values())}
        if more and last is not None:
            out["nextToken"] = json.dumps({"before": last})
        return out

    def _list_children(self, request: dict[str, Any], caller: str | None) -> dict[str, Any]:
        parent = self.jobs.get(arns.name_from(request["arrayJobId"], "job"))
        if parent is not None and not self._visible([parent], caller):
            parent = None  # another identity's, on an isolated queue: as if unknown
        if parent is None or "size" not in (parent.doc.get("arrayProperties") or {}):
            raise ClientException(f"arrayJobId {request['arrayJobId']} is not an array job.")
        limit = page_size(request.get("maxResults"), 100, 1000)
        status = request.get("jobStatus")
        filters = _filters(request.get("filters"))
        if status is not None:
            checks.one_of(status, LIST_STATUSES, "jobStatus")
        token = request.get("nextToken")
        if token is not None and (not isinstance(token, str) or not token.isdigit()):
            raise ClientException("The nextToken is not valid: use the value ListJobs returned.")
        docs, after = self.arrays.children(parent.doc, None if filters else status, int(token or 0), limit)
        out: dict[str, Any] = {"jobSummaryList": [rules.summary(d) for d in docs if _matches(d, filters)]}
        if after is not None:
            out["nextToken"] = str(after)
        return out

    def _list_nodes(self, request: dict[str, Any], caller: str | None) -> dict[str, Any]:
        """ListJobs multiNodeJobId: the nodes of the job, by node index."""
        job_id = arns.name_from(checks.strings([request["multiNodeJobId"]], "multiNodeJobId")[0], "job")
        parent = self.jobs.get(job_id)
        if parent is not None and not self._visible([parent], caller):
            parent = None
        if parent is None or not nodes.is_parent(parent.doc):
            raise ClientException(f"multiNodeJobId {request['multiNodeJobId']} is not a multi-node parallel job.")
        limit = page_size(request.get("maxResults"), 100, 1000)
        status = request.get("jobStatus")
        if status is not None:
            checks.one_of(status, LIST_STATUSES, "jobStatus")
        filters = _filters(request.get("filters"))
        token = request.get("nextToken")
        if token is not None and (not isinstance(token, str) or not token.isdigit()):
            raise ClientException("The nextToken is not valid: use the value ListJobs returned.")
        num = parent.doc["nodeProperties"]["numNodes"]
        start = int(token or 0)
        ids = [nodes.node_id(job_id, i) for i in range(start, min(num, start + limit))]
        found = {i.doc["jobId"]: i.doc for i in self.jobs.get_many(ids)}
        docs = [found[i] for i in ids if i in found]
        if status is not None and not filters:
            docs = [d for d in docs if d["status"] == status]
        out: dict[str, Any] = {"jobSummaryList": [rules.summary(d) for d in docs if _matches(d, filters)]}
        if start + limit < num:
            out["nextToken"] = str(start + limit)
        return out

    # -- GetJobQueueSnapshot -----------------------------------------------------------

    def snapshot(self, request: dict[str, Any], caller: str | None = None) -> dict[str, Any]:
        """The first 100 RUNNABLE jobs in the order the scheduler considers them (of
        them, the caller's own on an isolated queue), and what the queue uses now."""
        if not isinstance(request.get("jobQueue"), str):
            raise ClientException("jobQueue is required.")
        queue = self.resources.job_queue(request["jobQueue"]).doc
        name = queue["jobQueueName"]
        now = now_ms()
        front = self.jobs.queued(name, rules.RUNNABLE, SNAPSHOT_SIZE)
        if queue.get("schedulingPolicyArn"):
            # Within a fair-share queue the scheduler orders by schedulingPriority first.
            front.sort(key=lambda i: -int(i.doc.get("schedulingPriority") or 0))
        usage: dict[str, float] = {}
        for status in (rules.STARTING, rules.RUNNING):
            for item in self.jobs.queued(name, status, 10_000):
                share = item.doc.get("shareIdentifier") or ""
                usage[share] = usage.get(share, 0.0) + mvcpus(item.doc) / 1000
        utilization: dict[str, Any] = {
            "totalCapacityUsage": [{"capacityUnit": "VCPU", "quantity": sum(usage.values())}],
            "lastUpdatedAt": now,
        }
        if queue.get("schedulingPolicyArn"):
            top = sorted(usage.items(), key=lambda kv: -kv[1])[:20]
            utilization["fairshareUtilization"] = {
                "activeShareCount": len(usage),
                "topCapacityUtilization": [
                    {"shareIdentifier": share, "capacityUsage": [{"capacityUnit": "VCPU", "quantity": q}]}
                    for share, q in top
                ],
            }
        return {
            "frontOfQueue": {
                "jobs": [
                    {"jobArn": i.doc["jobArn"],
                     "earliestTimeAtPosition": int(i.job.since or i.doc["createdAt"])}
                    for i in front if tenancy.visible(i.job.owner, caller, tenancy.isolated(queue))
                ],
                "lastUpdatedAt": now,
            },
            "queueUtilization": utilization,
        }

    # -- CancelJob / TerminateJob -----------------------------------------------------

    def fanout_failed(self, parent_id: str, action: str, error: dict[str, Any]) -> None:
        """The fan-out workflow's retries ran out. A materialize ends the array as
        TerminateJob would (children made so far stopped, the parent FAILED with the
        reason when they ended); a cancel or terminate that failed is noted as done, so
        the parent settles when its children end (the tick settles it if no record says
        so). Never a parent PENDING for good."""
        detail = str(error.get("Cause") or error.get("Error") or "unknown error")
        reason = f"Array fan-out failed: {detail}"[: rules.MAX_REASON]
        if action == bookkeeping.MATERIALIZE:
            self.cancel({"jobId": parent_id, "reason": reason}, terminate=True)
        else:
            self.arrays.finish_fanout(parent_id, action)

    def cancel(self, request: dict[str, Any], *, terminate: bool = False, caller: str | None = None) -> dict[str, Any]:  # noqa: PLR0912 - the checks, then one way per kind of job (node, array parent, job)
        job_id = request.get("jobId")
        reason = request.get("reason")
        if not isinstance(job_id, str) or not job_id:
            raise ClientException("jobId is required.")
        if not isinstance(reason, str) or not reason:
            raise ClientException("reason is required: say why the job is stopped (up to 1024 characters).")
        if len(reason) > rules.MAX_REASON:
            raise ClientException(f"reason must be at most {rules.MAX_REASON} characters; got {len(reason)}.")
        wanted = arns.name_from(job_id, "job")
        node = nodes.parent_of(wanted)
        if node is not None:
            wanted = node[0]  # a node's job goes as the whole job goes
        while True:
            item = self.jobs.get(wanted)
            if item is None:
                # AWS Batch answers 200 and {} for a job it does not know (aws-cli#2551).
                return {}
            if not self._visible([item], caller):
                raise AccessDeniedException(
                    f"{caller} is not authorized to perform {'TerminateJob' if terminate else 'CancelJob'} on job "
                    f"{job_id}: its job queue {item.job.queue} keeps each identity's jobs to itself "
                    f"(tag {tenancy.ISOLATION_TAG}={tenancy.BY_IDENTITY}), and another identity submitted it.")
            if nodes.is_parent(item.doc) and item.job.nodes_attempt:
                try:
                    self.multinode.cancel(item, reason, terminate)
                except ConflictError:
                    continue
                return {}
            if _has_children(item):
                if not rules.parent_cancel_decision(item.doc, reason, terminate):
                    return {}
                # The children go the same way, in chunks, by the fan-out workflow; the
                # parent ends when the last of them has (Arrays.settle).
                action = bookkeeping.TERMINATE if terminate else bookkeeping.CANCEL
                item.job.fanout = action
                try:
                    self.jobs.save(item)
                except ConflictError:
                    continue
                if self.workflows is not None:
                    self.workflows.start_array(item.doc["jobId"], action, item.doc["arrayProperties"]["size"])
                return {}
            # A job, an array child, or an array parent that has no children yet (still
            # SUBMITTED, or PENDING on its dependencies): it ends now.
            stop_task = rules.cancel_decision(item.doc, reason, terminate, now_ms())
            if stop_task is None:
                return {}  # CancelJob leaves STARTING/RUNNING alone; ended jobs stay ended
            try:
                self.jobs.save(item)
            except ConflictError:
                continue  # the job moved meanwhile: decide again on its new state
            if stop_task and self.launcher:
                self.launcher.stop(stop_task, reason)
            return {}


def _shown(doc: dict[str, Any]) -> dict[str, Any]:
    """A job as DescribeJobs shows it. A multi-node parallel job waits PENDING while its
    nodes run (it holds no capacity of its own): it shows RUNNING once its main node ran."""
    if nodes.is_parent(doc) and doc["status"] == rules.PENDING and doc.get("startedAt"):
        return {**doc, "status": rules.RUNNING}
    return doc


def _has_children(item: Item) -> bool:
    """An array parent whose children exist or are being made: its fan-out has begun."""
    return arrays.is_parent(item.doc) and bool(item.job.fanout)


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
        out.append((str(name), values))  # one_of checked it
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


_BAD_TOKEN = "The nextToken is not valid: use the value ListJobs returned."
# A position JobStore.newest_first yields: createdAt#jobId.
_CURSOR = re.compile(r"[0-9]{13}#[0-9A-Za-z:_#-]{1,200}")  # a node's id has a #


def _decode_cursor(token: Any) -> str | None:
    """The sort key a filtered listing continues below (see ``_list_newest_first``)."""
    if token is None or token == "":
        return None
    try:
        cursor = json.loads(token)["before"] if isinstance(token, str) else None
    except (ValueError, TypeError, KeyError) as e:
        raise ClientException(_BAD_TOKEN) from e
    if not isinstance(cursor, str) or not _CURSOR.fullmatch(cursor):
        raise ClientException(_BAD_TOKEN)
    return cursor
