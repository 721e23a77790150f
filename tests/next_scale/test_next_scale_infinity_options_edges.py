"""Infinity edges: a cfg list that is 1 only at some scales still needs the unconditional half; a preview of s
pixels decodes the smallest latent giving at least s pixels; the constructor's top_k of exactly 1 is one logit,
not a fraction."""

import pytest
from tiny_families import tiny_infinity

from arscale.generators.next_scale.infinity import upstream_filters


@pytest.mark.parametrize("where_one", ["last", "first", "none"])
def test_cfg_list_with_any_scale_above_one_keeps_both_halves(where_one):
    gen = tiny_infinity()
    K = gen.num_scales
    cfg = [3.0] * K
    if where_one == "last":
        cfg[-1] = 1.0
    elif where_one == "first":
        cfg[0] = 1.0
    gen.cfg_list = cfg
    assert gen.needs_unconditional(None)
    traj = gen.start(["a red cube"], 2, seed=0, unconditional=False)
    assert traj.halves == 2  # the caller's promise cannot drop a half the guidance reads
    gen.step(traj)  # guided at scale 0 without complaint


def test_cfg_one_everywhere_runs_one_half():
    gen = tiny_infinity()
    gen.cfg_list = [1.0] * gen.num_scales
    assert not gen.needs_unconditional(None)
    assert gen.start(["a red cube"], 1, seed=0, unconditional=False).halves == 1


def test_preview_latent_is_the_smallest_that_covers_the_size():
    gen = tiny_infinity()
    _, H, W = gen.schedule[-1]
    p = gen.vae.patch_size
    for size in range(1, gen.image_size):
        h, w = gen.preview_latent(size)
        assert h * p * gen.image_size >= size * H * p and (h - 1) * gen.image_size < size * H, size
        assert w * p * gen.image_size >= size * W * p and (w - 1) * gen.image_size < size * W, size
    assert gen.preview_latent(None) == (H, W) == gen.preview_latent(gen.image_size)


def test_constructor_top_k_of_one_is_top_one():
    assert upstream_filters(0, 0.0, 1, 0.0, codebook_dim=4) == (1, 0.0)
    assert upstream_filters(0, 0.0, 0.25, 0.0, codebook_dim=4) == (2, 0.0)
