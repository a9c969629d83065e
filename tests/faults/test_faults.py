"""The fault-injection harness (see harness.py and injector.py) on CI's fixed seeds."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from .harness import Result, run

if TYPE_CHECKING:
    from collections.abc import Iterator

CI_SEEDS = range(12)
# Where the faults must land for the harness to mean anything: the scheduler's dispatch
# transaction and launch, the events handler's attempt ending, the stream's dependency
# release and the array fan-out.
MUST_HIT = (
    "service.scheduler._move_to_starting",
    "service.attempts.task_stopped",
    "service.dependencies.release",
    "service.arrays._materialize",
)


def _seeds(config: pytest.Config) -> range:
    n = config.getoption("--fault-seeds", default=None)
    return range(n) if n else CI_SEEDS


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> Iterator[dict[int, Result]]:
    logging.disable(logging.CRITICAL)  # the handlers log every injected fault
    try:
        yield {seed: run(seed) for seed in _seeds(request.config)}
    finally:
        logging.disable(logging.NOTSET)


def test_every_seed_keeps_the_invariants(results: dict[int, Result]) -> None:
    bad = [r for r in results.values() if r.violations]
    report = "\n".join(f"{r.summary()}\n  " + "\n  ".join(r.violations[:10]) for r in bad)
    assert not bad, f"{len(bad)} of {len(results)} seeds broke an invariant:\n{report}"
    assert sum(r.lost for r in results.values()) == 0
    assert sum(r.run_twice for r in results.values()) == 0


def test_faults_land_where_they_matter(results: dict[int, Result]) -> None:
    sites: Counter[str] = Counter()
    for r in results.values():
        sites += r.sites
    assert sum(r.faults for r in results.values()) >= 5 * len(results)
    missed = [s for s in MUST_HIT if not sites[s]]
    assert not missed, f"no fault hit {missed}; hit: {dict(sites.most_common())}"


def test_a_seed_replays_exactly(results: dict[int, Result]) -> None:
    seed = min(results)
    logging.disable(logging.CRITICAL)
    try:
        again = run(seed)
    finally:
        logging.disable(logging.NOTSET)
    first = results[seed]
    assert (again.digest, again.faults, again.steps) == (first.digest, first.faults, first.steps)
