"""domain.capacity: instance types, desired vCPUs, demand assignment and scale-in."""

from __future__ import annotations

from typing import Any

import pytest
from batchplane.domain.capacity import (
    Catalog,
    Environment,
    InstanceType,
    QueueDemand,
    Shape,
    Waiting,
    assign,
    choose_types,
    default_catalog,
    plan,
    settle,
    spot_max_price,
)
from hypothesis import given, settings
from hypothesis import strategies as st

CATALOG = default_catalog()
STRATEGIES = [
    "BEST_FIT",
    "BEST_FIT_PROGRESSIVE",
    "SPOT_CAPACITY_OPTIMIZED",
    "SPOT_PRICE_CAPACITY_OPTIMIZED",
]
FAMILIES = sorted({t.family for t in CATALOG.types.values()})


def resources(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "EC2",
        "minvCpus": 0,
        "maxvCpus": 256,
        "desiredvCpus": 0,
        "instanceTypes": ["m5"],
        "allocationStrategy": "BEST_FIT",
    }
    out.update(kw)
    return out


def shape(vcpus: float = 1, memory: int = 1024, gpus: int = 0) -> Shape:
    return Shape(mvcpus=int(vcpus * 1000), memory_mib=memory, gpus=gpus)


# -- the catalog -----------------------------------------------------------------------


def test_catalog_has_the_families_the_provisioner_supports() -> None:
    for family in ("c5", "m5", "r5", "c6i", "m6i", "r6i", "g4dn", "p3"):
        assert any(t.family == family for t in CATALOG.types.values()), family
    assert CATALOG.types["m5.xlarge"] == InstanceType("m5.xlarge", 4, 16384, 0, 0.192)
    assert CATALOG.types["p3.2xlarge"].gpus == 1


def test_resolve_families_sizes_and_keywords() -> None:
    types, unknown = CATALOG.resolve(["m5", "c5.xlarge", "nope", "x9.huge"])
    names = {t.name for t in types}
    assert "c5.xlarge" in names and "c5.large" not in names
    assert {t.name for t in types if t.family == "m5"} == {
        n for n in CATALOG.types if n.startswith("m5.")
    }
    assert unknown == ["nope", "x9.huge"]
    optimal, _ = CATALOG.resolve(["optimal"])
    assert {t.family for t in optimal} == {"c6i", "m6i", "r6i", "c7i"}
    assert CATALOG.resolve(["optimal"])[0] == CATALOG.resolve(["default_x86_64"])[0]


def test_usable_memory_leaves_room_for_the_agent() -> None:
    m5_large = CATALOG.types["m5.large"]
    assert m5_large.fits(shape(2, 7000))
    assert not m5_large.fits(shape(2, 8192))  # all installed memory: needs the next size


# -- instance type choice --------------------------------------------------------------


def test_best_fit_is_the_cheapest_type_that_fits_the_largest_job() -> None:
    types, _ = CATALOG.resolve(["c5", "m5", "r5"])
    assert [t.name for t in choose_types(types, [shape(1, 1024)], "BEST_FIT")] == ["c5.large"]
    # 6 GiB does not fit a c5.large (4 GiB): an m5.large (8 GiB) is cheaper than c5.xlarge.
    assert [t.name for t in choose_types(types, [shape(1, 6000)], "BEST_FIT")] == ["m5.large"]
    assert [t.name for t in choose_types(types, [shape(1, 1024), shape(3, 2048)], "BEST_FIT")] == [
        "c5.xlarge"
    ]


def test_best_fit_progressive_adds_types_by_price_per_vcpu() -> None:
    types, _ = CATALOG.resolve(["c5", "m5", "r5"])
    chosen = choose_types(types, [shape(2, 3000)], "BEST_FIT_PROGRESSIVE")
    assert chosen[0].name == "c5.large"
    per_vcpu = [t.price_per_vcpu for t in chosen[1:]]
    assert per_vcpu == sorted(per_vcpu)
    assert {t.family for t in chosen} == {"c5", "m5", "r5"}


def test_gpu_jobs_get_gpu_instances() -> None:
    types, _ = CATALOG.resolve(["m5", "g4dn", "p3"])
    assert [t.name for t in choose_types(types, [shape(4, 8000, gpus=1)], "BEST_FIT")] == [
        "g4dn.xlarge"
    ]
    # Six vCPUs: the next g4dn size is cheaper than a p3.
    assert [t.name for t in choose_types(types, [shape(6, 8000, gpus=1)], "BEST_FIT")] == [
        "g4dn.2xlarge"
    ]
    assert choose_types(types, [shape(2, 8000, gpus=4)], "BEST_FIT")[0].name == "g4dn.12xlarge"


