"""``python -m bench`` runs: the smallest section end to end, and the price file's rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_scheduler_section_runs_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "scheduler", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Scheduler (pure)" in done.stdout
    result = json.loads(out.read_text())
    assert result["meta"]["mode"] == "quick"
    names = [f["name"] for f in result["figures"]]
    assert any(n.startswith("plan() over 100,000 RUNNABLE") for n in names)
    assert result["detail"]["scheduler"]["candidates"] == 100_000
    assert result["detail"]["scheduler"]["peak_bytes"] > 0


def test_every_price_has_a_source_and_a_date() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from bench.cost import load_prices  # noqa: PLC0415 - bench is importable only while ROOT is on sys.path (above)
    finally:
        sys.path.remove(str(ROOT))
    prices = load_prices()  # raises when a price lacks usd, source or as_of
    assert prices["region"] == "us-east-1"
    assert all(p["source"].startswith("https://aws.amazon.com/") for p in prices["prices"].values())


def test_backlog_bench_submits_onto_a_disabled_environment_and_prints_each_segment() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.backlog", "--jobs", "5", "--segment", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "submits/s" in line]
    assert len(lines) == 2, done.stdout  # 3 jobs, then 2
    assert "backlog      0 ->      3" in lines[0] and "backlog      3 ->      5" in lines[1]
    assert all("ms a SubmitJob" in line for line in lines)
