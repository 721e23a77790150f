"""Mutation audit of the next-token family (LlamaGen GPT and VQ, the shared transformer and VQ tokenizer, the KV
cache, the samplers and Trajectories): behaviour the parity fixtures do not reach (options and configs they leave
at one value, error checks, loader defaults, cost counts), each pinned against upstream LlamaGen or the documents
(shared/methods/MODELS.md, the modules' docstrings)."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
from tiny_families import randomised, tiny_llamagen_vq

from arscale.errors import ArscaleError
from arscale.generators.kv_cache import KVCache
from arscale.generators.next_token import llamagen as lg
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig
from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer
from arscale.generators.next_token.transformer import Transformer, TransformerConfig
from arscale.generators.sampling import filter_logits, filter_logits_hf, sample_per_row
from arscale.generators.trajectories import SearchTree, Trajectories

ARGS = {"model_type": "c2i", "dim": 64, "n_layer": 1, "n_head": 2, "n_kv_head": None, "vocab_size": 32,
        "block_size": 16, "num_classes": 10, "caption_dim": 2048, "multiple_of": 64, "norm_eps": 1e-5,
        "rope_base": 10000, "ffn_dim_multiplier": None, "class_dropout_prob": 0.1}
T2I = {**ARGS, "model_type": "t2i", "caption_dim": 16, "cls_token_num": 120}


def _gpt(**upstream) -> LlamaGenGPT:
    return randomised(LlamaGenGPT(LlamaGenConfig.from_upstream({**ARGS, **upstream})), 4).eval()


def _generator(gpt: LlamaGenGPT | None = None, **kw) -> LlamaGenGenerator:
    return LlamaGenGenerator(gpt or _gpt(), tiny_llamagen_vq().eval(), **{"cfg": 2.0, "top_k": 16, "top_p": 1.0, **kw})


# -- llamagen.py: config and condition ----------------------------------------------------------------------
def test_from_upstream_fills_upstreams_modelargs_defaults():
    """Upstream ModelArgs defaults: class_dropout_prob 0.1 (so a null-class row) and cls_token_num 1; n_kv_head equal
    to n_head is plain multi-head attention and is accepted."""
    args = {k: v for k, v in ARGS.items() if k != "class_dropout_prob"}
    cfg = LlamaGenConfig.from_upstream(args)
    assert cfg.class_dropout_prob == 0.1 and cfg.has_null_class and cfg.c2i_rope_prefix == 1
    assert LlamaGenGPT(cfg).cls_embedding.embedding_table.num_embeddings == 11
    assert LlamaGenConfig.from_upstream({**ARGS, "n_kv_head": ARGS["n_head"]}).n_head == 2


def test_a_t2i_model_always_has_its_null_caption():
    """Upstream's t2i CaptionEmbedder always carries uncond_embedding, whatever class_dropout_prob says: guidance is
    allowed."""
    cfg = LlamaGenConfig.from_upstream({**T2I, "class_dropout_prob": 0.0})
    assert cfg.has_null_class
    gen = LlamaGenGenerator(randomised(LlamaGenGPT(cfg), 4).eval(), tiny_llamagen_vq().eval(), cfg=2.0, top_k=16)
    cond = torch.randn(1, 120, 16, generator=torch.Generator().manual_seed(0))
    traj = gen.start_from_condition(cond, None, [0], 2, seed=0)
    assert traj.halves == 2 and torch.equal(traj.rows["guidance"], torch.full((2,), 2.0))


@pytest.mark.parametrize("upstream, needle", [({"block_size": 15}, "square"), ({"cls_token_num": 0}, ">= 1")])
def test_impossible_llamagen_configs_are_refused(upstream, needle):
    """Upstream asserts grid * grid == block_size; a c2i cls_token_num below 1 has no label position."""
    with pytest.raises(ArscaleError, match=needle):
        LlamaGenGPT(LlamaGenConfig.from_upstream({**ARGS, **upstream}))


def test_a_t2i_prefix_without_a_mask_has_every_caption_token_valid():
    """condition_prefix(cond, None) for t2i: all 120 positions are valid keys in both halves (same as an all-ones
    mask)."""
    gpt = randomised(LlamaGenGPT(LlamaGenConfig.from_upstream(T2I)), 4).eval()
    cond = torch.randn(2, 120, 16, generator=torch.Generator().manual_seed(1))
    prefix, key_mask = gpt.condition_prefix(cond, None)
    assert key_mask.shape == (4, 120) and bool(key_mask.all())
    prefix1, _ = gpt.condition_prefix(cond, torch.ones(2, 120))
    assert torch.equal(prefix, prefix1)


def test_start_records_the_guidance_it_was_given_not_the_default():
    """start(..., cfg=s) guides every row at s (the per-call override), not at the generator's `cfg`."""
    gen = _generator()
    traj = gen.start([1, 4], 1, seed=0, cfg=3.0)
    assert traj.rows["guidance"].tolist() == [3.0, 3.0]
    cond, uncond = gen.next_logits(traj)
    assert torch.allclose(gen.guided_logits(traj), uncond + 3.0 * (cond - uncond), atol=1e-5)


