"""Infinity parity, in the fixture README's order: a failure localises to the first red stage."""

from __future__ import annotations

import functools

import pytest
import torch
from parity_support import assert_close, assert_equal, cases_for, first_divergence

from arscale.errors import ArscaleError
from arscale.generators import loading
from arscale.generators.next_scale.bsq import autoencoder_from_config, bits_to_codes
from arscale.generators.next_scale.infinity import (
    InfinityConfig,
    InfinityGenerator,
    InfinitySampling,
    InfinityTransformer,
    to_uint8_bgr,
    upstream_filters,
)
from arscale.generators.sampling import filter_logits, sample_batch

CASES = cases_for("Infinity")
pytestmark = pytest.mark.parametrize("case", CASES)


def _config(case) -> InfinityConfig:
    kw = dict(case.manifest["config"]["infinity_constructor"])
    kw["codebook_dim"] = case.manifest["config"]["vae_model_call"]["codebook_dim"]
    return InfinityConfig.from_upstream(kw)


def _load(case, vae_sd=None):
    """Model and VAE through the released-container path: slim flat dict and {'vae': state_dict}."""
    cfg = _config(case)
    model = InfinityTransformer(cfg)
    sd = loading.infinity_state(dict(case.model_sd), text_maxlen=cfg.text_maxlen)
    loading.load_strict(model, sd, ignore=loading.INFINITY_IGNORED, what="Infinity transformer")
    vae = autoencoder_from_config(case.manifest["config"]["vae_args_namespace"])
    vsd = loading.infinity_vae_state({"vae": dict(vae_sd or case.tokenizer_sd)}, vae.state_dict().keys())
    loading.load_strict(vae, vsd, ignore=loading.INFINITY_VAE_IGNORED, what="Infinity VAE")
    return model, vae


@functools.cache
def _built(case_id):
    case = next(p.values[0] for p in CASES if p.values[0] is not None and p.values[0].id == case_id)
    return _load(case)


def _filters(case) -> tuple[int, float]:
    """The top-k / top-p upstream sampled with: a zero in `sampling` falls back to the constructor's value."""
    s, ctor = case.manifest["sampling"], case.manifest["config"]["infinity_constructor"]
    return upstream_filters(s["top_k"], s["top_p"], ctor.get("top_k", 0.0), ctor.get("top_p", 0.0),
                            case.manifest["config"]["vae_model_call"]["codebook_dim"])


def _generator(case) -> InfinityGenerator:
    model, vae = _built(case.id)
    s = case.manifest["sampling"]
    top_k, top_p = _filters(case)
    sampling = InfinitySampling(cfg=s["cfg_list"], tau=s["tau_list"], top_k=top_k, top_p=top_p,
                                schedule=[tuple(x) for x in s["scale_schedule"]])
    return InfinityGenerator(model, vae, sampling)


def _features(case, prefix="text"):
    lens = case.io[f"{prefix}.lens"].tolist()
    return list(torch.split(case.io[f"{prefix}.kv_compact"], lens))


