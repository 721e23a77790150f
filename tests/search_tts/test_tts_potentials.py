import math

import pytest
import torch
from search_fakes import FakeNextScale

from arscale.errors import ArscaleError
from arscale.generators.trajectories import Trajectories
from arscale.search.importance import resample_per_prompt
from arscale.search.potentials import POTENTIALS, log_weights, potential, resample
from arscale.search.rollout import Search

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


def test_log_weights_are_a_softmax_of_lambda_phi_per_prompt():
    phi = torch.tensor([0.0, 2.0, 1.0, 5.0, -1.0])
    groups = torch.tensor([0, 1, 0, 1, 1])  # interleaved: the groups are picked by label, not by position
    lam = 2.0
    w = log_weights(phi, lam, groups).exp()
    e = [math.exp(lam * x) for x in phi.tolist()]  # exp(λφ), normalised within each group by hand
    expected = [e[0] / (e[0] + e[2]), e[1] / (e[1] + e[3] + e[4]), e[2] / (e[0] + e[2]),
                e[3] / (e[1] + e[3] + e[4]), e[4] / (e[1] + e[3] + e[4])]
    assert torch.allclose(w, torch.tensor(expected, dtype=w.dtype), rtol=1e-12, atol=0)
    # and resample draws with those weights: frequencies of 20000 seeded draws within 0.015 of the softmax
    # (binomial standard deviation at most 0.0036)
    group = phi[groups == 1]
    draws = resample(group, lam, 20000, torch.Generator().manual_seed(2))
    freq = torch.bincount(draws, minlength=3).double() / 20000
    assert torch.allclose(freq, torch.tensor([expected[1], expected[3], expected[4]], dtype=freq.dtype), atol=0.015)


# Four rows of one prompt, rewarded at two resampling scales (columns 0 and 2; column 1 was not scored). By hand,
# with r_prev at column 0 and r_now at column 2:
#   row   r_prev  r_now | VALUE = r_now   DIFF = r_now - r_prev   MAX = max(r_prev, r_now)   SUM = r_prev + r_now
#   0       2      4    |    4               2                       4                          6
#   1      -5      3    |    3               8                       3                         -2
#   2       9     -8    |   -8             -17                       9                          1
#   3       6      2.5  |    2.5            -3.5                     6                          8.5
# so each potential has a different best row.
PREV, NOW = [2.0, -5.0, 9.0, 6.0], [4.0, 3.0, -8.0, 2.5]
BEST = {"value": 0, "diff": 1, "max": 2, "sum": 3}


@pytest.mark.parametrize("kind", POTENTIALS)
def test_resample_per_prompt_draws_by_the_potential_it_is_given(kind):
    # two prompts: the second holds the same four rows in reverse order (rows 4..7), so its best row is 7 - BEST
    search = Search(FakeNextScale(), seed=0, prompt_offset=0)
    traj = Trajectories.for_prompts(["a", "b"], 4, seed=0)
    traj.record("reward", 0, torch.tensor(PREV + PREV[::-1]))
    traj.record("reward", 2, torch.tensor(NOW + NOW[::-1]))
    best = BEST[kind]
    # at this λ the best row's weight is 1 and every other row's exp(-λ·gap) underflows to 0: a deterministic draw
    rows, trace = resample_per_prompt(search, traj, 2, kind, lam=1e6)
    assert rows == [best] * 4 + [7 - best] * 4
    assert trace["kept"] == rows and trace["position"] == 2 and trace["reward"] == NOW + NOW[::-1]
    kept, _ = resample_per_prompt(search, traj, 2, kind, lam=1e6, keep=2)
    assert kept == [best] * 2 + [7 - best] * 2


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


def test_potential_does_not_alias_the_history():
    for kind in POTENTIALS:
        for column in (0, 2):
            h = torch.tensor([[1.0, float("nan"), 3.0], [2.0, float("nan"), -1.0]])
            before = h.clone()
            phi = potential(h, column, kind)
            phi += 100.0
            assert torch.equal(h.nan_to_num(7.0), before.nan_to_num(7.0)), (kind, column)
