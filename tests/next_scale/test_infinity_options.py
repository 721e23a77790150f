"""Infinity constructor and sampler options the released 2B leaves at one value but upstream accepts:
each path (cached and teacher-forced) must agree with itself, differ where the option matters, or be refused."""

from __future__ import annotations

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.next_scale.bsq import BSQAutoEncoder
from arscale.generators.next_scale.infinity import (
    InfinityConfig,
    InfinityGenerator,
    InfinitySampling,
    InfinityTransformer,
    upstream_filters,
)
from arscale.generators.next_scale.infinity_schedule import rope_table, scale_schedule

SCHEDULE = scale_schedule(0.5, "0.06M")  # a wide image: rows and columns differ


def _generator(**options) -> InfinityGenerator:
    g = torch.Generator().manual_seed(0)
    model = InfinityTransformer(InfinityConfig(embed_dim=64, depth=4, num_heads=2, text_channels=128,
                                               text_maxlen=16, codebook_dim=4, **options))
    vae = BSQAutoEncoder(codebook_dim=4, base_ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_size=2)
    for p in list(model.parameters()) + list(vae.parameters()):
        p.data = torch.randn(p.shape, generator=g) * (0.5 if p.dim() < 2 else 1 / p.shape[-1] ** 0.5)
    return InfinityGenerator(model.eval(), vae.eval(), InfinitySampling(cfg=3.0, tau=1.0, top_p=0.97,
                                                                        schedule=SCHEDULE))


def _cached_and_teacher_forced(gen: InfinityGenerator):
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(5, 128, generator=g), torch.randn(3, 128, generator=g)]
    traj = gen.start_from_features(feats, ["a", "b"], 1, seed=0)
    cached, inputs = [], []
    with torch.no_grad():
        for si in range(len(SCHEDULE)):
            cached.append(gen.forward_scale(traj))
            _, h, w = SCHEDULE[si]
            gen.commit(traj, (torch.rand(2, 1, h, w, 4, generator=g) > 0.5).long())  # forced bits
            if si + 1 < len(SCHEDULE):
                inputs.append(traj.rows["next_input"])
        both = feats + gen.model.unconditional_features([f.shape[0] for f in feats])
        forced = gen.model.teacher_forced(both, torch.cat(inputs, 1).repeat(2, 1, 1), SCHEDULE)
    return torch.cat(cached, 1), forced


@pytest.mark.parametrize("options", [{}, {"rope_mode": 0}, {"rope_mode": 1},
                                     {"block_chunks": 2, "lvl_embed_only_first_block": False}])
def test_cached_scales_equal_teacher_forcing_under_every_option(options):
    cached, forced = _cached_and_teacher_forced(_generator(**options))
    assert torch.allclose(cached, forced, atol=1e-4)
    default, _ = _cached_and_teacher_forced(_generator())
    assert (options == {}) == torch.allclose(cached, default, atol=1e-4)  # each option changes the logits


def test_rope_modes():
    raw = rope_table(8, SCHEDULE, mode=0)
    _, h, w = SCHEDULE[2]
    start = sum(hh * ww for _, hh, ww in SCHEDULE[:2])
    last = raw[start + h * w - 1]  # row h-1, column w-1 of scale 2; pairs: 2 turn with the row, 2 with the column
    inv = 1.0 / (10000.0 ** (torch.arange(0, 4, 2).float() / 4))
    assert torch.allclose(last[:, 0], torch.cat([((h - 1) * inv).cos(), ((w - 1) * inv).cos()]), atol=1e-6)
    resized = rope_table(8, SCHEDULE, mode=1)
    assert resized.shape == raw.shape == rope_table(8, SCHEDULE).shape
    assert torch.allclose(resized[0], rope_table(8, SCHEDULE, mode=0)[0])  # the 1x1 scale sits at the origin
    with pytest.raises(ArscaleError, match="RoPE mode"):
        rope_table(8, SCHEDULE, mode=3)


def test_sampler_filters_fall_back_to_the_constructor_as_upstream():
    assert upstream_filters(0, 0.0, 0.0, 0.9, codebook_dim=4) == (0, 0.9)
    assert upstream_filters(3, 0.5, 0.0, 0.9, codebook_dim=4) == (3, 0.5)
    assert upstream_filters(0, 0.0, 0.5, 0.0, codebook_dim=4) == (4, 0.0)  # a fraction of the 2d logits
    assert upstream_filters(0, 0.0, 8, 0.0, codebook_dim=4) == (0, 0.0)  # >= 2d: off


def test_unsupported_constructor_settings_are_refused():
    base = {"embed_dim": 64, "depth": 4, "num_heads": 2, "text_channels": 128, "text_maxlen": 16}
    assert InfinityConfig.from_upstream({**base, "rope2d_normalized_by_hw": 1, "block_chunks": 2}).rope_mode == 1
    with pytest.raises(ArscaleError, match="swiglu"):
        InfinityConfig.from_upstream({**base, "swiglu": True})
    with pytest.raises(ArscaleError, match="multiple of block_chunks"):
        InfinityConfig.from_upstream({**base, "block_chunks": 3})
