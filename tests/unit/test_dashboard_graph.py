"""dashboard/graph.py: columns follow dependencies, and the SVG carries what it shows."""

from __future__ import annotations

from batchplane.dashboard.graph import Node, columns, layout, svg


def test_a_job_is_right_of_everything_it_depends_on() -> None:
    # prepare -> array -> aggregate, and a late job that depends on prepare and aggregate.
    edges = [("prepare", "array"), ("array", "aggregate"), ("prepare", "late"), ("aggregate", "late")]
    assert columns(["late", "aggregate", "array", "prepare"], edges) == {
        "prepare": 0, "array": 1, "aggregate": 2, "late": 3}


def test_a_cycle_or_an_edge_out_of_view_does_not_loop() -> None:
    out = columns(["a", "b"], [("a", "b"), ("b", "a"), ("a", "elsewhere")])
    assert set(out) == {"a", "b"} and max(out.values()) < 2


def test_nodes_of_a_column_stack_in_name_order() -> None:
    nodes = [Node("2", "zeta", "RUNNING"), Node("1", "alpha", "RUNNING"), Node("0", "root", "SUCCEEDED")]
    at = layout(nodes, [("0", "1"), ("0", "2")])
    assert at["1"][0] == at["2"][0] > at["0"][0] and at["1"][1] < at["2"][1]


def test_svg_names_jobs_statuses_and_edges_escaped() -> None:
    out = svg([Node("a", "<script>", "FAILED", href="/dashboard/jobs/a"), Node("b", "b", "PENDING", "0/2 done")],
              [("a", "b")], focus="a")
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert 'data-job-id="a" data-status="FAILED"' in out and "focus" in out
    assert 'data-from="a" data-to="b"' in out and "PENDING · 0/2 done" in out
