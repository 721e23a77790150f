"""LlamaGen parity (c2i and t2i), in the fixture README's order: a failure localises to the first red stage."""

from __future__ import annotations

import functools

import pytest
import torch
from parity_support import assert_close, assert_equal, cases_for, first_divergence

from arscale.errors import ArscaleError
from arscale.generators import loading
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT, gpt_state
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig
from arscale.generators.sampling import filter_logits_hf

CASES = cases_for("LlamaGen")
pytestmark = pytest.mark.parametrize("case", CASES)


def _load(case, container):
    cfg = case.manifest["config"]
    gpt = LlamaGenGPT(LlamaGenConfig.from_upstream(cfg["gpt_model_args"]))
    loading.load_strict(gpt, gpt_state(container), ignore=loading.LLAMAGEN_IGNORED, what="LlamaGen GPT")
    va, vd = cfg["vq_model_args"], cfg["vq_encoder_decoder_defaults"]
    vq = VQGAN(VQGANConfig(codebook_size=va["codebook_size"], codebook_embed_dim=va["codebook_embed_dim"],
                           z_channels=va["z_channels"], ch=vd["ch"], ch_mult=tuple(va["encoder_ch_mult"]),
                           decoder_ch_mult=tuple(va["decoder_ch_mult"]), num_res_blocks=vd["num_res_blocks"],
                           image_size=cfg["derived"]["image_size"], codebook_l2_norm=va.get("codebook_l2_norm", True)))
    vsd = loading.upcast(loading.unwrap({"model": dict(case.tokenizer_sd)}, loading.GPT_CONTAINERS))
    loading.load_strict(vq, vsd, ignore=loading.LLAMAGEN_VQ_IGNORED, what="LlamaGen VQ")
    return gpt.eval(), vq.eval()


@functools.cache
def _built(case_id):
    case = next(p.values[0] for p in CASES if p.values[0] is not None and p.values[0].id == case_id)
    return _load(case, {"model": dict(case.model_sd)})


def _condition(case, prefix=""):
    if case.manifest["config"]["gpt_model_args"]["model_type"] == "c2i":
        return case.io[f"{prefix}cond.label"], None
    return case.io[f"{prefix}cond.emb"], case.io[f"{prefix}cond.mask"]


def _paired(case) -> bool:
    """Upstream builds the [cond; uncond] batch only when cfg_scale > 1; otherwise its logits are the B cond rows."""
    return case.manifest["sampling"]["cfg_scale"] > 1.0