def test_no_type_fits_every_dimension_serves_the_largest_job() -> None:
    types, _ = CATALOG.resolve(["g4dn", "r5"])
    chosen = choose_types(types, [shape(1, 1024, gpus=1), shape(2, 700_000)], "BEST_FIT")
    assert chosen and chosen[0].gpus >= 1


# -- plans -----------------------------------------------------------------------------


def test_idle_environment_plans_min_vcpus() -> None:
    p = plan(resources(minvCpus=4, desiredvCpus=16), waiting=[], active=[], catalog=CATALOG)
    assert p.desired_vcpus == 4 and p.instance_types[0].name == "m5.large"


def test_desired_is_whole_instances_of_the_chosen_type() -> None:
    p = plan(
        resources(instanceTypes=["m5.xlarge"]), waiting=[shape(1)] * 5, active=[], catalog=CATALOG
    )
    assert p.desired_vcpus == 8  # five 1-vCPU jobs on 4-vCPU instances: two instances
    assert p.instances == 2


def test_memory_bound_jobs_need_more_instances_than_their_vcpus() -> None:
    p = plan(
        resources(instanceTypes=["m5.xlarge"]),
        waiting=[shape(1, 12_000)] * 4,
        active=[],
        catalog=CATALOG,
    )
    assert p.desired_vcpus == 16  # one 12 GiB job per 16 GiB instance


def test_running_jobs_keep_their_capacity() -> None:
    p = plan(resources(), waiting=[shape(2)], active=[shape(2)] * 3, catalog=CATALOG)
    assert p.desired_vcpus == 8


def test_desired_is_capped_at_max_and_the_group_overshoots_by_less_than_one_instance() -> None:
    p = plan(
        resources(maxvCpus=5, instanceTypes=["m5.xlarge"]),
        waiting=[shape(1)] * 5,
        active=[],
        catalog=CATALOG,
    )
    assert p.desired_vcpus == 5
    assert p.instances * 4 == 8 < 5 + 4


def test_unknown_instance_types_are_a_problem() -> None:
    p = plan(
        resources(instanceTypes=["x9"], desiredvCpus=2),
        waiting=[shape()],
        active=[],
        catalog=CATALOG,
    )
    assert p.problem and "x9" in p.problem and p.problem.startswith("CLIENT_ERROR")
    assert p.instance_types == () and p.desired_vcpus == 2


def test_progressive_and_spot_lists_leave_out_instances_larger_than_the_demand() -> None:
    p = plan(
        resources(instanceTypes=["c5", "m5"], allocationStrategy="BEST_FIT_PROGRESSIVE"),
        waiting=[shape(1)] * 3,
        active=[],
        catalog=CATALOG,
    )
    assert p.desired_vcpus == 4
    assert all(t.vcpus <= 4 for t in p.instance_types)


def test_spot_plans_map_the_allocation_strategy() -> None:
    def spot(strategy: str, **kw: Any) -> Any:
        return plan(
            resources(type="SPOT", allocationStrategy=strategy, instanceTypes=["c5", "m5"], **kw),
            waiting=[shape(2)] * 8,
            active=[],
            catalog=CATALOG,
        )

    assert spot("SPOT_CAPACITY_OPTIMIZED").spot_strategy == "capacity-optimized"
    assert spot("SPOT_PRICE_CAPACITY_OPTIMIZED").spot_strategy == "price-capacity-optimized"
    best = spot("BEST_FIT")
    assert (best.spot_strategy, best.spot_pools, len(best.instance_types)) == ("lowest-price", 1, 1)
    assert spot("BEST_FIT_PROGRESSIVE").spot_pools == 2
    assert spot("SPOT_CAPACITY_OPTIMIZED").spot_pools is None
    capped = spot("SPOT_CAPACITY_OPTIMIZED", bidPercentage=50)
    assert capped.spot_max_price == "0.02125"  # half of c5's $0.0425 per vCPU-hour
    assert spot("SPOT_CAPACITY_OPTIMIZED", bidPercentage=100).spot_max_price is None


def test_spot_max_price_never_exceeds_any_types_percentage() -> None:
    types, _ = CATALOG.resolve(["c5", "r5"])
    cap = float(spot_max_price(40, types) or 0)
    assert all(cap <= 0.4 * t.price_per_vcpu + 1e-9 for t in types)


def test_gpu_plans_ask_for_the_gpu_image() -> None:
    p = plan(
        resources(instanceTypes=["g4dn"]), waiting=[shape(1, 1024, 1)], active=[], catalog=CATALOG
    )
    assert p.gpu and p.instance_types[0].name == "g4dn.xlarge"


