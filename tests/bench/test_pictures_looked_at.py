"""The pictures arscale draws, looked at: grid.png's captions, search_tree.png and the
ScalingAR confidence plot with a long prompt, the confidence plot's legend without termination, and the reward
consistency benchmark's picture and rank correlation."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arscale.commands.generate import CAPTION_HEIGHT, CHOSEN_FRAME, SEPARATOR, grid, tile_captions
from arscale.generators.trajectories import SearchTree
from arscale.search.result import Candidate, CostRecord, SearchResult
from arscale.search.scaling_ar_plot import write_extras
from arscale.search.tree_plot import draw_search_tree

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
LONG_PROMPT = ("A whimsical digital illustration of a cozy reading nook by a rain-streaked window, where a ginger cat "
               "curls on a patchwork quilt beside a stack of weathered books, a steaming mug of cocoa, and a brass "
               "lamp casting warm golden light across the wooden floorboards, while the city lights blur outside")


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- grid.png


@pytest.mark.parametrize("n", [500, 1000])  # 128-px and 64-px tiles of 64-px images
def test_grid_captions_stay_inside_their_tiles(n):
    """Best-of-N with many candidates: every caption ends inside its own tile, so the separators between tiles stay
    grey (green around the pick) and no tile's caption strip starts with another's text."""
    rng = np.random.default_rng(0)
    images = [np.full((64, 64, 3), 240, np.uint8) for _ in range(n)]
    for im in images:
        im[20:40, 20:40] = rng.integers(0, 255, 3)
    cands = [Candidate(0, i, images[i], float(rng.normal()), chosen=i == 7) for i in range(n)]
    captions = tile_captions(cands, images, len(str(n - 1)), "reward")
    canvas = grid(images, chosen=[7], captions=captions)
    pad, cols = 4, int(np.ceil(np.sqrt(n)))
    w = (canvas.shape[1] - pad) // cols - pad
    h = w + CAPTION_HEIGHT
    assert (canvas.shape[1] - pad) % cols == 0 and w >= 48  # the captions are drawn
    allowed = {(SEPARATOR,) * 3, CHOSEN_FRAME}
    for r in range(n // cols):  # full rows
        strip = slice(pad + r * (h + pad) + h - CAPTION_HEIGHT, pad + r * (h + pad) + h)
        for c in range(1, cols):
            left = pad + c * (w + pad)
            gap = {tuple(int(v) for v in px) for px in canvas[strip, left - pad:left].reshape(-1, 3)}
            assert gap <= allowed, (r, c, gap - allowed)
            assert (canvas[strip, left:left + 2] == 255).all(), (r, c)  # its own caption starts 3 px in


# ---- benchmarks/reward_consistency.py


def test_the_consistency_plot_shows_a_negative_rank_correlation(tmp_path, saved_figures):
    """A scale whose reward ranks the rows against their final order (ρ = -0.6) is drawn inside the axes."""
    script = _script("reward_consistency")
    curve = [{"scale": k, "top1_agreement": a, "spearman": rho, "pick_accuracy": 0.5}
             for k, (a, rho) in enumerate([(0.25, -0.6), (0.5, 0.2), (1.0, 1.0)])]
    script.plot({"prompts": 3, "n": 4, "chance_agreement": 0.25, "curve": curve}, str(tmp_path / "c.png"))
    (fig,) = saved_figures
    low, high = fig.axes[0].get_ylim()
    assert low <= -0.6 and high >= 1.0


def test_the_consistency_rank_correlation_averages_tied_rewards():
    """Rows that share a coarse scale's tokens get one reward: Spearman's ρ ranks them alike (ties averaged), so
    which of two tied rows comes first does not change ρ (-√3/2 here, as scipy.stats.spearmanr gives)."""
    script = _script("reward_consistency")
    tied = np.array([1.0, 1.0, 0.0])
    assert script.spearman(tied, np.array([0.0, 1.0, 2.0])) == pytest.approx(-np.sqrt(3) / 2)
    assert script.spearman(tied, np.array([1.0, 0.0, 2.0])) == pytest.approx(-np.sqrt(3) / 2)


# ---- search_tree.png and confidence_<prompt>.png with a long prompt (LlamaGen / Infinity text prompts)


def test_a_long_prompt_does_not_widen_the_search_tree(tmp_path, saved_figures):
    """An 8-column tree with a 300-character prompt: the picture is as wide as the tree (110 dpi), the title
    says where the prompt was cut."""
    image = np.full((16, 16, 3), 200, np.uint8)
    n = 8
    previews = [{"scale": k, "nodes": list(range(n)), "prompt": [0] * n, "images": [image] * n} for k in range(3)]
    telemetry = {"operations": [], "previews": previews, "token_maps": [[1, 1], [2, 2], [3, 3]]}
    cands = [Candidate(0, i, image, 0.1 * i, chosen=i == 0) for i in range(n)]
    tree = SearchTree([-1] * n, [0] * n, [0] * n, [None] * n, [None] * n)
    result = SearchResult([LONG_PROMPT], [cands], tree, CostRecord(), "tts-var", {}, telemetry)
    path = tmp_path / "search_tree.png"
    assert draw_search_tree(result, 0, path)
    (fig,) = saved_figures
    with Image.open(path) as im:
        assert im.width <= 1.05 * fig.get_figwidth() * 110
    assert "…" in fig._suptitle.get_text()


def test_the_confidence_plot_marks_a_cut_prompt(tmp_path, saved_figures):
    """A prompt longer than the title holds ends in '…', not mid-word as if it were the whole prompt."""
    write_extras(_scaling_ar_result(LONG_PROMPT, terminated=True), tmp_path)
    title = saved_figures[0].axes[0].get_title()
    assert title.endswith("…") and LONG_PROMPT[:40] in title


# ---- confidence_<prompt>.png without termination


def _scaling_ar_result(prompt: str, terminated: bool) -> SearchResult:
    """Three candidates over 16 tokens; candidate 2 terminated at step 6 (with its θ), or all three complete with
    no threshold (ScalingAR with terminate: false records none)."""
    tokens, traces, cands = 16, [], []
    for j in range(3):
        pruned = terminated and j == 2
        traces.append({"candidate": j, "node": j, "C": list(np.linspace(0.3 + 0.1 * j, 0.8, 7 if pruned else tokens)),
                       "ended": 6 if pruned else None, "reason": "prune" if pruned else None})
        if pruned:
            traces[-1]["preview"] = np.full((8, 8, 3), 90, np.uint8)
        else:
            cands.append(Candidate(0, j, np.full((8, 8, 3), 30 * j, np.uint8), 0.5 + 0.1 * j, chosen=j == 1))
    theta = [float("nan")] * 4 + ([0.4] * (tokens - 5) if terminated else [float("nan")] * (tokens - 5)) + \
        [float("nan")]
    telemetry = {"prompts": [traces], "threshold": [theta], "warmup_steps": 4, "num_tokens": tokens}
    return SearchResult([prompt], [cands], SearchTree(), CostRecord(), "scaling-ar", {}, telemetry)


def test_without_termination_the_legend_names_no_threshold_or_terminations(tmp_path, saved_figures):
    """`--config '{"terminate": false}'`: no θ line and no ×, so the legend names neither; with a termination it
    names both."""
    write_extras(_scaling_ar_result("a photo of two circles", terminated=False), tmp_path / "none")
    write_extras(_scaling_ar_result("a photo of two circles", terminated=True), tmp_path / "some")
    none, some = ([t.get_text() for t in fig.axes[0].get_legend().get_texts()] for fig in saved_figures)
    assert "threshold θ" not in none and "terminated here" not in none
    assert "threshold θ" in some and "terminated here" in some
