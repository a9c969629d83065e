"""Array jobs and job dependencies: the pure rules.

Children are ``<parentId>:<index>``. A parent is only SUBMITTED, PENDING, SUCCEEDED or
FAILED: PENDING while children run, FAILED when any child failed, SUCCEEDED when all
succeeded. Dependencies:

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

import copy
from typing import Any

from ..errors import ClientException

MIN_ARRAY, MAX_ARRAY = 2, 100_000
MAX_DEPENDENCIES = 100
N_TO_N, SEQUENTIAL, ANY_OUTCOME = "N_TO_N", "SEQUENTIAL", "ANY_OUTCOME"
DEPENDENCY_TYPES = (N_TO_N, SEQUENTIAL, ANY_OUTCOME)
CHUNK = 500  # children a fan-out task materializes (or cancels) in one invocation
COUNTER_SHARDS = 16  # a parent's child counters are spread over this many items
# A job queue tagged with this key and "off" publishes no "Batch Job State Change" events
# for its arrays' children (the parents' own events stay): a large array's events cost
# more than its children's writes. Beyond AWS Batch, which always publishes them.
CHILD_EVENTS_TAG = "batchplane:child-events"


def child_events(queue: dict[str, Any]) -> bool:
    """Whether the children of an array submitted to ``queue`` publish their events."""
    return (queue.get("tags") or {}).get(CHILD_EVENTS_TAG, "on").lower() != "off"


def child_id(parent_id: str, index: int) -> str:
    return f"{parent_id}:{index}"


def split_child(job_id: str) -> tuple[str, int] | None:
    """(parent id, index) of a child id, None for any other id."""
    parent, sep, index = job_id.rpartition(":")
    if sep and index.isdigit() and parent:
        return parent, int(index)
    return None


def array_size(request: dict[str, Any]) -> int | None:
    props = request.get("arrayProperties")
    if not props:
        return None
    if not isinstance(props, dict) or "size" not in props:
        raise ClientException("arrayProperties needs size: the number of child jobs.")
    size = props["size"]
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_ARRAY <= size <= MAX_ARRAY:
        raise ClientException(
            f"arrayProperties.size must be an integer from {MIN_ARRAY} to {MAX_ARRAY:,}; got {size!r}."
        )
    return size


def dependencies(request: dict[str, Any], size: int | None) -> list[dict[str, str]]:
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


def child_doc(parent: dict[str, Any], index: int, job_arn: str) -> dict[str, Any]:
    """Child ``index`` of an array parent, as DescribeJobs shows it."""
    doc = copy.deepcopy(parent)
    doc["jobId"] = child_id(parent["jobId"], index)
    doc["jobArn"] = job_arn
    doc["arrayProperties"] = {"index": index}
    doc["status"] = "SUBMITTED"
    doc["attempts"] = []
    doc.pop("statusReason", None)
    doc["dependsOn"] = child_dependencies(parent, index)
    return doc


def child_dependencies(parent: dict[str, Any], index: int) -> list[dict[str, str]]:
    """What child ``index`` waits for: SEQUENTIAL and N_TO_N become per-child edges; the
    parent's other dependencies were met before any child existed."""
    out = []
    for dep in parent.get("dependsOn") or []:
        if dep.get("type") == SEQUENTIAL and index > 0:
            out.append({"jobId": child_id(parent["jobId"], index - 1), "type": SEQUENTIAL})
        elif dep.get("type") == N_TO_N:
            out.append({"jobId": child_id(dep["jobId"], index), "type": N_TO_N})
    return out


def parent_dependencies(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The dependencies a job (or array parent) waits for before it runs (or fans out).
    An array parent leaves SEQUENTIAL and N_TO_N to its children; any other job waits for
    every job it names, whatever the type."""
    deps = doc.get("dependsOn") or []
    if "size" in (doc.get("arrayProperties") or {}):
        return [d for d in deps if d.get("type") not in (SEQUENTIAL, N_TO_N)]
    return [d for d in deps if d.get("jobId")]


def chunks(size: int, chunk: int = CHUNK) -> list[dict[str, int]]:
    return [{"start": s, "count": min(chunk, size - s)} for s in range(0, size, chunk)]


def outcome(summary: dict[str, int], size: int) -> str | None:
    """The parent's final status once every child ended, else None."""
    succeeded, failed = summary.get("SUCCEEDED", 0), summary.get("FAILED", 0)
    if succeeded + failed < size:
        return None
    return "FAILED" if failed else "SUCCEEDED"


def released(dep_status: str, kind: str | None) -> str:
    """What a finished dependency means for its dependent: "ok" (one fewer to wait for)
    or "fail"."""
    if dep_status == "SUCCEEDED" or kind == ANY_OUTCOME:
        return "ok"
    return "fail"
