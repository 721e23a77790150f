"""Code paths only a GPU takes (CUDA reported by monkeypatching; no GPU needed)."""

from __future__ import annotations

import pytest
import torch

from arscale.cli import main
from arscale.errors import ArscaleError


@pytest.fixture
def two_gpus(fake_cuda):
    return fake_cuda(2)


def test_torchrun_rank_runs_on_its_own_gpu(two_gpus, monkeypatch, tmp_path):
    """Rank 1 of `torchrun --nproc-per-node 2 ... bench --device cuda` loads its model on cuda:1, not cuda:0."""
    from arscale.generators import registry

    for name in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    asked = []

    def record(name, **options):
        asked.append(options.get("device"))
        raise ArscaleError("stop here: the model would load now")

    monkeypatch.setattr(registry, "load_generator", record)
    code = main(["bench", "--model", "shapeworld-var", "--device", "cuda", "--strategies", "raw", "--n", "1",
                 "--prompts", "draw:1:5", "--limit", "1", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2 and asked, "the bench stopped before it loaded the model"
    assert torch.device(asked[0]) == torch.device("cuda:1")
    assert two_gpus[-1:] == [1]  # the rank's GPU is current, so the cost record's timers wait on it


def test_phase_timer_waits_on_the_gpu_the_model_runs_on(monkeypatch):
    """With the model's memory on cuda:1 and cuda:0 current (load_generator(device="cuda:1")), a timer drains cuda:1."""
    from arscale.search.result import CostRecord

    synced = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 2**20 if device == 1 else 0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(0 if device is None else device))
    cost = CostRecord()
    with cost.timer("model"):
        assert 1 in synced  # the queue is drained before the phase starts...
        synced.clear()
    assert 1 in synced  # ...and when it ends


def test_one_gpu_is_drained_without_reading_allocator_statistics(monkeypatch):
    """On a one-GPU machine the phase timers (which run per token) synchronize that GPU and read no allocator
    statistics (each read builds a dict of a few hundred counters)."""
    from arscale.search.result import CostRecord

    synced = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: pytest.fail("allocator statistics read"))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    cost = CostRecord()
    with cost.timer("model"):
        pass
    assert synced == [None, None]  # before and after the phase
