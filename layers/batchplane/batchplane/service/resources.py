"""The lookups of Batch's named resources that the other use cases need (a compute
environment, job queue, scheduling policy or job definition by name or ARN), and the
repositories they read. Each resource's own operations are in its module:
compute_environments, job_queues, scheduling_policies, job_definitions and tags."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .. import arns
from ..errors import ClientException

if TYPE_CHECKING:
    from ..store import Item
    from ..store.repositories import Repositories

_JD_REF = re.compile(r"^([A-Za-z0-9_-]{1,128})(?::([0-9]+))?$")


class Resources:
    def __init__(self, repos: Repositories) -> None:
        self.environments = repos.environments
        self.queues = repos.queues
        self.policies = repos.policies
        self.definitions = repos.definitions

    def compute_environment(self, ref: str) -> Item:
        name = arns.name_from(ref, "compute-environment")
        item = self.environments.get(name)
        if item is None:
            raise ClientException(f"Compute environment {ref} does not exist.")
        return item

    def job_queue(self, ref: str) -> Item:
        name = arns.name_from(ref, "job-queue")
        item = self.queues.get(name)
        if item is None:
            raise ClientException(f"Job queue {ref} does not exist.")
        return item

    def all_job_queues(self) -> list[dict[str, Any]]:
        return [i.doc for i in self.queues.all()]

    def scheduling_policy(self, ref: str) -> Item:
        item = self.policies.get(arns.name_from(ref, "scheduling-policy"))
        if item is None:
            raise ClientException(f"Scheduling policy {ref} does not exist.")
        return item

    def job_definition(self, ref: str, *, active_only: bool = False) -> Item:
        """By ``name`` (latest ACTIVE revision), ``name:revision`` or ARN."""
        name_rev = arns.name_from(ref, "job-definition")
        if ref.startswith("arn:") and name_rev == ref:
            raise ClientException(f"Job definition {ref} does not exist in this region and account.")
        match = _JD_REF.match(name_rev)
        if not match:
            raise ClientException(
                f"Job definition {ref!r} is not valid: use name, name:revision or its ARN."
            )
        name, rev = match.group(1), match.group(2)
        if rev is not None:
            item = self.definitions.revision(name, int(rev))
            if item is None:
                raise ClientException(f"Job definition {name}:{rev} does not exist.")
            if active_only and item.doc["status"] != "ACTIVE":
                raise ClientException(f"Job definition {name}:{rev} is INACTIVE (deregistered).")
            return item
        revisions = self.definitions.revisions(name, newest_first=True)
        for item in revisions:
            if item.doc["status"] == "ACTIVE":
                return item
        if revisions:
            raise ClientException(f"Job definition {name} has no ACTIVE revision.")
        raise ClientException(f"Job definition {name} does not exist.")
