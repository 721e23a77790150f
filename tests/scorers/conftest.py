"""Tiny random ShapeWorld reward weights, written as the loaders read them."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from arscale.scorers.shapeworld import RewardConfig, RewardModel


@pytest.fixture(scope="session")
def tiny_reward_weights(tmp_path_factory):
    """`make(config)`: a folder with a seeded random RewardModel of that config (model.safetensors, config.json)."""

    def make(config: RewardConfig) -> Path:
        torch.manual_seed(0)
        model = RewardModel(config)
        d = tmp_path_factory.mktemp("reward")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(d / "model.safetensors"))
        (d / "config.json").write_text(json.dumps(asdict(model.config)))
        return d

    return make