# -- properties ------------------------------------------------------------------------

shapes = st.builds(
    Shape,
    mvcpus=st.sampled_from([250, 500, 1000, 2000, 3000, 4000, 8000, 16_000]),
    memory_mib=st.integers(min_value=4, max_value=200_000),
    gpus=st.sampled_from([0, 0, 0, 1, 4]),
)
instance_types = st.lists(
    st.one_of(
        st.sampled_from(FAMILIES),
        st.sampled_from(sorted(CATALOG.types)),
        st.sampled_from(["optimal", "default_x86_64"]),
    ),
    min_size=1,
    max_size=4,
)


@st.composite
def environments(draw: st.DrawFn) -> dict[str, Any]:
    floor = draw(st.integers(min_value=0, max_value=64))
    ceiling = draw(st.integers(min_value=max(floor, 1), max_value=1024))
    return resources(
        type=draw(st.sampled_from(["EC2", "SPOT"])),
        minvCpus=floor,
        maxvCpus=ceiling,
        desiredvCpus=draw(st.integers(min_value=floor, max_value=ceiling)),
        instanceTypes=draw(instance_types),
        allocationStrategy=draw(st.sampled_from(STRATEGIES)),
        bidPercentage=draw(st.integers(min_value=0, max_value=100)),
    )


@settings(max_examples=100, deadline=None)
@given(environments(), st.lists(shapes, max_size=40), st.lists(shapes, max_size=20))
def test_desired_stays_within_min_and_max_plus_one_instance(
    cr: dict[str, Any], waiting: list[Shape], active: list[Shape]
) -> None:
    if cr["type"] == "EC2" and cr["allocationStrategy"] not in ("BEST_FIT", "BEST_FIT_PROGRESSIVE"):
        cr["allocationStrategy"] = "BEST_FIT"
    p = plan(cr, waiting=waiting, active=active, catalog=CATALOG)
    assert cr["minvCpus"] <= p.desired_vcpus <= cr["maxvCpus"]
    if p.instance_types:
        first = p.instance_types[0]
        # What the weighted group launches: whole instances, less than one over max.
        assert p.instances * first.vcpus >= p.desired_vcpus
        assert p.instances * first.vcpus < cr["maxvCpus"] + first.vcpus
        assert len(p.instance_types) <= 40
        assert len({t.name for t in p.instance_types}) == len(p.instance_types)


@settings(max_examples=100, deadline=None)
@given(instance_types, st.lists(shapes, min_size=1, max_size=20), st.sampled_from(STRATEGIES))
def test_every_chosen_type_fits_the_largest_waiting_job(
    entries: list[str], waiting: list[Shape], strategy: str
) -> None:
    available, _ = CATALOG.resolve(entries)
    placeable = [s for s in waiting if any(t.fits(s) for t in available)]
    chosen = choose_types(available, placeable, strategy)
    if not placeable:
        # Nothing waits: the cheapest type, for the minvCpus capacity.
        assert chosen[0] == min(available, key=lambda t: (t.price, t.vcpus, t.name))
        return
    assert chosen
    biggest = Shape(
        max(s.mvcpus for s in placeable),
        max(s.memory_mib for s in placeable),
        max(s.gpus for s in placeable),
    )
    if any(t.fits(biggest) for t in available):
        assert all(t.fits(biggest) for t in chosen)
        if strategy == "BEST_FIT":
            # ... and under BEST_FIT it is the cheapest such type.
            assert len(chosen) == 1
            assert all(chosen[0].price <= t.price for t in available if t.fits(biggest))
    else:
        top = max(placeable, key=lambda s: (s.gpus, s.mvcpus, s.memory_mib))
        assert all(t.fits(top) for t in chosen)


@settings(max_examples=100, deadline=None)
@given(
    target=st.integers(0, 300),
    current=st.integers(0, 300),
    floor=st.integers(0, 50),
    span=st.integers(1, 250),
    enabled=st.booleans(),
    low_since=st.none() | st.integers(0, 10_000),
    now=st.integers(10_000, 20_000),
)
def test_settle_scales_out_at_once_in_only_after_the_delay_and_never_out_when_disabled(
    target: int, current: int, floor: int, span: int, enabled: bool, low_since: int | None, now: int
) -> None:
    ceiling = floor + span
    desired, since = settle(
        target,
        current,
        floor=floor,
        ceiling=ceiling,
        enabled=enabled,
        low_since=low_since,
        now_ms=now,
        scale_in_after_ms=5000,
    )
    held = max(floor, min(current, ceiling))
    wanted = max(floor, min(target, ceiling))
    assert floor <= desired <= ceiling
    if not enabled:
        assert desired <= held
    elif wanted >= held:
        assert (desired, since) == (wanted, None)
    if wanted < held:
        waited = now - (now if low_since is None else low_since)
        assert (desired, since) == ((wanted, None) if waited >= 5000 else (held, low_since or now))


