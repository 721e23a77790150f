"""Audit tests of the bench figures (`arscale.bench.plots`) and the compare forest plot
(`arscale.bench.paired_plot`): which runs, points, axes and files the figures carry."""

import matplotlib.pyplot as plt
import pytest
from PIL import Image

from arscale.bench.paired_plot import Z95, figure_comparison, plot_comparison
from arscale.bench.plots import (
    RAW_LEGEND,
    figure_score_vs_compute,
    figure_score_vs_n,
    plot_all,
    read_manifest,
    subtitle,
)

MANIFEST = {"model": {"id": "shapeworld-var"}, "kind": "shapeworld",
            "suite": {"spec": "shapeworld-v1-eval", "limit": 12, "size": 12}}


def run(label, n, overall, se=0.05, flops=2e9, wall=0.04, *, strategy=None, model="shapeworld-var", done=12,
        total=None):
    return {"label": label, "strategy": strategy or label.partition("@")[0], "n": n, "overall": overall,
            "overall_se": se, "model": model, "prompts_done": done, "prompts_total": total or done,
            "tags": {"single_object": {"accuracy": overall, "total": done}},
            "cost_per_prompt": {"flops": flops, "total_wall": wall}}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _raw_line(ax, name=RAW_LEGEND):
    (line,) = [line for line in ax.get_lines() if line.get_label() == name]
    return line


# ---- plots.py


def test_a_raw_variant_is_a_reference_line_named_by_its_label():
    """A run whose strategy is raw (label raw@…) is drawn like raw: one line named '<label> (1 sample)'."""
    runs = [run("raw@t2", n, 0.5, strategy="raw") for n in (1, 2)] + [run("best-of-n", n, 0.6) for n in (1, 2)]
    ax = figure_score_vs_n(runs, MANIFEST).axes[0]
    assert _legend_texts(ax) == ["raw@t2 (1 sample)", "best-of-n"]
    assert {c.get_label() for c in ax.containers} == {"best-of-n"}  # not a curve over N
    assert list(_raw_line(ax, "raw@t2 (1 sample)").get_ydata()) == pytest.approx([50.0, 50.0])
    compute = figure_score_vs_compute(runs, MANIFEST)
    assert _legend_texts(compute.axes[1])[0] == "raw@t2 (1 sample)"


def test_raw_stands_for_its_most_complete_then_smallest_run():
    """The raw reference is the raw run with the most prompts done, then the smallest N."""
    runs = [run("raw", 1, 0.2, done=6, total=12), run("raw", 2, 0.5), run("raw", 4, 0.7), run("best-of-n", 2, 0.6)]
    ax = figure_score_vs_n(runs, MANIFEST).axes[0]
    assert list(_raw_line(ax).get_ydata()) == pytest.approx([50.0, 50.0])
    flops = figure_score_vs_compute(runs, MANIFEST).axes[0]
    (raw,) = [c for c in flops.containers if c.get_label() == RAW_LEGEND]
    assert list(raw.lines[0].get_ydata()) == pytest.approx([50.0])


def test_raw_wall_is_the_mean_of_its_repeats():
    """Raw's point on the wall-seconds panel sits at the mean wall time of its rows (one per N)."""
    runs = [run("raw", n, 0.5, wall=w) for n, w in ((1, 0.03), (2, 0.04), (4, 0.05))] + [run("best-of-n", 2, 0.6)]
    wall = figure_score_vs_compute(runs, MANIFEST).axes[1]
    (raw,) = [c for c in wall.containers if c.get_label() == RAW_LEGEND]
    assert list(raw.lines[0].get_xdata()) == pytest.approx([0.04])


def test_read_manifest_falls_back_to_a_shard_manifest(tmp_path):
    """An unreadable manifest.json does not hide a shard's manifest; no manifest at all gives None."""
    assert read_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text("{not json")
    (tmp_path / "manifest.shard-1.json").write_text('{"model": {"id": "from-shard"}}')
    assert read_manifest(tmp_path) == {"model": {"id": "from-shard"}}


def test_subtitle_names_the_manifest_model_and_counts_only_scored_runs():
    """Without a model in the summaries the manifest's is named; unscored runs do not count; 'of N' only when no
    run finished the suite."""
    runs = [run("raw", 1, 0.5, model=None), run("best-of-n", 2, 0.6, model=None),
            run("tts-var", 2, None, model=None, done=3)]  # not scored: not counted
    text = subtitle(runs, MANIFEST)
    assert "shapeworld-var" in text and "· 12 prompts" in text and "3–12" not in text
    mixed = [run("raw", 1, 0.5, done=10, total=12), run("best-of-n", 2, 0.6)]
    text = subtitle(mixed, MANIFEST)
    assert "· 10–12 prompts ·" in text


