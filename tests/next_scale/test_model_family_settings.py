"""Mutation-audit pins for the model families' architectures (VAR, Infinity, the shared scale transformer) and
the settings the parity fixtures do not reach: VAR's release table (d30/d36), shared AdaLN, attention-free
VQVAE variants, φ ticks for other φ counts, Infinity's constructor defaults and guards."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_families import tiny_infinity

from arscale.errors import ArscaleError
from arscale.generators.next_scale import var as var_module
from arscale.generators.next_scale.infinity import InfinityConfig
from arscale.generators.next_scale.transformer import ScaleTransformer, ScaleTransformerConfig
from arscale.generators.next_scale.var import (
    PATCH_NUMS_256,
    VQVAE,
    VARGenerator,
    VARModel,
    VQVAEConfig,
    var_phi_for_scale,
    var_transformer_config,
    vqvae_state,
)


def _tiny_vqvae(**options) -> VQVAE:
    config = {"vocab_size": 16, "code_dim": 8, "ch": 32, "ch_mult": (1, 1), "num_res_blocks": 1, "patch_nums": (1, 2, 3)}
    config.update(options)
    torch.manual_seed(0)
    return VQVAE(VQVAEConfig(**config)).eval()


# -- VAR ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("using_sa, using_mid_sa", [(False, True), (True, False), (False, False)])
def test_vqvae_attention_switches_drop_exactly_their_blocks(using_sa, using_mid_sa):
    """`using_sa` removes the lowest level's attention in encoder and decoder, `using_mid_sa` the middle one
    (upstream's make_attn gives Identity): the keys a released VAE of that kind holds."""
    keys = list(_tiny_vqvae(using_sa=using_sa, using_mid_sa=using_mid_sa).state_dict())
    level_attn = [k for k in keys if k.startswith(("encoder.down.", "decoder.up.")) and ".attn." in k]
    mid_attn = [k for k in keys if ".mid.attn_1." in k]
    assert bool(level_attn) == using_sa
    assert {k.split(".")[0] for k in level_attn} == ({"encoder", "decoder"} if using_sa else set())
    assert bool(mid_attn) == using_mid_sa
    assert {k.split(".")[0] for k in mid_attn} == ({"encoder", "decoder"} if using_mid_sa else set())


def test_vqvae_takes_images_in_0_1_and_resizes_decodes_by_area():
    """`latent`/`encode` map [0, 1] images to the [-1, 1] the conv stack was trained on; a smaller preview is the
    area-resized full decode (bicubic only upwards)."""
    vae = _tiny_vqvae()
    images = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(vae.latent(images), vae.latent_signed(images * 2 - 1))
        assert not torch.allclose(vae.latent(images), vae.latent_signed(images), atol=1e-3)
        f_hat = torch.randn(2, 8, 3, 3, generator=torch.Generator().manual_seed(1))
        full = vae.decode_fhat(f_hat)
        assert full.shape[-1] == 6
        assert torch.allclose(vae.decode_fhat(f_hat, 3), F.interpolate(full, size=(3, 3), mode="area"), atol=1e-6)


def test_phi_ticks_for_other_phi_counts_and_a_single_scale():
    """Upstream's PhiPartiallyShared/PhiNonShared ticks: linspace(1/(3K), 1-1/(3K)) only for K = 4, else
    linspace(1/(2K), 1-1/(2K)); with one scale the last φ (as the shared quantizer's default)."""
    # K = 3, 14 scales: scale 4 sits at 4/13 = 0.3077, nearer tick 0 (1/6) than tick 1 (1/2) only with 1/(2K)
    assert var_phi_for_scale(3, 14)[4] == 0
    expected = [int(np.argmin(np.abs(np.linspace(1 / 6, 5 / 6, 3) - si / 13))) for si in range(14)]
    assert var_phi_for_scale(3, 14) == expected
    assert var_phi_for_scale(4, 1) == [3]
    assert var_phi_for_scale(1, 1) == [0]


def test_every_released_phi_layout_maps_onto_the_shared_quantizer():
    """φ keys of the three upstream layouts (partially shared `qresi_ls.j`, fully shared `qresi`, non-shared
    `j`) all land on `quantize.phis.j`."""
    t = torch.zeros(1)
    sd = vqvae_state({"quantize.quant_resi.qresi_ls.2.weight": t, "quantize.quant_resi.qresi.bias": t,
                      "quantize.quant_resi.7.weight": t, "encoder.conv_in.weight": t})
    assert set(sd) == {"quantize.phis.2.weight", "quantize.phis.0.bias", "quantize.phis.7.weight",
                       "encoder.conv_in.weight"}


@pytest.mark.parametrize("depth", [16, 20, 24, 30, 36])
def test_var_sizes_are_tied_to_depth(depth):
    """VAR: C = 64·depth, heads = depth (head_dim 64), no shared AdaLN unless asked, eps 1e-6, l2-norm attention."""
    c = var_transformer_config(depth=depth)
    assert (c.width, c.heads, c.cond_dim, c.context_dim) == (64 * depth, depth, 64 * depth, 0)
    assert (c.shared_aln, c.norm_eps, c.attn_l2_norm, c.mlp_ratio) == (False, 1e-6, True, 4.0)
    assert c.patch_nums == PATCH_NUMS_256


def _fake_load_var(monkeypatch, depth, tmp_path, **kwargs):
    """Run `load_var` with the heavy parts replaced: returns what it built the model, VAE and generator from."""
    seen = {"read": []}

    class Model:
        def __init__(self, config, num_classes):
            seen["config"], seen["classes"] = config, num_classes

        def load_released(self, obj, what):
            seen["what"] = what

    class Built:
        def to(self, device):
            return self

        def eval(self):
            return self

    def generator(model, vae, sampling, name):
        seen["sampling"], seen["name"] = sampling, name
        return Built()

    monkeypatch.setattr(var_module, "VARModel", Model)
    monkeypatch.setattr(var_module, "VQVAE", lambda config: seen.setdefault("vae", config))
    monkeypatch.setattr(var_module, "VARGenerator", generator)
    monkeypatch.setattr(var_module, "vqvae_state", lambda obj: {})
    monkeypatch.setattr(var_module.loading, "read_checkpoint", lambda path: seen["read"].append(path.name) or {})
    monkeypatch.setattr(var_module.loading, "load_strict", lambda *args, **kw: None)
    var_module.load_var(depth, **kwargs)
    return seen


@pytest.mark.parametrize("depth", [16, 30, 36])
def test_load_var_builds_each_release_with_its_schedule_and_adaln(depth, tmp_path, monkeypatch):
    """d36 is the 512-px model (patch_nums 1..32) with shared AdaLN; the others are 256 px; each depth reads its
    own file; the default sampling is VAR's FID setting (cfg 1.5 linear ramp, top-k 900, top-p 0.96)."""
    (tmp_path / f"var_d{depth}.pth").write_bytes(b"x")
    (tmp_path / "vae_ch160v4096z32.pth").write_bytes(b"x")
    seen = _fake_load_var(monkeypatch, depth, tmp_path, weights=str(tmp_path))
    pn = (1, 2, 3, 4, 6, 9, 13, 18, 24, 32) if depth == 36 else (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    c = seen["config"]
    assert (c.patch_nums, seen["vae"].patch_nums, c.shared_aln) == (pn, pn, depth == 36)
    assert (c.width, c.heads, seen["classes"]) == (64 * depth, depth, 1000)
    assert seen["read"] == [f"var_d{depth}.pth", "vae_ch160v4096z32.pth"]
    s = seen["sampling"]
    assert (s.cfg, s.cfg_schedule, s.top_k, s.top_p) == (1.5, "linear", 900, 0.96)
    assert seen["name"] == f"var-d{depth}"


def test_load_var_takes_a_renamed_vae_file_as_given(tmp_path, monkeypatch):
    """`vae_weights=FILE` names the VAE itself (any file name); only a VAE found from `weights` must sit beside
    the transformer under its released name."""
    (tmp_path / "var_d16.pth").write_bytes(b"x")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "my_vae.pth").write_bytes(b"x")
    seen = _fake_load_var(monkeypatch, 16, tmp_path, weights=str(tmp_path / "var_d16.pth"),
                          vae_weights=str(other / "my_vae.pth"))
    assert seen["read"] == ["var_d16.pth", "my_vae.pth"]


def test_var_generator_default_sampling_is_the_linear_ramp():
    """A VARGenerator built without sampling settings uses VAR's FID setting with the linear CFG ramp."""
    pn = (1, 2)
    model = VARModel(var_transformer_config(depth=1, embed_dim=32, num_heads=2, patch_nums=pn, vocab_size=8,
                                            code_dim=8), num_classes=3)
    gen = VARGenerator(model, _tiny_vqvae(patch_nums=pn, vocab_size=8))
    s = gen.sampling
    assert (s.cfg, s.cfg_schedule, s.top_k, s.top_p) == (1.5, "linear", 900, 0.96)


# -- the shared scale transformer ------------------------------------------------------------------------
def _scale_transformer(**options) -> ScaleTransformer:
    config = {"patch_nums": (1, 2), "vocab_size": 8, "code_dim": 4, "width": 32, "depth": 2, "heads": 2, "cond_dim": 32}
    config.update(options)
    torch.manual_seed(0)
    return ScaleTransformer(ScaleTransformerConfig(**config)).eval()


def test_fresh_weights_follow_the_documented_init():
    """Training from scratch starts where VAR's recipe does: scale_mul at ln 4 per head, residual outputs divided
    by sqrt(2·depth), AdaLN weights halved with gamma biases at 1 and the rest 0, the head scaled by 0.1."""
    depth, C = 4, 64
    t = _scale_transformer(width=C, depth=depth, heads=2, cond_dim=C, vocab_size=512)
    base = 0.02
    for b in t.blocks:
        assert torch.equal(b.attn.scale_mul_1H11, torch.full((1, 2, 1, 1), math.log(4.0)))
        lin = b.ada_lin[1]
        assert torch.equal(lin.bias[: 2 * C], torch.ones(2 * C)) and torch.equal(lin.bias[2 * C:], torch.zeros(4 * C))
        assert lin.weight.std().item() == pytest.approx(base * 0.5, rel=0.05)
        for w in (b.attn.proj.weight, b.ffn.fc2.weight):
            assert w.std().item() == pytest.approx(base / math.sqrt(2 * depth), rel=0.1)
        assert b.ffn.fc1.weight.std().item() == pytest.approx(base, rel=0.05)
    assert t.head.weight.std().item() == pytest.approx(base * 0.1, rel=0.05)
    shared = _scale_transformer(width=C, depth=depth, cond_dim=C, shared_aln=True)
    assert shared.blocks[0].ada_gss.std().item() == pytest.approx(C ** -0.5, rel=0.15)


def test_shared_adaln_adds_each_blocks_own_offset():
    """With shared AdaLN (VAR-d36) every block modulates with shared_ada_lin(cond) + its own `ada_gss`."""
    t = _scale_transformer(shared_aln=True)
    g = torch.Generator().manual_seed(0)
    cond, x = torch.randn(2, 32, generator=g), torch.randn(2, 4, 4, generator=g)
    with torch.no_grad():
        before = t(cond, x)
        t.blocks[1].ada_gss.add_(0.5)
        after = t(cond, x)
    assert not torch.allclose(before, after, atol=1e-4)
    assert not hasattr(t.blocks[0], "ada_lin")


def test_transformer_shape_guards():
    """A width the heads do not divide, and a text model called without its text tokens on the cached path, are
    refused (the cached path would otherwise skip cross-attention silently)."""
    with pytest.raises(ArscaleError, match="not divisible"):
        _scale_transformer(width=30, heads=4)
    from arscale.generators.kv_cache import KVCache

    t = _scale_transformer(context_dim=16)
    with pytest.raises(ArscaleError, match="cross-attends"):
        t.forward_scale(0, torch.randn(1, 32), None, KVCache(2, 8))


def test_ffn_width_rounds_and_config_reads_lists():
    """FFN hidden = round(C·mlp_ratio) as VAR's; a config read from JSON keeps patch_nums a tuple."""
    assert _scale_transformer(mlp_ratio=2.51).blocks[0].ffn.fc1.out_features == 80  # 32 · 2.51 = 80.32
    assert _scale_transformer(mlp_ratio=2.99).blocks[0].ffn.fc1.out_features == 96  # 95.68 rounds up
    c = ScaleTransformerConfig.from_dict({"patch_nums": [1, 2, 4], "width": 16})
    assert c.patch_nums == (1, 2, 4) and ScaleTransformerConfig.from_dict(c.to_dict()) == c


# -- Infinity ---------------------------------------------------------------------------------------------
def test_infinity_derived_sizes_follow_upstream_rounding_and_pool_heads():
    """FFN hidden = round(C·mlp/256)·256 with Python's half-to-even round; the text pool uses 128-wide heads up
    to C = 4096 and 64-wide above (upstream TextAttentivePool)."""
    assert InfinityConfig(embed_dim=160).ffn_dim == 512  # 2.5 -> 2
    assert InfinityConfig(embed_dim=224).ffn_dim == 1024  # 3.5 -> 4
    assert InfinityConfig(embed_dim=2048).ffn_dim == 8192
    assert InfinityConfig(embed_dim=4096, text_channels=2048).pool_heads == 16
    assert InfinityConfig(embed_dim=4160, text_channels=2048).pool_heads == 32


_BASE = {"embed_dim": 64, "depth": 4, "num_heads": 2, "text_channels": 128, "text_maxlen": 16}


def test_infinity_from_upstream_fills_upstreams_defaults():
    """Arguments upstream's constructor leaves at their defaults get upstream's values; `block_chunks` 0 or None
    means one chunk (upstream: `block_chunks or 1`)."""
    c = InfinityConfig.from_upstream(dict(_BASE))
    assert (c.mlp_ratio, c.codebook_dim, c.norm_eps, c.rope_mode) == (4.0, 32, 1e-6, 2)
    assert (c.block_chunks, c.lvl_embed_only_first_block) == (1, True)
    assert InfinityConfig.from_upstream({**_BASE, "block_chunks": 0}).block_chunks == 1
    assert InfinityConfig.from_upstream({**_BASE, "block_chunks": None}).block_chunks == 1


@pytest.mark.parametrize("option, value", [("rope2d_normalized_by_hw", 3), ("cross_attn_layer_scale", 0.5),
                                           ("cross_attn_layer_scale", 0.0), ("head_depth", 2), ("rms_norm", True),
                                           ("shared_aln", False), ("nm0", True)])
def test_infinity_from_upstream_refuses_what_it_does_not_implement(option, value):
    """Constructor settings that would change the architecture are refused, not silently ignored."""
    with pytest.raises(ArscaleError):
        InfinityConfig.from_upstream({**_BASE, option: value})


def test_infinity_released_values_of_the_fixed_settings_are_accepted():
    """The released 2B's values of those settings go through."""
    released = {"cross_attn_layer_scale": -1.0, "head_depth": 1, "rms_norm": False, "shared_aln": True, "nm0": False,
                "swiglu": False, "rope2d_normalized_by_hw": 2}
    assert InfinityConfig.from_upstream({**_BASE, **released}).rope_mode == 2


def test_infinity_text_length_guards():
    """A prompt needs 1 to text_maxlen T5 tokens: an empty one would give NaN attention, a longer one has no
    `cfg_uncond` rows for its unconditional half."""
    gen = tiny_infinity()
    Ct5, maxlen = gen.model.cfg.text_channels, gen.model.cfg.text_maxlen
    pooled, _memory, mask = gen.model.encode_text([torch.randn(maxlen, Ct5), torch.randn(1, Ct5)])
    assert mask.sum(1).tolist() == [maxlen, 1] and torch.isfinite(pooled).all()
    with pytest.raises(ArscaleError, match="at least one"):
        gen.model.encode_text([torch.randn(2, Ct5), torch.zeros(0, Ct5)])
    with pytest.raises(ArscaleError, match="at most"):
        gen.model.encode_text([torch.randn(maxlen + 1, Ct5)])


def test_infinity_schedule_guards_and_non_square_size():
    """At most 15 scales (lvl_embed rows), t = 1 everywhere; a non-square image's size is its longer side."""
    from arscale.generators.next_scale.infinity_schedule import scale_schedule

    gen = tiny_infinity()
    gen.set_schedule([(1, i, i) for i in range(1, 16)])
    assert gen.num_scales == 15
    with pytest.raises(ArscaleError, match="level embeddings"):
        gen.set_schedule([(1, i, i) for i in range(1, 17)])
    with pytest.raises(ArscaleError, match="t = 1"):
        gen.set_schedule([(1, 1, 1), (2, 2, 2)])
    wide = scale_schedule(0.5, "0.06M")
    gen.set_schedule(wide)
    _, H, W = wide[-1]
    assert H != W and gen.image_size == max(H, W) * gen.vae.patch_size


def test_infinity_guidance_below_one_keeps_both_halves():
    """cfg < 1 (guidance away from the prompt) still reads the unconditional half."""
    gen = tiny_infinity()
    gen.cfg_list = [0.5] * gen.num_scales
    assert gen.needs_unconditional(None)
    assert gen.start(["a red cube"], 1, seed=0, unconditional=False).halves == 2


def test_infinity_downsampled_preview_is_the_area_resized_latent_and_modes_are_checked():
    """A small preview decodes the area-resized code sum; an unknown `preview_decode` is refused."""
    gen = tiny_infinity()
    _, H, W = gen.schedule[-1]
    f_hat = torch.randn(1, gen.model.cfg.codebook_dim, 1, H, W, generator=torch.Generator().manual_seed(0))
    for size in (gen.image_size // 4, gen.image_size // 4 + 1):  # the second decodes a little more, then resizes
        h, w = gen.preview_latent(size)
        with torch.no_grad():
            expected = ((gen.vae.decode(F.interpolate(f_hat.squeeze(2), size=(h, w), mode="area")) + 1) / 2)
            if tuple(expected.shape[-2:]) != (size, size):
                expected = F.interpolate(expected, size=(size, size), mode="bilinear", antialias=True)
            assert torch.allclose(gen.decode_latent(f_hat, size), expected.clamp(0, 1), atol=1e-6), size
    gen.sampling.preview_decode = "Full"
    with pytest.raises(ArscaleError, match="preview_decode"):
        gen.decode_latent(f_hat, size)


def test_infinity_upstream_filter_and_uint8_edges():
    """The constructor's top_p is clamped to [0, 1] and under 1e-5 is off (not near-greedy); the final image is
    truncated (not rounded) to uint8 and flipped to BGR, as upstream's cv2 path."""
    from arscale.generators.next_scale.infinity import to_uint8_bgr, upstream_filters

    assert upstream_filters(0, 0.0, 0.0, 5e-6, codebook_dim=4) == (0, 0.0)
    assert upstream_filters(0, 0.0, 0.0, 1.5, codebook_dim=4) == (0, 1.0)
    assert upstream_filters(0, 0.0, 0.0, 2e-5, codebook_dim=4) == (0, 2e-5)
    value = 100.9 / 255 * 2 - 1  # (x + 1) / 2 · 255 = 100.9
    img = torch.tensor([value, -1.0, 1.0]).view(1, 3, 1, 1)  # R, G, B
    assert to_uint8_bgr(img).flatten().tolist() == [255, 0, 100]


def test_infinity_a_single_cfg_and_tau_hold_at_every_scale():
    """A scalar cfg / tau applies to every scale, the last one included."""
    gen = tiny_infinity()
    K = gen.num_scales
    assert gen.cfg_list == [3.0] * K and gen.tau_list == [1.0] * K
    gen.sampling.cfg, gen.sampling.tau = 2.0, 0.5
    gen.set_schedule(gen.schedule)
    assert gen.cfg_list == [2.0] * K and gen.tau_list == [0.5] * K


def test_load_infinity_2b_builds_the_released_model_with_the_official_sampling(tmp_path, monkeypatch):
    """Infinity-2B: the 2B config and the official / TTS-VAR sampling (cfg 3, tau 0.5, top-k 900, top-p 0.97, the
    1:1 1M schedule)."""
    from arscale.generators import loading
    from arscale.generators.next_scale import infinity

    seen = {}

    class Stub:
        def __init__(self, *args, **kwargs):
            seen.setdefault("built", []).append((type(self).__name__, args, kwargs))

        def to(self, *args):
            return self

        def state_dict(self):
            return {}

    class Model(Stub):
        pass

    class VAE(Stub):
        pass

    def generator(model, vae, sampling, *, text_encoder, name):
        seen["sampling"], seen["name"] = sampling, name
        return "generator"

    monkeypatch.setattr(infinity, "InfinityTransformer", Model)
    monkeypatch.setattr(infinity, "BSQAutoEncoder", VAE)
    monkeypatch.setattr(infinity, "InfinityGenerator", generator)
    monkeypatch.setattr(loading, "read_checkpoint", lambda path: {})
    monkeypatch.setattr(loading, "infinity_state", lambda obj, maxlen: {})
    monkeypatch.setattr(loading, "infinity_vae_state", lambda obj, keys: {})
    monkeypatch.setattr(loading, "load_strict", lambda *args, **kwargs: None)
    for name in (infinity.MODEL_FILE, infinity.VAE_FILE):
        (tmp_path / name).write_bytes(b"x")
    assert infinity.load_infinity_2b(str(tmp_path), text_encoder=None) == "generator"
    s = seen["sampling"]
    assert (s.cfg, s.tau, s.top_k, s.top_p, s.h_div_w, s.pixels) == (3.0, 0.5, 900, 0.97, 1.0, "1M")
    assert seen["name"] == "infinity-2b"
    model_args = seen["built"][0][1][0]
    assert (model_args.embed_dim, model_args.depth, model_args.num_heads, model_args.text_maxlen) == (2048, 32, 16, 512)


# -- the ShapeWorld multi-scale tokenizer and its loader ------------------------------------------------
def _tokenizer_config(**changes) -> dict:
    from tiny_shapeworld_var import tiny_var_configs

    config = dict(tiny_var_configs()[0])  # 16 px, downsampling 4, last scale 4
    config.update(changes)
    return config


def test_tokenizer_config_guards():
    """The image must tile exactly into the last scale (17 px with downsampling 4 would floor to 4 but decode 16)
    and only square images of that size are encoded; previews of size 0 are refused."""
    from arscale.generators.next_scale.tokenizer import (
        MultiScaleTokenizer,
        MultiScaleTokenizerConfig,
        resize_images,
    )

    with pytest.raises(ArscaleError, match="latent"):
        MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(_tokenizer_config(image_size=17)))
    tok = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(_tokenizer_config()))
    with pytest.raises(ArscaleError, match="16×16"):
        tok.latent(torch.rand(1, 3, 12, 16))
    with pytest.raises(ArscaleError, match="positive"):
        resize_images(torch.rand(1, 3, 16, 16), 0)


