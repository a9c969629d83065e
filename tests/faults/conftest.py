"""``pytest tests/faults --fault-seeds N``: run seeds 0..N-1 instead of CI's fixed set
(``python -m bench.faults --seeds N --workers 2`` runs them in parallel, with counts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fault-seeds", type=int, default=None,
                     help="fault harness: run seeds 0..N-1 (default: the CI seeds)")
