"""Audit (mutation testing of src/arscale/train): the exact shape of the learning-rate schedule, and that it
reaches every parameter group."""

import argparse
import itertools

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.train import lr_schedule
from arscale.train.lr_schedule import cosine_lr


def test_warmup_ramps_linearly_to_the_peak_then_cosine_falls_to_a_ten_percent_floor():
    peak, warmup, total = 2.0, 4, 24
    assert [cosine_lr(s, total, peak, warmup) for s in range(warmup)] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert cosine_lr(warmup, total, peak, warmup) == pytest.approx(peak)  # the cosine starts at the peak
    assert cosine_lr(warmup + 10, total, peak, warmup) == pytest.approx(peak * (0.1 + 0.9 * 0.5))  # half way
    assert cosine_lr(total, total, peak, warmup) == pytest.approx(0.1 * peak)  # the floor, not zero
    # past the planned steps (a resume with fewer --steps) it stays on the floor instead of rising again
    assert [cosine_lr(s, total, peak, warmup) for s in (total + 5, 2 * total - warmup)] == pytest.approx([0.2, 0.2])
    values = [cosine_lr(s, total, peak, warmup) for s in range(warmup, total + 1)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_set_lr_sets_every_parameter_group():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
    opt = torch.optim.AdamW([{"params": model[0].parameters(), "weight_decay": 0.05},
                             {"params": model[1].parameters(), "weight_decay": 0.0}], lr=1.0)
    lr_schedule.set_lr(opt, 0.25)
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.25]


def test_a_cooldown_as_long_as_the_run_is_allowed_and_longer_is_refused():
    lr_schedule.check_cooldown_arg(argparse.Namespace(cooldown=5, steps=5))  # the whole run anneals
    lr_schedule.check_cooldown_arg(argparse.Namespace(cooldown=0, steps=5))
    with pytest.raises(ArscaleError, match="--cooldown must be between 0 and --steps"):
        lr_schedule.check_cooldown_arg(argparse.Namespace(cooldown=6, steps=5))
