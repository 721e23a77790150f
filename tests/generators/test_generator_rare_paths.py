"""The generators' rarely run lines (loaders refusing the wrong folder or option, Infinity's per-scale lists, caption
cleaning's markup, released-loader messages), each run with a check of its effect."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from tiny_families import fake_t5, tiny_infinity, tiny_var
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.errors import ArscaleError

PROMPT = "a photo of a red circle"


# -- each failed before its fix ---------------------------------------------------------------------------------------
def test_infinity_takes_numpy_scalar_guidance():
    """InfinitySampling accepts any real number for cfg / tau (numpy scalars included), but the generator expanded only
    Python ints and floats into one value per scale."""
    from arscale.generators.next_scale.infinity import InfinityGenerator, InfinitySampling
    from arscale.generators.next_scale.infinity_schedule import scale_schedule

    base = tiny_infinity()
    sampling = InfinitySampling(cfg=np.float32(2.5), tau=np.int64(1), schedule=scale_schedule(1.0, "0.06M"))
    gen = InfinityGenerator(base.model, base.vae, sampling, text_encoder=fake_t5(128))
    assert gen.cfg_list == [2.5] * gen.num_scales and gen.tau_list == [1.0] * gen.num_scales


def test_llamagen_t2i_refuses_a_stage_it_has_no_weights_for():
    """stage 1 (256 px) and 2 (512 px) are the released t2i-XL stages; any other value silently meant stage 1."""
    from arscale.generators.next_token.llamagen import load_llamagen_t2i_xl

    for stage in (3, "2"):
        with pytest.raises(ArscaleError, match=rf"stage is 1 \(256 px\) or 2 \(512 px\), got {stage!r}"):
            load_llamagen_t2i_xl(stage=stage, weights="/nonexistent")


@pytest.mark.parametrize("use_optional", [True, False])
def test_a_caption_the_html_parser_rejects_is_one_line(use_optional):
    """`<![` followed by a space: Python's HTML parser (under BeautifulSoup too) raises AssertionError or
    ParserRejectedMarkup, so a LlamaGen t2i prompt ended in a traceback."""
    from arscale.generators.llamagen_caption import clean_llamagen_caption

    with pytest.raises(ArscaleError, match=r"'a <!\[ b'.*markup"):
        clean_llamagen_caption("a <![ b", use_optional=use_optional)


# -- user input reaching the uncovered lines ---------------------------------------------------------------------------
def test_class_names_file_that_is_not_utf8(tmp_path):
    from arscale.generators.class_names import read_class_names

    path = tmp_path / "names.txt"
    path.write_bytes(b"tench\n\xff\xfegoldfish\n")
    with pytest.raises(ArscaleError, match=r"--class-names .*names\.txt: cannot read it: 'utf-8' codec"):
        read_class_names(path)


def test_hub_id_without_huggingface_hub(monkeypatch, tmp_path):
    from arscale.generators.loading import resolve

    monkeypatch.chdir(tmp_path)  # "owner/repo" is no local path here
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(ArscaleError, match=r"'owner/repo' is not a local file and huggingface_hub is not installed"):
        resolve("owner/repo", "model.pth")


def test_unreadable_json_and_safetensors_name_the_file(tmp_path):
    from arscale.generators.loading import read_json, read_safetensors

    with pytest.raises(ArscaleError, match=rf"cannot read {tmp_path}: Is a directory"):
        read_json(tmp_path)
    with pytest.raises(ArscaleError, match=r"cannot read .*missing\.safetensors: No such file"):
        read_safetensors(tmp_path / "missing.safetensors")


def test_infinity_state_fits_cfg_uncond_only_when_given_a_length():
    from arscale.generators.loading import infinity_state

    uncond = torch.arange(6.0).view(3, 2)
    assert torch.equal(infinity_state({"model": {"cfg_uncond": uncond}})["cfg_uncond"], uncond)
    padded = infinity_state({"model": {"cfg_uncond": uncond}}, text_maxlen=5)["cfg_uncond"]
    assert padded.shape == (5, 2) and torch.equal(padded[:3], uncond) and not padded[3:].any()
    assert "cfg_uncond" not in infinity_state({"model": {"w": uncond}}, text_maxlen=5)


def test_each_shipped_folder_refused_by_the_other_family():
    """Both folders hold the same four file names, so only the config says which model it is."""
    from arscale.generators.next_scale import shapeworld as var
    from arscale.generators.next_token import shapeworld as ar

    with pytest.raises(ArscaleError, match=r"shapeworld-ar holds a ShapeWorld-AR model, not a ShapeWorld-VAR model$"):
        var.load_shapeworld_var(weights=ar.WEIGHTS_DIR)
    with pytest.raises(ArscaleError, match=r"shapeworld-var holds a ShapeWorld-VAR model, not a ShapeWorld-AR model$"):
        ar.load_shapeworld_ar(weights=var.WEIGHTS_DIR)


def test_a_folder_of_no_known_model_names_its_config_error(tmp_path):
    from arscale.generators.next_scale.shapeworld import load_shapeworld_var

    (tmp_path / "config.json").write_text('{"notes": "mine"}')
    (tmp_path / "tokenizer_config.json").write_text("{}")
    for name in ("model.safetensors", "tokenizer.safetensors"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(ArscaleError, match=r"holds no ShapeWorld model arscale knows, not a ShapeWorld-VAR model "
                                           r"\(its config: KeyError: 'transformer'\)$"):
        load_shapeworld_var(weights=tmp_path)


def test_shapeworld_sampling_options_of_the_wrong_kind():
    from arscale.generators.next_scale.shapeworld import load_shapeworld_var
    from arscale.generators.next_token.shapeworld import load_shapeworld_ar

    with pytest.raises(ArscaleError, match=r"^shapeworld-var sampling options \{'coarse_temperature': 'hot'\}: "):
        load_shapeworld_var(coarse_temperature="hot")
    with pytest.raises(ArscaleError, match=r"preview_fill must be one of \('background',\), got 'grey'"):
        load_shapeworld_ar(preview_fill="grey")


@pytest.fixture(scope="module")
def tiny_sw_var():
    return build_tiny_var(*tiny_var_configs())


def test_shapeworld_var_prompts_must_be_strings(tiny_sw_var):
    for bad in (3, b"a photo of a red circle"):
        with pytest.raises(ArscaleError, match=rf"^prompts must be strings, got {bad!r}$"):
            tiny_sw_var.start([PROMPT, bad], 1, seed=0)


def test_scale_pieces_called_out_of_order(tiny_sw_var):
    """forward_scale twice, or commit before any forward_scale: refused, and the trajectory still steps as usual."""
    gen = tiny_sw_var
    traj = gen.start([PROMPT], 2, seed=0)
    with pytest.raises(RuntimeError, match="commit needs a preceding forward_scale"):
        gen.commit(traj, torch.zeros(2, 1, dtype=torch.long))
    cond, _ = gen.scale_logits(traj)
    with pytest.raises(RuntimeError, match="forward_scale called twice without commit"):
        gen.forward_scale(traj)
    gen.commit(traj, cond.argmax(-1))
    assert traj.step == 1 and traj.rows["tokens"][:, 0].tolist() == cond.argmax(-1).flatten().tolist()


def test_tokenizer_and_transformer_of_different_codebooks():
    tok, model = tiny_var_configs()
    wrong_dim = {**model, "transformer": {**model["transformer"], "code_dim": 4}}
    with pytest.raises(ArscaleError, match=r"^code dim mismatch: tokenizer 8, transformer 4$"):
        build_tiny_var(tok, wrong_dim)
    wrong_size = {**model, "transformer": {**model["transformer"], "vocab_size": 32}}
    with pytest.raises(ArscaleError, match=r"^codebook size mismatch: tokenizer 24, transformer 32$"):
        build_tiny_var(tok, wrong_size)


def test_multiscale_tokenizer_config_from_an_empty_dict():
    from arscale.generators.next_scale.tokenizer import MultiScaleTokenizerConfig

    assert MultiScaleTokenizerConfig.from_dict({}) == MultiScaleTokenizerConfig()
    assert MultiScaleTokenizerConfig.from_dict({"patch_nums": [1, 2]}).patch_nums == (1, 2)


def test_var_vae_encode_gives_the_quantizer_indices():
    """VQVAE.encode (images in [0, 1]) reads the same indices as the quantizer's training forward on [-1, 1]."""
    vae = tiny_var().tokenizer
    images = torch.rand(2, 3, vae.config.image_size, vae.config.image_size, generator=torch.Generator().manual_seed(0))
    indices = vae.encode(images)
    _, expected, _ = vae.quantize(vae.latent_signed(images * 2 - 1))
    assert [i.shape[-1] for i in indices] == list(vae.patch_nums)
    assert all(torch.equal(a, b) for a, b in zip(indices, expected, strict=True))


