"""domain/cost.py: the compute and control-plane cost of a job."""

from __future__ import annotations

import json
from typing import Any

import pytest
from batchplane.costing import PRICES_PATH, load_prices
from batchplane.domain import capacity
from batchplane.domain.cost import (
    JobCost,
    Prices,
    PriceTableError,
    array_cost,
    environment_name,
    format_usd,
    job_cost,
    totals,
)

CATALOG = capacity.Catalog.from_json({"instanceTypes": {
    "m5.large": {"vcpus": 2, "memoryMiB": 8192, "gpus": 0, "onDemandUsdPerHour": 0.096},
    "m5.xlarge": {"vcpus": 4, "memoryMiB": 16384, "gpus": 0, "onDemandUsdPerHour": 0.192},
}})
PRICES = Prices(fargate_vcpu_hour=0.04, fargate_gb_hour=0.004, fargate_spot_fraction=0.3, ec2_spot_fraction=0.4,
                fargate_minimum_seconds=60, job=1e-5, retry_attempt=2e-6, array_child=3e-6, dependency_edge=4e-6)
T0 = 1_700_000_000_000


def ce(kind: str = "EC2", **resources: Any) -> dict[str, Any]:
    if kind in ("FARGATE", "FARGATE_SPOT"):
        return {"computeEnvironmentName": "env", "type": "MANAGED",
                "computeResources": {"type": kind, "maxvCpus": 16, **resources}}
    return {"computeEnvironmentName": "env", "type": "MANAGED",
            "computeResources": {"type": kind, "maxvCpus": 16, "instanceTypes": ["m5"], **resources}}


def job(status: str = "SUCCEEDED", vcpus: str = "1", memory: str = "2048", runs: tuple[int, ...] = (3600,),
        **extra: Any) -> dict[str, Any]:
    attempts = [{"startedAt": T0 + i * 10**7, "stoppedAt": T0 + i * 10**7 + s * 1000, "container": {}}
                for i, s in enumerate(runs)]
    return {"jobId": "j", "status": status, "attempts": attempts, "jobQueue": "q",
            "container": {"resourceRequirements": [{"type": "VCPU", "value": vcpus},
                                                   {"type": "MEMORY", "value": memory}]}, **extra}


def test_ec2_prices_the_share_of_the_cheapest_instance_that_holds_it() -> None:
    cost = job_cost(job(), ce(), CATALOG, PRICES, T0)
    # m5.large holds 1 vCPU and 2048 MiB: half its vCPUs (the larger share), for one hour.
    assert cost.compute_usd == pytest.approx(0.096 * 0.5)
    assert "m5.large" in cost.basis and cost.final and cost.seconds == 3600


def test_memory_share_counts_when_it_is_the_larger() -> None:
    usable = capacity.InstanceType("m5.large", 2, 8192, 0, 0.096).usable_memory_mib
    cost = job_cost(job(memory=str(usable)), ce(), CATALOG, PRICES, T0)
    assert cost.compute_usd == pytest.approx(0.096)  # all of its memory: the whole instance


def test_spot_is_a_fraction_capped_by_the_bid() -> None:
    assert job_cost(job(), ce("SPOT"), CATALOG, PRICES, T0).compute_usd == pytest.approx(0.048 * 0.4)
    capped = job_cost(job(), ce("SPOT", bidPercentage=25), CATALOG, PRICES, T0)
    assert capped.compute_usd == pytest.approx(0.048 * 0.25)


def test_fargate_bills_vcpu_and_gb_with_a_one_minute_minimum() -> None:
    hourly = 0.5 * 0.04 + 1 * 0.004
    full = job_cost(job(vcpus="0.5", memory="1024"), ce("FARGATE"), CATALOG, PRICES, T0)
    assert full.compute_usd == pytest.approx(hourly)
    short = job_cost(job(vcpus="0.5", memory="1024", runs=(5, 90)), ce("FARGATE"), CATALOG, PRICES, T0)
    assert short.compute_usd == pytest.approx(hourly * (60 + 90) / 3600)
    spot = job_cost(job(vcpus="0.5", memory="1024"), ce("FARGATE_SPOT"), CATALOG, PRICES, T0)
    assert spot.compute_usd == pytest.approx(hourly * 0.3)


def test_a_running_job_costs_so_far_and_is_not_final() -> None:
    running = job(status="RUNNING", runs=(), startedAt=T0)
    cost = job_cost(running, ce(), CATALOG, PRICES, T0 + 1800_000)
    assert cost.compute_usd == pytest.approx(0.048 / 2) and not cost.final


def test_what_has_no_price() -> None:
    unmanaged = {"computeEnvironmentName": "env", "type": "UNMANAGED"}
    assert job_cost(job(), unmanaged, CATALOG, PRICES, T0).compute_usd is None
    assert job_cost(job(), None, CATALOG, PRICES, T0).compute_usd is None
    huge = job_cost(job(vcpus="64"), ce(), CATALOG, PRICES, T0)
    assert huge.compute_usd is None and "holds it" in huge.basis
    never = job_cost(job(status="FAILED", runs=()), ce(), CATALOG, PRICES, T0)
    assert never.compute_usd == 0.0


