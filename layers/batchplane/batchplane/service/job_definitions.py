"""RegisterJobDefinition, DescribeJobDefinitions and DeregisterJobDefinition (the rules
are domain.jobdefs, domain.nodes for a multinode definition's node ranges and
domain.roles for the roles it names); a definition by name or ARN is
Resources.job_definition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import arns
from ..config import settings
from ..domain import jobdefs, nodes, roles
from ..errors import ClientException, ConflictError
from . import named

if TYPE_CHECKING:
    from ..store.repositories import Repositories
    from .resources import Resources


class JobDefinitions:
    def __init__(self, repos: Repositories, resources: Resources) -> None:
        self.store = repos.store
        self.definitions = repos.definitions
        self.resources = resources

    def register(self, request: dict[str, Any]) -> dict[str, Any]:
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

    def describe(self, request: dict[str, Any]) -> dict[str, Any]:
        status = request.get("status")
        if status is not None and status not in ("ACTIVE", "INACTIVE"):
            raise ClientException(f"status must be ACTIVE or INACTIVE; got {status!r}.")
        refs = request.get("jobDefinitions") or []
        if len(refs) > named.MAX_REFS:
            raise ClientException("jobDefinitions takes at most 100 names or ARNs.")
        limit = named.page_size(request.get("maxResults"), 100, 100)
        token = None
        if refs:
            docs = []
            for ref in refs:
                name_rev = arns.name_from(ref, "job-definition")
                if ":" in name_rev:
                    try:
                        docs.append(self.resources.job_definition(ref).doc)
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
        return named.listed("jobDefinitions", docs, token)

    def deregister(self, request: dict[str, Any]) -> dict[str, Any]:
        ref = request.get("jobDefinition")
        if not isinstance(ref, str) or ":" not in arns.name_from(ref, "job-definition"):
            raise ClientException(
                "jobDefinition must name a revision: use name:revision or the job definition ARN."
            )
        item = self.resources.job_definition(ref)
        if item.doc["status"] != "INACTIVE":
            item.doc["status"] = "INACTIVE"
            item.extra["status"] = "INACTIVE"
            named.replace(self.store, item, "Job definition")
        return {}


def _job_definition(request: dict[str, Any], name: str, revision: int) -> dict[str, Any]:
    """The described job definition of a RegisterJobDefinition request, checked (a
    multinode definition's node ranges too)."""
    doc = jobdefs.register(request, arns.job_definition_arn(name, revision), revision)
    if doc["type"] == "multinode":
        doc["nodeProperties"] = nodes.node_properties(doc["nodeProperties"])
    return doc