def test_tokenizer_training_pass_and_settings():
    """The training reconstruction is in [0, 1] space (what the loss compares with the images), `beta` reaches the
    quantizer, a JSON config reads back as tuples, and downsizing is area averaging at any factor."""
    from arscale.generators.next_scale.tokenizer import (
        MultiScaleTokenizer,
        MultiScaleTokenizerConfig,
        resize_images,
    )

    config = MultiScaleTokenizerConfig.from_dict(_tokenizer_config(beta=0.5, patch_nums=[1, 2, 4], ch_mult=[1, 2, 2]))
    assert config.patch_nums == (1, 2, 4) and config.ch_mult == (1, 2, 2)
    torch.manual_seed(0)
    tok = MultiScaleTokenizer(config).eval()
    assert tok.quantizer.beta == 0.5
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        recon, _, indices = tok(images)
        f_hat = tok.quantizer.indices_to_fhat(indices)
        assert torch.allclose(recon.clamp(0, 1), tok.decode_fhat(f_hat), atol=1e-5)
    img = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(resize_images(img, 6), F.interpolate(img, size=(6, 6), mode="area"))


def test_shapeworld_var_without_cross_attention_builds_a_pooled_only_model():
    """`context_dim: 0` in the transformer config builds a pooled-only model (no cross-attention), any other value
    (or none) cross-attends to the text encoder's tokens."""
    from tiny_shapeworld_var import tiny_var_configs

    from arscale.generators.next_scale.shapeworld import build_shapeworld_var

    tok, model = tiny_var_configs()
    model["transformer"]["context_dim"] = 0
    gen = build_shapeworld_var(tok, model)
    assert gen.transformer.config.context_dim == 0
    assert not any(hasattr(b, "cross_attn") for b in gen.transformer.blocks)
    del model["transformer"]["context_dim"]
    width = model["text_encoder"]["width"]
    assert build_shapeworld_var(tok, model).transformer.config.context_dim == width