def _recorded_rows(logits, expected):
    """At a scale whose cfg is 1 upstream runs get_logits on the cond rows only, so the fixture holds B rows there."""
    assert expected.shape[0] in (logits.shape[0], logits.shape[0] // 2), (tuple(logits.shape), tuple(expected.shape))
    return logits[: expected.shape[0]]


def _start(case):
    gen = _generator(case)
    feats = _features(case)
    traj = gen.start_from_features(feats, [f"p{i}" for i in range(len(feats))], 1, seed=0)
    return gen, traj


def test_1_loading(case):
    model, vae = _load(case)
    chunks = {k.split(".")[1] for k in case.model_sd if k.startswith("block_chunks.")}
    assert len(model.blocks) == case.manifest["config"]["infinity_constructor"]["depth"]
    assert len(chunks) == case.manifest["config"]["infinity_constructor"]["block_chunks"]
    # block i of the flat model is chunk i // per_chunk, entry i % per_chunk of the file
    per = len(model.blocks) // len(chunks)
    last = len(model.blocks) - 1
    key = f"block_chunks.{last // per}.module.{last % per}.sa.mat_qkv.weight"
    assert torch.equal(model.blocks[last].sa.mat_qkv.weight, case.model_sd[key].float())
    # the bare VAE key form loads to identical weights
    bare = {loading.bare_vae_key(k): v for k, v in case.tokenizer_sd.items()}
    assert bare.keys() != case.tokenizer_sd.keys()
    _, vae_bare = _load(case, vae_sd=bare)
    for (k, a), b in zip(vae.state_dict().items(), vae_bare.state_dict().values()):
        assert torch.equal(a, b), k
    # a leftover key is an error that names it
    bad = dict(case.tokenizer_sd)
    bad["decoder.extra.weight"] = torch.zeros(1)
    with pytest.raises(ArscaleError, match="decoder.extra.weight"):
        _load(case, vae_sd=bad)


def test_2_tokenizer(case):
    _, vae = _built(case.id)
    io = case.io
    schedule = [tuple(x) for x in case.manifest["sampling"]["scale_schedule"]]
    with torch.no_grad():
        h, z, bits = vae.encode(io["enc.img"], schedule)
        lat = case.tol("latents")
        assert_close(h, io["enc.h"], what="enc.h", **lat)
        for si, expected in enumerate(case.seq("enc.bits")):
            assert_equal(bits[si], expected, what=f"enc.bits.{si}")
        assert_close(z, io["enc.z"], what="enc.z", **lat)
        img = case.tol("images_float")
        assert_close(vae.decode(io["enc.z"]), io["enc.recon"], what="enc.recon", **img)
        summed = vae.summed_codes(case.seq("enc.bits"), schedule)
        assert_close(summed, io["enc.summed_codes"], what="enc.summed_codes", **lat)
        assert_close(vae.decode(summed), io["enc.recon_from_bits"], what="enc.recon_from_bits", **img)


def test_3_teacher_forced_logits(case):
    model, _ = _built(case.id)
    feats = _features(case)
    both = feats + model.unconditional_features([f.shape[0] for f in feats])
    x = torch.cat(case.seq("gen.next_in"), dim=1).repeat(2, 1, 1)
    schedule = [tuple(s) for s in case.manifest["sampling"]["scale_schedule"]]
    with torch.no_grad():
        logits = model.teacher_forced(both, x, schedule)
    assert_close(logits, case.io["tf.logits"], what="tf.logits", **case.tol("logits"))


def test_4_cached_logits_forced_bits(case):
    gen, traj = _start(case)
    io, lt, lat = case.io, case.tol("logits"), case.tol("latents")
    # with cfg 1 at every scale upstream builds no unconditional half, so only the cond rows are recorded
    assert_close(_recorded_rows(traj.paired["cond"], io["gen.sos"]), io["gen.sos"], what="gen.sos", **lat)
    memory = traj.paired["context"][traj.paired["context_mask"]]
    assert_close(_recorded_rows(memory, io["gen.ca_mem"]), io["gen.ca_mem"], what="gen.ca_mem", **lat)
    next_in = case.seq("gen.next_in")
    for si, bits in enumerate(case.seq("gen.bits")):
        logits = gen.forward_scale(traj)
        expected = io[f"gen.logits_pre_cfg.{si}"]
        assert_close(_recorded_rows(logits, expected), expected, what=f"gen.logits_pre_cfg.{si}", **lt)
        assert_close(gen.guide(traj, logits), io[f"gen.logits_post_cfg.{si}"], what=f"post_cfg.{si}", **lt)
        assert_close(bits_to_codes(bits), io[f"gen.codes.{si}"], what=f"gen.codes.{si}", **lat)
        gen.commit(traj, bits)
        assert_close(traj.rows["f_hat"], io[f"gen.summed_codes.{si}"], what=f"gen.summed_codes.{si}", **lat)
        if si < len(next_in):
            assert_close(traj.rows["next_input"], next_in[si], what=f"gen.next_in.{si}", **lat)


def test_5_sampler(case):
    s = case.manifest["sampling"]
    g = torch.Generator().manual_seed(s["g_seed"])
    top_k, top_p = _filters(case)
    top_k = min(top_k, 2)
    for si, post in enumerate(case.seq("gen.logits_post_cfg")):
        keep = torch.isfinite(filter_logits(post, top_k, top_p))
        assert_equal(keep, case.io[f"gen.keep.{si}"], what=f"gen.keep.{si}")
        bits = sample_batch(post, g, top_k=top_k, top_p=top_p)
        assert_equal(bits, case.io[f"gen.bits.{si}"], what=f"gen.bits.{si}")


def test_6_end_to_end(case):
    gen, traj = _start(case)
    g = torch.Generator().manual_seed(case.manifest["sampling"]["g_seed"])
    expected = case.seq("gen.bits")
    for _ in expected:
        gen.step(traj, generator=g)
    diverged = first_divergence((f"scale {si}", gen.scale_tokens(traj, si), b) for si, b in enumerate(expected))
    assert diverged is None, f"bits first diverge at {diverged}"
    img = to_uint8_bgr(gen.decode(traj))
    diff = (img.int() - case.io["gen.img_uint8_bgr"].int()).abs().max().item()
    assert diff <= case.manifest["tolerances"]["images_uint8"]["atol"], f"uint8 image differs by {diff}"
    final = gen.finish(traj)
    assert final.min() >= 0 and final.max() <= 1


def test_7_partial_decodes(case):
    gen, traj = _start(case)
    for si, bits in enumerate(case.seq("gen.bits")):
        gen.forward_scale(traj)
        gen.commit(traj, bits)
        assert_close(gen.decode(traj), case.io[f"gen.partial_img.{si}"], what=f"gen.partial_img.{si}",
                     **case.tol("images_float"))


def test_8_fork_resample(case):
    gen, traj = _start(case)
    io, lt = case.io, case.tol("logits")
    k = int(io["fork.after_scale"])
    rows = io["fork.rows"]
    bits = case.seq("gen.bits")
    for si in range(k + 1):
        gen.forward_scale(traj)
        gen.commit(traj, bits[si])
    traj.select(rows, reason="resample")
    # the gathered text state equals the text rebuilt for the forked rows
    feats = _features(case, "fork.text")
    model = gen.model
    cond, _, _ = model.encode_text(feats + model.unconditional_features([f.shape[0] for f in feats]))
    assert_close(traj.paired["cond"], cond, what="forked cond", **case.tol("latents"))
    for si, fork_bits in enumerate(case.seq("fork.bits")):
        if si <= k:
            continue
        logits = gen.forward_scale(traj)
        expected = io[f"fork.logits_pre_cfg.{si}"]
        assert_close(_recorded_rows(logits, expected), expected, what=f"fork.logits_pre_cfg.{si}", **lt)
        gen.commit(traj, fork_bits)
    img = to_uint8_bgr(gen.decode(traj))
    diff = (img.int() - io["fork.img_uint8_bgr"].int()).abs().max().item()
    assert diff <= case.manifest["tolerances"]["images_uint8"]["atol"], f"forked uint8 image differs by {diff}"
