"""Audit tests of the search pictures: ScalingAR's confidence plot (`arscale.search.scaling_ar_plot`) and
TTS-VAR's search tree (`arscale.search.tree_plot`), on small hand-built results whose every field is known."""

import matplotlib.colors as mcolors
import numpy as np
import pytest

from arscale.errors import ArscaleError
from arscale.generators.trajectories import SearchTree
from arscale.search.result import Candidate, CostRecord, SearchResult
from arscale.search.scaling_ar_plot import write_extras
from arscale.search.tree_plot import COLORS, MAX_COLUMNS, draw_search_tree

PROMPTS = ["a photo of a red circle", "a photo of three squares", "a photo of a cross"]
TOKENS, WARMUP, ENDED = 16, 4, 6  # a 4×4 token grid; a pruned candidate stops at 0-based step 6


@pytest.fixture
def figures(saved_figures):
    """The figures the plot functions save, in order."""
    return saved_figures


def scaling_ar_result(prompts=2, per_prompt=3):
    """Per prompt: candidate 0 survives and is chosen, the last is pruned at step ENDED, the others survive."""
    traces, candidates, threshold = [], [], []
    for p in range(prompts):
        per, cands = [], []
        for j in range(per_prompt):
            node = p * per_prompt + j
            pruned = j == per_prompt - 1
            length = ENDED + 1 if pruned else TOKENS  # as ScalingAR records: C up to the step it stopped at
            tr = {"candidate": j, "node": node, "C": list(np.linspace(0.2 + 0.1 * j, 0.9 - 0.05 * p, length)),
                  "ended": ENDED if pruned else None, "reason": "prune" if pruned else None}
            if pruned:
                tr["preview"] = np.full((8, 8, 3), 40 * j % 250, np.uint8)
            else:
                cands.append(Candidate(p, node, np.full((8, 8, 3), 10 * node % 250, np.uint8), 0.5, chosen=j == 0))
            per.append(tr)
        traces.append(per)
        candidates.append(cands)
        threshold.append([0.1 * (p + 1)] * TOKENS)
    telemetry = {"prompts": traces, "threshold": threshold, "warmup_steps": WARMUP, "num_tokens": TOKENS}
    return SearchResult(PROMPTS[:prompts], candidates, SearchTree(), CostRecord(), "scaling-ar", {}, telemetry)


def test_write_extras_writes_one_picture_per_prompt_up_to_the_limit(tmp_path):
    """`max_prompts` prompts are drawn, each to confidence_<index>.png."""
    res = scaling_ar_result(prompts=3)
    assert [p.name for p in write_extras(res, tmp_path / "a", max_prompts=2)] == [
        "confidence_00000.png", "confidence_00001.png"]
    assert len(write_extras(res, tmp_path / "b")) == 3


def test_write_extras_refuses_a_result_without_scaling_ar_telemetry(tmp_path):
    """A result with no ScalingAR traces is a one-line ArscaleError, not a KeyError."""
    res = SearchResult(PROMPTS[:1], [[]], SearchTree(), CostRecord(), "best-of-n", {}, {})
    with pytest.raises(ArscaleError, match="no ScalingAR telemetry"):
        write_extras(res, tmp_path)


def test_a_later_prompt_s_picture_shows_its_own_curves_threshold_and_events(tmp_path, figures):
    """Prompt 1's figure: its title and θ, each curve over its steps, the chosen curve black and named, a cross
    where the pruned one stopped, the warm-up line, and captions that name the chosen image's file number."""
    res = scaling_ar_result()
    write_extras(res, tmp_path)
    ax = figures[1].axes[0]
    assert PROMPTS[1] in ax.get_title()
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["threshold θ"].get_ydata()) == pytest.approx(res.telemetry["threshold"][1])
    assert list(lines["threshold θ"].get_xdata()) == list(range(TOKENS))
    assert list(lines["warm-up ends"].get_xdata()) == [WARMUP, WARMUP]
    traces = res.telemetry["prompts"][1]
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == ["cand 0 (chosen)", "cand 1", "cand 2"]
    chosen = lines["cand 0 (chosen)"]
    assert mcolors.to_hex(chosen.get_color()) == "#000000"
    for tr in traces:
        line = lines[f"cand {tr['candidate']}" + (" (chosen)" if tr["candidate"] == 0 else "")]
        assert list(line.get_xdata()) == list(range(len(tr["C"])))
    events = [c.get_offsets() for c in ax.collections if len(c.get_offsets())]
    pruned = traces[-1]
    assert len(events) == 1 and events[0][0].tolist() == pytest.approx([ENDED, pruned["C"][ENDED]])
    captions = [thumb.get_title() for thumb in figures[1].axes[1:]]
    # prompt 0 wrote candidates 0 and 1 (its survivors), so prompt 1's pick is image 2
    assert captions == ["cand 0\nchosen (image 2)", "cand 1\nsurvived", f"cand 2\n× step {ENDED}"]


