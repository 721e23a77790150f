"""Long loops in one process: the scorer caches stay bounded and keep no stale per-object numbers."""

import gc
import shutil
import types
import warnings

import torch

from arscale.generators.registry import load_generator
from arscale.scorers.shapeworld import WEIGHTS_DIR, RewardModel, load_reward, restoring_weights, use_weights
from arscale.search import rollout
from arscale.search.best_of_n import BestOfN


def _reward_folders(tmp_path, count):
    for i in range(count):
        folder = tmp_path / f"reward{i}"
        folder.mkdir()
        for name in ("config.json", "model.safetensors"):
            shutil.copy(WEIGHTS_DIR / name, folder / name)
        yield folder


def _live_reward_models():
    gc.collect()
    with warnings.catch_warnings():  # isinstance on every live object touches torch's deprecated aliases
        warnings.simplefilter("ignore", FutureWarning)
        return sum(isinstance(o, RewardModel) for o in gc.get_objects())


def test_sweeping_reward_folders_does_not_keep_every_model(tmp_path):
    """Loading the reward from 6 folders in turn, each deleted after use, leaves at most 2 more models alive."""
    before = _live_reward_models()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for folder in _reward_folders(tmp_path, 6):
        assert load_reward(weights=folder).reward(images, "a photo of a red circle").shape == (2,)
        shutil.rmtree(folder)
    assert _live_reward_models() - before <= 2


def test_cached_scorer_keeps_one_scorer_per_name_across_reward_folders(tmp_path, monkeypatch):
    """cached_scorer under 6 successive use_weights folders holds one shapeworld-reward scorer, not 6."""
    monkeypatch.setattr(rollout, "_SCORERS", {})
    before = _live_reward_models()
    for folder in _reward_folders(tmp_path, 6):
        with restoring_weights():
            use_weights(folder)
            assert rollout.cached_scorer("shapeworld-reward", "cpu").model is load_reward(weights=folder).model
        shutil.rmtree(folder)
    assert len(rollout._SCORERS) == 1
    assert _live_reward_models() - before <= 3


def test_scorer_flops_of_unweakrefable_scorers_created_in_a_loop():
    """A SimpleNamespace scorer made anew each iteration gets its own FLOPs, not a dead one's at the same address."""
    generator = load_generator("shapeworld-var")

    def reward_of(k):
        weight = torch.randn(k, k, generator=torch.Generator().manual_seed(k))

        def reward(images, prompts):
            x = images.flatten(1)[:, :k]
            for _ in range(3):
                x = x @ weight
            return x.sum(1)

        return reward

    flops, scorer = {}, None
    for k in range(8, 104, 8):
        reward = reward_of(k)
        scorer = None  # the last scorer dies here: the next one may well take its address
        scorer = types.SimpleNamespace(name="ns", input_size=16, reward=reward)  # not weakly referable
        flops[k] = BestOfN().run(generator, ["a"], 2, seed=0, scorer=scorer).cost.scorer_flops
    assert flops == {k: 2.0 * 3 * 2 * k * k for k in flops}  # 3 matmuls of [2, k] @ [k, k]
