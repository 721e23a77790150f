"""The block size b and the worst quantile q of the config reach the profile's B (SCALINGAR.md §2.1b). The
existing recomputation runs the defaults on an 8x8 grid, where 4 blocks make any q <= 0.25 pick one block."""

import math

import numpy as np
import pytest
from test_scaling_ar_policy import _pooled_sigmoid_z

from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.search.scaling_ar import ScalingAR, ScalingARConfig


def _worst_blocks(h: np.ndarray, grid: int, block: int, q: float) -> np.ndarray:
    """At each step, the mean of the ceil(q * active) highest block means (b x b blocks holding a generated token)."""
    T = h.shape[1]
    worst = np.empty_like(h)
    for t in range(T):
        for row in range(h.shape[0]):
            seen = np.full(T, np.nan)
            seen[: t + 1] = h[row, : t + 1]
            square = seen.reshape(grid, grid)
            means = sorted(np.nanmean(square[r:r + block, c:c + block]) for r in range(0, grid, block)
                           for c in range(0, grid, block) if not np.isnan(square[r:r + block, c:c + block]).all())
            worst[row, t] = np.mean(means[-max(1, math.ceil(q * len(means))):])
    return worst


@pytest.mark.parametrize("block, q", [(2, 0.1), (4, 0.5)])  # 16 blocks -> 2 worst; 4 blocks -> 2 worst
def test_block_stability_follows_the_configured_block_and_quantile(block, q):
    gen = random_shapeworld_ar(1, grid=8, vocab_size=32, cfg=2.0)
    cfg = ScalingARConfig(terminate=False, block=block, worst_q=q)
    traces = ScalingAR(cfg).run(gen, ["a photo of a red circle"], 3, seed=5).telemetry["prompts"][0]
    h = np.array([tr["entropy"] for tr in traces], dtype=np.float64)
    want = 1 - _pooled_sigmoid_z(_worst_blocks(h, 8, block, q))
    got = np.array([tr["B"] for tr in traces], dtype=np.float64)
    assert np.abs(got - want).max() < 1e-3
    assert float(np.ptp(want)) > 0.1  # a live signal
