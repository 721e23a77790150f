"""arscale in a long-lived process (a notebook, a server, a sweep script): loading models and running a seeded
strategy leave the caller's global torch random stream alone, and a generator the caller cast to bf16 still runs."""

import shutil

import numpy as np
import pytest
import torch

from arscale.generators.registry import load_generator
from arscale.scorers.shapeworld import WEIGHTS_DIR, restoring_weights, use_weights
from arscale.search.base import make_strategy

PROMPT = "a photo of a red circle"


def _next_draws_after_seed(seed, action=None):
    """What torch.rand gives after `torch.manual_seed(seed)` and then `action()` (nothing when None)."""
    torch.manual_seed(seed)
    if action is not None:
        action()
    return torch.rand(4)


@pytest.mark.parametrize("name", ["shapeworld-var", "shapeworld-ar"])
def test_load_generator_leaves_the_global_torch_rng(name):
    """torch.manual_seed(0); load_generator(...); torch.rand draws what it would have drawn without the load."""
    assert torch.equal(_next_draws_after_seed(0, lambda: load_generator(name)), _next_draws_after_seed(0))


def test_first_seeded_run_leaves_the_global_torch_rng(tmp_path):
    """A seeded best-of-n run that loads its reward by name leaves torch's global stream where the caller put it."""
    generator = load_generator("shapeworld-var")
    folder = tmp_path / "reward"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(WEIGHTS_DIR / name, folder / name)
    with restoring_weights():
        use_weights(folder)  # a reward folder no run of this process has loaded: the run loads it
        after_run = _next_draws_after_seed(
            3, lambda: make_strategy("best-of-n", {}).run(generator, [PROMPT], 2, seed=0))
    assert torch.equal(after_run, _next_draws_after_seed(3))


def test_shapeworld_var_cast_to_bfloat16_generates():
    """load_generator("shapeworld-var").to(torch.bfloat16) (an nn.Module) still draws uint8 images, as raw and TTS-VAR."""
    generator = load_generator("shapeworld-var").to(torch.bfloat16)
    for strategy in ("raw", "tts-var"):
        result = make_strategy(strategy, {}).run(generator, [PROMPT], 2, seed=0)
        image = result.chosen(0).image
        assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
        assert image.std() > 0  # a drawing, not a blank tile