def _save_tokenizer(folder, config: dict, seed: int, weights: str, config_name: str, wrap=lambda c: c) -> None:
    import json

    from safetensors.torch import save_file

    from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer, MultiScaleTokenizerConfig

    torch.manual_seed(seed)
    tok = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(config))
    save_file({k: v.contiguous() for k, v in tok.state_dict().items()}, str(folder / weights))
    (folder / config_name).write_text(json.dumps(wrap(config)))


def test_shapeworld_tokenizer_prefers_the_weights_folder_and_comes_back_in_eval_mode(tmp_path):
    """A folder holding both a weights export and a training state loads the export; the tokenizer (and the
    shipped ShapeWorld-VAR generator) come back in eval mode."""
    from arscale.generators.next_scale.shapeworld import load_shapeworld_tokenizer, load_shapeworld_var

    exported = _tokenizer_config(vocab_size=24)
    state = _tokenizer_config(vocab_size=20)
    _save_tokenizer(tmp_path, exported, 0, "tokenizer.safetensors", "tokenizer_config.json")
    _save_tokenizer(tmp_path, state, 1, "model.safetensors", "state.json", wrap=lambda c: {"config": c})
    tok = load_shapeworld_tokenizer(tmp_path)
    assert tok.config.vocab_size == 24 and not tok.training
    (tmp_path / "tokenizer_config.json").unlink()
    assert load_shapeworld_tokenizer(tmp_path).config.vocab_size == 20
    gen = load_shapeworld_var()
    assert not any(m.training for m in gen.modules())


