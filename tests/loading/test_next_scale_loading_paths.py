"""Mutation audit of checkpoint loading and the next-scale families' quantisers, schedules, conditioners and T5
layouts: behaviour the parity fixtures do not reach (other configs and aspect ratios, error paths, gradients)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from arscale.errors import ArscaleError
from arscale.generators import loading, t5_text
from arscale.generators.next_scale.bsq import (
    BSQAutoEncoder,
    WrappedGroupNorm,
    autoencoder_from_config,
    bits_to_codes,
    quantize,
)
from arscale.generators.next_scale.conditioning import ClassConditioner
from arscale.generators.next_scale.infinity import InfinityConfig, InfinityTransformer
from arscale.generators.next_scale.infinity_schedule import rope_table, scale_schedule
from arscale.generators.next_scale.quantizer import MultiScaleResidualQuantizer, Phi, resize
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGPT, gpt_state


# -- checkpoint loading: buffers and wrappers the fixtures' files do not carry -----------------------------------
def test_infinity_buffers_upstream_rebuilds_are_ignored():
    """lvl_1L, attn_bias_for_masking and Infinity_* (rebuilt by upstream's load_state_dict, MODELS.md §2.3) may be
    in a released Infinity file; the fixture's slim file has none of them."""
    torch.manual_seed(6)
    cfg = InfinityConfig(embed_dim=64, depth=2, num_heads=2, text_channels=128, text_maxlen=4, codebook_dim=4)
    released = dict(InfinityTransformer(cfg).state_dict())
    released.update({"lvl_1L": torch.zeros(1, 5, dtype=torch.int64), "attn_bias_for_masking": torch.zeros(1, 1, 5, 5),
                     "Infinity_visible_kvlen": torch.tensor(5), "Infinity_invisible_qlen": torch.tensor(5)})
    fresh = InfinityTransformer(cfg)
    loading.load_strict(fresh, loading.infinity_state(released, cfg.text_maxlen), ignore=loading.INFINITY_IGNORED)
    assert torch.equal(fresh.head.weight, released["head.weight"])


def test_llamagen_buffers_of_a_model_that_ran_are_ignored(tmp_path):
    """A LlamaGen training checkpoint saved after `setup_caches` (causal_mask, kv caches) still loads."""
    torch.manual_seed(7)
    cfg = LlamaGenConfig("c2i", dim=32, n_layer=1, n_head=2, vocab_size=16, block_size=4, num_classes=3,
                         multiple_of=32)
    sd = dict(LlamaGenGPT(cfg).state_dict())
    extras = {"causal_mask": torch.ones(1, 5, 5), "layers.0.attention.kv_cache.k_cache": torch.zeros(2, 2, 5, 16),
              "layers.0.attention.kv_cache.v_cache": torch.zeros(2, 2, 5, 16)}
    torch.save({"model": {**sd, **extras}, "args": argparse.Namespace(gpt_model="GPT-B"), "steps": 1}, tmp_path / "c.pt")
    fresh = LlamaGenGPT(cfg)
    loading.load_strict(fresh, gpt_state(loading.read_checkpoint(tmp_path / "c.pt")), ignore=loading.LLAMAGEN_IGNORED)
    assert all(torch.equal(v, sd[k]) for k, v in fresh.state_dict().items())


def test_llamagen_state_strips_both_wrapper_prefixes_in_either_order():
    """state_dict() of DDP(torch.compile(model)) (LlamaGen's wrapping order) and of compile(DDP(model))."""
    sd = {"module._orig_mod.norm.weight": torch.ones(2), "_orig_mod.module.output.weight": torch.ones(2, 2)}
    assert set(loading.llamagen_state({"model": sd})) == {"norm.weight", "output.weight"}


# -- multi-scale residual quantiser (VAR / ShapeWorld-VAR) ------------------------------------------------------
def test_phi_mixes_with_its_own_ratio():
    """φ is h·(1-r) + conv(h)·r; the fixtures use r = 0.5, where swapping the two weights goes unseen."""
    torch.manual_seed(0)
    phi = Phi(4, ratio=0.25)
    h = torch.randn(2, 4, 3, 3)
    expected = 0.75 * h + 0.25 * F.conv2d(h, phi.weight, phi.bias, padding=1)
    torch.testing.assert_close(phi(h), expected)


@pytest.mark.parametrize("patch_nums", [(1, 2, 2, 4), (0, 2, 4), (2, 1, 4)])
def test_patch_nums_must_be_strictly_increasing_positive(patch_nums):
    """A repeated, zero or decreasing scale size is refused when the quantiser is built."""
    with pytest.raises(ArscaleError, match="strictly increasing"):
        MultiScaleResidualQuantizer(8, 4, patch_nums)


def test_a_single_scale_uses_the_last_phi():
    """With one scale there is no si/(K-1): the position is taken as 1.0, the φ nearest the end."""
    assert MultiScaleResidualQuantizer(8, 4, (4,), num_phi=4).phi_for_scale == [3]
    assert MultiScaleResidualQuantizer(8, 4, (4,), num_phi=2).phi_for_scale == [1]


def test_resize_refuses_unknown_modes_and_resizes_non_square_maps():
    """An unknown interpolation mode is an ArscaleError; a map with one matching side is still resized."""
    with pytest.raises(ArscaleError, match="unknown interpolation mode"):
        resize(torch.zeros(1, 2, 2, 2), 4, "cubic")
    x = torch.arange(8.0).view(1, 1, 2, 4)
    assert resize(x, 4, "nearest").shape == (1, 1, 4, 4)


@pytest.mark.parametrize("shape", [(1, 3, 4, 4), (1, 4, 3, 4), (1, 4, 4, 3)])
def test_a_latent_of_the_wrong_shape_is_named(shape):
    """Channels, height and width are each checked against the quantiser before any lookup."""
    q = MultiScaleResidualQuantizer(8, 4, (1, 2, 4))
    with pytest.raises(ArscaleError, match="does not fit the quantizer"):
        q.encode(torch.randn(shape))


def test_encode_leaves_the_callers_latent_untouched():
    """`encode` works on a copy: the latent passed in is not reduced to its residual."""
    torch.manual_seed(1)
    q = MultiScaleResidualQuantizer(16, 4, (1, 2, 4))
    f = torch.randn(2, 4, 4, 4)
    before = f.clone()
    q.encode(f)
    assert torch.equal(f, before)


def test_vq_loss_gradients_and_residual_pool():
    """The VQ loss is the mean over scales of codebook + β·commitment: the encoder gets β of the commitment term;
    the output is straight-through to the encoder and keeps f̂'s graph (codebook); every scale's residual vectors
    are kept for re-seeding dead codes."""
    torch.manual_seed(2)
    q = MultiScaleResidualQuantizer(16, 4, (1, 2), num_phi=0, beta=0.25)
    f = torch.randn(3, 4, 2, 2, requires_grad=True)
    out, indices, loss = q(f)
    with torch.no_grad():
        partial = [q.indices_to_fhat(indices[: k + 1]) for k in range(2)]
        expected = sum((1 + 0.25) * F.mse_loss(p, f) for p in partial) / 2
        grad = sum(0.25 * 2 * (f - p) / f.numel() for p in partial) / 2
    torch.testing.assert_close(loss, expected)
    loss.backward()
    torch.testing.assert_close(f.grad, grad)
    assert q.last_residuals.shape == (3 * (1 + 4), 4)
    # the decoder's gradient: straight through to the encoder, and into the codebook through f̂
    f.grad, q.embedding.weight.grad = None, None
    out, _, _ = q(f)
    out.sum().backward()
    torch.testing.assert_close(f.grad, torch.ones_like(f))
    assert q.embedding.weight.grad is not None and q.embedding.weight.grad.abs().sum() > 0


# -- BSQ-VAE (Infinity) --------------------------------------------------------------------------------------
def test_groupnorm_prefers_32_groups_then_24():
    """Channel counts divisible by both take 32 groups (upstream's order); neither is an error."""
    assert WrappedGroupNorm(96).norm.num_groups == 32
    assert WrappedGroupNorm(72).norm.num_groups == 24
    with pytest.raises(ArscaleError, match="multiples of 32 or 24"):
        WrappedGroupNorm(40)


def test_bsq_decoder_upsamples_only_at_levels_1_to_log2_patch():
    """More levels than log2(patch_size): only levels 1..log2(p) of the decoder upsample, mirroring the encoder."""
    torch.manual_seed(3)
    vae = BSQAutoEncoder(codebook_dim=4, base_ch=32, ch_mult=(1, 1, 1), num_res_blocks=1, patch_size=2)
    assert [hasattr(level, "upsample") for level in vae.decoder.up] == [False, True, False]
    assert [hasattr(level, "downsample") for level in vae.encoder.down] == [True, False, False]
    with torch.no_grad():
        assert vae.decode(torch.randn(1, 4, 4, 4)).shape == (1, 3, 8, 8)


def test_bsq_config_keeps_separate_decoder_multipliers():
    """`decoder_ch_mult` of upstream's namespace builds the decoder (the fixture's equal the encoder's)."""
    vae = autoencoder_from_config({"codebook_dim": 4, "base_ch": 32, "encoder_ch_mult": [1, 2],
                                   "decoder_ch_mult": [1, 1], "num_res_blocks": 1, "patch_size": 2})
    assert vae.encoder.conv_out.conv.in_channels == 64 and vae.decoder.conv_in.conv.out_channels == 32


def test_bits_to_codes_accepts_four_dimensional_bits():
    """Bits [B, h, w, d] are read as [B, 1, h, w, d]."""
    bits = torch.randint(0, 2, (2, 3, 5, 4))
    codes = bits_to_codes(bits)
    assert codes.shape == (2, 4, 1, 3, 5)
    assert torch.equal(codes, bits_to_codes(bits.unsqueeze(1)))
    torch.testing.assert_close(codes[:, :, 0].permute(0, 2, 3, 1), (bits.float() * 2 - 1) / 2)


def test_bsq_quantize_takes_zero_as_a_negative_channel():
    """The bit is 1 only where the channel is positive: an all-zero latent gives bits 0 and codes -1/sqrt(d)."""
    codes, bits = quantize(torch.zeros(1, 4, 1, 2, 2))
    assert torch.equal(bits, torch.zeros(1, 1, 2, 2, 4, dtype=torch.int64))
    assert torch.equal(codes, torch.full((1, 4, 1, 2, 2), -0.5))


def test_bsq_decode_flops_count_every_decoder_conv_per_latent_size():
    """`decode_flops(h, w)` is 2 x the decoder convs' multiply-adds (torch's counter agrees), cached per (h, w), for
    a decoder whose multipliers differ from the encoder's."""
    torch.manual_seed(4)
    vae = BSQAutoEncoder(codebook_dim=4, base_ch=32, ch_mult=(1, 2), decoder_ch_mult=(1, 1), num_res_blocks=1,
                         patch_size=2)
    for h, w in ((2, 2), (2, 4), (3, 2)):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            vae.decoder(torch.randn(1, 4, h, w))
        assert vae.decode_flops(h, w) == counter.get_total_flops() > 0


# -- Infinity schedules and RoPE --------------------------------------------------------------------------------
def test_schedules_follow_the_upstream_templates():
    """The 1:1 1M schedule of MODELS.md (13 scales, 10,521 tokens), the 7/10/12/13-scale prefixes of every ratio,
    and two non-square templates of upstream's dynamic_resolution table."""
    square = scale_schedule(1.0, "1M")
    assert [h for _, h, _ in square] == [1, 2, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 64]
    assert sum(h * w for _, h, w in square) == 10521
    for ratio in (1.0, 1.25, 1.333, 1.5, 1.75, 2.0, 2.5, 3.0, 0.8, 0.75, 0.666, 0.571, 0.5, 0.4, 0.333):
        full = scale_schedule(ratio, "1M")
        for pixels, n in (("0.06M", 7), ("0.25M", 10), ("0.60M", 12), ("1M", 13)):
            assert scale_schedule(ratio, pixels) == full[:n], (ratio, pixels)
    assert scale_schedule(1.5, "1M") == [(1, h, w) for h, w in [
        (1, 1), (2, 2), (3, 2), (6, 4), (9, 6), (15, 10), (21, 14), (27, 18), (33, 22), (39, 26), (48, 32),
        (63, 42), (78, 52)]]
    assert scale_schedule(3.0, "1M")[-3:] == [(1, 72, 24), (1, 90, 30), (1, 111, 37)]
    assert scale_schedule(1 / 3, "1M")[-1] == (1, 37, 111)


def test_an_unknown_resolution_is_an_arscale_error():
    """A pixel budget that is not one of Infinity's four is refused by name."""
    with pytest.raises(ArscaleError, match="unknown Infinity resolution"):
        scale_schedule(1.0, "2M")


@pytest.mark.parametrize("ratio, corner", [(3.0, (127, 41)), (1 / 3, (41, 127)), (1.0, (127, 127))])
def test_rope_mode_1_crops_the_128_grid_to_the_aspect_ratio(ratio, corner):
    """Mode 1 resizes (align_corners) a 128-edge grid cropped as upstream: int(128 / 111 * 37) = 42 columns for 3:1,
    so the last token of the 1M schedule sits at grid position (127, 41) (rows and columns swapped for 1:3)."""
    head_dim = 8
    table = rope_table(head_dim, scale_schedule(ratio, "1M"), mode=1)
    half = head_dim // 2
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, half, 2).float() / half))
    angles = torch.cat([corner[0] * inv_freq, corner[1] * inv_freq])
    torch.testing.assert_close(table[-1], torch.stack([angles.cos(), angles.sin()], dim=-1), atol=1e-5, rtol=0)


