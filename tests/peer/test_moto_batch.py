"""moto's own AWS Batch tests against local stacks, in the repository's pytest run: every
test passes except those expectations.py lists, and none of those passes (strict xfail).
Takes about 30 s (up to 85 s on a busy two-core machine); the tests moto marks
requires_docker (another 30 s or so of jobs) are left to ``run_moto_batch.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_moto_batch  # noqa: E402


@pytest.mark.timeout(240)
def test_moto_batch_tests_pass_except_the_expected() -> None:
    result = run_moto_batch.run_all(skip_docker=True, stream=False)
    failed = {name: result.messages[name][:300] for name, outcome in result.outcomes.items() if outcome == "failed"}
    assert not failed, f"{result.summary()}\n" + "\n".join(f"{n}: {m}" for n, m in failed.items())
    assert result.returncode == 0, result.summary()
    assert result.counts["passed"] > 0, result.summary()
