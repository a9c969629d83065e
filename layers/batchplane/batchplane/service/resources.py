"""Compute environments, job queues, job definitions, scheduling policies and tags."""

from __future__ import annotations

import re
from typing import Any

from .. import arns
from ..config import settings
from ..domain import capacity, compute, jobdefs, nodes, policies, queues, roles
from ..errors import ClientException, ConflictError
from ..ports import ComputeProvisioner
from ..store import Item
from ..store.repositories import Repositories
from ..store.resources import Named

_JD_REF = re.compile(r"^([A-Za-z0-9_-]{1,128})(?::([0-9]+))?$")


def check_instance_role(compute_resources: dict[str, Any] | None) -> None:
    """The instance role a compute environment's instances would get must be passable."""
    role = (compute_resources or {}).get("instanceRole")
    if isinstance(role, str) and role:
        s = settings()
        roles.check(roles.instance_role_arn(role, s.account_id, s.partition), "computeResources.instanceRole",
                    s.passable_roles)


def _page_size(value: Any, default: int, hi: int, what: str = "maxResults") -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise ClientException(f"{what} must be an integer from 1 to {hi}; got {value!r}.")
    return value


class Resources:
    def __init__(self, repos: Repositories, provisioner: ComputeProvisioner | None = None) -> None:
        self.store = repos.store
        self.provisioner = provisioner
        self.usage = repos.usage
        self.environments = repos.environments
        self.queues = repos.queues
        self.policies = repos.policies
        self.definitions = repos.definitions
        self.jobs = repos.jobs
        self._by_kind: dict[str, Named] = {  # what TagResource can name, by ARN kind
            "compute-environment": self.environments,
            "job-queue": self.queues,
            "scheduling-policy": self.policies,
        }

    # -- generic named resources ------------------------------------------------------

    @staticmethod
    def _create(kind: Named, name: str, doc: dict[str, Any], what: str) -> None:
        try:
            kind.create(name, doc)
        except ConflictError as e:
            raise ClientException(f"{what} {name} already exists.") from e

    @staticmethod
    def _list(
        kind: Named, names: list[str] | None, limit: int, token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        if names:
            return [i.doc for i in kind.get_many(names)], None
        items, next_token = kind.page(limit=limit, token=token)
        return [i.doc for i in items], next_token

    # -- compute environments ---------------------------------------------------------

    def compute_environment(self, ref: str) -> Item:
        name = arns.name_from(ref, "compute-environment")
        item = self.environments.get(name)
        if item is None:
            raise ClientException(f"Compute environment {ref} does not exist.")
        return item

    def create_compute_environment(self, request: dict[str, Any]) -> dict[str, Any]:
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
            self._create(self.environments, doc["computeEnvironmentName"], doc, "Compute environment")
        except ClientException:
            if self.provisioner is not None:  # lost a race for the name: undo our cluster
                self.provisioner.delete_environment(doc)
            raise
        return {"computeEnvironmentName": doc["computeEnvironmentName"],
                "computeEnvironmentArn": doc["computeEnvironmentArn"]}

    def describe_compute_environments(self, request: dict[str, Any]) -> dict[str, Any]:
        refs = request.get("computeEnvironments") or []
        if len(refs) > 100:
            raise ClientException("computeEnvironments takes at most 100 names or ARNs.")
        limit = _page_size(request.get("maxResults"), 100, 100)
        names = [arns.name_from(r, "compute-environment") for r in refs]
        docs, token = self._list(self.environments, names, limit, request.get("nextToken"))
        out: dict[str, Any] = {"computeEnvironments": docs}
        if token:
            out["nextToken"] = token
        return out

    def update_compute_environment(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("computeEnvironment")
        if not isinstance(ref, str):
            raise ClientException("computeEnvironment is required.")
        item = self.compute_environment(ref)
        item.doc = compute.update(item.doc, request)
        check_instance_role(request.get("computeResources"))
        changed_types = (request.get("computeResources") or {}).get("instanceTypes")
        if changed_types is not None and compute.provisioned(item.doc):
            # Only the types this call sets: an environment stored before this check
            # stays updatable.
            capacity.check_instance_types(item.doc["computeResources"]["instanceTypes"],
                                          capacity.default_catalog())
        self._replace(item, "Compute environment")
        return {"computeEnvironmentName": item.doc["computeEnvironmentName"],
                "computeEnvironmentArn": item.doc["computeEnvironmentArn"]}

    def delete_compute_environment(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("computeEnvironment")
        if not isinstance(ref, str):
            raise ClientException("computeEnvironment is required.")
        item = self.compute_environment(ref)
        doc = item.doc
        if doc["state"] != "DISABLED":
            raise ClientException(
                f"Compute environment {doc['computeEnvironmentName']} is ENABLED: disable it "
                "with UpdateComputeEnvironment state=DISABLED before deleting it."
            )
        users = [
            q["jobQueueName"]
            for q in self.all_job_queues()
            if any(e["computeEnvironment"] == doc["computeEnvironmentArn"] for e in q["computeEnvironmentOrder"])
        ]
        if users:
            raise ClientException(
                f"Compute environment {doc['computeEnvironmentName']} is used by job queue(s) "
                f"{', '.join(users)}: remove it from their computeEnvironmentOrder first."
            )
        self._delete(self.environments, item, "Compute environment", doc["computeEnvironmentName"])
        self.usage.forget(doc["computeEnvironmentName"])
        if self.provisioner is not None:
            self.provisioner.delete_environment(doc)
        return {}

    # -- job queues -------------------------------------------------------------------

    def job_queue(self, ref: str) -> Item:
        name = arns.name_from(ref, "job-queue")
        item = self.queues.get(name)
        if item is None:
            raise ClientException(f"Job queue {ref} does not exist.")
        return item

    def all_job_queues(self) -> list[dict[str, Any]]:
        return [i.doc for i in self.queues.all()]

    def _policy_arn(self, ref: str) -> str | None:
        """The ARN of the scheduling policy a name or ARN names, or None if there is none."""
        item = self.policies.get(arns.name_from(ref, "scheduling-policy"))
        return item.doc["arn"] if item is not None else None

    def _find_ce(self, ref: str) -> dict[str, Any]:
        return self.compute_environment(ref).doc

    def create_job_queue(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request.get("jobQueueName")
        doc = queues.create(request, arns.job_queue_arn(str(name)), self._find_ce, self._policy_arn)
        self._create(self.queues, doc["jobQueueName"], doc, "Job queue")
        return {"jobQueueName": doc["jobQueueName"], "jobQueueArn": doc["jobQueueArn"]}

    def describe_job_queues(self, request: dict[str, Any]) -> dict[str, Any]:
        refs = request.get("jobQueues") or []
        if len(refs) > 100:
            raise ClientException("jobQueues takes at most 100 names or ARNs.")
        limit = _page_size(request.get("maxResults"), 100, 100)
        names = [arns.name_from(r, "job-queue") for r in refs]
        docs, token = self._list(self.queues, names, limit, request.get("nextToken"))
        out: dict[str, Any] = {"jobQueues": docs}
        if token:
            out["nextToken"] = token
        return out

    def update_job_queue(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("jobQueue")
        if not isinstance(ref, str):
            raise ClientException("jobQueue is required.")
        item = self.job_queue(ref)
        item.doc = queues.update(item.doc, request, self._find_ce, self._policy_arn)
        self._replace(item, "Job queue")
        return {"jobQueueName": item.doc["jobQueueName"], "jobQueueArn": item.doc["jobQueueArn"]}

    def delete_job_queue(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("jobQueue")
        if not isinstance(ref, str):
            raise ClientException("jobQueue is required.")
        item = self.job_queue(ref)
        if item.doc["state"] != "DISABLED":
            raise ClientException(
                f"Job queue {item.doc['jobQueueName']} is ENABLED: disable it with "
                "UpdateJobQueue state=DISABLED before deleting it."
            )
        self._delete(self.queues, item, "Job queue", item.doc["jobQueueName"])
        return {}

    # -- scheduling policies ----------------------------------------------------------

    def create_scheduling_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        doc = policies.create(request, arns.scheduling_policy_arn(str(request.get("name"))))
        self._create(self.policies, doc["name"], doc, "Scheduling policy")
        return {"name": doc["name"], "arn": doc["arn"]}

    def scheduling_policy(self, ref: str) -> Item:
        item = self.policies.get(arns.name_from(ref, "scheduling-policy"))
        if item is None:
            raise ClientException(f"Scheduling policy {ref} does not exist.")
        return item

    def describe_scheduling_policies(self, request: dict[str, Any]) -> dict[str, Any]:
        refs = request.get("arns")
        if not isinstance(refs, list) or not refs:
            raise ClientException("arns is required: list 1 to 100 scheduling policy ARNs.")
        if len(refs) > 100:
            raise ClientException("arns takes at most 100 scheduling policy ARNs.")
        names = [arns.name_from(r, "scheduling-policy") for r in refs]
        docs, _ = self._list(self.policies, names, 100, None)
        return {"schedulingPolicies": docs}

    def list_scheduling_policies(self, request: dict[str, Any]) -> dict[str, Any]:
        limit = _page_size(request.get("maxResults"), 100, 1000)
        items, token = self.policies.page(limit=limit, token=request.get("nextToken"))
        out: dict[str, Any] = {"schedulingPolicies": [{"arn": i.doc["arn"]} for i in items]}
        if token:
            out["nextToken"] = token
        return out

    def update_scheduling_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("arn")
        if not isinstance(ref, str):
            raise ClientException("arn is required.")
        item = self.scheduling_policy(ref)
        item.doc["fairsharePolicy"] = policies.fairshare(request.get("fairsharePolicy"))
        self._replace(item, "Scheduling policy")
        return {}

    def delete_scheduling_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("arn")
        if not isinstance(ref, str):
            raise ClientException("arn is required.")
        item = self.scheduling_policy(ref)
        # By name: queues made before they kept the ARN may name their policy by its name.
        users = [q["jobQueueName"] for q in self.all_job_queues() if q.get("schedulingPolicyArn")
                 and arns.name_from(q["schedulingPolicyArn"], "scheduling-policy") == item.doc["name"]]
        if users:
            raise ClientException(
                f"Scheduling policy {item.doc['name']} is used by job queue(s) {', '.join(users)}."
            )
        self._delete(self.policies, item, "Scheduling policy", item.doc["name"])
        return {}

    # -- job definitions --------------------------------------------------------------

    def register_job_definition(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request.get("jobDefinitionName")
        # Validate before taking a revision number so bad requests burn none.
        roles.check_job_definition(_job_definition(request, str(name), 1), settings().passable_roles)
        while True:
            latest, head = self.definitions.latest(str(name))
            revision = latest + 1
            doc = _job_definition(request, str(name), revision)
            try:
                self.definitions.add(str(name), revision, doc, head)
            except ConflictError:
                continue  # a concurrent registration took this revision; take the next
            return {"jobDefinitionName": name, "jobDefinitionArn": doc["jobDefinitionArn"], "revision": revision}

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

    def describe_job_definitions(self, request: dict[str, Any]) -> dict[str, Any]:
        status = request.get("status")
        if status is not None and status not in ("ACTIVE", "INACTIVE"):
            raise ClientException(f"status must be ACTIVE or INACTIVE; got {status!r}.")
        refs = request.get("jobDefinitions") or []
        if len(refs) > 100:
            raise ClientException("jobDefinitions takes at most 100 names or ARNs.")
        limit = _page_size(request.get("maxResults"), 100, 100)
        token = None
        if refs:
            docs = []
            for ref in refs:
                name_rev = arns.name_from(ref, "job-definition")
                if ":" in name_rev:
                    try:
                        docs.append(self.job_definition(ref).doc)
                    except ClientException:
                        continue  # Describe skips unknown definitions, as AWS does
                else:
                    docs += [i.doc for i in self.definitions.revisions(name_rev)]
        elif request.get("jobDefinitionName"):
            name = request["jobDefinitionName"]
            docs = [i.doc for i in self.definitions.revisions(name)]
        else:
            items, token = self.definitions.page(limit=limit, token=request.get("nextToken"))
            docs = [i.doc for i in items]
        if status:
            docs = [d for d in docs if d["status"] == status]
        out: dict[str, Any] = {"jobDefinitions": docs}
        if token:
            out["nextToken"] = token
        return out

    def deregister_job_definition(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("jobDefinition")
        if not isinstance(ref, str) or ":" not in arns.name_from(ref, "job-definition"):
            raise ClientException(
                "jobDefinition must name a revision: use name:revision or the job definition ARN."
            )
        item = self.job_definition(ref)
        if item.doc["status"] != "INACTIVE":
            item.doc["status"] = "INACTIVE"
            item.extra = {**(item.extra or {}), "status": "INACTIVE"}
            self._replace(item, "Job definition")
        return {}

    # -- tags -------------------------------------------------------------------------

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
            return self.job_definition(resource_arn)
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

    def list_tags(self, resource_arn: str) -> dict[str, Any]:
        return {"tags": self._tagged(resource_arn).doc.get("tags") or {}}

    def tag(self, resource_arn: str, tags: Any) -> dict[str, Any]:
        from ..domain import checks

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

    def untag(self, resource_arn: str, keys: list[str]) -> dict[str, Any]:
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

    @staticmethod
    def _delete(kind: Named, item: Item, what: str, name: str) -> None:
        """Delete ``item`` if nobody changed it since it was read (a concurrent delete or
        update loses nothing and gets a client error, not a 500)."""
        try:
            kind.delete(name, item.version)
        except ConflictError as e:
            if kind.get(name) is None:
                raise ClientException(f"{what} {name} does not exist: another request deleted it.") from e
            raise ClientException(
                f"{what} {name} was changed by another request at the same time; read it again and retry."
            ) from e

    def _replace(self, item: Item, what: str) -> None:
        try:
            self.store.replace(item)
        except ConflictError as e:
            raise ClientException(
                f"{what} was changed by another request at the same time; read it again and retry."
            ) from e


def _job_definition(request: dict[str, Any], name: str, revision: int) -> dict[str, Any]:
    """The described job definition of a RegisterJobDefinition request, checked (a
    multinode definition's node ranges too)."""
    doc = jobdefs.register(request, arns.job_definition_arn(name, revision), revision)
    if doc["type"] == "multinode":
        doc["nodeProperties"] = nodes.node_properties(doc["nodeProperties"])
    return doc
