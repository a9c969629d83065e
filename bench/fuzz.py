"""``python -m bench.fuzz --seeds 5 --per-operation 200``: the fuzzer of tests/fuzz, longer:
for each seed, ``per-operation`` requests generated from botocore's model for every Batch
operation plus the raw-HTTP set, against one local stack; then a job must still run.
Signed with the key the stack is given. Prints requests, how many got past
authentication, statuses, 5xx, hangs and every problem; exits 1 if there was one."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from http import HTTPStatus
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first", type=int, default=1)
    p.add_argument("--per-operation", type=int, default=200)
    p.add_argument("--workers", type=int, default=8, help="requests in flight")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    logging.disable(logging.CRITICAL)
    from tests.e2e.support import make_client  # noqa: PLC0415 - tests/ is importable once ROOT is on sys.path (above)
    from tests.fuzz.test_fuzz import function_errors, fuzz, local_stack, prepare, scheduling_round, still_runs_a_job  # noqa: PLC0415 - tests/ is importable once ROOT is on sys.path (above)

    total, passed, bad, fivexx, hangs = 0, 0, 0, 0, 0
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    with local_stack() as stack:
        batch = make_client("batch", stack.endpoint)
        prepare(batch)
        for seed in range(a.first, a.first + a.seeds):
            t, errors = time.monotonic(), function_errors(stack)
            report = fuzz(stack.endpoint, seed, a.per_operation, a.workers)
            scheduling_round(stack)
            failed = +(function_errors(stack) - errors)
            if failed:
                report.problems.append(f"functions failed on what the requests left: {dict(failed)}")
            total += report.sent
            passed += report.authenticated
            statuses.update(report.statuses)
            bad += len(report.problems)
            fivexx += sum(n for s, n in report.statuses.items() if s >= HTTPStatus.INTERNAL_SERVER_ERROR)
            hangs += report.statuses.get(0, 0)
            print(f"seed {seed}: {report.summary()} in {time.monotonic() - t:.0f}s", flush=True)
            for line in report.problems[:30]:
                print("   ", line[:300])
        after = still_runs_a_job(batch)
    print(f"\n{total} requests, {passed} past authentication, statuses {dict(sorted(statuses.items()))}, "
          f"{fivexx} 5xx, {hangs} hangs, {bad} problems, a job afterwards {after}, "
          f"{time.monotonic() - started:.0f}s")
    return 0 if not bad and after == "SUCCEEDED" else 1


if __name__ == "__main__":
    raise SystemExit(main())
