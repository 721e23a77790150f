"""The next-scale transformer's analytic FLOPs against torch's FLOP counter, scale by scale."""

import pytest
from tiny_families import count_scale_flops
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs


@pytest.mark.parametrize("patch_nums, depth, shared_aln", [((1, 2, 3, 4), 2, False), ((1, 2, 4), 3, True)])
def test_every_matmul_of_a_scale_is_counted(patch_nums, depth, shared_aln):
    # torch's counter sees every linear layer (aten.addmm) but not the fused attention on CPU: add that by hand
    # (q·k and weights·v, self and cross), and the head's elementwise modulation, which is not a matmul.
    # Shared AdaLN (VAR d36) runs one modulation per row instead of one per block.
    tok, model = tiny_var_configs(patch_nums, depth=depth)
    model["transformer"]["shared_aln"] = shared_aln
    gen = build_tiny_var(tok, model)
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
