"""CreateSchedulingPolicy, DescribeSchedulingPolicies, ListSchedulingPolicies,
UpdateSchedulingPolicy and DeleteSchedulingPolicy (the rules are domain.policies; the
fair share a policy gives is service.fairshare's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import arns
from ..domain import policies
from ..errors import ClientException
from . import named

if TYPE_CHECKING:
    from ..store.repositories import Repositories
    from .resources import Resources


class SchedulingPolicies:
    def __init__(self, repos: Repositories, resources: Resources) -> None:
        self.store = repos.store
        self.policies = repos.policies
        self.resources = resources

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        doc = policies.create(request, arns.scheduling_policy_arn(str(request.get("name"))))
        named.create(self.policies, doc["name"], doc, "Scheduling policy")
        return {"name": doc["name"], "arn": doc["arn"]}

    def describe(self, request: dict[str, Any]) -> dict[str, Any]:
        refs = request.get("arns")
        if not isinstance(refs, list) or not refs:
            raise ClientException("arns is required: list 1 to 100 scheduling policy ARNs.")
        if len(refs) > named.MAX_REFS:
            raise ClientException("arns takes at most 100 scheduling policy ARNs.")
        names = [arns.name_from(r, "scheduling-policy") for r in refs]
        return {"schedulingPolicies": [i.doc for i in self.policies.get_many(names)]}

    def list(self, request: dict[str, Any]) -> dict[str, Any]:
        limit = named.page_size(request.get("maxResults"), 100, 1000)
        items, token = self.policies.page(limit=limit, token=request.get("nextToken"))
        return named.listed("schedulingPolicies", [{"arn": i.doc["arn"]} for i in items], token)

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("arn")
        if not isinstance(ref, str):
            raise ClientException("arn is required.")
        item = self.resources.scheduling_policy(ref)
        item.doc["fairsharePolicy"] = policies.fairshare(request.get("fairsharePolicy"))
        named.replace(self.store, item, "Scheduling policy")
        return {}

    def delete(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("arn")
        if not isinstance(ref, str):
            raise ClientException("arn is required.")
        item = self.resources.scheduling_policy(ref)
        # By name: queues made before they kept the ARN may name their policy by its name.
        users = [q["jobQueueName"] for q in self.resources.all_job_queues() if q.get("schedulingPolicyArn")
                 and arns.name_from(q["schedulingPolicyArn"], "scheduling-policy") == item.doc["name"]]
        if users:
            raise ClientException(
                f"Scheduling policy {item.doc['name']} is used by job queue(s) {', '.join(users)}."
            )
        named.delete(self.policies, item, "Scheduling policy", item.doc["name"])
        return {}
