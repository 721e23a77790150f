import math

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.trajectories import Trajectories
from arscale.search.potentials import log_weights, potential, resample

NAN = float("nan")


def test_potentials_from_history():
    h = torch.tensor([[1.0, NAN, 3.0, 2.0], [0.5, NAN, -1.0, 4.0]])
    assert potential(h, 3, "value").tolist() == [2.0, 4.0]
    assert potential(h, 3, "diff").tolist() == [-1.0, 5.0]  # against the previous *recorded* column (2)
    assert potential(h, 3, "max").tolist() == [3.0, 4.0]
    assert potential(h, 3, "sum").tolist() == [6.0, 3.5]
    assert potential(h[:, :1], 0, "diff").tolist() == [1.0, 0.5]  # no past: VALUE


def test_potentials_follow_rows_through_a_duplicating_select():
    traj = Trajectories.for_prompts(["p"], 3, seed=0)
    traj.record("reward", 0, torch.tensor([1.0, 5.0, 2.0]))
    traj.select([1, 1, 2], "resample")
    traj.record("reward", 2, torch.tensor([0.0, 6.0, 3.0]))
    assert potential(traj.history["reward"], 2, "diff").tolist() == [-5.0, 1.0, 1.0]
    assert potential(traj.history["reward"], 2, "max").tolist() == [5.0, 6.0, 3.0]
    assert potential(traj.history["reward"], 2, "sum").tolist() == [5.0, 11.0, 5.0]


def test_extreme_lambda_does_not_overflow():
    phi = torch.tensor([1000.0, 999.0, -1000.0])
    logw = log_weights(phi, 1e4, torch.zeros(3, dtype=torch.long))
    assert torch.isfinite(logw[:2]).all() and logw[0] == 0.0
    assert math.isclose(float(torch.logsumexp(logw, 0)), 0.0, abs_tol=1e-12)
    draws = resample(phi, 1e4, 50, torch.Generator().manual_seed(0))
    assert draws.tolist() == [0] * 50
    tiny = resample(torch.tensor([-1e6, -1e6 - 1]), 1e3, 20, torch.Generator().manual_seed(0))
    assert set(tiny.tolist()) == {0}


def test_log_weights_normalise_per_prompt():
    phi = torch.tensor([0.0, 1.0, 2.0, 5.0])
    groups = torch.tensor([0, 0, 1, 1])
    w = log_weights(phi, 1.0, groups).exp()
    assert torch.allclose(w[:2].sum(), torch.tensor(1.0, dtype=w.dtype))
    assert torch.allclose(w[2:].sum(), torch.tensor(1.0, dtype=w.dtype))
    assert w[1] > w[0]


def test_lambda_zero_is_uniform_and_draws_are_seeded():
    phi = torch.tensor([0.0, 3.0, 9.0, 1.0])
    a = resample(phi, 0.0, 4000, torch.Generator().manual_seed(1))
    b = resample(phi, 0.0, 4000, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    counts = torch.bincount(a, minlength=4).float() / 4000
    assert (counts - 0.25).abs().max() < 0.04


@pytest.mark.parametrize("bad", [NAN, float("inf")])
def test_non_finite_rewards_are_an_error(bad):
    h = torch.tensor([[0.1], [bad]])
    with pytest.raises(ArscaleError, match="not finite"):
        potential(h, 0, "value")


def test_unknown_potential():
    with pytest.raises(ArscaleError, match="unknown potential"):
        potential(torch.zeros(2, 1), 0, "topk")
