"""arscale's pictures on edge inputs (a one-column search tree, a plot into a folder not yet made, a
picture format whose tool is missing)."""

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from arscale.bench.paired_plot import plot_comparison
from arscale.errors import ArscaleError
from arscale.generators.trajectories import SearchTree
from arscale.search.result import Candidate, CostRecord, SearchResult
from arscale.search.tree_plot import draw_search_tree

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def one_row_tree():
    """TTS-VAR at N = 1 (one row at every scale), as `generate --strategy tts-var --n 1` draws it."""
    image = np.full((4, 4, 3), 200, np.uint8)
    previews = [{"scale": k, "nodes": [0], "prompt": [0], "images": [image]} for k in range(3)]
    telemetry = {"operations": [], "previews": previews, "token_maps": [[1, 1], [2, 2], [3, 3]]}
    return SearchResult(["a photo of a red circle"], [[Candidate(0, 0, image, 0.9, chosen=True)]],
                        SearchTree([-1], [0], [0], [None], [None]), CostRecord(), "tts-var", {}, telemetry)


def test_a_narrow_search_tree_keeps_its_title_and_legend_whole(tmp_path, saved_figures):
    """search_tree.png of a one-column tree is wide enough for its subtitle and legend (110 dpi)."""
    path = tmp_path / "search_tree.png"
    assert draw_search_tree(one_row_tree(), 0, path)
    (fig,) = saved_figures
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    widest = max(fig._suptitle.get_window_extent(renderer).width, fig.legends[0].get_window_extent(renderer).width)
    with Image.open(path) as im:
        assert im.width >= widest / fig.dpi * 110


def test_the_signals_plot_makes_its_folder(tmp_path):
    """benchmarks/scaling_ar_signals.py's plot writes FILE.png into a folder it makes, as compare --plot does."""
    spec = importlib.util.spec_from_file_location("scaling_ar_signals", BENCHMARKS / "scaling_ar_signals.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rows = [("single_object", 0, 0.0, False), ("single_object", 1, 1.0, True)]  # one prompt, two candidates
    out = tmp_path / "new" / "signals.png"
    script.plot(rows, argparse.Namespace(plot=str(out), n=2, per_tag=1, seed=5))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_pgf_plot_without_tex_is_a_one_line_error(tmp_path, monkeypatch):
    """--plot FILE.pgf (a format compare accepts) where no TeX is installed: ArscaleError naming the file."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no xelatex on it
    row = {"label": "best-of-n", "n": 2, "against": "raw N=1", "prompts": 4, "diff": 0.0, "diff_se": 0.1,
           "tags": {}}
    with pytest.raises(ArscaleError, match=r"cannot write --plot .*c\.pgf"):
        plot_comparison([row], tmp_path / "c.pgf")
