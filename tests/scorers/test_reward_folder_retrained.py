"""Long sessions (notebooks, scripts calling `arscale.cli.main` several times): what a process caches must not
outlive the files it was read from."""

import json
import os
from dataclasses import asdict

import torch
from safetensors.torch import save_file

from arscale.scorers import shapeworld as sws
from arscale.scorers.base import load_scorer
from arscale.search import rollout

PROMPTS = ["a photo of a red circle", "a photo of two squares"]


def _write_reward(folder, seed: int, later_by_s: int = 0) -> None:
    """A seeded random ShapeWorld reward in `folder`, as `arscale train shapeworld-reward --out folder` leaves it
    (a rewrite dated `later_by_s` seconds after the folder's previous weights, as a later training run is)."""
    torch.manual_seed(seed)
    model = sws.RewardModel(sws.RewardConfig())
    folder.mkdir(exist_ok=True)
    path = folder / "model.safetensors"
    before = path.stat().st_mtime_ns if path.exists() else None
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    (folder / "config.json").write_text(json.dumps(asdict(model.config)))
    if before is not None:
        os.utime(path, ns=(before + later_by_s * 10**9, before + later_by_s * 10**9))


def _images():
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def test_reward_retrained_into_the_same_folder_loads_anew(tmp_path):
    """load_scorer(weights=DIR) after DIR was retrained scores with the new weights, not the cached old ones."""
    folder = tmp_path / "reward"
    _write_reward(folder, seed=0)
    old = load_scorer("shapeworld-reward", weights=str(folder)).reward(_images(), PROMPTS)
    _write_reward(folder, seed=1, later_by_s=60)  # e.g. `arscale train shapeworld-reward --out DIR --steps MORE`
    new = load_scorer("shapeworld-reward", weights=str(folder)).reward(_images(), PROMPTS)
    torch.manual_seed(1)
    expected = sws.RewardModel(sws.RewardConfig()).eval()
    with torch.no_grad():
        want = expected.standardise(expected.logits(_images(), PROMPTS)).float()
    assert not torch.allclose(new, old)
    assert torch.allclose(new, want, atol=1e-5)


def test_search_scorer_cache_sees_a_retrained_scorer_weights_folder(tmp_path):
    """cached_scorer under use_weights(DIR) returns a scorer with DIR's current weights after DIR is rewritten."""
    folder = tmp_path / "reward"
    _write_reward(folder, seed=0)
    with sws.restoring_weights():
        sws.use_weights(folder)
        first = rollout.cached_scorer("shapeworld-reward", "cpu").reward(_images(), PROMPTS)
        _write_reward(folder, seed=1, later_by_s=60)
        second = rollout.cached_scorer("shapeworld-reward", "cpu").reward(_images(), PROMPTS)
    assert not torch.allclose(first, second)