def test_the_y_label_names_the_benchmark():
    """A ShapeWorld bench says 'ShapeWorld GenEval overall (%)'; without a manifest plain GenEval."""
    runs = [run("raw", 1, 0.5), run("best-of-n", 2, 0.6)]
    assert figure_score_vs_n(runs, MANIFEST).axes[0].get_ylabel() == "ShapeWorld GenEval overall (%)"
    assert figure_score_vs_n(runs, None).axes[0].get_ylabel() == "GenEval overall (%)"
    assert {ax.get_ylabel() for ax in figure_score_vs_compute(runs, MANIFEST).axes} == {
        "ShapeWorld GenEval overall (%)"}


def test_the_y_axis_never_goes_below_zero_and_shows_raw_s_whole_band():
    """The lower y limit is at least 0 %, and low enough for raw's ±SE band."""
    low = [run("raw", 1, 0.3), run("importance", 2, 0.01, 0.2)]
    for fig in (figure_score_vs_n(low, MANIFEST), figure_score_vs_compute(low, MANIFEST)):
        assert all(ax.get_ylim()[0] == 0.0 for ax in fig.axes)
    raw_below = [run("raw", 1, 0.33, 0.06), run("best-of-n", 2, 0.8), run("best-of-n", 4, 0.9)]
    assert figure_score_vs_n(raw_below, MANIFEST).axes[0].get_ylim()[0] <= 100 * (0.33 - 0.06)


def test_raw_s_band_is_its_standard_error():
    """The shaded band around raw's line spans raw's ±1 SE."""
    ax = figure_score_vs_n([run("raw", 1, 0.5, 0.1), run("best-of-n", 2, 0.6)], MANIFEST).axes[0]
    (band,) = ax.patches
    assert band.get_y() == pytest.approx(40.0) and band.get_height() == pytest.approx(20.0)


def test_score_vs_n_is_log2_over_n_and_its_title_names_raw_s_band():
    """N is on a log axis; the title mentions raw's band only when raw is drawn; a single N gets a ±1.5× span."""
    with_raw = figure_score_vs_n([run("raw", n, 0.5) for n in (1, 2)] + [run("best-of-n", n, 0.6) for n in (1, 2)],
                                 MANIFEST).axes[0]
    assert with_raw.get_xscale() == "log"
    assert "raw's band ±1 SE" in with_raw.get_title()
    without = figure_score_vs_n([run("best-of-n", n, 0.6) for n in (1, 2)], MANIFEST).axes[0]
    assert "raw's band" not in without.get_title()
    single = figure_score_vs_n([run("best-of-n", 4, 0.6), run("tts-var", 4, 0.7)], MANIFEST).axes[0]
    assert single.get_xlim() == pytest.approx((4 / 1.5, 6.0))


def test_compute_axes_are_log_from_a_span_of_three_each_panel_on_its_own():
    """A panel is logarithmic when its values span a factor of 3 or more, decided per panel, and its x label says
    so."""
    runs = [run("raw", 1, 0.5, flops=1e9, wall=1.0), run("best-of-n", 2, 0.6, flops=3e9, wall=1.5)]
    flops, wall = figure_score_vs_compute(runs, MANIFEST).axes
    assert flops.get_xscale() == "log" and flops.get_xlabel().endswith(", log")  # exactly 3×: log
    assert wall.get_xscale() == "linear" and wall.get_xlabel() == "wall seconds per prompt"
    narrow = [run("raw", 1, 0.5, flops=1e9, wall=1.0), run("best-of-n", 2, 0.6, flops=2.5e9, wall=4.0)]
    flops, wall = figure_score_vs_compute(narrow, MANIFEST).axes
    assert flops.get_xscale() == "linear" and not flops.get_xlabel().endswith("log")
    assert wall.get_xscale() == "log" and wall.get_xlabel() == "wall seconds per prompt, log"


def test_the_flops_unit_follows_the_dearest_run():
    """The FLOPs axis uses the unit of the largest cost (GFLOPs here, though raw alone would be MFLOPs)."""
    runs = [run("raw", 1, 0.5, flops=5e7), run("best-of-n", 8, 0.6, flops=5e9)]
    flops = figure_score_vs_compute(runs, MANIFEST).axes[0]
    assert flops.get_xlabel().startswith("GFLOPs per prompt")
    line = next(c.lines[0] for c in flops.containers if c.get_label() == "best-of-n")
    assert list(line.get_xdata()) == pytest.approx([5.0])


def test_an_n_label_names_every_budget_at_one_position():
    """Points of different N at one position share one label that lists both Ns."""
    runs = [run("raw", 1, 0.3, flops=1e9, wall=0.01), run("best-of-n", 2, 0.6, flops=4e9, wall=0.04),
            run("tts-var", 4, 0.6, flops=4e9, wall=0.04)]
    for ax in figure_score_vs_compute(runs, MANIFEST).axes:
        assert [t.get_text() for t in ax.texts] == ["N=2,4"]