def test_shapeworld_ar_refuses_text_and_prefix_sizes_that_disagree():
    """The text encoder's words must map one to one onto the decoder's prefix tokens, of the same width."""
    from arscale.generators.next_token.shapeworld import ShapeWorldAR, ShapeWorldARConfig
    from arscale.generators.next_token.transformer import TransformerConfig
    from arscale.generators.text import TextEncoderConfig

    def config(max_len=12, width=32, cls_token_num=12, caption_dim=32):
        return ShapeWorldARConfig(text=TextEncoderConfig(width=width, depth=1, heads=2, max_len=max_len),
                                  transformer=TransformerConfig(dim=32, n_layer=1, n_head=2, vocab_size=16, grid=2,
                                                                cls_token_num=cls_token_num, caption_dim=caption_dim,
                                                                multiple_of=32))

    ShapeWorldAR(config())
    with pytest.raises(ArscaleError, match="cls_token_num"):
        ShapeWorldAR(config(max_len=10))
    with pytest.raises(ArscaleError, match="caption_dim"):
        ShapeWorldAR(config(caption_dim=16))


def test_shapeworld_ar_sampling_defaults_and_unset_overrides():
    """Without a "sampling" section the v1 defaults hold (cfg 2.5, temperature 0.8, top-k 64, top-p 1) and the
    preview fill is "background"; an override left at None (an unset CLI option) keeps the default."""
    from arscale.generators.next_token.shapeworld import ShapeWorldARConfig, random_shapeworld_ar

    gen = random_shapeworld_ar(cfg=None, temperature=None, top_k=None)
    assert (gen.cfg, gen.temperature, gen.top_k, gen.top_p, gen.preview_fill) == (2.5, 0.8, 64, 1.0, "background")
    assert random_shapeworld_ar(cfg=4.0).cfg == 4.0
    default = ShapeWorldARConfig()
    restored = ShapeWorldARConfig.from_dict({"text": default.text.to_dict(), "transformer": default.transformer.to_dict()})
    assert restored.preview_fill == "background" and restored.sampling.cfg == 2.5


