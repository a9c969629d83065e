"""The provisioner: turns the jobs waiting and running into capacity for MANAGED EC2 and
SPOT compute environments (the rules are domain.capacity). Fargate and UNMANAGED
environments need no instances and are left alone.

Each pass reads every compute environment and job queue, the RUNNABLE jobs of each queue
and the STARTING/RUNNING jobs, plans every managed EC2/SPOT environment, applies the plan
(CapacityController) and records the result on the environment: desiredvCpus in its
document, and two attributes of its item that the next pass needs, ``plannedvCpus`` (the
desiredvCpus this provisioner last set: a different value means UpdateComputeEnvironment
set it) and ``lowSince`` (since when demand has been below desiredvCpus, for the scale-in
delay). Every write is a compare-and-swap; one that loses to a concurrent update is
dropped, because that update's own stream record starts another pass.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import TYPE_CHECKING, Any

from ..clock import now_ms
from ..domain import capacity, compute
from ..domain import jobs as rules
from ..errors import ConflictError
from ..ports import CapacityController, CapacityError

if TYPE_CHECKING:
    from ..store import Item
    from ..store.repositories import Repositories
    from .resources import Resources

log = logging.getLogger(__name__)
RUNNABLE_WINDOW = 1000  # waiting jobs per queue a pass looks at
ACTIVE_LIMIT = 10_000  # STARTING or RUNNING jobs per queue
SCALE_IN_AFTER_SECONDS = 300
HEALTHY = "ComputeEnvironment Healthy"


class Provisioning:
    def __init__(
        self,
        repos: Repositories,
        resources: Resources,
        controller: CapacityController | None,
        catalog: capacity.Catalog | None = None,
        scale_in_after_seconds: float = SCALE_IN_AFTER_SECONDS,
    ) -> None:
        self.store = repos.store
        self.controller = controller
        self.catalog = catalog or capacity.default_catalog()
        self.scale_in_after_ms = int(scale_in_after_seconds * 1000)
        self.jobs = repos.jobs
        self.resources = resources

    def provision(self) -> dict[str, int]:
        """One pass over every compute environment; returns the desiredvCpus set for each
        managed EC2/SPOT environment, by name. Does nothing without a controller."""
        if self.controller is None:
            return {}
        items = self._environments()
        docs = {i.doc["computeEnvironmentArn"]: i.doc for i in items}
        by_name = {d["computeEnvironmentName"]: arn for arn, d in docs.items()}
        queues: list[capacity.QueueDemand] = []
        active: dict[str, list[capacity.Shape]] = {}
        for q in self.resources.all_job_queues():
            name = q["jobQueueName"]
            for status in (rules.STARTING, rules.RUNNING):
                for job in self.jobs.queued(name, status, ACTIVE_LIMIT):
                    arn = by_name.get(job.extra.get("ce", ""))
                    if arn and _runs(job.doc):
                        active.setdefault(arn, []).append(capacity.Shape.of(job.doc["container"]))
            waiting = tuple(
                capacity.Waiting(capacity.Shape.of(j.doc["container"]),
                                 (j.doc.get("platformCapabilities") or ["EC2"])[0])
                for j in self.jobs.queued(name, rules.RUNNABLE, RUNNABLE_WINDOW) if _runs(j.doc)
            )
            queues.append(capacity.QueueDemand(
                name=name, priority=int(q["priority"]), waiting=waiting,
                environments=tuple(e["computeEnvironment"] for e in
                                   sorted(q["computeEnvironmentOrder"], key=lambda e: e["order"])),
            ))
        environments = {arn: capacity.environment(d, self.catalog) for arn, d in docs.items()}
        assigned = capacity.assign(queues, environments, active)
        out: dict[str, int] = {}
        failure: Exception | None = None
        for item in items:
            if not compute.provisioned(item.doc):
                continue
            arn = item.doc["computeEnvironmentArn"]
            try:
                out[item.doc["computeEnvironmentName"]] = self._provision(
                    item, assigned.get(arn, []), active.get(arn, [])
                )
            except Exception as e:  # noqa: BLE001 - one environment's outage must not stall the others
                log.exception("provisioning %s failed", arn)
                failure = failure or e
        if failure is not None:
            raise failure  # the stream or schedule retries the pass
        return out

    def removed(self, doc: dict[str, Any]) -> None:
        """The environment was deleted: release its instances."""
        if self.controller is not None and compute.provisioned(doc):
            self.controller.remove(doc)

    def sweep(self) -> list[str]:
        """Release capacity of environments deleted while their stream record was lost."""
        if self.controller is None:
            return []
        return self.controller.sweep({i.doc["computeEnvironmentArn"] for i in self._environments()})

    # -- one environment ------------------------------------------------------------------

    def _environments(self) -> list[Item]:
        return self.resources.environments.all()

    def _provision(
        self, item: Item, waiting: list[capacity.Shape], active: list[capacity.Shape]
    ) -> int:
        doc = item.doc
        resources = doc["computeResources"]
        plan = capacity.plan(resources, waiting=waiting, active=active, catalog=self.catalog)
        current = int(resources.get("desiredvCpus", resources.get("minvCpus", 0)))
        if plan.problem:
            self._record(item, current, item.extra.get("lowSince"), problem=plan.problem)
            return current
        low_since = item.extra.get("lowSince")
        if item.extra.get("plannedvCpus") not in (None, current):
            # UpdateComputeEnvironment set desiredvCpus: keep it as a fresh scale-out would
            # be kept, until demand has stayed below it for the scale-in delay.
            low_since = None
        desired, low_since = capacity.settle(
            plan.desired_vcpus, current,
            floor=plan.min_vcpus, ceiling=plan.max_vcpus,
            # An environment this provisioner marked INVALID is retried as if VALID.
            enabled=doc["state"] == "ENABLED" and doc["status"] in ("VALID", "INVALID"),
            low_since=low_since, now_ms=now_ms(), scale_in_after_ms=self.scale_in_after_ms,
        )
        try:
            assert self.controller is not None
            self.controller.apply(doc, dataclasses.replace(plan, desired_vcpus=desired))
        except CapacityError as e:
            self._record(item, current, low_since, problem=str(e))
            return current
        self._record(item, desired, low_since)
        return desired

    def _record(
        self, item: Item, desired: int, low_since: int | None, problem: str | None = None
    ) -> None:
        """Save what the pass decided, if it changed anything."""
        doc = item.doc
        before = _recorded(item)
        if problem:
            # An error text that differs only in ids or numbers (request ids, times) is the
            # same problem: rewriting it would start another pass, and so on forever.
            if _digitless(problem) != _digitless(doc.get("statusReason")):
                doc["statusReason"] = problem[:1024]
            doc["status"] = "INVALID"
        else:
            doc["computeResources"]["desiredvCpus"] = desired
            reason = str(doc.get("statusReason"))
            if doc["status"] == "INVALID" and reason.startswith("CLIENT_ERROR"):
                doc["status"], doc["statusReason"] = "VALID", HEALTHY  # fixed by an update
            item.extra["plannedvCpus"] = desired
        item.extra["lowSince"] = low_since
        if _recorded(item) == before:
            return
        try:
            self.store.replace(item)
        except ConflictError:
            log.info("compute environment %s changed meanwhile; its update starts another pass",
                     doc["computeEnvironmentName"])


def _recorded(item: Item) -> tuple[Any, ...]:
    doc = item.doc
    return (doc["computeResources"].get("desiredvCpus"), doc["status"], doc.get("statusReason"),
            item.extra.get("plannedvCpus"), item.extra.get("lowSince"))


def _digitless(text: Any) -> str:
    return re.sub(r"[0-9a-f]*[0-9][0-9a-f]*", "", str(text or ""))


def _runs(doc: dict[str, Any]) -> bool:
    """Whether the job itself takes capacity (an array's parent does not; its children do)."""
    array = doc.get("arrayProperties") or {}
    return "container" in doc and not ("size" in array and "index" not in array)
