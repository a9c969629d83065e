"""Array and dependency rules (pure)."""

from __future__ import annotations

import pytest
from batchplane.domain import arrays, dependencies
from batchplane.errors import ClientException
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize("size", [2, 10_000, 100_000])
def test_array_sizes_in_range(size: int) -> None:
    assert arrays.array_size({"arrayProperties": {"size": size}}) == size


@pytest.mark.parametrize("size", [0, 1, 100_001, "5", True, None])
def test_array_sizes_out_of_range_name_the_field(size: object) -> None:
    with pytest.raises(ClientException, match="arrayProperties.size"):
        arrays.array_size({"arrayProperties": {"size": size}})


def test_no_array_is_none() -> None:
    assert arrays.array_size({}) is None


def test_dependency_types_and_their_rules() -> None:
    deps = dependencies.depends_on({"dependsOn": [{"jobId": "a"}, {"jobId": "b", "type": "N_TO_N"},
                                              {"type": "SEQUENTIAL"}, {"jobId": "c", "type": "ANY_OUTCOME"}]}, 5)
    assert deps == [{"jobId": "a"}, {"jobId": "b", "type": "N_TO_N"}, {"type": "SEQUENTIAL"},
                    {"jobId": "c", "type": "ANY_OUTCOME"}]


def test_array_types_on_a_plain_job_are_plain_dependencies() -> None:
    """AWS accepts SEQUENTIAL and N_TO_N on a job that is not an array: it waits for the
    job named, and a SEQUENTIAL without one waits for nothing."""
    given = [{"type": "SEQUENTIAL"}, {"jobId": "a", "type": "N_TO_N"}, {"jobId": "b", "type": "SEQUENTIAL"},
             {"type": "SEQUENTIAL"}]
    deps = dependencies.depends_on({"dependsOn": given}, None)
    assert deps == given
    assert dependencies.parent_dependencies({"dependsOn": deps}) == [
        {"jobId": "a", "type": "N_TO_N"}, {"jobId": "b", "type": "SEQUENTIAL"}]
    parent = {"dependsOn": deps[:2], "arrayProperties": {"size": 3}}
    assert dependencies.parent_dependencies(parent) == []  # an array leaves them to its children


@pytest.mark.parametrize(("deps", "size", "words"), [
    ([{"jobId": "a", "type": "SEQUENTIAL"}], 3, "SEQUENTIAL"),
    ([{"type": "N_TO_N"}], 3, "jobId"),
    ([{"jobId": "a", "type": "LATER"}], None, "type"),
    ([{"jobId": ""}], None, "jobId"),
    ([{"type": "SEQUENTIAL"}, {"type": "SEQUENTIAL"}], 3, "SEQUENTIAL"),
    ([{"jobId": str(i)} for i in range(101)], None, "100"),
    ("a", None, "dependsOn"),
])
def test_bad_dependencies(deps: object, size: int | None, words: str) -> None:
    with pytest.raises(ClientException, match=words):
        dependencies.depends_on({"dependsOn": deps}, size)


def test_n_to_n_needs_same_size_arrays() -> None:
    dependencies.check_n_to_n("a", {"arrayProperties": {"size": 4}}, 4)
    with pytest.raises(ClientException, match="same size"):
        dependencies.check_n_to_n("a", {"arrayProperties": {"size": 4}}, 5)
    with pytest.raises(ClientException, match="not an array"):
        dependencies.check_n_to_n("a", {}, 5)
    with pytest.raises(ClientException, match="not an array"):
        dependencies.check_n_to_n("a", {"arrayProperties": {"index": 1}}, 5)


def test_children_get_per_child_edges() -> None:
    parent = {"jobId": "p", "dependsOn": [{"type": "SEQUENTIAL"}, {"jobId": "q", "type": "N_TO_N"},
                                          {"jobId": "x"}], "container": {}, "attempts": [],
              "status": "PENDING", "statusReason": "r", "arrayProperties": {"size": 3}}
    first = arrays.child_doc(parent, 0, "arn:0")
    assert first["dependsOn"] == [{"jobId": "q:0", "type": "N_TO_N"}]
    third = arrays.child_doc(parent, 2, "arn:2")
    assert third["jobId"] == "p:2" and third["arrayProperties"] == {"index": 2}
    assert third["dependsOn"] == [{"jobId": "p:1", "type": "SEQUENTIAL"}, {"jobId": "q:2", "type": "N_TO_N"}]
    assert "statusReason" not in third and third["status"] == "SUBMITTED"
    assert dependencies.parent_dependencies(parent) == [{"jobId": "x"}]


@given(st.integers(min_value=2, max_value=100_000), st.integers(min_value=1, max_value=1000))
def test_chunks_cover_every_index_once(size: int, chunk: int) -> None:
    parts = arrays.chunks(size, chunk)
    covered = [i for p in parts for i in range(p["start"], p["start"] + p["count"])]
    assert covered == list(range(size))
    assert all(0 < p["count"] <= chunk for p in parts)


@given(st.text(alphabet="abc-0123456789", min_size=1, max_size=20), st.integers(min_value=0, max_value=10**6))
def test_child_ids_split_back(parent: str, index: int) -> None:
    assert arrays.split_child(arrays.child_id(parent, index)) == (parent, index)


def test_outcome_waits_for_every_child() -> None:
    assert arrays.outcome({"SUCCEEDED": 3, "RUNNING": 1}, 4) is None
    assert arrays.outcome({"SUCCEEDED": 4}, 4) == "SUCCEEDED"
    assert arrays.outcome({"SUCCEEDED": 3, "FAILED": 1}, 4) == "FAILED"


@pytest.mark.parametrize(("status", "kind", "decision"), [
    ("SUCCEEDED", None, "ok"), ("FAILED", None, "fail"), ("FAILED", "N_TO_N", "fail"),
    ("FAILED", "SEQUENTIAL", "fail"), ("FAILED", "ANY_OUTCOME", "ok"), ("SUCCEEDED", "ANY_OUTCOME", "ok"),
])
def test_release_decisions(status: str, kind: str | None, decision: str) -> None:
    assert dependencies.released(status, kind) == decision