def test_random_shapeworld_ar_is_seeded():
    """`random_shapeworld_ar(seed)` gives the same weights for the same seed and others for another seed."""
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar

    torch.manual_seed(123)
    a = random_shapeworld_ar(seed=3).transformer.state_dict()
    torch.manual_seed(456)
    b = random_shapeworld_ar(seed=3).transformer.state_dict()
    c = random_shapeworld_ar(seed=4).transformer.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_conv_flops_leaves_no_hooks_behind():
    """Counting FLOPs must not leave forward hooks on the decoder (they would run on every later decode)."""
    from arscale.generators.conv_autoencoder import Decoder, conv_flops

    dec = Decoder(4, ch=8, ch_mult=(1, 2), num_res=1)
    first = conv_flops(dec, (1, 4, 4, 4))
    assert first > 0 and conv_flops(dec, (1, 4, 4, 4)) == first
    assert all(not m._forward_hooks for m in dec.modules())


# -- the ShapeWorld text encoder --------------------------------------------------------------------------
def test_word_tokenizer_reads_case_insensitively_and_refuses_special_words_and_long_prompts():
    """Prompts are lower-cased; "<pad>" / "<null>" are not words a prompt may use; max_len words fit, one more
    does not."""
    from arscale.generators.text import UnknownWordError, WordTokenizer

    tok = WordTokenizer(("<pad>", "<null>", "a", "red", "circle"), max_len=3)
    ids, mask = tok(["A RED Circle", "a red circle", None])
    assert torch.equal(ids[0], ids[1]) and mask[:2].all() and mask[2].tolist() == [True, False, False]
    for bad in ("a <null> circle", "<pad>"):
        with pytest.raises(UnknownWordError):
            tok([bad])
    with pytest.raises(ArscaleError, match="more than"):
        tok(["a red red circle"])


