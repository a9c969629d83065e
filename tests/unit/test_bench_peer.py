"""``python -m bench --peer slurm``: options, ratios and targets, and batchplane's side
with tiny counts as if Slurm were absent (nothing here needs or touches Slurm)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
try:
    from bench import cli, peer
finally:
    sys.path.remove(str(ROOT))


def test_options_default_to_bench_sh_counts_and_can_be_overridden() -> None:
    full = peer.parse(["--peer", "slurm"])
    assert full.counts == peer.FULL
    assert (full.counts.single, full.counts.array, full.counts.big_array) == (1000, 1000, 10_000)
    assert (full.counts.latency, full.counts.chain, full.counts.reps) == (20, 20, 3)
    quick = peer.parse(["--peer", "slurm", "--quick", "--reps", "2", "--single", "7",
                        "--big-array", "0"])
    assert quick.counts.big_array == 0 and quick.counts.single == 7 and quick.counts.reps == 2
    assert quick.counts.array == peer.QUICK.array
    with pytest.raises(SystemExit):
        peer.parse(["--peer", "pbs"])


def test_the_bench_command_hands_peer_runs_to_the_peer_module(monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(peer, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["--peer", "slurm", "--quick"]) == 0
    assert seen == [["--peer", "slurm", "--quick"]]


def test_ratios_say_which_way_is_better_and_targets_say_met_or_missed() -> None:
    rate = peer.Row("w", "submit rate", "jobs/s", "higher", 10.0, 4.0, peer.THROUGHPUT_2X)
    assert rate.ratio == pytest.approx(2.5) and rate.ok is True
    assert peer.fmt_ratio(rate) == "2.50x (higher is better)"
    assert peer.fmt_target(rate) == ">= 2x Slurm: met"
    big = peer.Row("w", "all done", "s", "lower", 60.0, 100.0, peer.HALF_THE_TIME)
    assert big.ok is False and peer.fmt_target(big) == "<= 1/2 Slurm's time: missed"
    hop = peer.Row("w", "hop", "ms", "lower", 40.0, 41.0, peer.NO_SLOWER_HOP)
    assert hop.ok is True and peer.fmt_ratio(hop) == "0.98x (lower is better)"
    # Without Slurm: no ratio, relative targets unknown, absolute ones still judged.
    alone = peer.Row("w", "all done", "jobs/s", "higher", 10.0, None, peer.THROUGHPUT_2X)
    assert alone.ratio is None and alone.ok is None and peer.fmt_ratio(alone) == "-"
    assert peer.fmt_target(alone) == ">= 2x Slurm: - (no Slurm figure)"
    fast = peer.Row("w", "p50", "ms", "lower", 30.0, None, peer.DISPATCH_50MS)
    assert fast.ok is True and peer.fmt_target(fast) == "p50 <= 50 ms: met"
    assert peer.fmt_value(None, "ms") == "-" and peer.fmt_value(1234.5, "s") == "1,234 s"


def test_rows_from_raw_results_of_both_sides() -> None:
    counts = peer.Counts(single=4, array=10, big_array=0, latency=2, chain=3, reps=2, big_reps=1)
    raw = {
        "batchplane": {
            "single": [{"n": 4, "submit_s": 1.0, "total_s": 2.0}, {"n": 4, "submit_s": 1.0, "total_s": 4.0}],
            "array": [{"n": 10, "submit_s": 0.1, "total_s": 5.0}],
            "latency": [{"from_call_s": [0.02, 0.04], "submit_call_s": [0.01, 0.01],
                         "recorded_s": [0.01, 0.03], "observed_s": [0.05, 0.06]}],
            "chain": [{"n": 3, "submit_s": 0.1, "total_s": 1.0, "hop_start_s": [0.1, 0.3],
                       "hop_stopped_started_s": [0.05, 0.05]}],
        },
        "slurm": {
            "single": [{"n": 4, "submit_s": 0.5, "total_s": 4.0}],
            "array": [{"n": 10, "submit_s": 0.1, "total_s": 20.0}],
            "latency": [{"from_call_s": [0.5, 0.7], "submit_call_s": [0.01, 0.01]}],
            "chain": [{"n": 3, "submit_s": 0.1, "total_s": 1.0, "hop_start_s": [0.1, 0.1]}],
        },
    }
    rows = {(r.workload.split()[0], r.measure): r for r in peer.rows_from(raw, counts)}
    done = rows[("4", "submit -> all done")]
    assert done.batchplane == pytest.approx(1.5)  # median of 2.0 and 1.0 jobs/s, as bench.sh
    assert done.slurm == pytest.approx(1.0)
    submits = rows[("4", "submit rate (while submitting)")]
    assert (submits.ratio, submits.target) == (0.5, None)  # 4 vs 8 jobs/s: shown, not a target
    assert rows[("10-child", "submit -> all children done")].ok is True  # 5 s vs 20 s
    dispatch = rows[("idle", "submit -> job's own timestamp, p50")]
    assert (dispatch.batchplane, dispatch.slurm, dispatch.ok) == (30.0, 600.0, True)
    assert rows[("idle", "submit -> RUNNING as recorded, p50")].slurm is None
    hop = rows[("3-job", "hop: a job's start -> the next one's, p50")]
    assert (hop.batchplane, hop.slurm, hop.ok) == (200.0, 100.0, False)


def test_slurm_absent_is_said_with_the_way_to_start_it() -> None:
    assert peer.slurm_problem(which=lambda _: None) == "sinfo, sbatch, squeue, scontrol not found"
    assert "../shared/peers/slurm/setup.sh" in peer.NOT_RUNNING


def test_stack_options_follow_what_local_up_offers(tmp_path: Path) -> None:
    both = "usage: ... [--data-dir DATA_DIR] [--memory] [--store {sqlite,dynamodb}]"
    assert peer.stack_options(both, store=None, memory=False, data_dir=tmp_path) == [
        "--data-dir", str(tmp_path)]
    assert peer.stack_options(both, store="dynamodb", memory=False, data_dir=tmp_path) == [
        "--store", "dynamodb"]
    assert peer.stack_options(both, store=None, memory=True, data_dir=tmp_path) == ["--memory"]
    assert peer.stack_options("usage: [--port PORT]", store=None, memory=False, data_dir=tmp_path) == []
    with pytest.raises(SystemExit):
        peer.stack_options("usage: [--port PORT]", store="sqlite", memory=False, data_dir=tmp_path)


def test_batchplane_side_with_tiny_counts_and_no_slurm(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(peer, "slurm_problem", lambda: "sinfo not found")
    monkeypatch.setattr(peer, "SETTLE_SECONDS", 0.2)
    monkeypatch.setattr(peer, "_pause", lambda: None)
    out = tmp_path / "peer-slurm.json"
    args = peer.parse(["--peer", "slurm", "--quick", "--single", "2", "--array", "2",
                       "--latency", "1", "--chain", "2", "--out", str(out)])
    text = io.StringIO()
    console = Console(file=text, width=200)
    result = peer.run(args, console)
    peer.render(result["rows"], console, title="t")
    peer.write(result, out)
    printed = text.getvalue()
    assert peer.NOT_RUNNING in printed
    doc = json.loads(out.read_text())
    assert doc["meta"]["peer_ran"] is False
    bp = doc["raw"]["batchplane"]
    assert bp["single"][0]["succeeded"] == 2 and bp["single"][0]["total_s"] > 0
    assert bp["array"][0]["total_s"] > 0
    assert len(bp["latency"][0]["from_call_s"]) == 1 and len(bp["latency"][0]["recorded_s"]) == 1
    assert bp["chain"][0]["ran"] == 2 and len(bp["chain"][0]["hop_start_s"]) == 1
    assert doc["raw"]["slurm"] == {}
    figures = {f["measure"]: f for f in doc["figures"]}
    assert figures["submit -> all done"]["slurm"] is None
    assert figures["submit -> all done"]["batchplane"] > 0
