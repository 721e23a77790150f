"""Infinity's analytic scale FLOPs against torch's FLOP counter. The counter sees every linear layer but not the
fused attention on CPU, so the attention (self over every token seen so far, cross over each row's own text)
is added by hand. What the analytic count may leave out is per-row work that does not grow with the tokens
seen (the AdaLN modulations, the input embedding): the gap must be affine in the scale's token count, so the
self-attention term over `seen` = all tokens up to and including this scale is checked exactly."""

import torch
from tiny_families import tiny_infinity
from torch.utils.flop_counter import FlopCounterMode


def test_scale_flops_follow_the_counter_up_to_per_token_work():
    gen = tiny_infinity()
    traj = gen.start(["a red cube", "two green balls on a table"], 2, seed=0)
    counted, forward_scale = [], gen.transformer.forward_scale

    def counting(*args, **kwargs):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = forward_scale(*args, **kwargs)
        counted.append(counter.get_total_flops())
        return out

    gen.transformer.forward_scale = counting
    analytic = []
    for k in range(gen.num_scales):
        analytic.append(gen.scale_flops(traj, k))
        gen.step(traj)
    cfg = gen.model.cfg
    C, rows = cfg.embed_dim, traj.halves * len(traj)
    text = float(traj.paired["context_mask"].sum())
    gap = []
    for k in range(gen.num_scales):
        n, seen = gen.sizes[k], sum(gen.sizes[: k + 1])
        attention = cfg.depth * (rows * 4 * n * seen * C + 4 * n * C * text)
        gap.append(counted[k] + attention - analytic[k])
    # gap_k = a + b·n_k for k ≥ 1: fit on scales 1 and 2, check the rest (n grows, seen grows faster); scale 0
    # embeds the condition instead of tokens, so it may lack the per-token part
    n1, n2 = gen.sizes[1], gen.sizes[2]
    b = (gap[2] - gap[1]) / (n2 - n1)
    a = gap[1] - b * n1
    assert a >= 0 and b >= 0
    assert 0 <= gap[0] <= a + b * gen.sizes[0]
    for k in range(1, gen.num_scales):
        assert abs(gap[k] - (a + b * gen.sizes[k])) <= 1e-9 * analytic[k], k


def test_scale_flops_leave_nothing_the_counter_sees_uncounted():
    # the per-row work the first test tolerates (AdaLN modulations, the bit embedding) is billed too: with the
    # attention added by hand, the analytic count is the counter's, scale by scale
    gen = tiny_infinity()
    traj = gen.start(["a red cube", "two green balls on a table"], 2, seed=0)
    counted, forward_scale = [], gen.transformer.forward_scale

    def counting(*args, **kwargs):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = forward_scale(*args, **kwargs)
        counted.append(counter.get_total_flops())
        return out

    gen.transformer.forward_scale = counting
    analytic = []
    for k in range(gen.num_scales):
        analytic.append(gen.scale_flops(traj, k))
        gen.step(traj)
    cfg, rows = gen.model.cfg, traj.halves * len(traj)
    text = float(traj.paired["context_mask"].sum())
    for k in range(gen.num_scales):
        n, seen = gen.sizes[k], sum(gen.sizes[: k + 1])
        attention = cfg.depth * (rows * 4 * n * seen * cfg.embed_dim + 4 * n * cfg.embed_dim * text)
        assert abs(counted[k] + attention - analytic[k]) <= 1e-9 * analytic[k], k
