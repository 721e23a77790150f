"""The published numbers follow from the committed data: the issue-5 pool reads the runs it says it reads, and
equal accuracies print equal in table.md and the paired table."""

import importlib.util
from pathlib import Path

from arscale.bench.metrics import summarize
from arscale.bench.paired import format_comparison
from arscale.bench.table import format_table

ROOT = Path(__file__).resolve().parents[2]
AR16 = ROOT / "benchmarks" / "results" / "ar16"
TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_issue5_pool_reads_todays_default_in_every_draw():
    """Every draw of the pool (32 through Session 29) is read at ScalingAR's current default (≈ 0.32× Best-of-8's tokens)."""
    pool23 = _load(AR16 / "session23-fresh-draws" / "pool.py", "published_pool23")
    pool = _load(AR16 / "pool.py", "published_pool")
    draws = pool.draws()
    assert len(pool.draws(through=29)) == 32 and len(pool.draws(through=28)) == 30  # two draws a session
    tokens = {d: pool23.summaries(d)[1]["cost_per_prompt"]["generated_tokens"] for d in draws}
    assert {d: t for d, t in tokens.items() if t > 0.35 * 2048} == {}


def _summary(label: str, correct_per_tag: list[int]) -> dict:
    rows = [{"tag": t, "correct": i < c, "prompt": f"{t} {i}", "metadata": f"{t} {i}"}
            for t, c in zip(TAGS, correct_per_tag) for i in range(40)]
    return {**summarize([], rows), "label": label, "n": 8}


def test_equal_accuracies_print_equal():
    """Two runs that each got 117 of 240 prompts right (Session 15's d9903) show one overall in table.md and compare."""
    a, b = _summary("a", [36, 15, 21, 31, 12, 2]), _summary("b", [38, 17, 18, 30, 9, 5])
    table = format_table([a, b]).splitlines()[2:]
    assert [row.split(" | ")[3] for row in table] == ["48.8 ± 2.6", "48.8 ± 2.6"]
    row = {"label": "b", "n": 8, "against": "a N=8", "prompts": 240, "acc_a": a["overall"], "acc_b": b["overall"],
           "diff": 0.0, "diff_se": 0.03, "b_fixed": 20, "b_broke": 20, "reward_a": float("nan"),
           "reward_b": float("nan")}
    assert "| 240 | 48.8 | 48.8 | +0.0 ± 3.0 |" in format_comparison([row])