class _CountingText:
    """A text encoder that reports 7 FLOPs per prompt through `flops_spent` and returns per-prompt features."""

    def __init__(self):
        self.flops_spent = 0.0

    def __call__(self, prompts):
        self.flops_spent += 7.0 * len(prompts)
        return [torch.randn(3 + i, 16, generator=torch.Generator().manual_seed(i)) for i in range(len(prompts))]


def test_t2i_start_bills_the_text_encoder():
    """A t2i start records the text encoder's FLOPs in traj.extra['text_flops']."""
    gpt = randomised(LlamaGenGPT(LlamaGenConfig.from_upstream(T2I)), 4).eval()
    gen = LlamaGenGenerator(gpt, tiny_llamagen_vq().eval(), cfg=2.0, top_k=16, text_encoder=_CountingText())
    traj = gen.start(["a", "b", "c"], 1, seed=0)
    assert traj.extra["text_flops"] == 21.0


# -- llamagen.py: sampler -----------------------------------------------------------------------------------
def test_temperature_zero_is_clamped_like_upstream():
    """Upstream divides by max(T, 1e-5): temperature 0 gives a finite, (near) one-hot distribution at the argmax."""
    gen = _generator(temperature=0.0, top_k=0)
    logits = torch.randn(3, 32, generator=torch.Generator().manual_seed(2))
    probs = gen.probs_upstream(logits)
    assert bool(torch.isfinite(probs).all())
    assert torch.equal(probs.argmax(-1), logits.argmax(-1)) and bool((probs.max(-1).values > 0.999).all())


def test_top_p_filters_even_without_top_k():
    """Upstream filters when top_k > 0 *or* top_p < 1: top_k 0 with top_p 0.5 still cuts the tail."""
    gen = _generator(top_k=0, top_p=0.5)
    logits = torch.randn(2, 32, generator=torch.Generator().manual_seed(3)) * 2
    probs = gen.probs_upstream(logits)
    assert torch.allclose(probs, filter_logits_hf(logits, 0, 0.5).softmax(-1))
    assert bool(((probs == 0).sum(-1) > 0).all())


# -- llamagen.py: released-model loaders (nothing real is built or read) -------------------------------------
@pytest.fixture
def fake_release(tmp_path, monkeypatch):
    """Loader calls with tiny stand-ins: records the LlamaGenConfig built and the VQ file and image size used."""
    seen = {}
    for name in ("c2i_XL_384.pt", "vq_ds16_c2i.pt", "t2i_XL_stage2_512.pt", "vq_ds16_t2i.pt"):
        (tmp_path / name).write_bytes(b"x")

    def build(cfg):
        seen["config"] = cfg
        return _gpt()

    def vq(path, filename, image):
        seen["vq"] = (path, image)
        return tiny_llamagen_vq()

    monkeypatch.setattr(lg, "LlamaGenGPT", build)
    monkeypatch.setattr(lg, "_vq", vq)
    monkeypatch.setattr(lg, "gpt_state", lambda obj: {})
    monkeypatch.setattr(lg.loading, "read_checkpoint", lambda path: {})
    monkeypatch.setattr(lg.loading, "load_strict", lambda *a, **k: None)
    # the stand-in GPT is built with its (seeded) weights, not as a skeleton for a file to fill
    monkeypatch.setattr(lg, "parameters_on_meta", lambda dtype=None: contextlib.nullcontext())
    return tmp_path, seen