def test_idle_scale_in_happens_after_the_delay() -> None:
    assert settle(
        0,
        16,
        floor=2,
        ceiling=64,
        enabled=True,
        low_since=None,
        now_ms=1000,
        scale_in_after_ms=300_000,
    ) == (16, 1000)
    assert settle(
        0,
        16,
        floor=2,
        ceiling=64,
        enabled=True,
        low_since=1000,
        now_ms=301_000,
        scale_in_after_ms=300_000,
    ) == (2, None)
    assert settle(
        32, 16, floor=2, ceiling=64, enabled=False, low_since=None, now_ms=0, scale_in_after_ms=0
    ) == (16, None)


# -- demand assignment -----------------------------------------------------------------


def _env(
    arn: str,
    max_vcpus: int | None,
    *,
    enabled: bool = True,
    platform: str = "EC2",
    families: list[str] | None = None,
) -> Environment:
    types = None if families is None else tuple(CATALOG.resolve(families)[0])
    return Environment(
        arn, enabled, platform, None if max_vcpus is None else max_vcpus * 1000, types
    )


def test_waiting_jobs_fill_environments_in_order_then_stay_with_the_first() -> None:
    envs = {"a": _env("a", 4, families=["m5"]), "b": _env("b", 4, families=["m5"])}
    queue = QueueDemand("q", 1, ("a", "b"), tuple(Waiting(shape(1)) for _ in range(10)))
    out = assign([queue], envs, {"a": [shape(1)]})
    assert len(out["a"]) == 3 + 3 and len(out["b"]) == 4  # a: 3 free + the overflow


def test_jobs_skip_disabled_mismatched_and_too_small_environments() -> None:
    envs = {
        "off": _env("off", 64, enabled=False, families=["m5"]),
        "fargate": _env("fargate", 64, platform="FARGATE"),
        "small": _env("small", 2, families=["m5"]),
        "gpu": _env("gpu", 64, families=["g4dn"]),
    }
    queue = QueueDemand(
        "q",
        1,
        ("off", "fargate", "small", "gpu"),
        (
            Waiting(shape(4)),
            Waiting(shape(1), "FARGATE"),
            Waiting(shape(1, 1024, 1)),
            Waiting(shape(512)),
        ),
    )
    out = assign([queue], envs, {})
    assert out == {"gpu": [shape(4), shape(1, 1024, 1)], "fargate": [shape(1)]}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), shapes, st.sampled_from(["EC2", "FARGATE"])), max_size=30
    ),
    st.lists(
        st.tuples(st.booleans(), st.integers(1, 64), st.sampled_from(["EC2", "FARGATE"])),
        min_size=1,
        max_size=4,
    ),
)
def test_every_assigned_job_can_run_where_it_is_assigned(
    jobs: list[tuple[int, Shape, str]], specs: list[tuple[bool, int, str]]
) -> None:
    envs = {
        f"e{i}": _env(
            f"e{i}", m, enabled=on, platform=p, families=["m5", "g4dn"] if p == "EC2" else None
        )
        for i, (on, m, p) in enumerate(specs)
    }
    order = tuple(envs)
    queues = [
        QueueDemand(
            f"q{n}",
            n,
            order[n % len(order) :] + order[: n % len(order)],
            tuple(Waiting(s, p) for q, s, p in jobs if q == n),
        )
        for n in range(4)
    ]
    out = assign(queues, envs, {})
    assigned = sum(len(v) for v in out.values())
    runnable = sum(1 for _, s, p in jobs if any(e.can_run(p, s) for e in envs.values()))
    assert assigned == runnable
    for arn, assigned_shapes in out.items():
        assert all(envs[arn].enabled for _ in assigned_shapes)


def test_catalog_from_json_round_trip() -> None:
    cat = Catalog.from_json(
        {
            "instanceTypes": {
                "z1.large": {"vcpus": 2, "memoryMiB": 16384, "onDemandUsdPerHour": 0.186}
            }
        }
    )
    assert cat.resolve(["z1"])[0][0].gpus == 0


@pytest.mark.parametrize("entry", ["optimal", "m5", "c5.2xlarge", "g4dn", "p3"])
def test_every_resolvable_entry_plans_something(entry: str) -> None:
    p = plan(resources(instanceTypes=[entry]), waiting=[shape(1)], active=[], catalog=CATALOG)
    assert p.instance_types and p.problem is None
