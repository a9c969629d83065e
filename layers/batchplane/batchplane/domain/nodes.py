"""Multi-node parallel jobs: node ranges, SubmitJob's nodeOverrides, and each node's job.

A multi-node parallel (MNP) job is a parent and one job per node, ``<jobId>#<index>``,
each describable. The parent holds no capacity and runs nothing itself: it waits in
PENDING while its nodes run and ends as its main node's attempt ends (AWS: "the main
node's exit code determines the job's status"). The main node is placed first; once it
is RUNNING the other nodes are released, told its address, and placed one per instance
on the same compute environment. One attempt spans all nodes: a retry runs them all
again (service.nodes).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ..errors import ClientException
from . import jobdefs

MAX_NODES = 1000  # nodes of one job (AWS documents no limit; this bounds one job's items)
MAX_RANGES = 5  # nodeRangeProperties of one job definition, as AWS allows
_TARGET = re.compile(r"(\d*)(:?)(\d*)")


def target_range(text: Any, num_nodes: int, what: str) -> tuple[int, int]:
    """A targetNodes value as (first, last) node indexes, both included: ``n``, ``n:m``,
    ``:m`` (from 0) or ``n:`` (to the last node)."""
    match = _TARGET.fullmatch(text) if isinstance(text, str) else None
    if not match or (not match.group(2) and not match.group(1)):
        raise ClientException(
            f"{what} {text!r} is not a node range: use an index (2), a range (0:3, both ends "
            "included), :3 (from node 0) or 4: (to the last node)."
        )
    start, colon, end = match.groups()
    first = int(start) if start else 0
    last = (int(end) if end else num_nodes - 1) if colon else first
    if first > last:
        raise ClientException(f"{what} {text!r} ends before it starts.")
    if last >= num_nodes:
        raise ClientException(
            f"{what} {text!r} reaches node {last}, but the job has {num_nodes} nodes (0 to {num_nodes - 1})."
        )
    return first, last


def _ranges(props: dict[str, Any], num_nodes: int) -> list[tuple[int, int]]:
    """Each node range's (first, last): together they cover every node; one may lie
    inside another (its properties win there, as AWS documents), but two may not cross."""
    ranges = [target_range(r.get("targetNodes"), num_nodes, f"nodeRangeProperties[{i}].targetNodes")
              for i, r in enumerate(props["nodeRangeProperties"])]
    for i, (a1, b1) in enumerate(ranges):
        for j, (a2, b2) in enumerate(ranges[:i]):
            nested = (a1 <= a2 and b2 <= b1) or (a2 <= a1 and b1 <= b2)
            if not nested and a1 <= b2 and a2 <= b1:
                raise ClientException(
                    f"nodeRangeProperties[{j}] ({a2}:{b2}) and nodeRangeProperties[{i}] ({a1}:{b1}) "
                    "overlap: node ranges may nest (the inner one's properties win) but not cross."
                )
            if (a1, b1) == (a2, b2):
                raise ClientException(f"nodeRangeProperties[{j}] and [{i}] target the same nodes {a1}:{b1}.")
    covered: set[int] = set()
    for first, last in ranges:
        covered.update(range(first, last + 1))
    missing = [n for n in range(num_nodes) if n not in covered]
    if missing:
        raise ClientException(
            f"nodeRangeProperties leave node{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(str, missing[:10]))} without a range: together the ranges must cover 0:{num_nodes - 1}."
        )
    return ranges


def node_properties(value: Any) -> dict[str, Any]:
    """The nodeProperties of a multinode job definition, checked (RegisterJobDefinition)."""
    if not isinstance(value, dict):
        raise ClientException("nodeProperties is required for a multinode job definition.")
    props = copy.deepcopy(value)
    num = props.get("numNodes")
    if not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= MAX_NODES:
        raise ClientException(f"nodeProperties.numNodes must be an integer from 1 to {MAX_NODES}; got {num!r}.")
    main = props.get("mainNode")
    if not isinstance(main, int) or isinstance(main, bool) or not 0 <= main < num:
        raise ClientException(
            f"nodeProperties.mainNode must be a node index from 0 to {num - 1} (fewer than numNodes); got {main!r}."
        )
    ranges = props.get("nodeRangeProperties")
    if not isinstance(ranges, list) or not 1 <= len(ranges) <= MAX_RANGES:
        raise ClientException(f"nodeProperties.nodeRangeProperties must list 1 to {MAX_RANGES} node ranges.")
    for i, r in enumerate(ranges):
        if not isinstance(r, dict):
            raise ClientException(f"nodeRangeProperties[{i}] must be an object with targetNodes and container.")
        for unsupported in ("ecsProperties", "eksProperties", "consumableResourceProperties"):
            if r.get(unsupported):
                raise ClientException(f"nodeRangeProperties[{i}].{unsupported} is not supported by batchplane.")
        try:
            r["container"] = jobdefs.container_properties(r.get("container"), ["EC2"])
        except ClientException as e:
            raise ClientException(f"nodeRangeProperties[{i}].container: {e}") from None
        if r.get("instanceTypes") is not None and (not isinstance(r["instanceTypes"], list)
                                                   or len(r["instanceTypes"]) > 1):
            raise ClientException(f"nodeRangeProperties[{i}].instanceTypes takes at most one instance type.")
    _ranges(props, num)
    return props


def job_node_properties(definition: dict[str, Any], overrides: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """SubmitJob of a multinode definition: the job's nodeProperties (numNodes from
    ``overrides`` where given) and each node's containerOverrides, by node index."""
    props = copy.deepcopy(definition["nodeProperties"])
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ClientException("nodeOverrides must be an object with numNodes and nodePropertyOverrides.")
    if "numNodes" in overrides:
        props["numNodes"] = _overridden_num_nodes(props, overrides["numNodes"])
    num = props["numNodes"]
    _ranges(props, num)  # the definition's ranges, against the job's numNodes
    per_node: list[dict[str, Any]] = [{} for _ in range(num)]
    listed = overrides.get("nodePropertyOverrides") or []
    if not isinstance(listed, list):
        raise ClientException("nodeOverrides.nodePropertyOverrides must be a list.")
    for i, o in enumerate(listed):
        what = f"nodeOverrides.nodePropertyOverrides[{i}]"
        if not isinstance(o, dict):
            raise ClientException(f"{what} must be an object with targetNodes and containerOverrides.")
        first, last = target_range(o.get("targetNodes"), num, f"{what}.targetNodes")
        container = jobdefs.container_overrides(o.get("containerOverrides"), f"{what}.containerOverrides")
        for node in range(first, last + 1):
            per_node[node] = {**per_node[node], **copy.deepcopy(container)}
    return props, per_node


