"""scheduling.plan: which RUNNABLE jobs start now, where, and why the others wait."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from batchplane.domain.capacity import InstanceType
from batchplane.domain.fairshare import FairShare
from batchplane.domain.scheduling import (
    MISCONFIGURED,
    NO_CAPACITY,
    NO_ENVIRONMENT,
    Candidate,
    Environment,
    Plan,
    Queue,
    Running,
    plan,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def env(
    name: str,
    max_vcpus: float | None,
    *,
    used: float = 0,
    enabled: bool = True,
    platform: str = "EC2",
) -> Environment:
    return Environment(
        name=name,
        enabled=enabled,
        platform=platform,
        max_mvcpus=None if max_vcpus is None else int(max_vcpus * 1000),
        used_mvcpus=int(used * 1000),
    )


def job(
    job_id: str,
    queue: str = "q",
    vcpus: float = 1,
    *,
    platform: str = "EC2",
    reason: str | None = None,
) -> Candidate:
    return Candidate(
        job_id=job_id, queue=queue, mvcpus=int(vcpus * 1000), platform=platform, reason=reason
    )


def _plan(queues: list[Queue], envs: list[Environment], jobs: list[Candidate]) -> Plan:
    runnable: dict[str, list[Candidate]] = {}
    for j in jobs:
        runnable.setdefault(j.queue, []).append(j)
    return plan(queues, {e.name: e for e in envs}, runnable)


def run(
    queues: list[Queue], envs: list[Environment], jobs: list[Candidate]
) -> tuple[dict[str, str], dict[str, str]]:
    """placements {job id: environment}, reasons {job id: reason}."""
    result = _plan(queues, envs, jobs)
    return {j.job_id: ce for j, ce in result.placements}, result.reasons


def placed_order(queues: list[Queue], envs: list[Environment], jobs: list[Candidate]) -> list[str]:
    return [j.job_id for j, _ in _plan(queues, envs, jobs).placements]


# -- order -----------------------------------------------------------------------------


def test_higher_priority_queue_goes_first_whatever_the_list_order() -> None:
    queues = [Queue("low", 1, ["ce"]), Queue("high", 100, ["ce"])]
    placed, reasons = run(queues, [env("ce", 1)], [job("l1", "low"), job("h1", "high")])
    assert placed == {"h1": "ce"}
    assert reasons == {"l1": NO_CAPACITY}


def test_equal_priorities_are_served_by_name() -> None:
    queues = [Queue("b", 5, ["ce"]), Queue("a", 5, ["ce"])]
    assert placed_order(queues, [env("ce", 1)], [job("b1", "b"), job("a1", "a")]) == ["a1"]


def test_fifo_within_a_queue() -> None:
    jobs = [job(f"j{i}") for i in range(5)]
    assert placed_order([Queue("q", 1, ["ce"])], [env("ce", 3)], jobs) == ["j0", "j1", "j2"]


def test_placements_follow_queue_then_list_order() -> None:
    queues = [Queue("low", 1, ["ce"]), Queue("high", 2, ["ce"])]
    jobs = [job("l1", "low"), job("h1", "high"), job("l2", "low"), job("h2", "high")]
    assert placed_order(queues, [env("ce", None)], jobs) == ["h1", "h2", "l1", "l2"]


def test_compute_environments_are_tried_in_queue_order() -> None:
    envs = [env("first", 2), env("second", 2)]
    placed, _ = run([Queue("q", 1, ["first", "second"])], envs, [job(f"j{i}") for i in range(4)])
    assert placed == {"j0": "first", "j1": "first", "j2": "second", "j3": "second"}
    placed, _ = run(
        [Queue("q", 1, ["second", "first"])], [env("first", 2), env("second", 2)], [job("j0")]
    )
    assert placed == {"j0": "second"}


def test_a_job_too_big_for_the_first_environment_uses_the_next() -> None:
    placed, _ = run(
        [Queue("q", 1, ["small", "big"])], [env("small", 2), env("big", 16)], [job("j", vcpus=8)]
    )
    assert placed == {"j": "big"}


# -- capacity --------------------------------------------------------------------------


def test_capacity_is_counted_in_milli_vcpus() -> None:
    jobs = [job(f"q{i}", vcpus=0.25) for i in range(5)]
    placed, reasons = run([Queue("q", 1, ["ce"])], [env("ce", 1)], jobs)
    assert sorted(placed) == ["q0", "q1", "q2", "q3"]
    assert reasons == {"q4": NO_CAPACITY}


def test_fractions_add_up_exactly_to_the_maximum() -> None:
    placed, _ = run(
        [Queue("q", 1, ["ce"])], [env("ce", 2)], [job("a", vcpus=1.5), job("b", vcpus=0.5)]
    )
    assert set(placed) == {"a", "b"}


def test_running_jobs_count_against_the_maximum() -> None:
    placed, reasons = run(
        [Queue("q", 1, ["ce"])], [env("ce", 4, used=3.5)], [job("a"), job("b", vcpus=0.5)]
    )
    assert placed == {"b": "ce"}
    assert reasons == {"a": NO_CAPACITY}


def test_an_environment_shrunk_below_its_usage_takes_nothing_but_is_not_misconfigured() -> None:
    # UpdateComputeEnvironment lowered maxvCpus while jobs run: wait, do not give up.
    placed, reasons = run([Queue("q", 1, ["ce"])], [env("ce", 2, used=4)], [job("j", vcpus=0.25)])
    assert placed == {}
    assert reasons == {"j": NO_CAPACITY}


def test_plan_records_the_capacity_it_hands_out() -> None:
    ce = env("ce", 8, used=1)
    plan([Queue("q", 1, ["ce"])], {"ce": ce}, {"q": [job("a", vcpus=2), job("b", vcpus=0.5)]})
    assert ce.used_mvcpus == 3500


def test_shared_environment_is_shared_across_queues() -> None:
    queues = [Queue("a", 10, ["ce"]), Queue("b", 5, ["ce", "other"])]
    placed, _ = run(queues, [env("ce", 2), env("other", 1)], [job("a1", "a", 2), job("b1", "b", 1)])
    assert placed == {"a1": "ce", "b1": "other"}


def test_no_ceiling_takes_everything() -> None:
    placed, reasons = run(
        [Queue("q", 1, ["u"])], [env("u", None)], [job(f"j{i}", vcpus=64) for i in range(20)]
    )
    assert len(placed) == 20
    assert reasons == {}


# -- backfill and reasons --------------------------------------------------------------


def test_a_big_job_does_not_block_smaller_jobs_behind_it() -> None:
    placed, reasons = run(
        [Queue("q", 1, ["ce"])], [env("ce", 4, used=2)], [job("big", vcpus=4), job("small")]
    )
    assert placed == {"small": "ce"}
    assert reasons == {"big": NO_CAPACITY}


def test_a_job_bigger_than_every_environment_is_misconfigured() -> None:
    queues = [Queue("q", 1, ["a", "b"])]
    placed, reasons = run(
        queues, [env("a", 2), env("b", 4)], [job("huge", vcpus=5), job("ok", vcpus=4)]
    )
    assert placed == {"ok": "b"}
    assert reasons == {"huge": MISCONFIGURED}


def test_fits_somewhere_eventually_means_no_capacity_not_misconfigured() -> None:
    _, reasons = run(
        [Queue("q", 1, ["a", "b"])], [env("a", 2), env("b", 8, used=8)], [job("j", vcpus=4)]
    )
    assert reasons == {"j": NO_CAPACITY}


@pytest.mark.parametrize(
    "envs",
    [
        [],  # the queue's environments were deleted
        [env("ce", 8, enabled=False)],
        [env("ce", 8, platform="FARGATE")],
    ],
)
def test_no_usable_environment(envs: list[Environment]) -> None:
    placed, reasons = run([Queue("q", 1, ["ce"])], envs, [job("j")])
    assert placed == {}
    assert reasons == {"j": NO_ENVIRONMENT}


M5_LARGE = InstanceType("m5.large", 2, 8192, 0, 0.096)
P3_2XLARGE = InstanceType("p3.2xlarge", 8, 62464, 1, 3.06)


@pytest.mark.parametrize(
    ("memory_mib", "gpus"),
    [(16384, 0), (0, 1)],  # more memory than an m5.large has; a GPU it lacks
)
def test_a_job_no_instance_type_can_hold_is_misconfigured(memory_mib: int, gpus: int) -> None:
    envs = [env("ce", 64)]
    envs[0].types = (M5_LARGE,)
    big = Candidate(job_id="big", queue="q", mvcpus=1000, platform="EC2", memory_mib=memory_mib, gpus=gpus)
    placed, reasons = run([Queue("q", 1, ["ce"])], envs, [big, job("small")])
    assert placed == {"small": "ce"}
    assert reasons == {"big": MISCONFIGURED}


def test_a_job_goes_to_the_environment_whose_instances_can_hold_it() -> None:
    cpu, gpu = env("cpu", 64), env("gpu", 64)
    cpu.types, gpu.types = (M5_LARGE,), (P3_2XLARGE,)
    trainer = Candidate(job_id="t", queue="q", mvcpus=4000, platform="EC2", memory_mib=30000, gpus=1)
    placed, reasons = run([Queue("q", 1, ["cpu", "gpu"])], [cpu, gpu], [trainer, job("small")])
    assert placed == {"t": "gpu", "small": "cpu"}
    assert reasons == {}
    assert cpu.used_mvcpus == 1000


def test_disabled_environment_is_skipped_even_with_room() -> None:
    envs = [env("off", 64, enabled=False), env("on", 1)]
    placed, reasons = run([Queue("q", 1, ["off", "on"])], envs, [job("a"), job("b")])
    assert placed == {"a": "on"}
    assert reasons == {"b": NO_CAPACITY}
    assert envs[0].used_mvcpus == 0


def test_misconfiguration_ignores_disabled_environments() -> None:
    envs = [env("off", 64, enabled=False), env("on", 1)]
    _, reasons = run([Queue("q", 1, ["off", "on"])], envs, [job("big", vcpus=4)])
    assert reasons == {"big": MISCONFIGURED}


def test_platforms_are_matched() -> None:
    envs = [env("ec2", 4), env("fg", 4, platform="FARGATE")]
    queues = [Queue("q", 1, ["ec2", "fg"])]
    placed, _ = run(queues, envs, [job("f", platform="FARGATE"), job("e")])
    assert placed == {"f": "fg", "e": "ec2"}


def test_reasons_are_only_reported_when_they_change() -> None:
    jobs = [
        job("same", vcpus=4, reason=NO_CAPACITY),
        job("changed", vcpus=99, reason=NO_CAPACITY),
        job("new", vcpus=4),
    ]
    _, reasons = run([Queue("q", 1, ["ce"])], [env("ce", 8, used=6)], jobs)
    assert reasons == {"changed": MISCONFIGURED, "new": NO_CAPACITY}


def test_placed_jobs_get_no_reason() -> None:
    _, reasons = run([Queue("q", 1, ["ce"])], [env("ce", 8)], [job("j", reason=NO_CAPACITY)])
    assert reasons == {}


def test_empty_inputs() -> None:
    assert run([], [], []) == ({}, {})
    assert run([Queue("q", 1, ["ce"])], [env("ce", 1)], []) == ({}, {})


def test_the_reasons_name_the_aws_codes() -> None:
    assert MISCONFIGURED.startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    assert NO_ENVIRONMENT.startswith("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE")
    assert NO_CAPACITY.startswith("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY")


# -- properties ------------------------------------------------------------------------

CE_NAMES = ["ce0", "ce1", "ce2", "ce3"]
QUEUE_NAMES = ["qa", "qb", "qc", "qd"]
VCPU_STEPS = st.integers(1, 16).map(lambda n: n * 250)  # 0.25 .. 4 vCPU


@st.composite
def scenarios(
    draw: Any, single_ce: bool = False
) -> tuple[list[Queue], dict[str, Environment], dict[str, list[Candidate]]]:
    names = ["ce0"] if single_ce else CE_NAMES
    envs = {}
    for name in names:
        ceilings = st.integers(0, 40).map(lambda n: n * 250)
        ceiling = draw(ceilings if single_ce else st.one_of(st.none(), ceilings))
        used = draw(st.integers(0, 8000 if ceiling is None else ceiling))
        envs[name] = Environment(
            name=name,
            enabled=True if single_ce else draw(st.booleans()),
            platform="EC2" if single_ce else draw(st.sampled_from(["EC2", "FARGATE"])),
            max_mvcpus=ceiling,
            used_mvcpus=used,
        )
    queues = []
    for name in draw(st.lists(st.sampled_from(QUEUE_NAMES), min_size=1, max_size=4, unique=True)):
        attached = (
            ["ce0"]
            if single_ce
            else draw(st.lists(st.sampled_from([*CE_NAMES, "deleted"]), max_size=3, unique=True))
        )
        queues.append(Queue(name=name, priority=draw(st.integers(0, 3)), environments=attached))
    runnable: dict[str, list[Candidate]] = {}
    counter = 0
    for q in queues:
        for _ in range(draw(st.integers(0, 8))):
            counter += 1
            runnable.setdefault(q.name, []).append(
                Candidate(
                    job_id=f"job{counter}",
                    queue=q.name,
                    mvcpus=draw(VCPU_STEPS),
                    platform="EC2" if single_ce else draw(st.sampled_from(["EC2", "FARGATE"])),
                    reason=draw(
                        st.sampled_from([None, NO_CAPACITY, MISCONFIGURED, NO_ENVIRONMENT])
                    ),
                )
            )
    return queues, envs, runnable


def _service_rank(queues: list[Queue]) -> dict[str, int]:
    """Position of each queue in the order the scheduler serves them."""
    ordered = sorted(queues, key=lambda q: (-q.priority, q.name))
    return {q.name: i for i, q in enumerate(ordered)}


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_plan_respects_capacity_and_places_each_job_once_where_it_may_run(scenario: Any) -> None:
    queues, envs, runnable = scenario
    initial = {n: e.used_mvcpus for n, e in envs.items()}
    snapshot = copy.deepcopy(envs)
    result = plan(queues, envs, runnable)

    ids = [j.job_id for j, _ in result.placements]
    assert len(ids) == len(set(ids)), "a job was placed twice"
    all_jobs = {j.job_id: j for js in runnable.values() for j in js}
    assert set(ids) <= set(all_jobs)
    assert not set(ids) & set(result.reasons), "a placed job also got a waiting reason"

    added: Counter[str] = Counter()
    queue_of = {q.name: q for q in queues}
    for candidate, ce_name in result.placements:
        ce = snapshot[ce_name]
        assert ce_name in queue_of[candidate.queue].environments
        assert ce.enabled
        assert ce.platform == candidate.platform
        added[ce_name] += candidate.mvcpus
    for name, ce in snapshot.items():
        assert envs[name].used_mvcpus == initial[name] + added[name]
        if ce.max_mvcpus is not None and added[name]:
            assert initial[name] + added[name] <= ce.max_mvcpus, f"{name} went over its maximum"


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_every_waiting_job_has_the_right_reason_and_fits_nowhere(scenario: Any) -> None:
    queues, envs, runnable = scenario
    snapshot = copy.deepcopy(envs)
    result = plan(queues, envs, runnable)
    placed = {j.job_id for j, _ in result.placements}
    queue_of = {q.name: q for q in queues}
    for q in queues:
        for j in runnable.get(q.name, []):
            if j.job_id in placed:
                continue
            usable = [
                envs[n]
                for n in queue_of[q.name].environments
                if n in envs and snapshot[n].enabled and snapshot[n].platform == j.platform
            ]
            if not usable:
                expected = NO_ENVIRONMENT
            elif all(ce.max_mvcpus is not None and j.mvcpus > ce.max_mvcpus for ce in usable):
                expected = MISCONFIGURED
            else:
                expected = NO_CAPACITY
            assert result.reasons.get(j.job_id, j.reason) == expected
            assert (j.job_id in result.reasons) == (j.reason != expected)
            # Greedy and maximal: capacity only grows, so what did not fit then does not fit now.
            for ce in usable:
                assert ce.max_mvcpus is not None
                assert ce.used_mvcpus + j.mvcpus > ce.max_mvcpus


@settings(max_examples=300, deadline=None)
@given(scenarios(single_ce=True))
def test_lower_priority_never_takes_capacity_a_higher_priority_job_could_use(scenario: Any) -> None:
    queues, envs, runnable = scenario
    ce = envs["ce0"]
    initial = ce.used_mvcpus
    result = plan(queues, envs, runnable)
    rank = _service_rank(queues)
    placed = {j.job_id for j, _ in result.placements}
    for q in queues:
        served_no_later = sum(
            j.mvcpus for j, _ in result.placements if rank[j.queue] <= rank[q.name]
        )
        for j in runnable.get(q.name, []):
            if j.job_id not in placed:
                # Even if every job of a later queue gave its capacity back, j would not fit.
                assert initial + served_no_later + j.mvcpus > ce.max_mvcpus


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_plan_is_deterministic(scenario: Any) -> None:
    queues, envs, runnable = scenario
    first = plan(copy.deepcopy(queues), copy.deepcopy(envs), copy.deepcopy(runnable))
    second = plan(
        list(reversed(copy.deepcopy(queues))), copy.deepcopy(envs), copy.deepcopy(runnable)
    )
    assert [(j.job_id, ce) for j, ce in first.placements] == [
        (j.job_id, ce) for j, ce in second.placements
    ]
    assert first.reasons == second.reasons


@st.composite
def crowded_scenarios(draw: Any) -> tuple[Any, ...]:
    """Few environments shared by queues of different priorities, some fair-share, some
    preempting, with running attempts filling the environments: where preemption happens."""
    shares = ["red", "blue", "green"]
    envs = {
        name: Environment(name, True, "EC2", draw(st.integers(4, 32)) * 250)
        for name in CE_NAMES[: draw(st.integers(1, 2))]
    }
    priorities = draw(st.lists(st.integers(0, 5), min_size=2, max_size=3, unique=True))
    queues = []
    for name, priority in zip(QUEUE_NAMES, priorities, strict=False):
        fair = None
        if draw(st.booleans()):
            fair = FairShare(
                compute_reservation=draw(st.sampled_from([0, 0, 25, 50, 99])),
                weights=draw(
                    st.dictionaries(st.sampled_from([*shares, "gr*"]), st.floats(0.0001, 999))
                ),
                usage=draw(st.dictionaries(st.sampled_from(shares), st.floats(0, 10_000))),
            )
        attached = draw(st.permutations(list(envs)))
        queues.append(Queue(name, priority, attached, fairshare=fair, preempts=draw(st.booleans())))
    running = []
    for i in range(draw(st.integers(0, 12))):
        q = draw(st.sampled_from(queues))
        ce = envs[draw(st.sampled_from(q.environments))]
        mvcpus = draw(VCPU_STEPS)
        if ce.used_mvcpus + mvcpus > ce.max_mvcpus:
            continue
        ce.used_mvcpus += mvcpus
        running.append(
            Running(
                f"run{i}",
                q.name,
                ce.name,
                mvcpus,
                started_at=draw(st.integers(0, 100)),
                share=draw(st.sampled_from([*shares, None])),
                stopping=draw(st.booleans()),
            )
        )
    runnable: dict[str, list[Candidate]] = {}
    for q in queues:
        runnable[q.name] = [
            Candidate(
                f"{q.name}-{k}",
                q.name,
                draw(VCPU_STEPS),
                "EC2",
                share=draw(st.sampled_from(shares)) if q.fairshare else None,
                priority=draw(st.integers(0, 3)),
            )
            for k in range(draw(st.integers(0, 5)))
        ]
    return queues, envs, runnable, running


@settings(max_examples=200, deadline=None)
@given(crowded_scenarios())
def test_fair_share_and_preemption_keep_the_basic_invariants(scenario: Any) -> None:
    queues, envs, runnable, running = scenario
    snapshot = copy.deepcopy(envs)
    result = plan(queues, envs, runnable, running)

    ids = [j.job_id for j, _ in result.placements]
    assert len(ids) == len(set(ids)), "a job was placed twice"
    assert not set(ids) & set(result.reasons)
    queue_of = {q.name: q for q in queues}
    added: Counter[str] = Counter()
    for candidate, ce_name in result.placements:
        ce = snapshot[ce_name]
        assert ce_name in queue_of[candidate.queue].environments
        assert ce.enabled and ce.platform == candidate.platform
        added[ce_name] += candidate.mvcpus
    for name, ce in snapshot.items():
        if ce.max_mvcpus is not None and added[name]:
            assert ce.used_mvcpus + added[name] <= ce.max_mvcpus, f"{name} went over its maximum"

    victims = [v.job_id for v, _ in result.preemptions]
    assert len(victims) == len(set(victims)), "a running job was preempted twice"
    for victim, beneficiary in result.preemptions:
        assert not victim.stopping
        preempting = queue_of[beneficiary.queue]
        assert preempting.preempts
        assert victim.environment in preempting.environments
        assert queue_of[victim.queue].priority < preempting.priority
        assert beneficiary.job_id not in ids, "a job both started and preempted others"
