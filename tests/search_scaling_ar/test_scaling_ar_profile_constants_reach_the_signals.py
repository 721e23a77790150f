"""Non-default profile constants reach the signals they name (SCALINGAR.md §2.1): alpha_H / alpha_M (the paper's
0.7 / 0.3 ablation), lambda_tok and lambda_I. With the defaults (0.5 / 0.5, 0.2 / 0.2) a swap is invisible."""

import numpy as np

from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.search.scaling_ar import ScalingAR, ScalingARConfig


def _ema(x: np.ndarray, rate: float) -> np.ndarray:
    out = x.copy()
    for t in range(1, x.shape[1]):
        out[:, t] = (1 - rate) * out[:, t - 1] + rate * x[:, t]
    return out


def test_entropy_and_margin_weights_and_both_ema_rates():
    gen = random_shapeworld_ar(1, grid=8, vocab_size=32, cfg=2.0)
    cfg = ScalingARConfig(terminate=False, alpha_h=0.7, alpha_m=0.3, lambda_tok=0.3, lambda_i=0.6)
    traces = ScalingAR(cfg).run(gen, ["a photo of a red circle"], 3, seed=5).telemetry["prompts"][0]
    h, m, s_tok, b, i = (np.array([tr[k] for tr in traces], dtype=np.float64)
                         for k in ("entropy", "margin", "s_tok", "B", "I"))
    x = 1 - (0.7 * h + 0.3 * (1 - m))
    assert np.abs(s_tok - _ema(x, 0.3)).max() < 1e-5
    assert np.abs(i - _ema(0.65 * s_tok + 0.35 * b, 0.6)).max() < 1e-5
    # a swap of the weights moves x by 0.4 * (h - (1 - m)); the tiny random model is near uniform, so the two terms
    # are close, but their difference is still ten times the tolerance above
    assert 0.4 * np.abs(h - (1 - m)).max() > 1e-4
