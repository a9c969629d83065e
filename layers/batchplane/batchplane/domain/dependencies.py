"""Job dependencies (dependsOn): the pure rules.

* ``{"jobId": X}``: wait for X to succeed; if X fails, fail with "Dependent Job failed".
* ``{"jobId": A, "type": "N_TO_N"}`` on an array: child i waits for child i of array A.
* ``{"type": "SEQUENTIAL"}`` on an array: child i waits for child i-1.
* ``{"jobId": X, "type": "ANY_OUTCOME"}`` (beyond AWS Batch): wait for X to finish,
  whatever its outcome ("run the cleanup even if the step failed").

AWS accepts SEQUENTIAL and N_TO_N on a job that is not an array too, where they mean
nothing of their own: such a job waits for the jobId it names as for a plain
dependency, and a SEQUENTIAL without a jobId waits for nothing.
"""

from __future__ import annotations

from typing import Any

from ..errors import ClientException
from . import jobs as rules

MAX_DEPENDENCIES = 100
N_TO_N, SEQUENTIAL, ANY_OUTCOME = "N_TO_N", "SEQUENTIAL", "ANY_OUTCOME"
DEPENDENCY_TYPES = (N_TO_N, SEQUENTIAL, ANY_OUTCOME)


def depends_on(request: dict[str, Any], size: int | None) -> list[dict[str, str]]:
    """The checked dependsOn of a SubmitJob request."""
    deps = request.get("dependsOn") or []
    if not isinstance(deps, list):
        raise ClientException("dependsOn must be a list of {jobId, type}.")
    if len(deps) > MAX_DEPENDENCIES:
        raise ClientException(
            f"dependsOn lists {len(deps)} jobs; batchplane accepts up to {MAX_DEPENDENCIES} "
            "(depend on an array job to wait for many jobs at once)."
        )
    out = []
    for dep in deps:
        if not isinstance(dep, dict):
            raise ClientException("Each dependsOn entry must be an object with jobId and/or type.")
        kind = dep.get("type")
        if kind is not None and kind not in DEPENDENCY_TYPES:
            raise ClientException(
                f"dependsOn type must be one of {', '.join(DEPENDENCY_TYPES)}; got {kind!r}."
            )
        if kind == SEQUENTIAL and (size is not None or not dep.get("jobId")):
            if dep.get("jobId"):
                raise ClientException("A SEQUENTIAL dependency takes no jobId: child i waits for child i-1.")
            out.append({"type": SEQUENTIAL})
            continue
        if not isinstance(dep.get("jobId"), str) or not dep["jobId"]:
            raise ClientException("Each dependsOn entry needs jobId (except type SEQUENTIAL).")
        entry = {"jobId": dep["jobId"]}
        if kind:
            entry["type"] = kind
        out.append(entry)
    if size is not None and sum(1 for d in out if d.get("type") == SEQUENTIAL) > 1:
        raise ClientException("dependsOn can list SEQUENTIAL once.")
    return out


def check_n_to_n(dep_id: str, dep_doc: dict[str, Any], size: int) -> None:
    other = (dep_doc.get("arrayProperties") or {}).get("size")
    if other is None or "index" in dep_doc.get("arrayProperties", {}):
        raise ClientException(f"N_TO_N dependency {dep_id} is not an array job.")
    if other != size:
        raise ClientException(
            f"N_TO_N needs arrays of the same size: {dep_id} has {other} children, this one {size}."
        )


def check_named(deps: list[dict[str, str]], found: dict[str, dict[str, Any]], size: int | None) -> None:
    """The jobs ``deps`` name exist (``found``: those the caller can see, by jobId), each
    named once, and an N_TO_N one is an array of the same size."""
    ids = [d["jobId"] for d in deps if "jobId" in d]
    if len(set(ids)) != len(ids):
        raise ClientException("dependsOn lists the same job twice.")
    for dep in deps:
        if "jobId" not in dep:
            continue
        if dep["jobId"] not in found:
            raise ClientException(f"dependsOn names job {dep['jobId']}, which does not exist.")
        if dep.get("type") == N_TO_N and size is not None:
            check_n_to_n(dep["jobId"], found[dep["jobId"]], size)


def parent_dependencies(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The dependencies a job (or array parent) waits for before it runs (or fans out).
    An array parent leaves SEQUENTIAL and N_TO_N to its children; any other job waits for
    every job it names, whatever the type."""
    deps = doc.get("dependsOn") or []
    if "size" in (doc.get("arrayProperties") or {}):
        return [d for d in deps if d.get("type") not in (SEQUENTIAL, N_TO_N)]
    return [d for d in deps if d.get("jobId")]


def released(dep_status: str, kind: str | None) -> str:
    """What a finished dependency means for its dependent: "ok" (one fewer to wait for)
    or "fail"."""
    if dep_status == "SUCCEEDED" or kind == ANY_OUTCOME:
        return "ok"
    return "fail"


def release(doc: dict[str, Any], decision: str, now: int) -> bool:
    """Apply a released edge ("ok" or "fail", see ``released``) to its dependent ``doc``,
    one fewer to wait for or "Dependent Job failed". False when the dependent no longer
    waits (it ended, or was cancelled), so only the edge changes."""
    if doc["status"] != rules.PENDING:
        return False
    if decision == "fail":
        rules.move(doc, rules.FAILED, rules.DEPENDENCY_FAILED)
        doc["stoppedAt"] = now
    return True
