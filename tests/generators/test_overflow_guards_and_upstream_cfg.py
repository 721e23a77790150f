"""The samplers' overflow guards at their edges (a row of -inf logits stays refused) and VAR's upstream guidance
for a cfg that float32 cannot hold."""

import pytest
import torch

from arscale.generators.next_scale.infinity import _likelier_bit_where_overflowed
from arscale.generators.sampling import sample_batch, sample_per_row

NEG_INF = float("-inf")


@pytest.mark.parametrize("temperature", [1.0, 1e-40])
def test_a_row_of_only_minus_inf_logits_is_refused_not_sampled_uniformly(temperature):
    logits = torch.randn(2, 6, generator=torch.Generator().manual_seed(0))
    logits[1] = NEG_INF
    with pytest.raises(RuntimeError):
        sample_batch(logits, torch.Generator().manual_seed(0), temperature=temperature)
    with pytest.raises(RuntimeError):
        sample_per_row(logits, [0, 1], 0, temperature=temperature)


def test_an_infinity_bit_with_both_logits_minus_inf_stays_unsampleable():
    logits = torch.tensor([[[0.5, -0.5], [NEG_INF, NEG_INF]]])
    out = _likelier_bit_where_overflowed(logits / 1e-40, lambda: logits.double())
    assert torch.equal(out[0, 0], torch.tensor([0.0, NEG_INF]))  # the overflowed bit takes its likelier value
    assert out[0, 1].softmax(-1).isnan().all()  # no likelier value: NaN probabilities, which the sampler refuses


def test_var_upstream_guidance_matches_upstream_for_a_cfg_float32_cannot_hold():
    from arscale.generators.next_scale.generator import SamplingConfig
    from arscale.generators.next_scale.var import (
        VQVAE,
        VARGenerator,
        VARModel,
        VQVAEConfig,
        var_transformer_config,
    )

    pn = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    model = VARModel(var_transformer_config(depth=1, embed_dim=64, num_heads=1, patch_nums=pn, vocab_size=16,
                                            code_dim=4), num_classes=4)
    vae = VQVAE(VQVAEConfig(vocab_size=16, code_dim=4, ch=32, ch_mult=(1, 1), num_res_blocks=1, patch_nums=pn))
    cfg = 1.3  # not a float32: upstream's t = cfg * ratio uses the double
    gen = VARGenerator(model, vae, SamplingConfig(cfg=cfg, cfg_schedule="linear"))
    for traj in (gen.start([0, 1], 1, seed=0), gen.start([0, 1], 1, seed=0, cfg=cfg)):
        g = torch.Generator().manual_seed(0)
        for si in range(len(pn)):
            logits = torch.randn(2 * len(traj), 3, 64, generator=g) * 4
            traj.step = si  # guide reads only the scale index, the rows' cfg and the logits
            t = cfg * (si / (len(pn) - 1))
            expected = (1 + t) * logits[:2] - t * logits[2:]  # VAR's autoregressive_infer_cfg
            assert torch.equal(gen.guide(traj, logits, upstream=True), expected), f"scale {si}"
