"""GPU-only code paths, shown on the CPU by faking CUDA (`fake_cuda`) where needed."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_gpu(fake_cuda, monkeypatch):
    """A machine with one GPU, GPU 0 current (what `--device cuda` and `cuda:0` both name)."""
    fake_cuda(1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_a_scorer_asked_for_on_cuda_and_on_cuda_0_loads_once(one_gpu, registries):
    from arscale.scorers.base import register_scorer
    from arscale.search.rollout import cached_scorer

    loads = []

    class Scorer:
        name, input_size = "s32f-gpu-scorer", 8

        def reward(self, images, prompts):
            return torch.zeros(len(images))

    def factory(device="cpu"):
        loads.append(device)
        return Scorer()

    register_scorer("s32f-gpu-scorer", factory)
    by_flag = cached_scorer("s32f-gpu-scorer", "cuda")  # `bench --device cuda`: the reward column's scorer
    by_model = cached_scorer("s32f-gpu-scorer", torch.device("cuda", 0))  # `make_search`: the generator's device
    assert by_model is by_flag
    assert loads == ["cuda"]


def test_shapeworld_reward_and_features_share_one_model_on_a_gpu(one_gpu, monkeypatch):
    from arscale.scorers import shapeworld

    monkeypatch.setattr(shapeworld.RewardModel, "to", lambda self, *args, **kwargs: self)  # moves recorded, not made
    reward = shapeworld.load_model(None, "cuda")
    features = shapeworld.load_model(None, "cuda:0")
    assert features is reward


def test_a_resumed_optimizer_keeps_adams_step_on_the_cpu_as_torch_hosts_it(one_gpu, tmp_path):
    from arscale.train.common import load_optimizer, save_optimizer

    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(4, 3))
    trained = torch.optim.AdamW([weight], lr=1e-2)
    weight.sum().backward()
    trained.step()
    save_optimizer(trained, tmp_path / "optimizer.safetensors")
    resumed = torch.optim.AdamW([weight], lr=1e-2)
    assert load_optimizer(resumed, tmp_path)  # a trainer resuming with --device cuda
    state = resumed.state[weight]
    assert state["step"].device.type == "cpu" and float(state["step"]) == 1.0
    assert state["exp_avg"].device == weight.device and torch.equal(state["exp_avg"], trained.state[weight]["exp_avg"])
