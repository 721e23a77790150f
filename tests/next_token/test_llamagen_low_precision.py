"""Reduced precision: LlamaGen with its GPT cast to bf16 / fp16, as `load_llamagen_*(dtype=...)` casts it (upstream
samples in bf16); the VQ decoder stays fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_families import BrightnessScorer, fake_t5, randomised, tiny_llamagen, tiny_llamagen_vq

from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.search.base import make_strategy
from arscale.search.scaling_ar import ScalingAR, ScalingARConfig

PROMPTS = {"c2i": [1, 4], "t2i": ["a red cube", "two green balls"]}


def _tiny_t2i() -> LlamaGenGenerator:
    gpt = LlamaGenGPT(LlamaGenConfig("t2i", dim=64, n_layer=2, n_head=2, vocab_size=32, block_size=16,
                                     caption_dim=8, multiple_of=8))
    return LlamaGenGenerator(randomised(gpt, 4), tiny_llamagen_vq(), cfg=3.0, top_k=16, top_p=1.0,
                             text_encoder=fake_t5(8))


def _generator(kind: str, dtype: torch.dtype = torch.float32) -> LlamaGenGenerator:
    """The tiny c2i or t2i model with `gpt.to(device, dtype)` and the VQ left in fp32, as the loaders build it."""
    gen = tiny_llamagen() if kind == "c2i" else _tiny_t2i()
    gen.transformer.to("cpu", dtype)
    return gen


def _forced_steps(gen, traj, tokens):
    """Logits of the prefill and of each step after feeding `tokens` [steps, R] (the same for every dtype)."""
    seen = [traj.paired["next_logits"]]
    for step_tokens in tokens:
        gen.advance(traj, step_tokens)
        seen.append(traj.paired["next_logits"])
    return seen


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("kind", ["c2i", "t2i"])
def test_low_precision_logits_are_fp32_finite_and_close_to_fp32(kind, dtype):
    """Prefill and cached-step logits from bf16/fp16 weights are fp32, finite and near the fp32 model's, while the
    KV cache holds the reduced dtype and the RoPE table stays fp32 (as upstream's plain attribute)."""
    ref_gen, gen = _generator(kind), _generator(kind, dtype)
    assert gen.transformer.rope.dtype == torch.float32 and torch.equal(gen.transformer.rope, ref_gen.transformer.rope)
    assert all(p.dtype == torch.float32 for p in gen.tokenizer.parameters())
    tokens = torch.randint(0, 32, (5, 4), generator=torch.Generator().manual_seed(0))
    ref_traj, traj = ref_gen.start(PROMPTS[kind], 2, seed=0), gen.start(PROMPTS[kind], 2, seed=0)
    ref, low = _forced_steps(ref_gen, ref_traj, tokens), _forced_steps(gen, traj, tokens)
    assert traj.cache.keys[0].dtype == dtype and ref_traj.cache.keys[0].dtype == torch.float32
    for r, x in zip(ref, low):
        assert x.dtype == torch.float32 and bool(torch.isfinite(x).all())
        assert (x - r).abs().max() < 0.05 * r.abs().max()
        assert not torch.equal(x, r)  # it did run in the reduced dtype


def test_pruning_and_forking_the_bf16_kv_cache_keep_each_rows_own_state():
    """ScalingAR's prune (`select` of increasing rows: `keep_`) and a fork with copies (`select`) gather the bf16 cache
    rows exactly; the next step of every kept row matches the same row of an unpruned twin."""
    gen = _generator("c2i", torch.bfloat16)
    tokens = torch.randint(0, 32, (3, 4), generator=torch.Generator().manual_seed(1))
    for rows in ([0, 2, 3], [3, 1, 1]):  # keep_ in place, then a reordered gather with a duplicate
        twin, traj = gen.start([1, 4], 2, seed=0), gen.start([1, 4], 2, seed=0)
        _forced_steps(gen, twin, tokens), _forced_steps(gen, traj, tokens)
        before = traj.cache.keys[0][:, :, :traj.cache.length].clone()
        paired = traj.paired_index(torch.tensor(rows))
        traj.select(rows, reason="prune")
        assert traj.cache.keys[0].dtype == torch.bfloat16
        assert torch.equal(traj.cache.keys[0][:, :, :traj.cache.length], before[paired])
        nxt = torch.tensor([5, 6, 7, 8])
        gen.advance(twin, nxt), gen.advance(traj, nxt[rows])
        assert traj.paired["next_logits"].dtype == torch.float32
        # batched bf16 kernels may round a row differently in another batch: close, not bitwise
        assert torch.allclose(traj.paired["next_logits"], twin.paired["next_logits"][paired], atol=2e-2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("strategy", ["raw", "best-of-n", "scaling-ar"])
def test_strategies_run_on_low_precision_weights(strategy, dtype):
    """Raw sampling, Best-of-N and ScalingAR on bf16/fp16 LlamaGen give uint8 images of the model's size and
    finite scores."""
    gen = _generator("c2i", dtype)
    result = make_strategy(strategy, {}).run(gen, [1, 4], 4, seed=0, scorer=BrightnessScorer())
    for p in range(2):
        cands = result.candidates[p]
        assert cands and all(c.image.dtype == np.uint8 and c.image.shape == (gen.image_size,) * 2 + (3,)
                             for c in cands)
        assert all(np.isfinite(c.score) for c in cands if c.score is not None)


def test_scaling_ar_terminates_candidates_of_a_bf16_model():
    """Eager termination settings prune rows mid-raster (the bf16 KV cache is gathered); the survivors finish."""
    config = ScalingARConfig(prune_quantile=0.9, recovery_window_steps=0, delta_rec=10.0, protect_best=False,
                             threshold_pool="active")
    gen = _generator("t2i", torch.bfloat16)
    result = ScalingAR(config).run(gen, PROMPTS["t2i"], 8, seed=0)
    terminated = [e for e in result.telemetry["events"] if e["event"] == "terminate"]
    assert terminated and all(0 < e["step"] < gen.num_tokens - 1 for e in terminated)
    for p in range(2):
        survivors = result.candidates[p]
        assert 0 < len(survivors) < 8
        assert all(c.image.dtype == np.uint8 and np.isfinite(c.score) for c in survivors)