# -- Infinity's options and its text paths -----------------------------------------------------------------------------
def test_infinity_sampling_refuses_unknown_resolution_and_preview():
    from arscale.generators.next_scale.infinity import InfinitySampling

    with pytest.raises(ArscaleError, match=r"unknown Infinity resolution '2M'; choose from .*1M"):
        InfinitySampling(pixels="2M")
    with pytest.raises(ArscaleError, match=r"preview_decode must be 'downsampled' or 'full', got 'half'"):
        InfinitySampling(preview_decode="half")


def test_infinity_per_scale_list_too_short_and_too_long():
    from arscale.generators.next_scale.infinity import InfinityGenerator, InfinitySampling
    from arscale.generators.next_scale.infinity_schedule import scale_schedule

    base, schedule = tiny_infinity(), scale_schedule(1.0, "0.06M")
    K = len(schedule)
    gen = InfinityGenerator(base.model, base.vae, InfinitySampling(tau=[0.5] * K + [9.0], schedule=schedule))
    assert gen.tau_list == [0.5] * K  # the extra entry is cut
    # the sampling's own check knows only its schedule: a longer one set later is refused here
    gen = InfinityGenerator(base.model, base.vae, InfinitySampling(cfg=[2.0] * (K - 2), schedule=schedule[:-2]))
    with pytest.raises(ArscaleError, match=rf"^cfg list has {K - 2} entries for {K} scales$"):
        gen.set_schedule(schedule)


