import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.sampling import cfg_mix, filter_logits, sample_batch, sample_per_row
from arscale.search.base import StrategyConfig
from arscale.search.result import CostRecord


def test_top_k_keeps_ties_and_top_p_keeps_the_nucleus():
    logits = torch.tensor([[1.0, 2.0, 3.0, 3.0]])
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[True, True, False, False]]
    assert torch.isinf(filter_logits(logits, top_k=3)).tolist() == [[True, False, False, False]]
    # probs ~ .06 .16 .39 .39: the nucleus for p=0.7 is the two largest
    assert torch.isinf(filter_logits(logits, top_p=0.7)).tolist() == [[True, True, False, False]]
    # the largest entry survives even a tiny p
    assert not torch.isinf(filter_logits(torch.tensor([[0.0, 9.0]]), top_p=1e-6)[0, 1])


def test_per_row_sampling_does_not_depend_on_the_batch():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 11)
    keys = [11, 22, 33, 44]
    full = sample_per_row(logits, keys, step=3)
    part = sample_per_row(logits[2:], keys[2:], step=3)
    assert torch.equal(full[2:], part)
    assert not torch.equal(sample_per_row(logits, keys, step=4), full)


def test_batch_sampling_is_seeded():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    a = sample_batch(logits, torch.Generator().manual_seed(5), top_k=10)
    b = sample_batch(logits, torch.Generator().manual_seed(5), top_k=10)
    assert torch.equal(a, b)
    # every draw lies in its row's top 10, and the generator (not a fixed stream) decides which
    top10 = logits.topk(10, dim=-1).indices
    assert (top10 == a[:, None]).any(-1).all()
    draws = torch.stack([sample_batch(logits, torch.Generator().manual_seed(s), top_k=10) for s in range(20)])
    assert len({tuple(d.tolist()) for d in draws}) > 1
    with pytest.raises(ValueError, match="temperature must be positive"):
        sample_batch(logits, None, temperature=0)


def test_cfg_mix_per_row_scale():
    # a nonzero uncond: uncond + s (cond - uncond), row by row, e.g. row 1 at s = 3: 2 + 3 (5 - 2) = 11
    cond = torch.tensor([[1.0, 4.0, -2.0], [5.0, 0.0, 1.0]])
    uncond = torch.tensor([[3.0, 1.0, 0.5], [2.0, 2.0, -1.0]])
    out = cfg_mix(cond, uncond, torch.tensor([0.5, 3.0]))
    assert out.tolist() == [[2.0, 2.5, -0.75], [11.0, -4.0, 5.0]]
    # a float scale applies to every row
    assert cfg_mix(cond, uncond, 2.0).tolist() == [[-1.0, 7.0, -4.5], [8.0, -2.0, 3.0]]


def test_cost_timer_and_overhead():
    c = CostRecord()
    with c.timer("model"):
        pass
    c.total_wall = c.wall["model"] + 1.0
    assert abs(c.overhead - 1.0) < 1e-9
    with pytest.raises(KeyError, match="unknown phase 'nope'"), c.timer("nope"):
        pass


def test_config_round_trip_rejects_unknown_fields():
    from dataclasses import dataclass

    @dataclass
    class Cfg(StrategyConfig):
        lam: float = 1.0
        scales: tuple = (2, 5)

    assert Cfg.from_json(Cfg(lam=5.0).to_json()).lam == 5.0
    with pytest.raises(ArscaleError, match=r"unknown Cfg field.*'lambda'"):
        Cfg.from_dict({"lambda": 1})
