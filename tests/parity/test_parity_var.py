"""VAR parity, in the fixture README's order: a failure localises to the first red stage."""

from __future__ import annotations

import functools

import pytest
import torch
from parity_support import assert_close, assert_equal, cases_for, first_divergence

from arscale.errors import ArscaleError
from arscale.generators import loading
from arscale.generators.next_scale.generator import SamplingConfig
from arscale.generators.next_scale.var import (
    VQVAE,
    VARGenerator,
    VARModel,
    VQVAEConfig,
    var_transformer_config,
    vqvae_state,
)
from arscale.generators.sampling import filter_logits, sample_batch

CASES = cases_for("VAR")
pytestmark = pytest.mark.parametrize("case", CASES)


def _load(case, model_sd=None):
    cfg = case.manifest["config"]
    vc, dd, tc = cfg["vqvae_constructor"], cfg["vqvae_ddconfig"], cfg["var_constructor"]
    model = VARModel(var_transformer_config(
        depth=tc["depth"], embed_dim=tc["embed_dim"], num_heads=tc["num_heads"], patch_nums=tc["patch_nums"],
        vocab_size=vc["vocab_size"], code_dim=vc["z_channels"], shared_aln=tc["shared_aln"],
        mlp_ratio=tc["mlp_ratio"], norm_eps=tc["norm_eps"], attn_l2_norm=tc["attn_l2_norm"]), tc["num_classes"])
    model.load_released(dict(model_sd or case.model_sd))
    vae = VQVAE(VQVAEConfig(
        vocab_size=vc["vocab_size"], code_dim=vc["z_channels"], ch=dd["ch"], ch_mult=tuple(dd["ch_mult"]),
        num_res_blocks=dd["num_res_blocks"], patch_nums=tuple(vc["v_patch_nums"]),
        share_quant_resi=vc["share_quant_resi"], default_qresi_counts=vc.get("default_qresi_counts", 0),
        quant_resi=vc["quant_resi"], quant_conv_ks=vc["quant_conv_ks"],
        using_sa=dd["using_sa"], using_mid_sa=dd["using_mid_sa"], using_znorm=vc.get("using_znorm", False)))
    loading.load_strict(vae, vqvae_state(dict(case.tokenizer_sd)), ignore=loading.VAR_VAE_IGNORED, what="VQVAE")
    return model.eval(), vae.eval()


@functools.cache
def _built(case_id):
    case = next(p.values[0] for p in CASES if p.values[0] is not None and p.values[0].id == case_id)
    return _load(case)


def _start(case):
    model, vae = _built(case.id)
    s = case.manifest["sampling"]
    gen = VARGenerator(model, vae, SamplingConfig(cfg=s["cfg"], cfg_schedule="linear", top_k=s["top_k"],
                                                   top_p=s["top_p"]))
    traj = gen.start(case.io["gen.label"].tolist(), 1, seed=0)
    return gen, traj


def test_1_loading(case):
    model, _ = _load(case)
    assert torch.equal(model.conditioner.class_emb.weight, case.model_sd["class_emb.weight"].float())
    bad = dict(case.model_sd)
    bad["blocks.0.attn.extra"] = torch.zeros(1)
    with pytest.raises(ArscaleError, match="blocks.0.attn.extra"):
        _load(case, model_sd=bad)
    missing = {k: v for k, v in case.model_sd.items() if k != "head.bias"}
    with pytest.raises(ArscaleError, match="head.bias"):
        _load(case, model_sd=missing)
    nonzero = dict(case.model_sd)
    nonzero["blocks.0.attn.zero_k_bias"] = torch.ones_like(nonzero["blocks.0.attn.zero_k_bias"])
    with pytest.raises(ArscaleError, match="zero"):
        _load(case, model_sd=nonzero)


def test_2_tokenizer(case):
    _, vae = _built(case.id)
    io, lat, img = case.io, case.tol("latents"), case.tol("images_float")
    with torch.no_grad():
        f = vae.latent_signed(io["enc.img"])
        assert_close(f, io["enc.f"], what="enc.f", **lat)
        idx = vae.quantizer.encode(io["enc.f"])
        for si, expected in enumerate(case.seq("enc.idx")):
            assert_equal(idx[si].flatten(1), expected, what=f"enc.idx.{si}")
            f_hat = vae.quantizer.indices_to_fhat(idx[: si + 1])
            assert_close(f_hat, io[f"enc.fhat.{si}"], what=f"enc.fhat.{si}", **lat)
            assert_close(vae.fhat_to_signed(io[f"enc.fhat.{si}"]), io[f"enc.recon.{si}"], what=f"enc.recon.{si}",
                         **img)
        assert_close(vae.quantizer.teacher_inputs(idx), io["enc.var_input"], what="enc.var_input", **lat)


