"""Local mode's virtual instances: shaped as the provisioner would choose, tasks packed
onto them by vCPUs, memory and GPUs, never more than maxvCpus of them."""

from __future__ import annotations

from typing import Any

from batchplane.domain.capacity import Shape
from batchplane.local.instances import DevicePool, VirtualFleet


def _ce(max_vcpus: int, types: list[str], strategy: str = "BEST_FIT") -> dict[str, Any]:
    return {"computeEnvironmentName": "ce", "type": "MANAGED", "computeResources": {
        "type": "EC2", "maxvCpus": max_vcpus, "instanceTypes": types, "allocationStrategy": strategy}}


ONE = Shape(mvcpus=1000, memory_mib=1024)


def test_tasks_fill_an_instance_before_another_is_added() -> None:
    fleet, ce = VirtualFleet(), _ce(4, ["m5.large"])  # 2 vCPUs, 8 GiB each
    placed = [fleet.place(ce, f"t{n}", ONE) for n in range(4)]
    assert all(p is not None for p in placed)
    ids = [p.instance_id for p in placed if p]
    assert ids[0] == ids[1] != ids[2] == ids[3]
    assert {p.type.name for p in placed if p and p.type} == {"m5.large"}
    assert fleet.place(ce, "t4", ONE) is None  # 4 vCPUs of instances: maxvCpus reached


def test_memory_limits_what_an_instance_holds() -> None:
    fleet, ce = VirtualFleet(), _ce(4, ["m5.large"])
    big = Shape(mvcpus=1000, memory_mib=6000)  # one per m5.large (7.9 GiB usable)
    first, second = fleet.place(ce, "a", big), fleet.place(ce, "b", big)
    assert first and second and first.instance_id != second.instance_id
    assert fleet.place(ce, "c", big) is None  # vCPUs remain, but no instance can hold it
    fleet.release("a")
    again = fleet.place(ce, "c", big)
    assert again is not None and again.instance_id == first.instance_id


def test_the_type_is_the_cheapest_that_fits_and_may_overshoot_by_less_than_one_instance() -> None:
    fleet, ce = VirtualFleet(), _ce(3, ["m5"])
    small = fleet.place(ce, "a", ONE)
    assert small and small.type and small.type.name == "m5.large"
    large = fleet.place(ce, "b", Shape(mvcpus=2000, memory_mib=12000))  # 2 + 4 vCPUs of instances
    assert large and large.type and large.type.name == "m5.xlarge"
    assert fleet.place(ce, "c", Shape(mvcpus=1000, memory_mib=2000)) is not None  # the large's rest
    assert fleet.place(ce, "d", Shape(mvcpus=3000, memory_mib=1024)) is None  # 6 vCPUs >= 3: no more


def test_an_idle_instance_makes_way_for_one_of_another_type() -> None:
    fleet, ce = VirtualFleet(), _ce(2, ["m5", "r5"])
    first = fleet.place(ce, "a", ONE)
    fleet.release("a")
    memory_heavy = fleet.place(ce, "b", Shape(mvcpus=1000, memory_mib=14000))
    assert first and memory_heavy and memory_heavy.instance_id != first.instance_id
    assert memory_heavy.type and memory_heavy.type.name == "r5.large"
    assert [i.instance_id for i in fleet.instances["ce"]] == [memory_heavy.instance_id]


def test_gpus_are_counted() -> None:
    fleet, ce = VirtualFleet(), _ce(16, ["p3.2xlarge"])  # 8 vCPUs, 1 GPU
    gpu = Shape(mvcpus=1000, memory_mib=1024, gpus=1)
    a, b = fleet.place(ce, "a", gpu), fleet.place(ce, "b", gpu)
    assert a and b and a.instance_id != b.instance_id
    assert fleet.place(ce, "c", gpu) is None


def test_a_removed_instance_takes_no_more_tasks() -> None:
    fleet, ce = VirtualFleet(), _ce(4, ["m5.large"])
    first = fleet.place(ce, "a", ONE)
    assert first is not None
    fleet.remove(first.instance_id)
    fleet.release("a")  # its task's end arrives later: nothing to do
    second = fleet.place(ce, "b", ONE)
    assert second is not None and second.instance_id != first.instance_id


def test_fargate_and_unmanaged_environments_get_one_host_without_a_shape() -> None:
    fleet = VirtualFleet()
    fargate = {"computeEnvironmentName": "fg", "type": "MANAGED",
               "computeResources": {"type": "FARGATE", "maxvCpus": 1}}
    unmanaged = {"computeEnvironmentName": "um", "type": "UNMANAGED"}
    for ce in (fargate, unmanaged):
        hosts = {p.instance_id for p in (fleet.place(ce, f"{ce['computeEnvironmentName']}{n}", ONE)
                                         for n in range(3)) if p}
        assert len(hosts) == 1


def test_a_node_of_a_multinode_job_takes_an_instance_of_its_own() -> None:
    fleet, ce = VirtualFleet(), _ce(8, ["m5.xlarge"])  # 4 vCPUs each
    shared = fleet.place(ce, "job", ONE)
    node = fleet.place(ce, "node", ONE, exclusive=True)
    assert shared and node and node.instance_id != shared.instance_id
    assert node.address != shared.address and node.address.startswith("127.0.0.")
    assert fleet.place(ce, "another", ONE).instance_id == shared.instance_id  # not beside the node
    assert fleet.place(ce, "node2", ONE, exclusive=True) is None  # 8 vCPUs of instances already
    fleet.release("node")
    assert fleet.place(ce, "after", ONE).instance_id in (shared.instance_id, node.instance_id)


def test_hosts_without_a_shape_give_each_node_its_own() -> None:
    fleet = VirtualFleet()
    ce = {"computeEnvironmentName": "u", "type": "UNMANAGED"}
    a, b = fleet.place(ce, "a", ONE, exclusive=True), fleet.place(ce, "b", ONE, exclusive=True)
    plain = fleet.place(ce, "c", ONE)
    assert a and b and plain and len({a.instance_id, b.instance_id, plain.instance_id}) == 3
    assert len({a.address, b.address, plain.address}) == 3


def test_each_gpu_goes_to_one_attempt_at_a_time() -> None:
    pool = DevicePool.of_machine(3)
    assert pool.take("a", 2) == ["0", "1"]
    assert pool.take("b", 2) is None  # one free
    assert pool.take("c", 1) == ["2"]
    pool.release("a")
    assert pool.take("b", 2) == ["0", "1"]
    pool.adopt("d", ["2", "7"])  # a device this machine has not got is dropped
    assert pool.held["d"] == ["2"]