def test_c2i_loader_uses_the_documented_defaults_and_image_size(fake_release):
    """MODELS.md: c2i samples at cfg 4.0, top_k 2000, top_p 1.0, T 1.0; c2i_XL_384 is a 384 px model (24x24 tokens);
    given the model file itself, its VQ tokenizer is looked for beside it."""
    folder, seen = fake_release
    gen = lg.load_llamagen_c2i("xl", weights=folder / "c2i_XL_384.pt")
    assert (gen.cfg, gen.top_k, gen.top_p, gen.temperature) == (4.0, 2000, 1.0, 1.0)
    assert seen["config"].block_size == 24 * 24 and seen["config"].dim == 1280
    assert seen["vq"] == (folder / "vq_ds16_c2i.pt", 384)


def test_t2i_loader_uses_the_documented_defaults(fake_release, monkeypatch):
    """MODELS.md: t2i samples at cfg 7.5, top_k 1000; stage 2 is 512 px (32x32 tokens); $ARSCALE_T5_WEIGHTS replaces
    the default Flan-T5-XL id."""
    from arscale.generators import t5_text

    folder, seen = fake_release
    monkeypatch.setenv("ARSCALE_T5_WEIGHTS", "/somewhere/t5")
    def load_t5(name, **kw):
        seen["t5"] = name
        return type("T5", (), {"llamagen": _CountingText()})()

    monkeypatch.setattr(t5_text, "load_t5", load_t5)
    gen = lg.load_llamagen_t2i_xl(weights=folder)
    assert (gen.cfg, gen.top_k, gen.top_p, gen.temperature) == (7.5, 1000, 1.0, 1.0)
    assert seen["config"].block_size == 32 * 32 and seen["vq"][1] == 512
    assert seen["t5"] == "/somewhere/t5"


# -- llamagen_vq.py -----------------------------------------------------------------------------------------
def test_vq_encode_takes_images_in_unit_range():
    """VQGAN.encode reads [0, 1] images and maps them to [-1, 1] before the encoder (upstream's convention)."""
    vq = tiny_llamagen_vq().eval()
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = vq.quantize_latent(vq.latent_signed(images * 2 - 1))[0].view(2, -1)
    got = vq.encode(images)
    assert torch.equal(got, expected)
    assert not torch.equal(got, vq.quantize_latent(vq.latent_signed(images))[0].view(2, -1))