# -- conditioners ----------------------------------------------------------------------------------------------
def test_class_labels_must_be_real_classes():
    """Labels are ints in [0, num_classes): the null class (num_classes) used for guidance is not a valid prompt."""
    cond = ClassConditioner(10, 8)
    cond.validate([0, 9])
    for bad in (10, -1, True, 2.0, "3"):
        with pytest.raises(ArscaleError, match="class label"):
            cond.validate([bad])


# -- T5 text layouts (a fake word-level T5: the layouts, not the network, are under test) ---------------------
class _Tokenizer:
    """Word ids (2...) + </s> (1), right-padded with 0, like the T5 tokenizer the encoder is given."""

    def __init__(self):
        self.ids: dict[str, int] = {}

    def __call__(self, prompts, *, padding, truncation, max_length, return_tensors):
        rows = [[self.ids.setdefault(w, 2 + len(self.ids) % 40) for w in p.split()] for p in prompts]
        rows = [(r[: max_length - 1] if truncation else r) + [1] for r in rows]
        width = max_length if padding == "max_length" else max(map(len, rows))
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}


class _Encoder(nn.Module):
    """Each valid token's embedding plus the mean of the valid ones (padding never leaks in)."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(d_model=8, num_heads=2, d_kv=4, d_ff=16, num_layers=1,
                                      feed_forward_proj="gated-gelu")
        self.emb = nn.Embedding(48, 8)

    def forward(self, input_ids, attention_mask):
        m = attention_mask[..., None].float()
        e = self.emb(input_ids)
        return SimpleNamespace(last_hidden_state=e + (e * m).sum(1, keepdim=True) / m.sum(1, keepdim=True))


PROMPTS = ["a red circle", "a photo of a blue square left of a green triangle", "the circle"]


def _t5(**kw):
    torch.manual_seed(5)
    return t5_text.T5TextEncoder(_Encoder(), _Tokenizer(), **kw)


def test_t5_defaults_are_the_upstream_lengths():
    """Infinity pads to 512 (MODELS.md §2.3), LlamaGen to 120 caption tokens."""
    enc = _t5()
    assert enc.encode(PROMPTS, pad_to_max_length=True).padded.shape == (3, 512, 8)
    feats, mask = enc.llamagen(PROMPTS)
    assert feats.shape == (3, 120, 8) and mask.shape == (3, 120)


def test_t5_batches_give_the_same_features_as_one_batch():
    """Prompts encoded in batches smaller than the list (padded to different widths) give the same layouts."""
    whole, parts = _t5().encode(PROMPTS), _t5(batch_size=2).encode(PROMPTS)
    assert parts.lengths.tolist() == whole.lengths.tolist() == [4, 12, 3]
    assert torch.equal(parts.mask, whole.mask)
    torch.testing.assert_close(parts.compact, whole.compact)


def test_t5_flops_are_reported_to_encoding_flops():
    """`encoding_flops` returns what the encoder counted for the call: one padded forward here."""
    enc = _t5()
    feats, flops = t5_text.encoding_flops(enc.encode, lambda: enc.encode(PROMPTS))
    assert flops == enc.forward_flops(3, feats.max_seqlen) > 0


def test_t5_refuses_prompts_that_are_not_strings():
    """Every prompt must be a string; None or a number is refused before tokenising."""
    for bad in (["a red circle", None], [3]):
        with pytest.raises(ArscaleError, match="prompts must be strings"):
            _t5().encode(bad)


def test_compact_features_need_a_token_in_every_row():
    """A row whose mask has no valid token cannot be laid out compactly (T5 always keeps </s>)."""
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    with pytest.raises(ArscaleError, match="no tokens"):
        t5_text.compact_from_padded(torch.randn(2, 3, 4), mask)


def test_caption_cleaning_strips_lowercases_and_folds_spaces():
    """LlamaGen's caption cleaning, as far as it touches an ordinary prompt (tests/t5 has the full table)."""
    assert t5_text.clean_llamagen_caption("  A  Red\tCircle \n") == "a red circle"