@pytest.mark.parametrize(("count", "per_candidate"), [(10, True), (11, False)])
def test_candidates_get_a_colour_each_while_the_colour_cycle_lasts(tmp_path, figures, count, per_candidate):
    """Up to the 10 colours of the cycle each candidate has its own line and legend name; beyond, fates."""
    write_extras(scaling_ar_result(prompts=1, per_prompt=count), tmp_path)
    legend = [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
    assert ("cand 1" in legend) == per_candidate and ("terminated" in legend) != per_candidate


def test_twelve_thumbnails_fill_one_row(tmp_path, figures):
    """Thumbnails wrap after 12 a row: 12 candidates make one row, 13 make two."""
    write_extras(scaling_ar_result(prompts=1, per_prompt=12), tmp_path / "a")
    write_extras(scaling_ar_result(prompts=1, per_prompt=13), tmp_path / "b")
    rows = [len({round(ax.get_position().y0, 3) for ax in fig.axes[1:]}) for fig in figures]
    assert rows == [1, 2]


# ---- tree_plot.py: two prompts, three scales, made by hand
#   scale 0: prompt 0 rows 1, 8..25, 0 and prompt 1 rows 2, 3; clustering keeps 0 and 2
#   scale 1: rows 0, 4 (a copy of 0) and 2, 5 (a copy of 2); resampling (rewards read) keeps 4 and 2
#   scale 2: rows 4, 6 (a copy of 4) and 2, 7 (a copy of 2); the picks are 6 and 2

EXTRA = list(range(8, 26))


def _image(scale, node):
    return np.full((4, 4, 3), 3 * node + scale, np.uint8)


def _preview(scale, nodes, prompts):
    return {"scale": scale, "nodes": nodes, "prompt": prompts, "images": [_image(scale, n) for n in nodes]}


def tree_result(previews=True):
    parent = [-1, -1, -1, -1, 0, 2, 4, 2] + [-1] * len(EXTRA)
    prompt = [0, 0, 1, 1, 0, 1, 0, 1] + [0] * len(EXTRA)
    born = [0, 0, 0, 0, 1, 1, 2, 2] + [0] * len(EXTRA)
    tree = SearchTree(parent, prompt, born, [None] * len(parent), [None] * len(parent))
    candidates = [[Candidate(0, 4, _image(2, 4), 0.5), Candidate(0, 6, _image(2, 6), 0.95, chosen=True)],
                  [Candidate(1, 2, _image(2, 2), 0.8, chosen=True), Candidate(1, 7, _image(2, 7), 0.3)]]
    ops = [{"scale": 0, "op": "cluster", "nodes": [0, 1, 2, 3, *EXTRA], "prompt": [0, 0, 1, 1] + [0] * len(EXTRA),
            "kept_nodes": [0, 2]},
           {"scale": 1, "op": "resample", "nodes": [0, 4, 2, 5], "prompt": [0, 0, 1, 1],
            "reward": [0.1, 0.9, 0.8, 0.2], "kept_nodes": [4, 2]}]
    telemetry = {"operations": ops, "token_maps": [[1, 2], [2, 3], [3, 4]]}
    if previews:
        telemetry["previews"] = [_preview(0, [1, *EXTRA, 0, 2, 3], [0] * 20 + [1, 1]),
                                 _preview(1, [0, 4, 2, 5], [0, 0, 1, 1]), _preview(2, [4, 6, 2, 7], [0, 0, 1, 1])]
    return SearchResult(PROMPTS[:2], candidates, tree, CostRecord(), "tts-var", {}, telemetry)


def _tiles(fig, rows):
    width = len(fig.axes) // rows
    return [fig.axes[r * width:(r + 1) * width] for r in range(rows)]


def _shown(ax):
    """(scale, node) of the preview a tile shows."""
    value = int(ax.get_images()[0].get_array()[0, 0, 0])
    return value % 3, value // 3


def _frame(ax):
    return mcolors.to_hex(ax.spines["left"].get_edgecolor())


def test_the_search_tree_colours_each_tile_by_its_fate(tmp_path, figures):
    """Prompt 0: the pick's line first in every row (even past 16 rows), clustered / resampled-away frames, the
    lineage up to the scale its copy began, the pick at the last scale, rewards under resampled tiles."""
    assert draw_search_tree(tree_result(), 0, tmp_path / "t.png")
    (fig,) = figures
    zero, one, two = _tiles(fig, 3)
    assert len(zero) == MAX_COLUMNS
    assert [_shown(ax) for ax in zero[:2]] == [(0, 0), (0, 1)] and _shown(zero[-1]) == (0, EXTRA[13])
    assert [_shown(ax) for ax in one[:2]] == [(1, 4), (1, 0)] and [_shown(ax) for ax in two[:2]] == [(2, 6), (2, 4)]
    hexes = {k: mcolors.to_hex(c) for k, c in COLORS.items()}
    assert [_frame(ax) for ax in zero[:2]] == [hexes["lineage"], hexes["cluster"]]
    assert [_frame(ax) for ax in one[:2]] == [hexes["lineage"], hexes["resample"]]  # 0 left the line at scale 1
    assert [_frame(ax) for ax in two[:2]] == [hexes["pick"], hexes["alive"]]
    assert [ax.spines["left"].get_linewidth() for ax in two[:2]] == [3, 1]
    assert [ax.get_xlabel() for ax in one[:2]] == ["0.90", "0.10"] and not any(ax.get_xlabel() for ax in two)
    assert two[0].get_title() == "pick, reward 0.95"
    assert zero[0].get_ylabel() == f"scale 0\n1×2 tokens\n(+{20 - MAX_COLUMNS} not shown)"
    assert one[0].get_ylabel() == "scale 1\n2×3 tokens"
    assert PROMPTS[0] in fig.get_suptitle()


def test_the_search_tree_of_a_later_prompt_shows_only_its_rows(tmp_path, figures):
    """Prompt 1: only its own rows; a pick that lived from the start is lineage above the last row, the pick only
    there."""
    assert draw_search_tree(tree_result(), 1, tmp_path / "t.png")
    (fig,) = figures
    rows = _tiles(fig, 3)
    assert [[_shown(ax) for ax in row] for row in rows] == [[(0, 2), (0, 3)], [(1, 2), (1, 5)], [(2, 2), (2, 7)]]
    hexes = {k: mcolors.to_hex(c) for k, c in COLORS.items()}
    assert [_frame(row[0]) for row in rows] == [hexes["lineage"], hexes["lineage"], hexes["pick"]]
    assert [row[0].get_title() for row in rows] == ["", "", "pick, reward 0.80"]
    assert PROMPTS[1] in fig.get_suptitle()


def test_the_search_tree_legend_names_each_colour(tmp_path, figures):
    """The legend's frames carry the colours the tiles use for each fate."""
    draw_search_tree(tree_result(), 0, tmp_path / "t.png")
    legend = figures[0].legends[0]
    named = {t.get_text(): mcolors.to_hex(h.get_edgecolor()) for t, h in zip(legend.get_texts(),
                                                                             legend.legend_handles)}
    assert named == {"the pick": mcolors.to_hex(COLORS["pick"]), "lineage of the pick": COLORS["lineage"],
                     "clustered away": COLORS["cluster"], "resampled away": COLORS["resample"],
                     "alive": COLORS["alive"]}


def test_no_previews_draw_nothing(tmp_path):
    """A result without previews gives False and writes no file."""
    assert draw_search_tree(tree_result(previews=False), 0, tmp_path / "t.png") is False
    assert not (tmp_path / "t.png").exists()