def test_text_encoder_ignores_padding_and_pools_valid_tokens():
    """Padding is masked out of attention (a prompt's features equal those of the prompt alone) and the pooled
    vector is the mean over its real tokens."""
    from arscale.generators.text import TextEncoder, TextEncoderConfig

    torch.manual_seed(0)
    enc = TextEncoder(TextEncoderConfig(width=16, depth=2, heads=2, max_len=12)).eval()
    with torch.no_grad():
        x, mask, pooled = enc(["a photo of a red circle"])
        n = int(mask.sum())
        ids, _ = enc.tokenizer(["a photo of a red circle"])
        alone = enc.norm(enc.blocks(enc.embed(ids[:, :n]) + enc.pos[:, :n]))
    assert n == 6
    assert torch.allclose(x[:, :n], alone, atol=1e-5)
    assert torch.allclose(pooled, x[:, :n].mean(1), atol=1e-6)


def test_text_encoder_bills_only_what_it_encodes():
    """A refused prompt costs nothing; each accepted batch adds rows · forward_flops(1)."""
    from arscale.generators.text import TextEncoder, TextEncoderConfig

    enc = TextEncoder(TextEncoderConfig(width=16, depth=1, heads=2, max_len=12))
    with pytest.raises(ArscaleError):
        enc(["a photo of a zebra-striped blob"])
    assert enc.flops_spent == 0.0
    enc(["a red circle", None])
    assert enc.flops_spent == 2 * enc.forward_flops(1) > 0