def test_a_refused_schedule_leaves_the_infinity_generator_as_it_was():
    from arscale.generators.next_scale.infinity import InfinityGenerator, InfinitySampling
    from arscale.generators.next_scale.infinity_schedule import scale_schedule

    base, schedule = tiny_infinity(), scale_schedule(1.0, "0.06M")
    gen = InfinityGenerator(base.model, base.vae, InfinitySampling(cfg=[2.0] * 5, schedule=schedule[:5]),
                            text_encoder=fake_t5(128))
    with pytest.raises(ArscaleError, match="cfg list has 5 entries"):
        gen.set_schedule(schedule)
    assert gen.num_scales == len(gen.schedule) == len(gen.cfg_list) == 5
    assert gen.generate(["a cat"], 1, seed=0).shape == (1, 3, *[s * gen.vae.patch_size for s in schedule[4][1:]])


def test_infinity_text_paths():
    """No encoder: one line; features given for the wrong number of prompts: one line; an encoder that returns
    `TextFeatures` (as `load_t5(...).encode` does) draws what its per-prompt rows give."""
    from arscale.generators.t5_text import compact_from_padded

    gen = tiny_infinity()
    prompts = ["a cat", "two dogs on a sofa"]
    rows = fake_t5(128)(prompts)
    encoder, gen.text_encoder = gen.text_encoder, None
    with pytest.raises(ArscaleError, match="has no text encoder; load it with text_encoder="):
        gen.start(prompts, 1, seed=0)
    with pytest.raises(ArscaleError, match=r"^1 text feature tensors for 2 prompts$"):
        gen.start_from_features(rows[:1], prompts, 1, seed=0)

    def as_text_features(texts):
        feats = encoder(texts)
        width = max(len(f) for f in feats)
        padded = torch.stack([torch.nn.functional.pad(f, (0, 0, 0, width - len(f))) for f in feats])
        mask = torch.arange(width)[None] < torch.tensor([len(f) for f in feats])[:, None]
        return compact_from_padded(padded, mask)

    gen.text_encoder = as_text_features
    a = gen.start(prompts, 1, seed=3)
    b = gen.start_from_features(rows, prompts, 1, seed=3)
    for traj in (a, b):
        gen.step(traj)
    assert torch.equal(a.rows["tokens"], b.rows["tokens"]) and torch.equal(a.paired["context"], b.paired["context"])


def test_infinity_without_weights_says_what_to_download(monkeypatch):
    from arscale.generators.next_scale.infinity import load_infinity_2b

    monkeypatch.delenv("ARSCALE_INFINITY_WEIGHTS", raising=False)
    with pytest.raises(ArscaleError, match=r"Infinity-2B needs its released weights: download infinity_2b"):
        load_infinity_2b()


