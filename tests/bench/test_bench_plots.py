import json
import os
import subprocess
import sys

import matplotlib.pyplot as plt
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex

from arscale.bench.plots import (
    RAW_LEGEND,
    STRATEGY_STYLES,
    clipped_yerr,
    figure_score_vs_compute,
    figure_score_vs_n,
    plot_all,
    style_for,
    styles_for,
    subtitle,
)

MANIFEST = {"model": {"id": "shapeworld-var"}, "kind": "shapeworld",
            "suite": {"spec": "shapeworld-v1-eval", "limit": 12, "size": 12}}


def run(label, n, overall, se, flops=2e9, wall=0.04, *, strategy=None, model="shapeworld-var", done=12):
    return {"label": label, "strategy": strategy or label.partition("@")[0], "n": n, "overall": overall,
            "overall_se": se, "model": model, "prompts_done": done, "prompts_total": done,
            "tags": {"single_object": {"accuracy": overall, "total": done}},
            "cost_per_prompt": {"flops": flops, "total_wall": wall}}


def bench(*labels, ns=(1, 2, 4)):
    """Summaries like the tiny bench's: every label equal at N=1, raw repeated at every N, one run at 100 %."""
    out = []
    for label in labels:
        for n in ns:
            if label == "raw":
                out.append(run(label, n, 11 / 12, 0.0976, flops=1.5e9, wall=0.035))
            else:
                score = 11 / 12 if n == 1 else (1.0 if n == max(ns) else 10 / 12)
                out.append(run(label, n, score, 0.083 if score == 1.0 else 0.1, flops=1.8e9 * n, wall=0.04 * n))
    return out


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_clipped_yerr_keeps_bars_inside_0_1():
    scores, ses = [1.0, 0.0, 0.5, 0.95, 0.02], [0.083, 0.1, 0.2, 0.1, 0.05]
    below, above = clipped_yerr(scores, ses)
    for s, se, b, a in zip(scores, ses, below, above):
        assert 0.0 <= s - b and s + a <= 1.0
        assert b <= se and a <= se
    assert below[2] == above[2] == 0.2  # away from the ends the bar is the full ±SE
    assert above[0] == 0.0 and below[0] == 0.083


def _bar_ys(ax):
    return [y for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments() for _, y in seg]


@pytest.mark.parametrize("draw", [figure_score_vs_n, figure_score_vs_compute])
def test_error_bars_and_axis_never_pass_100_percent(draw):
    fig = draw(bench("raw", "best-of-n", "tts-var") + [run("importance", 1, 0.01, 0.2)], MANIFEST)
    for ax in fig.axes:
        ys = _bar_ys(ax)
        assert ys and max(ys) <= 100.0 and min(ys) >= 0.0
        assert 100.0 in ys  # the run at 100 % is drawn, with its bar cut at the top
        assert ax.get_ylim()[1] <= 100.0
        for band in ax.patches:  # raw's ±SE band (a Rectangle in data y)
            assert 0.0 <= band.get_y() and band.get_y() + band.get_height() <= 100.0 + 1e-9
        assert "±1 SE" in ax.get_title() + fig.get_suptitle()


def _legend_colours(ax):
    legend = ax.get_legend()
    return {t.get_text(): to_hex(h.get_color() if hasattr(h, "get_color") else h.lines[0].get_color())
            for t, h in zip(legend.get_texts(), legend.legend_handles)}


def test_raw_is_grey_and_first_in_every_bench():
    one = figure_score_vs_n(bench("best-of-n", "raw", "tts-var"), MANIFEST)
    two = figure_score_vs_n(bench("scaling-ar", "raw", "tts-var@lam1", "importance"), MANIFEST)
    for fig in (one, two):
        legend = fig.axes[0].get_legend()
        assert legend.get_texts()[0].get_text() == RAW_LEGEND
        assert _legend_colours(fig.axes[0])[RAW_LEGEND] == to_hex(STRATEGY_STYLES["raw"]["color"]) == "#7f7f7f"
    compute = figure_score_vs_compute(bench("best-of-n", "raw"), MANIFEST)
    assert compute.axes[1].get_legend().get_texts()[0].get_text() == RAW_LEGEND