def test_vq_decode_codes_is_clamped_to_unit_range_while_decode_code_signed_is_not():
    """decode_code_signed is not clamped (as upstream); decode_codes, the [0, 1] edge, is."""
    vq = tiny_llamagen_vq().eval()
    codes = torch.randint(0, 32, (2, vq.num_tokens), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        signed = vq.decode_code_signed(codes)
        images = vq.decode_codes(codes)
    assert signed.abs().max() > 1  # random weights leave [-1, 1], so the clamp below is tested
    assert images.min() >= 0 and images.max() <= 1
    assert torch.allclose(images, ((signed + 1) / 2).clamp(0, 1))


def test_vq_decode_flops_scale_with_rows_and_decoder_ch_mult_is_used():
    """decode_flops(rows) is rows times one image's; a decoder_ch_mult different from ch_mult shapes the decoder."""
    vq = tiny_llamagen_vq()
    assert vq.decode_flops(3) == pytest.approx(3 * vq.decode_flops(1))
    wide = VQGAN(VQGANConfig(codebook_size=32, codebook_embed_dim=4, z_channels=32, ch=32, ch_mult=(1, 2),
                             decoder_ch_mult=(1, 4), num_res_blocks=1, image_size=8))
    assert wide.decoder.conv_in.out_channels == 32 * 4 and wide.encoder.conv_out.in_channels == 32 * 2


# -- transformer.py -----------------------------------------------------------------------------------------
def test_head_dim_must_be_a_multiple_of_four_for_2d_rope():
    """2-D RoPE splits the head's pairs between rows and columns: head_dim 6 (3 pairs) is refused."""
    with pytest.raises(ValueError, match="multiple of 4"):
        TransformerConfig(dim=12, n_head=2)
    assert TransformerConfig(dim=16, n_head=2).head_dim == 8


def test_attention_dropout_is_off_in_eval_mode():
    """A config with dropout > 0 samples deterministically in eval mode (dropout only while training)."""
    cfg = {"dim": 32, "n_layer": 1, "n_head": 2, "vocab_size": 16, "grid": 2, "cls_token_num": 2, "caption_dim": 8,
           "multiple_of": 32}
    torch.manual_seed(0)
    t = Transformer(TransformerConfig(**cfg, dropout=0.9)).eval()
    plain = Transformer(TransformerConfig(**cfg)).eval()
    plain.load_state_dict(t.state_dict())
    x, mask = torch.randn(2, 5, 32), torch.ones(2, 2, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(t(x, mask), plain(x, mask)) and torch.equal(t(x, mask), t(x, mask))


def test_linear_and_embedding_weights_start_at_std_002():
    """Weights start like upstream LlamaGen's initializer_range: normal with std 0.02."""
    torch.manual_seed(0)
    t = Transformer(TransformerConfig(dim=64, n_layer=1, n_head=2, vocab_size=256, grid=2, cls_token_num=2,
                                      caption_dim=64, multiple_of=64))
    for w in (t.tok_embeddings.weight, t.layers[0].attention.wqkv.weight, t.output.weight):
        assert 0.018 < float(w.detach().std()) < 0.022


# -- tokenizer.py (ShapeWorld-AR's VQ) ----------------------------------------------------------------------
def _tokenizer() -> VQTokenizer:
    torch.manual_seed(0)
    return VQTokenizer(VQConfig(image_size=16, codebook_size=16, code_dim=4, z_channels=8, ch=8, ch_mult=(1, 2)))


def test_tokenizer_latents_are_unit_vectors_and_its_loss_is_the_vq_commitment():
    """encode_latent is l2-normalised per position; forward's loss is 0.25 ||z - sg(zq)||^2 + ||sg(z) - zq||^2."""
    tok = _tokenizer()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    z = tok.encode_latent(images)
    assert torch.allclose(z.norm(dim=1), torch.ones(2, 8, 8), atol=1e-5)
    _, commit, codes = tok(images)
    _, zq = tok.quantize(z)
    assert torch.allclose(commit, 1.25 * torch.nn.functional.mse_loss(z, zq), rtol=1e-5)
    assert torch.equal(codes, tok.quantize(z)[0])


def test_tokenizer_reconstruction_gradient_reaches_the_encoder():
    """The straight-through estimator: the reconstruction loss alone trains the encoder."""
    tok = _tokenizer()
    recon, _, _ = tok(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2)))
    recon.square().mean().backward()
    grads = [p.grad for p in tok.encoder.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_tokenizer_decode_flops_scale_with_rows():
    """decode_flops(rows) bills rows images."""
    tok = _tokenizer()
    assert tok.decode_flops(4) == pytest.approx(4 * tok.decode_flops(1)) and tok.decode_flops(1) > 0


# -- kv_cache.py --------------------------------------------------------------------------------------------
def test_kv_cache_refuses_zero_capacity_a_row_count_change_and_an_empty_keep():
    """Capacity must be positive; appending a batch of another size is an error (not a silent broadcast); keep_
    needs at least one row."""
    with pytest.raises(ValueError, match="positive"):
        KVCache(1, 0)
    cache = KVCache(1, 4)
    k = torch.randn(3, 2, 1, 4)
    cache.append(0, k, k)
    with pytest.raises(RuntimeError, match="holds 3 rows"):
        cache.append(0, k[:1], k[:1])
    with pytest.raises(ValueError, match="non-empty"):
        cache.keep_(torch.tensor([], dtype=torch.long))
    assert cache.length == 1


# -- sampling.py --------------------------------------------------------------------------------------------
def test_sample_per_row_draws_row_r_from_the_generator_of_its_key_and_step():
    """sample_per_row: row r draws from generator_for(keys[r], step); a key count that is not the row count is
    refused."""
    from arscale.generators.seeding import generator_for

    logits = torch.randn(3, 40, generator=torch.Generator().manual_seed(6))
    keys = [5, 17, 99]
    got = sample_per_row(logits, keys, step=4)
    probs = logits.softmax(-1)
    want = [int(torch.multinomial(probs[r], 1, generator=generator_for(k, 4))) for r, k in enumerate(keys)]
    assert got.tolist() == want
    with pytest.raises(ValueError, match="3 rows of logits but 2 keys"):
        sample_per_row(logits, keys[:2], step=4)


def test_hf_top_k_larger_than_the_vocabulary_keeps_everything():
    """Upstream clamps top_k to the vocabulary (min(top_k, V)): LlamaGen's default top_k 2000 on a small codebook."""
    logits = torch.randn(2, 32, generator=torch.Generator().manual_seed(7))
    assert bool(torch.isfinite(filter_logits_hf(logits, top_k=2000)).all())


def test_hf_top_p_keeps_the_largest_even_when_it_alone_exceeds_p():
    """HF top-p always keeps the first (largest) token, even when its own probability is above top_p."""
    logits = torch.tensor([[math.log(0.9), math.log(0.05), math.log(0.05)]])
    assert torch.isfinite(filter_logits_hf(logits, top_p=0.5)).tolist() == [[True, False, False]]


def test_hf_top_p_of_one_is_no_filter_even_when_the_float_cumsum_passes_one():
    """top_p is applied only when < 1 (upstream): a float32 cumulative sum that rounds above 1 drops nothing."""
    logits = torch.randn(4, 4096, generator=torch.Generator().manual_seed(0)) * 3
    cum = torch.sort(logits, dim=-1, descending=True).values.softmax(-1).cumsum(-1)
    assert bool((cum > 1.0).any())  # the case this test is about
    assert bool(torch.isfinite(filter_logits_hf(logits, top_k=0, top_p=1.0)).all())
    assert bool(torch.isfinite(filter_logits(logits, top_k=0, top_p=1.0)).all())


# -- trajectories.py ----------------------------------------------------------------------------------------
def test_search_tree_keeps_the_first_end_and_walks_lineage_through_node_zero():
    """end() records only the first ending of a node; lineage() walks up to the root, node 0 included."""
    tree = SearchTree()
    tree.add([-1], [0], 0)
    child = tree.add([0], [0], 2)[0]
    grandchild = tree.add([child], [0], 3)[0]
    assert tree.lineage(grandchild) == [0, child, grandchild]
    tree.end([child], 3, "prune")
    tree.end([child, 0], 5, "final")
    assert (tree.ended, tree.reason) == ([5, 3, None], ["final", "prune", None])


def test_trajectories_refuse_inconsistent_rows():
    """One seed key per row; one positive count per prompt."""
    with pytest.raises(ValueError, match="one seed key per row"):
        Trajectories(["a"], torch.tensor([0, 0]), [1])
    with pytest.raises(ValueError, match="at least one row"):
        Trajectories.for_prompts(["a", "b"], [2, 0], seed=0)
    with pytest.raises(ValueError, match="one count per prompt"):
        Trajectories.for_prompts(["a", "b"], [2], seed=0)


@pytest.mark.parametrize("rows", [[-1], [0, 3]])
def test_select_rows_outside_the_batch_are_an_index_error(rows):
    """select refuses a negative row (no silent wrap-around) and row == len(batch)."""
    traj = Trajectories.for_prompts(["a"], 3, seed=0)
    with pytest.raises(IndexError, match=r"must lie in \[0, 3\)"):
        traj.select(rows)


def test_copies_made_at_different_steps_get_different_seed_keys():
    """A row duplicated at step 3 and again at step 5 gives copies with distinct keys (the step is in the key)."""
    traj = Trajectories.for_prompts(["a"], 2, seed=0)
    traj.step = 3
    traj.select([0, 0, 1])
    traj.step = 5
    traj.select([0, 0, 1, 2])
    assert len(set(traj.seed_key)) == 4


def test_finish_tree_ends_survivors_at_the_current_step():
    """SearchTree: a survivor ends at the model's length, i.e. the step count when finish_tree is called."""
    traj = Trajectories.for_prompts(["a"], 2, seed=0)
    traj.step = 16
    traj.finish_tree()
    assert traj.tree.ended == [16, 16] and traj.tree.reason == ["final", "final"]


def test_a_t2i_cls_token_num_other_than_120_is_refused():
    """MODELS.md: uncond_embedding is hard-coded to 120 tokens, so t2i requires cls_token_num=120; another value must
    be refused in one line, not silently replaced."""
    with pytest.raises(ArscaleError, match="120"):
        LlamaGenConfig.from_upstream({**T2I, "cls_token_num": 77})
    assert LlamaGenConfig.from_upstream({**T2I, "cls_token_num": 120}).cls_token_num == 120