def test_3_teacher_forced_logits(case):
    model, _ = _built(case.id)
    with torch.no_grad():
        cond = model.conditioner.class_emb(case.io["tf.label"])
        logits = model.transformer(cond, case.io["tf.x_in"])
    assert_close(logits, case.io["tf.logits"], what="tf.logits", **case.tol("logits"))


def test_4_cached_logits_forced_tokens(case):
    gen, traj = _start(case)
    io, lt, lat = case.io, case.tol("logits"), case.tol("latents")
    for si, idx in enumerate(case.seq("gen.idx")):
        cond, uncond = gen.scale_logits(traj)
        assert_close(torch.cat([cond, uncond]), io[f"gen.logits_pre_cfg.{si}"], what=f"pre_cfg.{si}", **lt)
        t = case.manifest["sampling"]["cfg"] * si / (gen.num_scales - 1)
        assert_close((1 + t) * cond - t * uncond, io[f"gen.logits_post_cfg.{si}"], what=f"post_cfg.{si}", **lt)
        gen.commit(traj, idx)
        assert_close(traj.rows["f_hat"], io[f"gen.fhat.{si}"], what=f"gen.fhat.{si}", **lat)
        if f"gen.next_in.{si}" in io:
            expected = io[f"gen.next_in.{si}"]
            assert_close(traj.rows["next_input"].transpose(1, 2).reshape(expected.shape), expected,
                         what=f"gen.next_in.{si}", **lat)


def test_5_sampler(case):
    s = case.manifest["sampling"]
    g = torch.Generator().manual_seed(s["g_seed"])
    for si, post in enumerate(case.seq("gen.logits_post_cfg")):
        keep = torch.isfinite(filter_logits(post, s["top_k"], s["top_p"]))
        assert_equal(keep, case.io[f"gen.keep.{si}"], what=f"gen.keep.{si}")
        idx = sample_batch(post, g, top_k=s["top_k"], top_p=s["top_p"])
        assert_equal(idx, case.io[f"gen.idx.{si}"], what=f"gen.idx.{si}")


def test_6_end_to_end(case):
    gen, traj = _start(case)
    g = torch.Generator().manual_seed(case.manifest["sampling"]["g_seed"])
    expected = case.seq("gen.idx")
    for _ in expected:
        gen.step(traj, generator=g)
    begin_ends = gen.transformer.begin_ends
    diverged = first_divergence((f"scale {si}", traj.rows["tokens"][:, b:e], x)
                                for si, ((b, e), x) in enumerate(zip(begin_ends, expected)))
    assert diverged is None, f"tokens first diverge at {diverged}"
    assert_close(gen.finish(traj), case.io["gen.img"], what="gen.img", **case.tol("images_float"))


def test_7_partial_decodes(case):
    gen, traj = _start(case)
    for si, idx in enumerate(case.seq("gen.idx")):
        gen.scale_logits(traj)
        gen.commit(traj, idx)
        assert_close(gen.preview(traj), case.io[f"gen.partial_img.{si}"], what=f"gen.partial_img.{si}",
                     **case.tol("images_float"))


def test_8_fork_resample(case):
    gen, traj = _start(case)
    io, lt = case.io, case.tol("logits")
    k, rows = int(io["fork.after_scale"]), io["fork.rows"]
    for si, idx in enumerate(case.seq("gen.idx")[: k + 1]):
        gen.scale_logits(traj)
        gen.commit(traj, idx)
    traj.select(rows, reason="resample")
    assert_close(traj.rows["f_hat"], io[f"gen.fhat.{k}"][rows], what="forked f_hat", **case.tol("latents"))
    for si, idx in enumerate(case.seq("fork.idx")):
        if si <= k:
            continue
        b, e = gen.transformer.begin_ends[si]
        cond, uncond = gen.scale_logits(traj)
        assert_close(torch.cat([cond, uncond]), io["fork.logits"][:, b:e], what=f"fork.logits scale {si}", **lt)
        gen.commit(traj, idx)
