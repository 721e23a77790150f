"""ScalingARConfig: the range checks the existing table leaves out, the renormalised ablation weights, and the
step-count rules (warm-up rounds up, scaled windows never below `min_window`)."""

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.search.base import make_strategy
from arscale.search.scaling_ar import ScalingAR, ScalingARConfig


@pytest.mark.parametrize("bad, match", [
    ({"worst_q": 0.0}, "worst_q"),
    ({"worst_q": 1.5}, "worst_q"),
    ({"block": 0}, "block"),
    ({"kl_ema": 1.0}, "kl_ema"),
    ({"kl_ema": -0.1}, "kl_ema"),
    ({"warmup_fraction": 1.0}, "warmup_fraction"),
    ({"warmup_fraction": -0.1}, "warmup_fraction"),
    ({"recovery_window": -1}, "recovery_window"),
    ({"variance_window": 0}, "variance_window"),
    ({"lambda_tok": 0.0}, "lambda_tok"),
    ({"lambda_i": 1.5}, "lambda_i"),
    ({"alpha_h": -0.5}, "alpha_h"),
    ({"gamma": -0.1}, "gamma"),
    ({"clamp_min": 0.0}, "clamp_min"),
    ({"clamp_over": -1.0}, "clamp_over"),
    ({"cfg_base": 0.0}, "cfg_base"),
    ({"prompt_batch": 0}, "prompt_batch"),
    ({"final_pick": "first"}, "final_pick"),
    ({"min_window": 0}, "min_window"),
])
def test_more_invalid_configs_rejected(bad, match):
    with pytest.raises(ArscaleError, match=match):
        make_strategy("scaling-ar", bad)


def test_ablation_weights_are_renormalised():
    assert ScalingARConfig().weights() == pytest.approx((0.65, 0.35, 0.75, 0.25))
    assert ScalingARConfig(use_block=False).weights() == pytest.approx((1.0, 0.0, 0.75, 0.25))
    assert ScalingARConfig(use_token=False).weights() == pytest.approx((0.0, 1.0, 0.75, 0.25))
    assert ScalingARConfig(use_conditional=False).weights() == pytest.approx((0.65, 0.35, 1.0, 0.0))
    assert ScalingARConfig(w_tok=1.3, w_blk=0.7, w_i=3.0, w_d=1.0).weights() == pytest.approx((0.65, 0.35, 0.75, 0.25))


def test_without_block_stability_i_is_the_ema_of_token_confidence():
    gen = random_shapeworld_ar(1, grid=8, vocab_size=32, cfg=2.0)
    res = ScalingAR(ScalingARConfig(use_block=False, terminate=False)).run(gen, ["a photo of a red circle"], 2, seed=1)
    for tr in res.telemetry["prompts"][0]:
        s_tok, i = torch.tensor(tr["s_tok"], dtype=torch.float64), torch.tensor(tr["I"], dtype=torch.float64)
        want = s_tok.clone()
        for t in range(1, len(want)):
            want[t] = 0.8 * want[t - 1] + 0.2 * s_tok[t]  # I = EMA_0.2(1.0 * s_tok), not EMA(0.65 * s_tok)
        assert torch.allclose(i, want, atol=1e-5)


def test_warm_up_rounds_up_so_no_decision_comes_before_its_fraction_of_tokens():
    cfg = ScalingARConfig()
    assert cfg.warmup_steps(100) == 13 and cfg.warmup_steps(36) == 5 and cfg.warmup_steps(9) == 2
    for T in range(1, 300):
        assert cfg.warmup_steps(T) >= 0.125 * T  # the first decision at t = W0 sees >= 12.5 % of the tokens


def test_scaled_windows_never_drop_below_min_window():
    cfg = ScalingARConfig()
    assert cfg.recovery_steps(16) == 2 and cfg.variance_steps(16) == 2  # round(0.5) = 0 -> min_window
    assert ScalingARConfig(min_window=5).recovery_steps(64) == 5  # round(2.0) = 2 -> 5
    assert ScalingARConfig(min_window=1).recovery_steps(8) == 1  # round(0.25) = 0 -> 1
