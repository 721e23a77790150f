"""benchmarks/scaling_ar_signals.py: rank correlations, and one tiny run on the shipped ShapeWorld-AR."""

import json
import sys

import numpy as np
import pytest


def test_ranks_average_ties_and_spearman_skips_constants(benchmark_script):
    m = benchmark_script("scaling_ar_signals")
    assert m.ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [2.5, 0.0, 2.5, 1.0]
    assert m.spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 40.0])) == 1.0
    assert m.spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 2.0])) < -0.8
    assert m.spearman(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0])) is None


def test_tiny_run_reports_picks_and_correlations(benchmark_script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["scaling_ar_signals.py", "--per-tag", "1", "--seed", "5", "--n", "3"])
    benchmark_script("scaling_ar_signals").main()
    out = json.loads(capsys.readouterr().out)
    assert out["prompts"] == 6 and out["random candidate (mean)"] <= out["oracle (any correct)"]
    corr = out["mean rank correlation within a prompt"]
    assert {"C", "B", "K", "C_final"} <= set(corr)
    assert all(-1.0 <= v["foreground area"] <= 1.0 for v in corr.values())
    assert set(corr["B"]) == {"foreground area", "objects detected", "correct", "correct, same number of objects"}


def test_the_public_suite_seed_is_refused(benchmark_script, monkeypatch):
    from arscale.shapeworld.suite import PUBLIC_SUITE_SEED

    monkeypatch.setattr(sys, "argv", ["scaling_ar_signals.py", "--seed", str(PUBLIC_SUITE_SEED)])
    with pytest.raises(SystemExit, match="public"):
        benchmark_script("scaling_ar_signals").main()


def test_pick_accuracy_reads_each_prompts_candidates_together(benchmark_script):
    """Per tag: a random candidate's accuracy, the highest-C_T candidate's and the oracle's, prompt by prompt."""
    m = benchmark_script("scaling_ar_signals")
    rows = [("single_object", 0, 1.0, False), ("single_object", 1, 0.0, True),   # prompt 1: the top pick is wrong
            ("single_object", 0, 0.0, False), ("single_object", 0, 1.0, True),   # prompt 2: the top pick is right
            ("counting", 0, 0.0, False), ("counting", -1, 1.0, False)]           # prompt 3: none right
    acc = m.pick_accuracy(rows, 2)
    assert acc["single_object"] == (0.5, 0.5, 1.0) and acc["counting"] == (0.0, 0.0, 0.0)


def test_tiny_run_draws_the_picture(benchmark_script, monkeypatch, capsys, tmp_path):
    """`--plot` writes a PNG beside the JSON report."""
    out = tmp_path / "signals.png"
    monkeypatch.setattr(sys, "argv", ["scaling_ar_signals.py", "--per-tag", "1", "--seed", "5", "--n", "2",
                                      "--plot", str(out)])
    benchmark_script("scaling_ar_signals").main()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {out}" in capsys.readouterr().out


def test_the_pictures_ranks_run_from_the_lowest_to_the_highest_confidence(benchmark_script, monkeypatch, tmp_path):
    """Each prompt's candidates get C_T ranks 0 (lowest) .. 1 (highest): they average 1/2 over the run."""
    m = benchmark_script("scaling_ar_signals")
    seen = []
    monkeypatch.setattr(m, "plot", lambda per_candidate, args: seen.extend(per_candidate))
    monkeypatch.setattr(sys, "argv", ["scaling_ar_signals.py", "--per-tag", "1", "--seed", "5", "--n", "3",
                                      "--plot", str(tmp_path / "x.png")])
    m.main()
    c_ranks = [r for _, _, r, _ in seen]
    assert len(c_ranks) == 18 and min(c_ranks) == 0.0 and max(c_ranks) == 1.0
    assert abs(sum(c_ranks) / len(c_ranks) - 0.5) < 1e-9


def test_plot_with_one_candidate_is_refused_before_anything_loads(benchmark_script, monkeypatch, tmp_path):
    """`--plot --n 1` has no within-prompt rank to draw: refused in one line before the model loads."""
    from arscale.generators.next_token import shapeworld as sw_ar

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded: --n 1 --plot was not refused first")

    monkeypatch.setattr(sw_ar, "load_shapeworld_ar", no_load)
    monkeypatch.setattr(sys, "argv", ["scaling_ar_signals.py", "--per-tag", "1", "--seed", "5", "--n", "1",
                                      "--plot", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="--n"):
        benchmark_script("scaling_ar_signals").main()
