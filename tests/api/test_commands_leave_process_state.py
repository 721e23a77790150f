"""Process-wide state that arscale, called from Python, must give back to the caller: torch's TF32 switches, its
global random number generator and the current CUDA device."""

import pytest
import torch

from arscale.cli import main
from arscale.errors import ArscaleError
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.train import reward


@pytest.fixture
def tf32_off():
    """The caller runs fp32 matmuls and convolutions; the process's own switches come back afterwards."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _stop_after_begin(monkeypatch):
    """The reward trainer stops (one ArscaleError) right after `begin` and its seeding, before any model is built."""
    def stop(*args, **kwargs):
        raise ArscaleError("stopped by the test after begin()")

    monkeypatch.setattr(reward, "RewardConfig", stop)


def test_main_train_on_cuda_gives_back_the_callers_tf32_switches(fake_cuda, tf32_off, monkeypatch, tmp_path):
    """A `train --device cuda` run through `arscale.cli.main` leaves the caller's TF32 switches as they were."""
    fake_cuda(1)
    _stop_after_begin(monkeypatch)
    assert main(["train", "shapeworld-reward", "--device", "cuda", "--steps", "1", "--out", str(tmp_path / "r")]) == 2
    assert torch.backends.cuda.matmul.allow_tf32 is False  # train.common.begin: "training only; inference stays fp32"
    assert torch.backends.cudnn.allow_tf32 is False


def test_main_train_gives_back_the_callers_random_state(monkeypatch, tmp_path):
    """A `train` run through `arscale.cli.main` leaves the caller's global torch RNG where it was."""
    _stop_after_begin(monkeypatch)
    torch.manual_seed(31)
    state = torch.get_rng_state()
    assert main(["train", "shapeworld-reward", "--device", "cpu", "--seed", "0", "--steps", "1",
                 "--out", str(tmp_path / "r")]) == 2
    assert torch.equal(torch.get_rng_state(), state)


def test_random_shapeworld_ar_leaves_the_callers_random_state():
    """`random_shapeworld_ar(seed)` builds the same model for a seed without reseeding the caller's global RNG."""
    torch.manual_seed(31)
    state = torch.get_rng_state()
    first = random_shapeworld_ar(0, grid=2)
    assert torch.equal(torch.get_rng_state(), state)
    second = random_shapeworld_ar(0, grid=2)
    weights = [{**g.transformer.state_dict(), **g.tokenizer.state_dict()} for g in (first, second)]
    assert weights[0].keys() == weights[1].keys() and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_main_generate_on_another_gpu_gives_back_the_callers_current_device(fake_cuda, monkeypatch, tmp_path):
    """`generate --device cuda:1` through `arscale.cli.main` leaves the caller's current CUDA device (0) current."""
    calls = fake_cuda(2)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)  # the caller has used its GPU 0
    monkeypatch.setattr(torch.cuda, "current_device", lambda: calls[-1] if calls else 0)
    taken = tmp_path / "a-file"
    taken.write_text("")
    assert main(["generate", "a photo of a red circle", "--device", "cuda:1", "--out", str(taken)]) == 2  # a bad --out
    assert calls[0] == 1  # the command made cuda:1 current for itself
    assert torch.cuda.current_device() == 0
