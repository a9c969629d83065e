"""CreateComputeEnvironment, DescribeComputeEnvironments, UpdateComputeEnvironment and
DeleteComputeEnvironment (the rules are domain.compute and domain.capacity; the
provisioner, ComputeProvisioner, makes and removes what an environment runs on)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import arns
from ..config import settings
from ..domain import capacity, compute, roles
from ..errors import ClientException
from . import named

if TYPE_CHECKING:
    from ..ports import ComputeProvisioner
    from ..store.repositories import Repositories
    from .resources import Resources


def check_instance_role(compute_resources: dict[str, Any] | None) -> None:
    """The instance role a compute environment's instances would get must be passable."""
    role = (compute_resources or {}).get("instanceRole")
    if isinstance(role, str) and role:
        s = settings()
        roles.check(roles.instance_role_arn(role, s.account_id, s.partition), "computeResources.instanceRole",
                    s.passable_roles)


class ComputeEnvironments:
    def __init__(self, repos: Repositories, resources: Resources,
                 provisioner: ComputeProvisioner | None = None) -> None:
        self.store = repos.store
        self.environments = repos.environments
        self.usage = repos.usage
        self.resources = resources
        self.provisioner = provisioner

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request.get("computeEnvironmentName")
        doc = compute.create(request, arns.compute_environment_arn(str(name)))
        check_instance_role(doc.get("computeResources"))
        if compute.provisioned(doc):
            capacity.check_instance_types(doc["computeResources"]["instanceTypes"], capacity.default_catalog())
        if self.environments.get(doc["computeEnvironmentName"]) is not None:
            raise ClientException(f"Compute environment {doc['computeEnvironmentName']} already exists.")
        if self.provisioner is not None:
            doc.update(self.provisioner.create_environment(doc))
        try:
            named.create(self.environments, doc["computeEnvironmentName"], doc, "Compute environment")
        except ClientException:
            if self.provisioner is not None:  # lost a race for the name: undo our cluster
                self.provisioner.delete_environment(doc)
            raise
        return {"computeEnvironmentName": doc["computeEnvironmentName"],
                "computeEnvironmentArn": doc["computeEnvironmentArn"]}

    def describe(self, request: dict[str, Any]) -> dict[str, Any]:
        return named.describe(self.environments, request, "computeEnvironments", "compute-environment",
                              "computeEnvironments")

    def update(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("computeEnvironment")
        if not isinstance(ref, str):
            raise ClientException("computeEnvironment is required.")
        item = self.resources.compute_environment(ref)
        item.doc = compute.update(item.doc, request)
        check_instance_role(request.get("computeResources"))
        changed_types = (request.get("computeResources") or {}).get("instanceTypes")
        if changed_types is not None and compute.provisioned(item.doc):
            # Only the types this call sets: an environment stored before this check
            # stays updatable.
            capacity.check_instance_types(item.doc["computeResources"]["instanceTypes"],
                                          capacity.default_catalog())
        named.replace(self.store, item, "Compute environment")
        return {"computeEnvironmentName": item.doc["computeEnvironmentName"],
                "computeEnvironmentArn": item.doc["computeEnvironmentArn"]}

    def delete(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("computeEnvironment")
        if not isinstance(ref, str):
            raise ClientException("computeEnvironment is required.")
        item = self.resources.compute_environment(ref)
        doc = item.doc
        if doc["state"] != "DISABLED":
            raise ClientException(
                f"Compute environment {doc['computeEnvironmentName']} is ENABLED: disable it "
                "with UpdateComputeEnvironment state=DISABLED before deleting it."
            )
        users = [
            q["jobQueueName"]
            for q in self.resources.all_job_queues()
            if any(e["computeEnvironment"] == doc["computeEnvironmentArn"] for e in q["computeEnvironmentOrder"])
        ]
        if users:
            raise ClientException(
                f"Compute environment {doc['computeEnvironmentName']} is used by job queue(s) "
                f"{', '.join(users)}: remove it from their computeEnvironmentOrder first."
            )
        named.delete(self.environments, item, "Compute environment", doc["computeEnvironmentName"])
        self.usage.forget(doc["computeEnvironmentName"])
        if self.provisioner is not None:
            self.provisioner.delete_environment(doc)
        return {}
