import numpy as np
import pytest
import torch

from arscale.bench.geneval_layout import read_image, sample_path
from arscale.bench.runner import Bench, parse_runs
from arscale.bench.suites import SuitePrompt
from arscale.errors import ArscaleError
from arscale.generators.next_scale.shapeworld import load_shapeworld_var
from arscale.shapeworld import build_suite


@pytest.fixture(scope="module")
def tiny(tiny_weights):
    return load_shapeworld_var(weights=tiny_weights)


PROMPTS = [SuitePrompt(i, md["prompt"], md) for i, md in enumerate(build_suite(1, 5)[:3])]


def test_dpg_grid_holds_four_independent_draws_first_is_the_run_image(tiny, tmp_path):
    bench = Bench(tiny, None, kind="shapeworld", seed=3, batch_prompts=2, quiet=True, layout="dpg")
    with torch.no_grad():
        bench.run(parse_runs("raw"), [1], PROMPTS, tmp_path)
    root = tmp_path / "raw" / "n1"
    for sp in PROMPTS:
        tile = read_image(sample_path(root, sp.index, 0))
        grid = read_image(root / "dpg" / f"{sp.index:05d}.png")
        h, w, _ = tile.shape
        assert grid.shape == (2 * h, 2 * w, 3)
        tiles = [grid[r * h:(r + 1) * h, c * w:(c + 1) * w] for r in range(2) for c in range(2)]
        assert np.array_equal(tiles[0], tile)
        assert len({t.tobytes() for t in tiles}) == 4  # independent draws, not copies
    # a prompt whose grid is missing is not complete: resume redoes its block, identically
    grid_path = root / "dpg" / "00002.png"
    before = grid_path.read_bytes()
    grid_path.unlink()
    with torch.no_grad():
        bench.run(parse_runs("raw"), [1], PROMPTS, tmp_path, resume=True)
    assert grid_path.read_bytes() == before


def test_compbench_names_carry_prompt_and_ten_images_per_prompt(tiny, tmp_path):
    bench = Bench(tiny, None, kind="shapeworld", seed=3, batch_prompts=2, quiet=True, layout="compbench")
    with torch.no_grad():
        bench.run(parse_runs("raw"), [1], PROMPTS, tmp_path)
    files = sorted(p.name for p in (tmp_path / "raw" / "n1" / "compbench" / "samples").iterdir())
    assert files == sorted(f"{sp.prompt}_{sp.index * 10 + j:06d}.png" for sp in PROMPTS for j in range(10))


def test_unknown_layout_is_an_error(tiny):
    with pytest.raises(ArscaleError, match="--layout"):
        Bench(tiny, None, kind="shapeworld", layout="parti")
