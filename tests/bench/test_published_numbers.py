"""The published numbers follow from the committed data: the issue-5 pool reads the runs it says it reads, equal
accuracies print equal in table.md and the paired table, and every ScalingAR / public-suite number of README, the
ShapeWorld-AR model card and RESULTS.md's fresh-draw tables traces to the summaries under benchmarks/results."""

import importlib.util
import json
import re
import statistics
from pathlib import Path

from arscale.bench.metrics import summarize
from arscale.bench.paired import format_comparison
from arscale.bench.table import format_table, percent

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
AR16 = RESULTS / "ar16"
TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_issue5_pool_reads_todays_default_in_every_draw():
    """Every draw of the pool (44 through Session 35) is read at ScalingAR's current default (≈ 0.32× Best-of-8's tokens)."""
    pool23 = _load(AR16 / "session23-fresh-draws" / "pool.py", "published_pool23")
    pool = _pool()
    draws = pool.draws()
    assert len(pool.draws(through=35)) == 44 and len(pool.draws(through=34)) == 42  # two draws a session
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

BEST_OF_8_TOKENS = 8 * 256


def _pool():
    return _load(AR16 / "pool.py", "published_pool")


def _fresh_draw_pool():
    """Over every committed fresh draw: (draws, prompts, raw mean, gain, gain SE, token min, token max) in points."""
    pool = _pool()
    rows = [pool.pool23.summaries(d) for d in pool.draws()]
    raws, runs = [100 * r["overall"] for r, _ in rows], [100 * s["overall"] for _, s in rows]
    gains = [b - a for a, b in zip(raws, runs)]
    tokens = [s["cost_per_prompt"]["generated_tokens"] for _, s in rows]
    return (len(rows), sum(r["prompts"] for r, _ in rows), statistics.mean(raws), statistics.mean(gains),
            statistics.stdev(gains) / len(gains) ** 0.5, min(tokens), max(tokens))


def test_readme_and_ar_card_fresh_prompt_numbers_follow_the_pool():
    """README's and the ShapeWorld-AR card's fresh-prompt numbers are pool.py's over every committed draw."""
    draws, prompts, raw, gain, se, low, high = _fresh_draw_pool()
    readme = (ROOT / "README.md").read_text()
    card = (ROOT / "src" / "arscale" / "weights" / "shapeworld-ar" / "MODEL_CARD.md").read_text()
    relative = f"+{100 * gain / raw:.1f} ± {100 * se / raw:.1f} %"
    assert f"On fresh prompts ({prompts:,}), ScalingAR beats raw sampling by {relative} relative" in readme
    assert f"| {raw / 100:.3f} (mean of {draws} draws, {prompts:,} prompts) |" in card
    assert f"raw + {gain:.1f} ± {se:.1f} points ({relative}) on the same {prompts:,}" in card
    ratios = f"{low / BEST_OF_8_TOKENS:.2f}–{high / BEST_OF_8_TOKENS:.2f}"
    assert f"| {low:.0f}–{high:.0f} ({ratios}× Best-of-8) |" in card


def _overall(table: Path, label: str, n: int) -> float:
    """A table.md row's overall accuracy (points) for `label` at budget `n`."""
    for line in table.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[:2] == [label, str(n)]:
            return float(cells[3].split(" ±")[0])
    raise AssertionError(f"no {label} N={n} row in {table}")


def test_readme_public_suite_table_follows_the_committed_runs():
    """README's public-suite table (both shipped models, N = 8) is the committed runs' overall accuracies."""
    readme = (ROOT / "README.md").read_text()
    var = RESULTS / "session14-coarse-sampling"
    var_row = [_overall(var / "raw-shipped-public.md", "raw", 1)] + [
        _overall(var / "public-n8-shipped.md", label, 8) for label in ("best-of-n", "importance", "tts-var")]
    assert "| ShapeWorld-VAR (next-scale) | " + " | ".join(f"{x / 100:.3f}" for x in var_row) + " | – |" in readme

    def summary(run: str) -> dict:
        return json.loads((AR16 / run / "summary.json").read_text())

    ar = [summary(r) for r in ("session15-threshold-pool/public-raw/raw/n1",
                               "session15-threshold-pool/public-bon/best-of-n/n8",
                               "session12-ar8700/public/importance/n8", "session15-threshold-pool/public/scaling-ar/n8")]
    ratio = ar[3]["cost_per_prompt"]["generated_tokens"] / BEST_OF_8_TOKENS
    assert ("| ShapeWorld-AR (next-token) | " + " | ".join(f"{s['overall']:.3f}" for s in ar[:3])
            + f" | – | {ar[3]['overall']:.3f} ({ratio:.2f}× Best-of-8's tokens) |") in readme


ROW = re.compile(r"\| `draw:40:(\d+)` \((\d+)\) \| ([\d.]+) \| ([\d.]+) \| ([+−-][\d.]+) ± [\d.]+ \| (\d+) / (\d+) "
                 r"\| (\d+) \(([\d.]+)×\) \|$")


def test_results_fresh_draw_rows_follow_their_summaries():
    """Each `draw:40:S` row of RESULTS.md (raw, ScalingAR, gain, fixed / broken, tokens, ratio) follows its summaries."""
    wrong, checked = [], 0
    for line in (ROOT / "benchmarks" / "RESULTS.md").read_text().splitlines():
        match = ROW.match(line)
        if not match:
            continue
        seed, prompts, raw, run, diff, fixed, broken, tokens, ratio = match.groups()
        (folder,) = AR16.glob(f"session*-fresh-draws/d{seed}")
        raw_summary = json.loads(next((folder / "raw").glob("n*/summary.json")).read_text())
        run_summary = json.loads((folder / "scaling-ar" / "n8" / "summary.json").read_text())
        a, b = 100 * raw_summary["overall"], 100 * run_summary["overall"]
        spent = run_summary["cost_per_prompt"]["generated_tokens"]
        checked += 1
        if not (abs(float(raw) - a) <= 0.05 + 1e-9 and abs(float(run) - b) <= 0.05 + 1e-9
                and abs(float(diff.replace("−", "-")) - (b - a)) <= 0.05 + 1e-9
                and abs(100 * (int(fixed) - int(broken)) / int(prompts) - (b - a)) <= 1e-9
                and abs(int(tokens) - spent) <= 0.5 and abs(float(ratio) - spent / BEST_OF_8_TOKENS) <= 0.005):
            wrong.append(f"draw:40:{seed}: row {line!r}, summaries {a:.2f} / {b:.2f}, {spent:.1f} tokens")
    assert checked >= 20 and wrong == []


def test_pool_lists_each_draw_as_table_md_prints_it(capsys):
    """pool.py's per-draw listing prints each draw's raw and ScalingAR accuracy as table.md's `percent` does."""
    pool = _pool()
    draws = pool.draws()
    pool.report(draws, len(draws))
    printed = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()
               if line.split() and line.split()[0] in draws}
    expected = {d: [percent(s["overall"]) for s in pool.pool23.summaries(d)] for d in draws}
    assert len(draws) >= 32 and printed == expected