# -- class-conditional prompts ----------------------------------------------------------------------------
def test_a_boolean_is_not_a_class_index(tmp_path):
    """True / False are not classes 1 / 0: they are left for the model to refuse; an empty class-names file is
    refused when read."""
    from tiny_families import tiny_var

    from arscale.generators.class_names import class_index, is_class_index, read_class_names

    assert class_index(True) is True and not is_class_index(True, 10) and is_class_index(1, 10)
    with pytest.raises(ArscaleError):
        tiny_var().start([True], 1, seed=0)
    blank = tmp_path / "names.txt"
    blank.write_text("\n  \n\n")
    with pytest.raises(ArscaleError, match="no names"):
        read_class_names(blank)


def test_a_digit_like_symbol_is_refused_by_the_model_not_crashed_on():
    """Strings that are not decimal numbers ('²', '①') stay strings, so the model refuses them with an
    ArscaleError."""
    from tiny_families import tiny_var

    from arscale.generators.class_names import class_index

    assert class_index("²") == "²"
    with pytest.raises(ArscaleError):
        tiny_var().start(["①"], 1, seed=0)


def test_class_prompt_text_edges():
    """A text prompt reads as itself (no class names needed); a negative index is no class, not the last name."""
    from arscale.generators.class_names import class_prompt_text

    assert class_prompt_text("var-d16", None, "a tabby cat") == "a tabby cat"
    assert class_prompt_text("var-d16", ["goldfish", "shark"], "1") == "shark"
    with pytest.raises(ArscaleError, match="no name"):
        class_prompt_text("var-d16", ["goldfish", "shark"], -1)


# -- seeds ------------------------------------------------------------------------------------------------
def test_seed_derivation_is_pinned():
    """Per-row seeds are SplitMix64-based (reference vector: first output for state 0 is 0xE220A8397B1DCDAF),
    63-bit, and fixed across versions: recorded results depend on them."""
    from arscale.generators import seeding

    assert seeding._splitmix64(0) == 0xE220A8397B1DCDAF
    assert seeding.row_key(0, 0, 0) == 1729081310990857232
    assert seeding.row_key(7, 3, 2) == 7748777597222748905
    assert all(0 <= seeding.mix(s, p, c) < 2 ** 63 for s in (0, 2 ** 64 - 1) for p in range(4) for c in range(4))


def test_each_step_of_a_row_draws_a_fresh_stream():
    """A row's generator depends on the step: the same step repeats its draws, another step does not."""
    from arscale.generators.seeding import generator_for, row_key

    key = row_key(0, 0, 0)
    first = torch.rand(8, generator=generator_for(key, 0))
    assert torch.equal(first, torch.rand(8, generator=generator_for(key, 0)))
    assert not torch.equal(first, torch.rand(8, generator=generator_for(key, 1)))