def test_plot_all_writes_each_figure_to_its_own_file(tmp_path):
    """score_vs_n.png holds the one-panel N figure and score_vs_compute.png the two-panel compute one."""
    runs = [run("raw", n, 0.5) for n in (1, 2)] + [run("best-of-n", n, 0.6, flops=2e9 * n) for n in (1, 2)]
    by_n, compute = plot_all(runs, tmp_path, MANIFEST)
    assert (by_n.name, compute.name) == ("score_vs_n.png", "score_vs_compute.png")
    with Image.open(by_n) as im:
        assert im.width == pytest.approx(5.5 * 120, abs=2)
    assert Image.open(compute).width == pytest.approx(10 * 120, abs=2)


# ---- paired_plot.py


def row(label, n, diff, se=0.1, *, prompts=4, tags=None):
    return {"label": label, "n": n, "against": "raw N=1", "prompts": prompts, "diff": diff, "diff_se": se,
            "tags": {t: {"diff": d, "diff_se": s, "prompts": prompts} for t, (d, s) in (tags or {}).items()}}


def _bars(ax):
    return {c.get_label().split(" (")[0]: c for c in ax.containers}


def test_rows_without_judged_prompts_are_left_out():
    """A row with no prompt judged in both runs is not drawn; with none left there is no figure and no file."""
    fig = figure_comparison([row("best-of-n", 2, 0.1), row("tts-var", 2, 0.2, prompts=0)])
    assert list(_bars(fig.axes[0])) == ["best-of-n N=2"]
    assert figure_comparison([row("tts-var", 2, 0.2, prompts=0)]) is None


def test_plot_comparison_writes_nothing_without_rows(tmp_path):
    """plot_comparison returns None and writes no file when no row has judged prompts."""
    assert plot_comparison([row("tts-var", 2, 0.2, prompts=0)], tmp_path / "c.png") is None
    assert not (tmp_path / "c.png").exists()


def test_runs_are_listed_by_label_then_budget():
    """Legend (and row) order: table.md's label order, then N ascending, whatever order the rows come in."""
    fig = figure_comparison([row("tts-var", 2, 0.1), row("best-of-n", 4, 0.2), row("best-of-n", 2, 0.3)])
    assert [t.get_text().split(" (")[0] for t in fig.legends[0].get_texts()] == [
        "best-of-n N=2", "best-of-n N=4", "tts-var N=2"]


def test_runs_sharing_a_row_sit_side_by_side_around_it():
    """Two runs on one tag row sit at symmetric offsets around the row, not on top of each other."""
    tags = {"counting": (0.1, 0.1)}
    ax = figure_comparison([row("best-of-n", 2, 0.1, tags=tags), row("tts-var", 2, 0.2, tags=tags)]).axes[0]
    bars = _bars(ax)
    a, b = (list(bars[k].lines[0].get_ydata()) for k in ("best-of-n N=2", "tts-var N=2"))
    for i in range(2):  # counting, overall
        assert a[i] != b[i] and (a[i] + b[i]) / 2 == pytest.approx(i)


def test_bars_are_1_96_se_and_stop_at_minus_100_points():
    """Each bar is ±1.96 paired SE, cut where a difference of accuracies ends (−100 points)."""
    ax = figure_comparison([row("best-of-n", 2, 0.0, 0.05, tags={"counting": (-0.9, 0.2)})]).axes[0]
    (segments,) = [c.lines[2][0].get_segments() for c in ax.containers]
    spans = sorted((min(x for x, _ in s), max(x for x, _ in s)) for s in segments)
    assert spans[0] == pytest.approx((-100.0, -90.0 + 100 * Z95 * 0.2))  # counting: cut at −100
    assert spans[1] == pytest.approx((-100 * Z95 * 0.05, 100 * Z95 * 0.05))  # overall


def test_the_overall_row_is_last_at_the_bottom_below_a_rule():
    """Tags run top to bottom (inverted y) with overall last, a light rule between the tags and overall."""
    tags = {"counting": (0.1, 0.1), "colors": (0.2, 0.1)}
    ax = figure_comparison([row("best-of-n", 2, 0.15, tags=tags)]).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["counting", "colors", "overall"]
    assert ax.get_ylim() == pytest.approx((2.5, -0.5))
    rules = [line for line in ax.get_lines() if list(line.get_xdata()) == [0, 1]]
    assert [list(line.get_ydata()) for line in rules] == [[1.5, 1.5]]


def test_the_pooled_plot_keeps_the_given_draws_that_have_a_cell_and_says_pooled():
    """Pooled mode: rows are the given draws that hold a cell, in the given order, then the pooled row; the
    title says it is per draw."""
    pooled = [{**row("scaling-ar", 8, 0.1, tags={"d3": (0.3, 0.1), "d1": (0.1, 0.1)}), "draws": 2}]
    ax = figure_comparison(pooled, overall="pooled", order=["d1", "d2", "d3"]).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["d1", "d3", "pooled"]
    assert ax.get_title().startswith("paired differences per draw and pooled")
    plain = figure_comparison([row("best-of-n", 2, 0.1)]).axes[0]
    assert plain.get_title() == "paired differences on the prompts both runs judged"
