"""TagResource, UntagResource and ListTagsForResource, on a compute environment, job
queue, scheduling policy, job definition revision or job (the tag rules are
domain.checks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import arns
from ..domain import checks
from ..errors import ClientException, ConflictError

if TYPE_CHECKING:
    import builtins  # the class has a method named list

    from ..store import Item
    from ..store.repositories import Repositories
    from ..store.resources import Named
    from .resources import Resources


class Tags:
    def __init__(self, repos: Repositories, resources: Resources) -> None:
        self.store = repos.store
        self.jobs = repos.jobs
        self.resources = resources
        self._by_kind: dict[str, Named] = {  # what TagResource can name, by ARN kind
            "compute-environment": repos.environments,
            "job-queue": repos.queues,
            "scheduling-policy": repos.policies,
        }

    def _tagged(self, resource_arn: str) -> Item:
        try:
            kind, rid = arns.parse(resource_arn)
        except ValueError as e:
            raise ClientException(f"{resource_arn!r} is not an AWS Batch resource ARN.") from e
        if resource_arn != arns.arn(kind, rid):
            scope = ":".join(arns.arn(kind, rid).split(":", 5)[:5])
            raise ClientException(
                f"Resource {resource_arn} does not exist: this endpoint serves {scope}:*."
            )
        if kind == "job-definition":
            return self.resources.job_definition(resource_arn)
        if kind == "job":
            item = self.jobs.get(rid)
            if item is None:
                raise ClientException(f"Job {rid} does not exist.")
            return item
        if kind in self._by_kind:
            item = self._by_kind[kind].get(rid)
            if item is not None:
                return item
        raise ClientException(f"Resource {resource_arn} does not exist.")

    def list(self, resource_arn: str) -> dict[str, Any]:
        return {"tags": self._tagged(resource_arn).doc.get("tags") or {}}

    def tag(self, resource_arn: str, tags: Any) -> dict[str, Any]:
        if not tags:
            raise ClientException("tags is required: give at least one key and value.")
        checks.tags(tags)
        while True:
            item = self._tagged(resource_arn)
            merged = {**(item.doc.get("tags") or {}), **tags}
            checks.tags(merged)
            item.doc["tags"] = merged
            try:
                self.store.replace(item)
                return {}
            except ConflictError:
                continue

    def untag(self, resource_arn: str, keys: builtins.list[str]) -> dict[str, Any]:
        if not keys:
            raise ClientException("tagKeys is required: give at least one tag key.")
        while True:
            item = self._tagged(resource_arn)
            item.doc["tags"] = {k: v for k, v in (item.doc.get("tags") or {}).items() if k not in keys}
            try:
                self.store.replace(item)
                return {}
            except ConflictError:
                continue