def _overridden_num_nodes(props: dict[str, Any], value: Any) -> int:
    """nodeOverrides.numNodes, under AWS's three conditions."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_NODES:
        raise ClientException(f"nodeOverrides.numNodes must be an integer from 1 to {MAX_NODES}; got {value!r}.")
    open_ended = [r for r in props["nodeRangeProperties"] if str(r.get("targetNodes", "")).endswith(":")]
    if not open_ended:
        raise ClientException(
            "nodeOverrides.numNodes needs a node range of the job definition with an open upper "
            "boundary (such as : or 4:), to stretch over the nodes it adds."
        )
    for r in open_ended:
        start = str(r["targetNodes"]).split(":")[0]
        if start and int(start) >= value:
            raise ClientException(
                f"nodeOverrides.numNodes {value} leaves node range {r['targetNodes']} with no node: "
                "the range's lower boundary must be fewer than numNodes."
            )
    if props["mainNode"] >= value:
        raise ClientException(
            f"nodeOverrides.numNodes {value} must be more than the job definition's mainNode {props['mainNode']}."
        )
    return value


def range_container(props: dict[str, Any], node: int) -> dict[str, Any]:
    """The container of ``node``: its narrowest range's (a nested range wins)."""
    best = None
    for r in props["nodeRangeProperties"]:
        first, last = target_range(r["targetNodes"], props["numNodes"], "targetNodes")
        if first <= node <= last and (best is None or last - first < best[0]):
            best = (last - first, r["container"])
    assert best is not None  # _ranges checked that every node has one
    return best[1]


def node_id(parent_id: str, index: int) -> str:
    return f"{parent_id}#{index}"


def parent_of(job_id: str) -> tuple[str, int] | None:
    """(parent id, node index) of a node's job id; None for any other job."""
    parent, sep, index = job_id.rpartition("#")
    return (parent, int(index)) if sep and index.isdigit() else None


def is_parent(doc: dict[str, Any]) -> bool:
    return "nodeProperties" in doc and "nodeDetails" not in doc


def is_node(doc: dict[str, Any]) -> bool:
    return "nodeDetails" in doc


def node_environment(doc: dict[str, Any], main_address: str | None) -> dict[str, str]:
    """The variables AWS Batch sets on each node of a multi-node parallel job."""
    details = doc["nodeDetails"]
    env = {
        "AWS_BATCH_JOB_NODE_INDEX": str(details["nodeIndex"]),
        "AWS_BATCH_JOB_NUM_NODES": str(doc["nodeProperties"]["numNodes"]),
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": str(doc["nodeProperties"]["mainNode"]),
    }
    if not details["isMainNode"] and main_address:
        env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = main_address
    return env


def summary(doc: dict[str, Any]) -> dict[str, Any] | None:
    """ListJobs' nodeProperties (NodePropertiesSummary) of a parent or a node."""
    if is_node(doc):
        return {"isMainNode": doc["nodeDetails"]["isMainNode"], "numNodes": doc["nodeProperties"]["numNodes"],
                "nodeIndex": doc["nodeDetails"]["nodeIndex"]}
    if is_parent(doc):
        return {"numNodes": doc["nodeProperties"]["numNodes"]}
    return None
