"""Infinity's analytic scale FLOPs against torch's FLOP counter. The counter sees every linear layer but not the
fused attention on CPU, so the attention (self over every token seen so far, cross over each row's own text)
is added by hand. The gap left must be affine in the scale's token count (which pins the self-attention term
over `seen` = all tokens up to and including this scale), and is in fact zero: the per-row work (the AdaLN
modulations, the bit embedding) is billed too."""

from tiny_families import count_scale_flops, tiny_infinity


def _gaps() -> tuple[list[float], list[float], list[int]]:
    """Per scale: the counter's FLOPs plus the attention by hand, minus the analytic count; the analytic count;
    the scale's token count."""
    gen = tiny_infinity()
    traj = gen.start(["a red cube", "two green balls on a table"], 2, seed=0)
    counted = count_scale_flops(gen)
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
    return gap, analytic, list(gen.sizes)


def test_scale_flops_follow_the_counter_up_to_per_token_work():
    gap, analytic, sizes = _gaps()
    # gap_k = a + b·n_k for k ≥ 1: fit on scales 1 and 2, check the rest (n grows, seen grows faster); scale 0
    # embeds the condition instead of tokens, so it may lack the per-token part
    n1, n2 = sizes[1], sizes[2]
    b = (gap[2] - gap[1]) / (n2 - n1)
    a = gap[1] - b * n1
    assert a >= 0 and b >= 0
    assert 0 <= gap[0] <= a + b * sizes[0]
    for k in range(1, len(sizes)):
        assert abs(gap[k] - (a + b * sizes[k])) <= 1e-9 * analytic[k], k


def test_scale_flops_leave_nothing_the_counter_sees_uncounted():
    # the per-row work the first test tolerates (AdaLN modulations, the bit embedding) is billed too: with the
    # attention added by hand, the analytic count is the counter's, scale by scale
    gap, analytic, sizes = _gaps()
    for k in range(len(sizes)):
        assert abs(gap[k]) <= 1e-9 * analytic[k], k
