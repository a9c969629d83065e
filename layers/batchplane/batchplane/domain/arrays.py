"""Array jobs: the pure rules.

Children are ``<parentId>:<index>``. A parent is only SUBMITTED, PENDING, SUCCEEDED or
FAILED: PENDING while children run, FAILED when any child failed, SUCCEEDED when all
succeeded. What a child waits for (SEQUENTIAL, N_TO_N) is in domain/dependencies.py.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import ClientException
from .dependencies import N_TO_N, SEQUENTIAL

MIN_ARRAY, MAX_ARRAY = 2, 100_000
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


def chunks(size: int, chunk: int = CHUNK) -> list[dict[str, int]]:
    return [{"start": s, "count": min(chunk, size - s)} for s in range(0, size, chunk)]


def outcome(summary: dict[str, int], size: int) -> str | None:
    """The parent's final status once every child ended, else None."""
    succeeded, failed = summary.get("SUCCEEDED", 0), summary.get("FAILED", 0)
    if succeeded + failed < size:
        return None
    return "FAILED" if failed else "SUCCEEDED"


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


def is_parent(doc: dict[str, Any]) -> bool:
    """An array parent (not a child, not a job of its own)."""
    props = doc.get("arrayProperties") or {}
    return "size" in props and "index" not in props