def test_a_label_keeps_its_colour_across_benches():
    one = _legend_colours(figure_score_vs_n(bench("raw", "tts-var", "tts-var@lam1"), MANIFEST).axes[0])
    two = _legend_colours(figure_score_vs_n(bench("best-of-n", "tts-var@lam1", "zeta@x", "tts-var"),
                                            MANIFEST).axes[0])
    assert one["tts-var"] == two["tts-var"] and one["tts-var@lam1"] == two["tts-var@lam1"]
    assert one["tts-var"] != one["tts-var@lam1"]
    grey = to_hex(STRATEGY_STYLES["raw"]["color"])
    builtin = {to_hex(s["color"]) for s in STRATEGY_STYLES.values()}
    assert len(builtin) == len(STRATEGY_STYLES)
    for label in ("tts-var@lam1", "best-of-n@k2", "mine", "importance@x"):
        assert to_hex(style_for(label)["color"]) not in builtin | {grey}


def test_the_labels_of_one_figure_get_distinct_colours():
    variants = ["tts-var@lam1", "tts-var@sum", "tts-var@diff", "best-of-n@clip"] + [f"mine@{i}" for i in range(8)]
    labels = list(STRATEGY_STYLES) + variants
    styles = styles_for(labels)
    colours = [to_hex(styles[label]["color"]) for label in labels]
    assert len(set(colours)) == len(labels)  # 5 built-ins and 12 variants: the whole palette, no repeat
    assert styles == styles_for(labels[::-1])  # the same whatever order the figure lists them in
    assert all(styles[label] == style_for(label) for label in STRATEGY_STYLES)
    alone = styles_for(["raw", "tts-var@sum"])  # no collision: the label's own colour, as in every bench
    assert alone["tts-var@sum"] == style_for("tts-var@sum")
    assert styles_for(["tts-var@lam1", "tts-var@sum"])["tts-var@sum"]["color"] != style_for("tts-var@lam1")["color"]


def test_variant_colours_do_not_depend_on_the_process():
    # Python's hash() of a str changes per process: the colour must not
    code = ("from arscale.bench.plots import style_for; "
            "print([style_for(x) for x in ('tts-var@lam1', 'best-of-n@k2', 'my-strategy')])")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(outputs) == 1


def test_raw_is_one_reference_line_and_curves_are_offset_at_the_true_ticks():
    fig = figure_score_vs_n(bench("raw", "best-of-n", "tts-var"), MANIFEST)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    raw = lines[RAW_LEGEND]
    assert raw.get_linestyle() == "--" and list(raw.get_ydata()) == pytest.approx([100 * 11 / 12] * 2)
    assert raw.get_transform() != ax.transData  # spans the axes, not three points over N
    curves = {c.get_label(): c.lines[0] for c in ax.containers}  # errorbars: the label is the container's
    assert set(curves) == {"best-of-n", "tts-var"}
    xs = {label: list(line.get_xdata()) for label, line in curves.items()}
    for i, n in enumerate((1, 2, 4)):  # identical at N=1, still both visible
        assert xs["best-of-n"][i] != xs["tts-var"][i]
        assert xs["best-of-n"][i] == pytest.approx(n, rel=0.1) and xs["tts-var"][i] == pytest.approx(n, rel=0.1)
    assert list(ax.get_xticks()) == [1, 2, 4]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]