# -- the released loaders' wrappers and messages -----------------------------------------------------------------------
@pytest.mark.parametrize("depth", [16, 20, 24, 30, 36])
def test_each_var_depth_asks_for_its_own_file(monkeypatch, depth):
    from arscale.generators.next_scale import var

    monkeypatch.delenv("ARSCALE_VAR_WEIGHTS", raising=False)
    with pytest.raises(ArscaleError, match=rf"^VAR-d{depth} needs its released weights: download var_d{depth}\.pth "):
        getattr(var, f"load_var_d{depth}")()


@pytest.mark.parametrize("size,file", [("b", "c2i_B_256.pt"), ("l", "c2i_L_256.pt"), ("l_384", "c2i_L_384.pt"),
                                       ("xl", "c2i_XL_384.pt"), ("xxl", "c2i_XXL_384.pt"), ("3b", "c2i_3B_384.pt")])
def test_each_llamagen_c2i_size_asks_for_its_own_file(monkeypatch, size, file):
    from arscale.generators.next_token import llamagen

    monkeypatch.delenv("ARSCALE_LLAMAGEN_WEIGHTS", raising=False)
    with pytest.raises(ArscaleError, match=rf"^LlamaGen c2i-{size.replace('_', '-')} needs its released weights: "
                                           rf"download {file} and vq_ds16_c2i\.pt"):
        getattr(llamagen, f"load_llamagen_c2i_{size}")()


def test_llamagen_t2i_without_weights_or_text_encoder(monkeypatch):
    from tiny_families import randomised, tiny_llamagen_vq

    from arscale.generators.next_token.llamagen import (
        LlamaGenConfig,
        LlamaGenGenerator,
        LlamaGenGPT,
        load_llamagen_t2i_xl,
    )

    monkeypatch.delenv("ARSCALE_LLAMAGEN_T2I_WEIGHTS", raising=False)
    with pytest.raises(ArscaleError, match=r"^LlamaGen t2i-XL needs its released weights: download "
                                           r"t2i_XL_stage2_512\.pt and vq_ds16_t2i\.pt"):
        load_llamagen_t2i_xl()
    gpt = LlamaGenGPT(LlamaGenConfig("t2i", dim=64, n_layer=1, n_head=2, vocab_size=32, block_size=16,
                                     caption_dim=16))
    gen = LlamaGenGenerator(randomised(gpt, 0), tiny_llamagen_vq(), cfg=2.0)
    assert gen.prompt_text("a red fox") == "a red fox"  # t2i: the prompt is already text
    with pytest.raises(ArscaleError, match="this LlamaGen t2i generator has no text encoder"):
        gen.start(["a red fox"], 1, seed=0)
    with pytest.raises(ArscaleError, match=r"^unknown LlamaGen model_type 'x2i'; use c2i or t2i$"):
        LlamaGenGPT(LlamaGenConfig("x2i", dim=64, n_layer=1, n_head=2, vocab_size=32, block_size=16))


# -- the next-token generator's own checks -----------------------------------------------------------------------------
def test_token_generator_refuses_a_vocabulary_beyond_the_codebook_and_a_short_condition():
    from arscale.generators.next_token.generator import TokenGenerator
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar

    gen = random_shapeworld_ar(0)
    small = random_shapeworld_ar(0, vocab_size=16)
    with pytest.raises(ArscaleError, match=r"predicts 32 codes but the tokenizer's codebook has 16"):
        TokenGenerator(gen.transformer, small.tokenizer, gen.encode_condition, name="x")
    short = TokenGenerator(gen.transformer, gen.tokenizer, lambda p: tuple(t[:, :5] for t in gen.encode_condition(p)),
                           name="short")
    with pytest.raises(ArscaleError, match=r"^condition encoder gave 5 positions, the model expects 12$"):
        short.start([PROMPT], 1, seed=0)


# -- optional caption-cleaning dependencies ----------------------------------------------------------------------------
def test_caption_cleaning_without_bs4_and_ftfy_installed(monkeypatch):
    from arscale.generators import llamagen_caption as lc

    caption = "A <b>Red</b> fox &amp; a <![if x]>hare</i>, jc6640 FREE SHIPPING"
    fallback = lc.clean_llamagen_caption(caption, use_optional=False)
    monkeypatch.setitem(sys.modules, "bs4", None)
    monkeypatch.setitem(sys.modules, "ftfy", None)
    lc._optional.cache_clear()
    try:
        assert lc.backends() == {"markup": "html.parser", "fix_text": "skipped"}
        assert lc.clean_llamagen_caption(caption) == fallback == "a red fox a hare"
    finally:
        lc._optional.cache_clear()


