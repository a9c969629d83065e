"""CreateJobQueue, DescribeJobQueues, UpdateJobQueue and DeleteJobQueue (the rules are
domain.queues)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import arns
from ..domain import queues
from ..errors import ClientException
from . import named

if TYPE_CHECKING:
    from ..store.repositories import Repositories
    from .resources import Resources


class JobQueues:
    def __init__(self, repos: Repositories, resources: Resources) -> None:
        self.store = repos.store
        self.queues = repos.queues
        self.policies = repos.policies
        self.resources = resources

    def _policy_arn(self, ref: str) -> str | None:
        """The ARN of the scheduling policy a name or ARN names, or None if there is none
        (a queue keeps the ARN however the request named its policy)."""
        item = self.policies.get(arns.name_from(ref, "scheduling-policy"))
        return item.doc["arn"] if item is not None else None

    def _find_ce(self, ref: str) -> dict[str, Any]:
        return self.resources.compute_environment(ref).doc

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request.get("jobQueueName")
        doc = queues.create(request, arns.job_queue_arn(str(name)), self._find_ce, self._policy_arn)
        named.create(self.queues, doc["jobQueueName"], doc, "Job queue")
        return {"jobQueueName": doc["jobQueueName"], "jobQueueArn": doc["jobQueueArn"]}

    def describe(self, request: dict[str, Any]) -> dict[str, Any]:
        return named.describe(self.queues, request, "jobQueues", "job-queue", "jobQueues")

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("jobQueue")
        if not isinstance(ref, str):
            raise ClientException("jobQueue is required.")
        item = self.resources.job_queue(ref)
        item.doc = queues.update(item.doc, request, self._find_ce, self._policy_arn)
        named.replace(self.store, item, "Job queue")
        return {"jobQueueName": item.doc["jobQueueName"], "jobQueueArn": item.doc["jobQueueArn"]}

    def delete(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("jobQueue")
        if not isinstance(ref, str):
            raise ClientException("jobQueue is required.")
        item = self.resources.job_queue(ref)
        if item.doc["state"] != "DISABLED":
            raise ClientException(
                f"Job queue {item.doc['jobQueueName']} is ENABLED: disable it with "
                "UpdateJobQueue state=DISABLED before deleting it."
            )
        named.delete(self.queues, item, "Job queue", item.doc["jobQueueName"])
        return {}