def test_compute_labels_units_log_and_distinct_n():
    fig = figure_score_vs_compute(bench("raw", "best-of-n", "tts-var"), MANIFEST)
    flops, wall = fig.axes
    assert flops.get_xlabel().startswith("GFLOPs per prompt") and flops.get_xlabel().endswith(", log")
    assert flops.get_xscale() == "log" and wall.get_xscale() == "log"
    texts = [t.get_text() for t in flops.texts]
    # best-of-n and tts-var coincide at every N here: one label per position, raw none
    assert sorted(texts) == ["N=1", "N=2", "N=4"]
    line = next(c.lines[0] for c in flops.containers if c.get_label() == "best-of-n")
    assert list(line.get_xdata()) == pytest.approx([1.8, 3.6, 7.2])  # in GFLOPs

    big = [run("raw", 1, 0.5, 0.1, flops=4e12, wall=10.0), run("tts-var", 4, 0.6, 0.1, flops=5e12, wall=12.0)]
    narrow = figure_score_vs_compute(big, MANIFEST)
    assert narrow.axes[0].get_xlabel() == "TFLOPs per prompt (model + decode + scorer)"  # linear: no "log"
    assert narrow.axes[0].get_xscale() == "linear"


def test_subtitle_says_what_ran():
    summaries = bench("raw", "tts-var")
    text = subtitle(summaries, MANIFEST)
    for part in ("shapeworld-var", "shapeworld-v1-eval", "12 prompts", "1 tag (single)"):
        assert part in text
    geneval = [{**s, "tags": {t: {} for t in ("single_object", "two_object", "counting", "colors", "position",
                                              "color_attr")}} for s in summaries]
    assert "6 tags (single, two, count, colors, pos, attr)" in subtitle(geneval, None)
    partial = [{**s, "prompts_done": 10, "prompts_total": 12} for s in summaries]
    assert "10 of 12 prompts" in subtitle(partial, MANIFEST)
    assert "shapeworld-var" in figure_score_vs_n(summaries, MANIFEST).axes[0].get_title()


def test_plot_all_reads_the_folder_manifest(tmp_path, monkeypatch):
    from arscale.bench import plots

    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST))
    summaries = bench("raw", "best-of-n")
    seen = []
    draw = plots.figure_score_vs_n
    monkeypatch.setattr(plots, "figure_score_vs_n", lambda s, manifest=None: seen.append(manifest) or draw(s, manifest))
    paths = plot_all(summaries, tmp_path)
    assert [p.name for p in paths] == ["score_vs_n.png", "score_vs_compute.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert seen[0]["suite"]["spec"] == "shapeworld-v1-eval"
    assert plot_all([run("raw", 1, None, 0.0)], tmp_path) == []  # nothing scored: no figure


def test_bench_says_no_plots_where_no_run_has_an_accuracy(tmp_path, capsys):
    from arscale.cli import main

    prompts = tmp_path / "dpg_prompts"
    prompts.mkdir()
    (prompts / "0.txt").write_text("a red circle")  # DPG-Bench: judged by its official evaluator only
    out = tmp_path / "out"
    args = ["bench", "--model", "shapeworld-var", "--prompts", f"dpg:{prompts}", "--layout", "dpg", "--n", "1",
            "--strategies", "raw", "--scorer", "", "--threads", "1", "--quiet", "--out", str(out)]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "no plots" in said and ".png" not in said
    assert not list(out.glob("*.png")) and (out / "table.md").is_file()
    (out / "score_vs_n.png").write_bytes(b"an earlier bench's figure")
    assert main([*args, "--resume"]) == 0
    assert not (out / "score_vs_n.png").exists()  # not left beside a table it does not describe


def test_n_labels_of_nearby_points_do_not_cover_each_other():
    # three strategies at N=4, each a little dearer than the last: too far apart to share a label, close
    # enough that labels side by side would cover each other
    runs = [run("raw", 1, 0.5, 0.05, flops=1e9, wall=0.01)]
    for i, label in enumerate(("best-of-n", "tts-var", "importance")):
        runs.append(run(label, 4, 0.60 + 0.0025 * i, 0.05, flops=4e9 * 1.12 ** i, wall=0.04 * 1.12 ** i))
    fig = figure_score_vs_compute(runs, MANIFEST)
    fig.draw_without_rendering()
    for ax in fig.axes:
        boxes = [t.get_window_extent() for t in ax.texts]
        assert len(boxes) == 3
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
