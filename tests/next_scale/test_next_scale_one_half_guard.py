"""A one-half trajectory (started with unconditional=False) must refuse any guidance other than 1 — also when
only some rows carry it (check_one_half must not look at the smallest value alone)."""

import pytest
import torch
from tiny_families import tiny_var

from arscale.errors import ArscaleError
from arscale.generators.next_scale.generator import check_one_half


def test_check_one_half_refuses_any_value_besides_one():
    check_one_half(1.0)
    check_one_half(torch.ones(3))
    for bad in (torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.0]), torch.tensor([1.0, 1.0, 3.0]), 2.0):
        with pytest.raises(ArscaleError, match="unconditional"):
            check_one_half(bad)


def test_one_half_row_with_guidance_above_one_is_refused():
    gen = tiny_var()
    gen.sampling.cfg_schedule, gen.sampling.cfg = "constant", 1.0
    traj = gen.start([3, 7], 2, seed=0, unconditional=False)
    assert traj.halves == 1
    traj.rows["cfg"][1] = 2.0  # one row now asks for a mix the trajectory cannot compute
    logits = gen.forward_scale(traj)
    with pytest.raises(ArscaleError, match="unconditional"):
        gen.guide(traj, logits)