@pytest.mark.parametrize("markup", ["x<b>y</i>z</b>w", "a<![if !supportLists]>b<![endif]>c", "p&#x41g;q&#128;"])
def test_stdlib_markup_text_matches_beautifulsoup_on_stray_markup(markup):
    pytest.importorskip("bs4")
    from arscale.generators.llamagen_caption import _bs4_markup_text, _stdlib_markup_text

    assert _stdlib_markup_text(markup) == _bs4_markup_text(markup)


# -- released-model paths that run offline -----------------------------------------------------------------------------
def test_var_upstream_guidance_takes_each_rows_own_cfg_once_one_was_changed():
    """Upstream's formula in double, per row: a row given another cfg mixes with it, the others with their float32
    copy of the start cfg (the exact Python float only while every row still holds it)."""
    gen = tiny_var()
    traj = gen.start([1, 2], 1, seed=0, cfg=1.3)
    gen.step(traj, generator=torch.Generator().manual_seed(0))
    traj.rows["cfg"][1] = 2.0
    logits = gen.forward_scale(traj)
    guided = gen.guide(traj, logits, upstream=True)
    cond, uncond = logits.chunk(2)
    ratio = 1 / (gen.num_scales - 1)
    for row, cfg in ((0, float(torch.tensor(1.3, dtype=torch.float32))), (1, 2.0)):
        t = cfg * ratio
        expected = torch.tensor(1 + t, dtype=torch.float32) * cond[row] - torch.tensor(t, dtype=torch.float32) * uncond[row]
        assert torch.equal(guided[row], expected)


def test_infinity_reads_its_flan_t5_from_the_environment(monkeypatch, tmp_path):
    """$ARSCALE_T5_WEIGHTS stands in for the default hub id, `text_dtype` reaches load_t5, and the loaded generator
    encodes its prompts with that encoder's `encode`."""
    from tiny_families import randomised

    from arscale.generators import t5_text
    from arscale.generators.next_scale import infinity as inf
    from arscale.generators.next_scale.bsq import BSQAutoEncoder
    from arscale.generators.registry import load_generator

    config = inf.InfinityConfig(embed_dim=64, depth=2, num_heads=2, text_channels=128, text_maxlen=16, codebook_dim=4)

    def tiny_bsq(**_):
        return BSQAutoEncoder(codebook_dim=4, base_ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_size=2)

    monkeypatch.setattr(inf, "INFINITY_2B", config)
    monkeypatch.setattr(inf, "BSQAutoEncoder", tiny_bsq)
    torch.save(randomised(inf.InfinityTransformer(config), 0).state_dict(), tmp_path / inf.MODEL_FILE)
    torch.save({"vae": randomised(tiny_bsq(), 1).state_dict()}, tmp_path / inf.VAE_FILE)

    class StubT5:
        width = 128

        def encode(self, prompts):
            return [torch.full((2 + len(p) % 3, 128), 0.1) for p in prompts]

    stub, asked = StubT5(), []
    monkeypatch.setattr(t5_text, "load_t5", lambda name, **kw: asked.append((name, kw["dtype"])) or stub)
    monkeypatch.setenv("ARSCALE_T5_WEIGHTS", str(tmp_path / "my-t5"))
    gen = load_generator("infinity-2b", weights=str(tmp_path), text_dtype="bfloat16", pixels="0.06M")
    assert asked == [(str(tmp_path / "my-t5"), "bfloat16")] and gen.text_encoder == stub.encode
    traj = gen.start(["a cat", "a dog"], 1, seed=0)
    assert traj.paired["context_mask"][:2].sum(1).tolist() == [2 + 5 % 3, 2 + 5 % 3]


def test_a_model_factory_without_a_readable_signature_is_still_called(monkeypatch):
    """A plugin's factory that `inspect.signature` cannot read (a builtin) is called with the options as given."""
    from arscale.generators import registry

    monkeypatch.setitem(registry.MODELS, "builtin-model", dict)
    assert registry.load_generator("builtin-model", weights="w", cfg=2.0) == {"weights": "w", "cfg": 2.0}
