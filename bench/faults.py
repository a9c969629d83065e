"""``python -m bench.faults --seeds 1000 --workers 2``: the fault harness (tests/faults)
over many seeds, in worker processes, with the counts the issue asks for: runs,
injected faults, jobs, lost, run twice, stuck; every seed that broke an invariant is printed
with what broke (``pytest tests/faults --fault-seeds N`` runs the same seeds in one
process). A seed replays exactly: rerun one with ``--first S --seeds 1 -v``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COUNTS = ("faults", "jobs", "lost", "run_twice", "stuck")


def _one(args: tuple[int, float]) -> dict[str, Any]:
    seed, rate = args
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    logging.disable(logging.CRITICAL)
    from tests.faults.harness import run  # noqa: PLC0415 - tests/ is importable once ROOT is on sys.path (above)

    try:
        r = run(seed, rate=rate)
    except Exception as e:  # noqa: BLE001 - a crash of the harness is a finding too
        return {"seed": seed, "violations": [f"harness crashed: {type(e).__name__}: {e}"], **dict.fromkeys(COUNTS, 0),
                "seconds": 0.0, "sites": {}, "summary": f"seed {seed}: crash"}
    return {"seed": seed, "violations": r.violations, **{k: getattr(r, k) for k in COUNTS}, "seconds": r.seconds,
            "sites": dict(r.sites), "summary": r.summary()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    p.add_argument("--seeds", type=int, default=100, help="how many seeds (default 100)")
    p.add_argument("--first", type=int, default=0, help="the first seed (default 0)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    p.add_argument("--rate", type=float, default=0.35, help="share of invocations given a fault (0.35)")
    p.add_argument("--out", type=Path, default=None, help="write the totals and findings as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="print every seed")
    a = p.parse_args(argv)
    started = time.monotonic()
    totals: Counter[str] = Counter()
    sites: Counter[str] = Counter()
    bad: list[dict[str, Any]] = []
    seeds = [(s, a.rate) for s in range(a.first, a.first + a.seeds)]
    with ProcessPoolExecutor(max_workers=a.workers) as pool:
        for r in pool.map(_one, seeds, chunksize=4):
            totals.update(runs=1, **{k: r[k] for k in COUNTS})
            sites.update(r["sites"])
            if r["violations"]:
                bad.append(r)
                print(r["summary"], *("    " + v[:300] for v in r["violations"][:10]), sep="\n", flush=True)
            elif a.verbose:
                print(r["summary"], flush=True)
            if totals["runs"] % 50 == 0:
                print(f"... {totals['runs']} runs, {len(bad)} with violations, "
                      f"{time.monotonic() - started:.0f}s", flush=True)
    elapsed = time.monotonic() - started
    print(f"\nruns {totals['runs']}, injected faults {totals['faults']}, jobs {totals['jobs']}, "
          f"lost {totals['lost']}, run twice {totals['run_twice']}, stuck {totals['stuck']}, "
          f"seeds with violations {len(bad)}, "
          f"{elapsed:.0f}s with {a.workers} workers")
    print("faults by site:", ", ".join(f"{k} {v}" for k, v in sites.most_common(15)))
    if a.out:
        a.out.write_text(json.dumps({"totals": totals, "sites": sites, "bad": bad, "seconds": elapsed,
                                     "rate": a.rate, "first": a.first}, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
