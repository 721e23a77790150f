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
