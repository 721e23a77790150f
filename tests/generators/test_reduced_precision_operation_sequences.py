"""The generators in reduced precision (bf16 / fp16, cast as the loaders cast them), driven by the
strategies' operations, and `Trajectories.select`'s refusals.

The random start / advance / step / select / preview / finish sequences of
tests/generators/test_random_operation_sequences_follow_each_rows_history.py, run on every tiny family with its
transformer cast as its loader's `dtype=` casts it: after every call each row's logits, latent, token record and
decodes must be those of a fresh reduced-precision run of that row's own history. On the CPU (one thread) the
batched and the reference forwards agree bit for bit here; other kernels (a GPU's, another batch size's tiling) may
round a row differently, so the logits get two units in the last place of their dtype at the logits' magnitude — a
row gathered wrongly is off by the logits' own size."""

from __future__ import annotations

import copy
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_families import BrightnessScorer, tiny_infinity

from arscale.search.base import make_strategy

sys.path.insert(0, str(Path(__file__).parent))  # the float32 sequences beside this file
sequences = importlib.import_module("test_random_operation_sequences_follow_each_rows_history")

LOW = {"bf16": torch.bfloat16, "fp16": torch.float16}
RUNS = 3  # random sequences per family and dtype (each test well under 10 s; the slowest families run 2)
SLOW = {"infinity", "llamagen-t2i"}


def cast_like_the_loader(family: str, gen, dtype: torch.dtype):
    """`load_var(dtype=)`: the transformer and the class embedding; `load_infinity_2b(dtype=)`: the transformer
    (`model.to(device, dtype)`); `load_llamagen_*(dtype=)` and `TokenGenerator.to(dtype)` (ShapeWorld-AR): the
    transformer. ShapeWorld-VAR's loader takes no dtype: cast like VAR (transformer and text encoder, decoder fp32)."""
    if family in ("var", "shapeworld-var"):
        gen.transformer.to(dtype)
        gen.conditioner.to(dtype)
    elif family == "infinity":
        gen.transformer.to("cpu", dtype)
    else:
        gen.to(dtype)
    return gen


class _Checked:
    """The sequences' `close` with a tolerance of the dtype's rounding, and the invariants checked after every call:
    the KV cache keeps its dtype and device, the token record stays integer, decodes stay float32 in [0, 1]."""

    def __init__(self, dtype: torch.dtype, device: torch.device):
        self.dtype, self.device, self.calls = dtype, device, 0
        self.ulp = torch.finfo(dtype).eps  # one unit in the last place at magnitude 1

    def close(self, a, b, what, atol=None):
        assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
        a, b = a.detach().float(), b.detach().float()
        if "image" in what or "preview" in what:  # fp32 decoders on fp32 latents: the float32 tolerance
            tol = sequences.IMAGE_ATOL
        elif "latent" in what:
            tol = sequences.ATOL
        else:
            tol = 2 * self.ulp * max(1.0, float(b.abs().max()))
        diff = float((a - b).abs().max()) if a.numel() else 0.0
        assert diff <= tol, f"{what}: max |diff| {diff:.3g} > {tol:.3g}"

    def bookkeeping(self, traj, hist):
        self.original_bookkeeping(traj, hist)
        tensors = [t for t in traj.cache.keys + traj.cache.values if t is not None]
        assert {t.dtype for t in tensors} <= {self.dtype}, "KV cache dtype"
        assert {t.device for t in tensors} <= {self.device}, "KV cache device"
        assert not traj.rows["tokens"].is_floating_point(), "token record"
        self.calls += 1

    def wrap_decodes(self, gen):
        for name in ("preview", "finish"):
            method = getattr(gen, name)

            def checked(*args, _method=method, _name=name, **kwargs):
                images = _method(*args, **kwargs)
                assert images.dtype == torch.float32, f"{_name} gives {images.dtype}"
                assert bool((images >= 0).all() and (images <= 1).all()), f"{_name} outside [0, 1]"
                return images

            setattr(gen, name, checked)


@pytest.fixture
def checked(monkeypatch):
    def make(dtype, device="cpu"):
        check = _Checked(dtype, torch.device(device))
        check.original_bookkeeping = sequences.check_bookkeeping
        monkeypatch.setattr(sequences, "close", check.close)
        monkeypatch.setattr(sequences, "check_bookkeeping", check.bookkeeping)
        return check
    return make


@pytest.mark.parametrize("dtype", list(LOW))
@pytest.mark.parametrize("family", sorted(sequences.TOKEN_FAMILIES))
def test_reduced_precision_next_token_sequences_follow_each_rows_history(family, dtype, checked):
    make, prompts = sequences.TOKEN_FAMILIES[family]
    gen = cast_like_the_loader(family, make(), LOW[dtype])
    assert next(gen.transformer.parameters()).dtype == LOW[dtype]
    check = checked(LOW[dtype])
    check.wrap_decodes(gen)
    torch.manual_seed(0)
    for seed in range(RUNS - (family in SLOW)):
        sequences.run_token_sequence(gen, prompts, seed)
    assert check.calls > 10