def test_a_node_of_a_multinode_job_pays_for_its_instance_and_the_job_is_its_nodes() -> None:
    node = job(nodeDetails={"nodeIndex": 1, "isMainNode": False}, nodeProperties={"numNodes": 2, "mainNode": 0})
    cost = job_cost(node, ce(), CATALOG, PRICES, T0)
    assert cost.compute_usd == pytest.approx(0.096) and "a node alone on it" in cost.basis  # all of m5.large
    parent = job_cost(job(nodeProperties={"numNodes": 2, "mainNode": 0}), ce(), CATALOG, PRICES, T0)
    assert parent.compute_usd is None and "its nodes'" in parent.basis


def test_control_plane_counts_attempts_edges_and_children() -> None:
    retried = job(runs=(10, 10, 10), dependsOn=[{"jobId": "a"}, {"jobId": "b"}])
    assert job_cost(retried, ce(), CATALOG, PRICES, T0).control_plane_usd == pytest.approx(1e-5 + 2 * 2e-6 + 2 * 4e-6)
    child = job(arrayProperties={"index": 3})
    assert job_cost(child, ce(), CATALOG, PRICES, T0).control_plane_usd == pytest.approx(3e-6)
    parent = job(runs=(), arrayProperties={"size": 2})
    assert job_cost(parent, ce(), CATALOG, PRICES, T0).control_plane_usd == 0


def test_an_array_is_its_children_summed() -> None:
    kids = [JobCost(0.5, 1e-6, 10, "", True), JobCost(None, 1e-6, 0, "", True), JobCost(0.25, 1e-6, 5, "", False)]
    cost = array_cost({"status": "RUNNING"}, kids)
    assert (cost.compute_usd, cost.control_plane_usd, cost.seconds) == (0.75, pytest.approx(3e-6), 15)
    assert not cost.final and "2 of them priced" in cost.basis


def test_totals_by_key() -> None:
    rows = [("q1", JobCost(1.0, 0.1, 10, "", True)), ("q2", JobCost(None, 0.1, 0, "", True)),
            ("q1", JobCost(2.0, 0.1, 20, "", True))]
    out = totals(rows)
    assert (out["q1"].jobs, out["q1"].priced, out["q1"].compute_usd, out["q1"].seconds) == (2, 2, 3.0, 30)
    assert out["q1"].total_usd == pytest.approx(3.2)
    assert (out["q2"].jobs, out["q2"].priced) == (1, 0)


def test_environment_from_the_container_instance_else_the_queue() -> None:
    envs = {"a": ce(), "b": ce()}
    queue = {"computeEnvironmentOrder": [{"order": 2, "computeEnvironment": "arn:x:compute-environment/b"},
                                         {"order": 1, "computeEnvironment": "arn:x:compute-environment/a"}]}
    aws = job(container={"containerInstanceArn": "arn:aws:ecs:r:1:container-instance/b_Batch_1a2b/abc"})
    assert environment_name(aws, queue, envs) == "b"
    local = job(container={"containerInstanceArn": "arn:aws:ecs:r:1:container-instance/b/i-123"})
    assert environment_name(local, queue, envs) == "b"
    assert environment_name(job(), queue, envs) == "a"  # first in order
    assert environment_name(job(), None, envs) is None


def test_price_table_errors_name_the_entry() -> None:
    doc = json.loads(PRICES_PATH.read_text())
    assert Prices.from_json(doc).job > 0
    del doc["compute"]["fargate_gb_hour"]
    with pytest.raises(PriceTableError, match="compute.fargate_gb_hour.usd"):
        Prices.from_json(doc, "mine.json")
    doc = json.loads(PRICES_PATH.read_text())
    doc["compute"]["ec2_spot_fraction"]["value"] = 3
    with pytest.raises(PriceTableError, match="fraction"):
        Prices.from_json(doc)


def test_load_prices_from_a_file_of_the_users(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.loads(PRICES_PATH.read_text())
    doc["control_plane"]["job"]["usd"] = 0.5
    mine = tmp_path / "prices.json"
    mine.write_text(json.dumps(doc))
    monkeypatch.setenv("BATCHPLANE_PRICES", str(mine))
    assert load_prices().job == 0.5
    with pytest.raises(PriceTableError, match="cannot read"):
        load_prices(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PriceTableError, match="not valid JSON"):
        load_prices(tmp_path / "bad.json")


def test_format_usd() -> None:
    assert [format_usd(x) for x in (None, 0, 12.345, 0.048, 0.0000123)] == ["-", "$0.00", "$12.35", "$0.05",
                                                                            "$0.0000123"]
