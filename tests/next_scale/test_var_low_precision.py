"""Reduced precision: VAR with its transformer and class embedding cast to bf16 / fp16, as `load_var(dtype=...)`
casts them (the VQVAE stays fp32)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_families import BrightnessScorer, randomised, tiny_var

from arscale.generators.next_scale.var import VARGenerator, VARModel, var_transformer_config
from arscale.search.base import make_strategy

LOW = [torch.bfloat16, torch.float16]


def _tiny(shared_aln: bool = False) -> VARGenerator:
    """tiny_var, or the same with VAR-d36's shared AdaLN."""
    gen = tiny_var()
    if not shared_aln:
        return gen
    model = VARModel(var_transformer_config(depth=2, embed_dim=64, num_heads=2, patch_nums=gen.patch_nums,
                                            vocab_size=32, code_dim=8, shared_aln=True), num_classes=10)
    return VARGenerator(randomised(model, 2), gen.tokenizer, gen.sampling)


def _cast_like_the_loader(gen: VARGenerator, dtype: torch.dtype) -> VARGenerator:
    gen.transformer.to(dtype)
    gen.conditioner.to(dtype)
    return gen


def _forced_logits(gen: VARGenerator, tokens: list[torch.Tensor] | None = None):
    """Every scale's pre-guidance logits of 2 classes x 2 rows; the tokens drawn (or `tokens` forced)."""
    traj = gen.start([1, 3], 2, seed=0)
    out, drawn = [], []
    for si in range(gen.num_scales):
        logits = gen.forward_scale(traj)
        out.append(logits)
        tok = tokens[si] if tokens else gen.sample(traj, gen.guide(traj, logits))
        drawn.append(tok)
        gen.commit(traj, tok)
    return out, drawn, traj


@pytest.mark.parametrize("shared_aln", [False, True])
@pytest.mark.parametrize("dtype", LOW)
def test_var_low_precision_logits_are_fp32_finite_and_close(dtype, shared_aln):
    """With the same tokens forced, every scale's logits are fp32, finite and near fp32's; the cache is in dtype."""
    ref, ref_tokens, _ = _forced_logits(_tiny(shared_aln))
    low, _, traj = _forced_logits(_cast_like_the_loader(_tiny(shared_aln), dtype), ref_tokens)
    for a, b in zip(ref, low):
        assert b.dtype == torch.float32 and torch.isfinite(b).all()
        assert 0 < (b - a).abs().max() < 0.05 * a.abs().max()  # rounded, not the fp32 numbers, but close
    assert {traj.cache.keys[0].dtype, traj.cache.values[0].dtype} == {dtype}
    assert traj.rows["f_hat"].dtype == torch.float32  # the VQVAE side stays fp32


def _after_scales(gen: VARGenerator, tokens: list[torch.Tensor], scales: int):
    """The 2 x 2 rows of `_forced_logits` with the first `scales` scales' tokens committed."""
    traj = gen.start([1, 3], 2, seed=0)
    for si in range(scales):
        gen.forward_scale(traj)
        gen.commit(traj, tokens[si])
    return traj


@pytest.mark.parametrize("dtype", LOW)
def test_var_low_precision_cache_rows_follow_a_resample(dtype):
    """A reduced-precision cache gathered by `select` (TTS-VAR's resampling) gives each kept row its own logits."""
    gen = _cast_like_the_loader(tiny_var(), dtype)
    _, tokens, _ = _forced_logits(gen)
    rows = torch.tensor([3, 0, 3])  # duplicates and a new order: `KVCache.select`, not the in-place pruning
    resampled = _after_scales(gen, tokens, 3).select(rows)
    assert resampled.cache.keys[0].dtype == dtype
    whole = _after_scales(gen, tokens, 3)
    expected = gen.forward_scale(whole)[whole.paired_index(rows)]
    got = gen.forward_scale(resampled)
    tol = 1e-2 * expected.abs().max()
    assert torch.allclose(got, expected, atol=tol)
    assert not torch.allclose(got[0], got[1], atol=tol)  # the rows do differ: a mixed-up gather would show


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("strategy", ["raw", "best-of-n", "tts-var"])
def test_var_low_precision_runs_strategies(strategy, dtype):
    """Raw sampling, Best-of-N and TTS-VAR on bf16/fp16 VAR weights give uint8 images (and finite rewards where
    they score)."""
    s = make_strategy(strategy, {"record_previews": False} if strategy == "tts-var" else {})
    if strategy == "tts-var":
        s.feature_scorer = BrightnessScorer()
    gen = _cast_like_the_loader(tiny_var(), dtype)
    result = s.run(gen, [1, 3], 4, seed=0, scorer=BrightnessScorer())
    for p in range(2):
        cands = result.candidates[p]
        assert cands and all(c.image.dtype == np.uint8 and c.image.shape == (gen.image_size,) * 2 + (3,)
                             for c in cands)
        if strategy != "raw":  # raw sampling keeps candidate 0 unscored
            assert all(np.isfinite(c.score) for c in cands)
