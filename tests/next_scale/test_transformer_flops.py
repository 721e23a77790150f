"""The next-scale transformer's analytic FLOPs against torch's FLOP counter, scale by scale."""

from tiny_families import count_scale_flops
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs


def test_every_matmul_of_a_scale_is_counted():
    # torch's counter sees every linear layer (aten.addmm) but not the fused attention on CPU: add that by hand
    # (q·k and weights·v, self and cross), and the head's elementwise modulation, which is not a matmul
    gen = build_tiny_var(*tiny_var_configs((1, 2, 3, 4), depth=2))
    traj = gen.start(["a photo of a red circle", "a photo of two squares"], 3, 0)
    counted = count_scale_flops(gen)
    for _ in range(gen.num_scales):
        gen.step(traj)
    c = gen.transformer.config
    context = gen.conditioner.encoder.config.max_len
    rows = 2 * len(traj)  # both CFG halves
    analytic = gen.flops_per_scale(len(traj))
    seen = 0
    for k, pn in enumerate(c.patch_nums):
        n = pn * pn
        seen += n
        attention = c.depth * (4 * n * seen * c.width + 4 * n * context * c.width)
        assert analytic[k] == rows * attention + counted[k] + rows * 2 * n * c.width, k
