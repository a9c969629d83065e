"""domain.nodes: node ranges, nodeOverrides and each node's container and variables."""

from __future__ import annotations

from typing import Any

import pytest
from batchplane.domain import nodes
from batchplane.errors import ClientException


def _container(command: str = "true") -> dict[str, Any]:
    return {"image": "busybox", "command": [command],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}


def _props(num: int, main: int, *targets: str) -> dict[str, Any]:
    return {"numNodes": num, "mainNode": main,
            "nodeRangeProperties": [{"targetNodes": t, "container": _container(t)} for t in targets]}


@pytest.mark.parametrize(("text", "expected"), [
    ("2", (2, 2)), ("0:3", (0, 3)), (":3", (0, 3)), ("4:", (4, 9)), (":", (0, 9)), ("9", (9, 9)),
])
def test_target_ranges_include_both_ends(text: str, expected: tuple[int, int]) -> None:
    assert nodes.target_range(text, 10, "targetNodes") == expected


@pytest.mark.parametrize(("text", "words"), [
    ("", "not a node range"), ("a", "not a node range"), ("1-3", "not a node range"), (3, "not a node range"),
    ("5:2", "ends before it starts"), ("10", "reaches node 10"), ("8:12", "reaches node 12"),
])
def test_bad_target_ranges(text: Any, words: str) -> None:
    with pytest.raises(ClientException, match=words):
        nodes.target_range(text, 10, "targetNodes")


def test_a_nested_range_wins_over_the_range_it_lies_in() -> None:
    props = nodes.node_properties(_props(6, 0, "0:5", "2:3", "5"))
    assert [nodes.range_container(props, n)["command"] for n in range(6)] == [
        ["0:5"], ["0:5"], ["2:3"], ["2:3"], ["0:5"], ["5"]]


@pytest.mark.parametrize(("props", "words"), [
    (_props(4, 0, "0:2", "2:3"), "overlap"),
    (_props(4, 0, "0:1", "0:1", "2:"), "same nodes"),
    (_props(4, 0, "0", "2:"), "node 1 without a range"),
    (_props(4, 4, "0:"), "mainNode"),
    (_props(4, -1, "0:"), "mainNode"),
    (_props(nodes.MAX_NODES + 1, 0, "0:"), "numNodes"),
    ({**_props(2, 0, "0:"), "numNodes": True}, "numNodes"),
    (_props(2, 0), "1 to 5"),
])
def test_node_properties_aws_refuses(props: dict[str, Any], words: str) -> None:
    with pytest.raises(ClientException, match=words):
        nodes.node_properties(props)


def test_a_range_container_is_described_as_containerProperties_are() -> None:
    (checked,) = nodes.node_properties(_props(2, 0, "0:"))["nodeRangeProperties"]
    assert checked["container"]["volumes"] == [] and checked["container"]["command"] == ["0:"]


def test_a_range_container_is_checked_as_containerProperties_are() -> None:
    props = _props(2, 0, "0:")
    props["nodeRangeProperties"][0]["container"]["resourceRequirements"] = []
    with pytest.raises(ClientException, match=r"nodeRangeProperties\[0\].container: .*VCPU"):
        nodes.node_properties(props)


def test_num_nodes_override_stretches_the_open_ended_range() -> None:
    definition = {"nodeProperties": nodes.node_properties(_props(2, 0, "0", "1:"))}
    props, per_node = nodes.job_node_properties(definition, {"numNodes": 5, "nodePropertyOverrides": [
        {"targetNodes": "3:", "containerOverrides": {"command": ["late"]}},
        {"targetNodes": "4", "containerOverrides": {"environment": [{"name": "X", "value": "1"}]}}]})
    assert props["numNodes"] == 5 and definition["nodeProperties"]["numNodes"] == 2
    assert [nodes.range_container(props, n)["command"] for n in range(5)] == [["0"]] + [["1:"]] * 4
    assert per_node == [{}, {}, {}, {"command": ["late"]},
                        {"command": ["late"], "environment": [{"name": "X", "value": "1"}]}]


@pytest.mark.parametrize(("props", "override", "words"), [
    (_props(3, 0, "0", "1:2"), 4, "open upper boundary"),
    (_props(3, 0, "0", "2:", "1"), 2, "lower boundary"),
    (_props(3, 2, "0:"), 2, "mainNode 2"),
    (_props(3, 0, "0:"), 0, "numNodes must be"),
])
def test_num_nodes_override_under_aws_conditions(props: dict[str, Any], override: int, words: str) -> None:
    with pytest.raises(ClientException, match=words):
        nodes.job_node_properties({"nodeProperties": nodes.node_properties(props)}, {"numNodes": override})


def test_node_ids_and_variables() -> None:
    assert nodes.node_id("abc", 2) == "abc#2"
    assert nodes.parent_of("abc#2") == ("abc", 2)
    assert nodes.parent_of("abc:2") is None and nodes.parent_of("abc#x") is None
    node = {"nodeDetails": {"nodeIndex": 2, "isMainNode": False}, "nodeProperties": {"numNodes": 3, "mainNode": 0}}
    assert nodes.node_environment(node, "127.0.0.7") == {
        "AWS_BATCH_JOB_NODE_INDEX": "2", "AWS_BATCH_JOB_NUM_NODES": "3", "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
        "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "127.0.0.7"}
    main = {**node, "nodeDetails": {"nodeIndex": 0, "isMainNode": True}}
    assert "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" not in nodes.node_environment(main, "127.0.0.7")
    assert nodes.summary(node) == {"isMainNode": False, "numNodes": 3, "nodeIndex": 2}
    assert nodes.summary({"nodeProperties": {"numNodes": 3}}) == {"numNodes": 3}
    assert nodes.summary({"container": {}}) is None