def _rows(case, logits):
    """Our [cond; uncond] logits cut to the rows upstream recorded."""
    return logits if _paired(case) else logits[: logits.shape[0] // 2]


def _start(case):
    gpt, vq = _built(case.id)
    s = case.manifest["sampling"]
    gen = LlamaGenGenerator(gpt, vq, cfg=s["cfg_scale"], temperature=s["temperature"], top_k=s["top_k"],
                            top_p=s["top_p"], cfg_interval=s["cfg_interval"],
                            sample_logits=s.get("sample_logits", True))
    cond, mask = _condition(case)
    traj = gen.start_from_condition(cond, mask, list(range(len(cond))), 1, seed=0)
    return gen, traj


def test_1_loading(case):
    sd = dict(case.model_sd)
    for container in ({"model": sd}, {"module": sd}, {"state_dict": sd}, sd):
        gpt, _ = _load(case, container)
    # a training checkpoint: weights next to args (a Namespace), optimizer state and a stray freqs_cis
    import argparse
    extra = {"model": {**sd, "freqs_cis": torch.zeros(3, 2)}, "args": argparse.Namespace(x=1), "steps": 5}
    gpt2, _ = _load(case, extra)
    for a, b in zip(gpt.state_dict().values(), gpt2.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ArscaleError, match="output.weight"):
        _load(case, {k: v for k, v in sd.items() if k != "output.weight"})
    with pytest.raises(ArscaleError, match="layers.0.extra"):
        _load(case, {**sd, "layers.0.extra": torch.zeros(1)})


def test_2_tokenizer(case):
    _, vq = _built(case.id)
    io, lat = case.io, case.tol("latents")
    with torch.no_grad():
        z = vq.latent_signed(io["vq.img"])
        assert_close(z, io["vq.z"], what="vq.z", **lat)
        codes, quant = vq.quantize_latent(io["vq.z"])
        assert_equal(codes, io["vq.enc_idx"], what="vq.enc_idx")
        assert_close(quant, io["vq.quant"], what="vq.quant", **lat)
        img = case.tol("images_float")
        assert_close(vq.decode_signed(io["vq.quant"]), io["vq.recon"], what="vq.recon", **img)
        B = io["vq.img"].shape[0]
        assert_close(vq.decode_code_signed(io["vq.enc_idx"].view(B, -1)), io["vq.recon_from_idx"],
                     what="vq.recon_from_idx", **img)


def test_3_teacher_forced_logits(case):
    gen, traj = _start(case)
    gpt = gen.gpt
    cond, mask = _condition(case)
    prefix, key_mask = gpt.condition_prefix(cond, mask)
    with torch.no_grad():
        logits = gpt(prefix, key_mask)
    lt = case.tol("logits")
    assert_close(_rows(case, logits), case.io["tf.prefill_logits"], what="tf.prefill_logits", **lt)
    seq = case.io["gen.seq"].long()[:, :-1]
    with torch.no_grad():
        x = gpt.tok_embeddings(torch.cat([seq, seq]))
        chunk = gpt(x, traj.paired["prefix_mask"], start=gen.prefix_len, cache=traj.cache)
    assert_close(_rows(case, chunk), case.io["tf.chunk_logits"], what="tf.chunk_logits", **lt)


def test_4_cached_logits_forced_tokens(case):
    gen, traj = _start(case)
    seq, lt = case.io["gen.seq"].long(), case.tol("logits")
    for t, raw in enumerate(case.seq("gen.raw_logits")):
        cond, uncond = gen.next_logits(traj)
        assert_close(_rows(case, torch.cat([cond, uncond])), raw, what=f"gen.raw_logits.{t}", **lt)
        assert_close(gen.guided_logits(traj), case.io[f"gen.logits_post_cfg.{t}"], what=f"post_cfg.{t}", **lt)
        gen.advance(traj, seq[:, t])


def test_5_sampler(case):
    gen, _ = _start(case)
    s = case.manifest["sampling"]
    torch.manual_seed(s["seed"])
    for t, post in enumerate(case.seq("gen.logits_post_cfg")):
        probs = gen.probs_upstream(post)
        assert_close(probs, case.io[f"gen.probs.{t}"], what=f"gen.probs.{t}", **case.tol("probs"))
        filtered = filter_logits_hf(post / max(s["temperature"], 1e-5), s["top_k"], s["top_p"])
        assert torch.equal(torch.isfinite(filtered), case.io[f"gen.probs.{t}"] > 0), f"kept set at step {t}"
        drawn = torch.multinomial(probs, 1) if s.get("sample_logits", True) else probs.topk(1, dim=-1).indices
        assert_equal(drawn, case.io[f"gen.tok.{t}"], what=f"gen.tok.{t}")


def test_6_end_to_end(case):
    gen, traj = _start(case)
    torch.manual_seed(case.manifest["sampling"]["seed"])
    for _ in range(gen.num_tokens):
        tokens, _ = gen.sample_upstream(traj)
        gen.advance(traj, tokens)
    expected = case.io["gen.seq"]
    diverged = first_divergence((f"step {t}", traj.rows["tokens"][:, t], expected[:, t])
                                for t in range(expected.shape[1]))
    assert diverged is None, f"tokens first diverge at {diverged}"
    with torch.no_grad():
        img = gen.tokenizer.decode_code_signed(traj.rows["tokens"])
    assert_close(img, case.io["gen.img"], what="gen.img", **case.tol("images_float"))
    final = gen.finish(traj)
    assert final.shape == img.shape and final.min() >= 0 and final.max() <= 1


def test_7_partial_decodes(case):
    pytest.skip("next-token models have no partial decodes in the fixtures (README step 7: VAR and Infinity)")


def test_8_fork_resample(case):
    gen, traj = _start(case)
    io, lt = case.io, case.tol("logits")
    k, rows = int(io["fork.after_step"]), io["fork.rows"]
    seq = io["gen.seq"].long()
    for t in range(k):
        gen.advance(traj, seq[:, t])
    traj.select(rows, reason="resample")
    if "fork.cond.mask" in io:
        expected = torch.cat([io["fork.cond.mask"], io["fork.cond.mask"]]).bool()  # started with both halves (the default)
        assert torch.equal(traj.paired["prefix_mask"], expected), "forked mask rows"
    fork_seq = io["fork.seq"].long()
    for t in range(k, fork_seq.shape[1] - 1):
        gen.advance(traj, fork_seq[:, t])
        cond, uncond = gen.next_logits(traj)
        assert_close(_rows(case, torch.cat([cond, uncond])), io["fork.logits"][:, t + 1],
                     what=f"fork.logits step {t + 1}", **lt)