@pytest.mark.parametrize("dtype", list(LOW))
@pytest.mark.parametrize("family", sorted(sequences.SCALE_FAMILIES))
def test_reduced_precision_next_scale_sequences_follow_each_rows_history(family, dtype, checked):
    make, prompts, no_guidance, guided = sequences.SCALE_FAMILIES[family]
    gen = cast_like_the_loader(family, make(), LOW[dtype])
    assert next(gen.transformer.parameters()).dtype == LOW[dtype]
    check = checked(LOW[dtype])
    check.wrap_decodes(gen)
    torch.manual_seed(0)
    for seed in range(RUNS - (family in SLOW)):
        sequences.run_scale_sequence(gen, prompts, seed, no_guidance, guided)
    assert check.calls > 10


def _strip_timing(data):
    """A result's JSON without what depends on the clock."""
    if isinstance(data, dict):
        return {k: _strip_timing(v) for k, v in data.items()
                if "wall" not in k and "seconds" not in k and k not in ("phases", "overhead")}
    if isinstance(data, list):
        return [_strip_timing(v) for v in data]
    return data


@pytest.mark.parametrize("dtype", list(LOW))
@pytest.mark.parametrize("family", ["var", "infinity", "shapeworld-ar", "llamagen-c2i"])
def test_every_strategy_runs_twice_alike_on_a_reduced_precision_model(family, dtype):
    """Raw, Best-of-N, importance sampling and the family's own method, twice with one seed (the global torch stream
    moved in between): the same images, scores, tree and costs; finite scores."""
    table = sequences.TOKEN_FAMILIES if family in sequences.TOKEN_FAMILIES else sequences.SCALE_FAMILIES
    make, prompts = table[family][:2]
    gen = cast_like_the_loader(family, make(), LOW[dtype])
    own = "scaling-ar" if family in sequences.TOKEN_FAMILIES else "tts-var"
    for name in ["raw", "best-of-n", "importance", own]:
        runs = []
        for global_seed in (1, 2):
            strategy = make_strategy(name, {"record_previews": False} if name == "tts-var" else {})
            if name == "tts-var":
                strategy.feature_scorer = BrightnessScorer()
            torch.manual_seed(global_seed)
            runs.append(strategy.run(gen, prompts[:2], 4, seed=5, scorer=BrightnessScorer()))
        a, b = runs
        assert _strip_timing(a.to_dict()) == _strip_timing(b.to_dict()), name
        for p in range(2):
            assert [c.image.tobytes() for c in a.candidates[p]] == [c.image.tobytes() for c in b.candidates[p]], name
            assert all(c.score is None or np.isfinite(c.score) for c in a.candidates[p]), name


# -- bugs ------------------------------------------------------------------------------------------------------
def _trajectory():
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar

    gen = random_shapeworld_ar(0, grid=3, vocab_size=32, cfg=2.0)
    return gen.start(["a photo of a red circle"], 4, seed=0)


def test_select_refuses_a_list_that_mixes_booleans_and_integers():
    traj = _trajectory()
    with pytest.raises(TypeError, match="boolean"):
        traj.select([True, 2])
    assert len(traj) == 4 and traj.node.tolist() == [0, 1, 2, 3]


def test_select_names_an_out_of_range_unsigned_row_as_given():
    traj = _trajectory()
    with pytest.raises(IndexError, match=r"got \[18446744073709551615\]"):
        traj.select(torch.tensor([2**64 - 1], dtype=torch.uint64))


@pytest.mark.parametrize("dtype", list(LOW))
def test_reduced_precision_infinity_computes_its_logits_and_modulation_in_fp32(dtype):
    """Upstream Infinity casts only its blocks and runs `shared_ada_lin` and `get_logits` with autocast off, in fp32:
    the bit logits (and the blocks' AdaLN modulation) are those of the fp32 head on the blocks' output."""
    gen = tiny_infinity()
    gen.transformer.to("cpu", LOW[dtype])
    model, seen = gen.transformer, {}
    hooks = [model.head_nm.register_forward_pre_hook(lambda m, args: seen.update(head=args)),
             model.blocks[0].register_forward_pre_hook(lambda m, args: seen.update(block=args))]
    traj = gen.start(["a cat", "two red dogs on a mat"], 2, seed=0)
    logits = gen.forward_scale(traj)
    for hook in hooks:
        hook.remove()
    h, cond = seen["head"]
    fp32_head_nm, fp32_head = copy.deepcopy(model.head_nm).float(), copy.deepcopy(model.head).float()
    want = fp32_head(fp32_head_nm(h.float(), cond.float()))
    assert torch.allclose(logits, want, atol=1e-5, rtol=1e-5), f"max |diff| {(logits - want).abs().max():.3g}"
    gss = seen["block"][1]
    want_gss = copy.deepcopy(model.shared_ada_lin).float()(cond.float()).view_as(gss)
    assert gss.dtype == torch.float32 and torch.allclose(gss, want_gss, atol=1e-6, rtol=1e-5)
