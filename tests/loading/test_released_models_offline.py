"""A user of the released models (VAR, Infinity, LlamaGen), offline: tiny random checkpoints in the released file
layouts, loaded through the released factories (their architectures shrunk by monkeypatching)."""

from __future__ import annotations

import pytest
import torch
from tiny_families import randomised, shrink_released_var

from arscale.errors import ArscaleError
from arscale.generators.next_scale import infinity as infinity_module
from arscale.generators.next_scale import var as var_module
from arscale.generators.next_scale.bsq import BSQAutoEncoder
from arscale.generators.next_token import llamagen as llamagen_module
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig
from arscale.generators.registry import load_generator

TINY_INFINITY = infinity_module.InfinityConfig(embed_dim=64, depth=2, num_heads=2, text_channels=128, text_maxlen=16,
                                               codebook_dim=4)


class TinyBSQ(BSQAutoEncoder):
    """Infinity's VAE at a test size, whatever the loader asks for."""

    def __init__(self, **_):
        super().__init__(codebook_dim=4, base_ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_size=2)


class StubT5:
    """What `load_t5` returns, of a given feature width (a Flan-T5 other than XL)."""

    def __init__(self, width):
        self.width = width

    def encode(self, prompts):
        return [torch.zeros(3, self.width) for _ in prompts]

    def llamagen(self, prompts):
        return torch.zeros(len(prompts), 120, self.width), torch.ones(len(prompts), 120, dtype=torch.bool)


def _tiny_vq(image_size=8):
    """LlamaGen's VQGAN at 8 px, whatever image size the loader asks for."""
    return VQGANConfig(codebook_size=32, codebook_embed_dim=4, z_channels=32, ch=32, ch_mult=(1, 2),
                       num_res_blocks=1, image_size=8)


def _llamagen(monkeypatch, tmp_path, kind, caption_dim=16, num_classes=10):
    """Tiny LlamaGen files in the released layout ({"model": state_dict}) and the factory patched to their size."""
    real = llamagen_module.LlamaGenConfig
    monkeypatch.setattr(llamagen_module, "LlamaGenConfig", lambda *a, **k: real(
        a[0], dim=64, n_layer=1, n_head=2, vocab_size=32, block_size=16, num_classes=num_classes,
        caption_dim=caption_dim))
    monkeypatch.setattr(llamagen_module, "VQGANConfig", _tiny_vq)
    gpt = randomised(llamagen_module.LlamaGenGPT(llamagen_module.LlamaGenConfig(kind)), 0)
    model_file, vq_file = (("t2i_XL_stage2_512.pt", "vq_ds16_t2i.pt") if kind == "t2i" else
                           ("c2i_B_256.pt", "vq_ds16_c2i.pt"))
    torch.save({"model": gpt.state_dict()}, tmp_path / model_file)
    torch.save({"model": randomised(VQGAN(_tiny_vq()), 1).state_dict()}, tmp_path / vq_file)
    return tmp_path / model_file, tmp_path / vq_file


def _infinity(monkeypatch, tmp_path):
    monkeypatch.setattr(infinity_module, "INFINITY_2B", TINY_INFINITY)
    monkeypatch.setattr(infinity_module, "BSQAutoEncoder", TinyBSQ)
    model = randomised(infinity_module.InfinityTransformer(TINY_INFINITY), 0)
    torch.save(model.state_dict(), tmp_path / infinity_module.MODEL_FILE)
    torch.save({"vae": randomised(TinyBSQ(), 1).state_dict()}, tmp_path / infinity_module.VAE_FILE)


def _var(monkeypatch, tmp_path, num_classes=1000):
    shrink_released_var(monkeypatch)
    model = randomised(var_module.VARModel(var_module.var_transformer_config(depth=16), num_classes), 2)
    released = {k.split(".", 1)[1]: v for k, v in model.state_dict().items()}  # the flat upstream names
    torch.save(released, tmp_path / "var_d16.pth")
    torch.save(randomised(var_module.VQVAE(var_module.VQVAEConfig()), 3).state_dict(),
               tmp_path / var_module.VAE_FILE)


@pytest.mark.parametrize("model", ["llamagen-t2i-xl", "infinity-2b"])
def test_a_text_encoder_of_the_wrong_width_is_refused_when_loading(model, monkeypatch, tmp_path):
    """A T5 whose features are not the width the model reads fails at load in one line naming both widths."""
    from arscale.generators import t5_text

    if model == "infinity-2b":
        _infinity(monkeypatch, tmp_path)
    else:
        _llamagen(monkeypatch, tmp_path, "t2i")
    monkeypatch.setattr(t5_text, "load_t5", lambda *a, **k: StubT5(24))
    with pytest.raises(ArscaleError, match="24-wide features.* reads (16|128) "):
        load_generator(model, weights=str(tmp_path), text_encoder=str(tmp_path / "flan-t5-large"))


@pytest.mark.parametrize("model", ["var-d16", "infinity-2b", "llamagen-c2i-b", "llamagen-t2i-xl"])
def test_an_unknown_option_of_a_released_model_is_one_line_before_loading(model, tmp_path):
    """A misspelt sampling option (`cfgg=`) is refused, naming the nearest one, before any file is looked for."""
    with pytest.raises(ArscaleError, match=r"unknown option 'cfgg' \(did you mean 'cfg'\?\)"):
        load_generator(model, weights=str(tmp_path), cfgg=2.0)  # an empty folder: the files are not even there


def test_infinity_dtype_takes_a_name_like_text_dtype(monkeypatch, tmp_path):
    """`dtype="bfloat16"` runs the transformer in bf16, as `text_dtype="float16"` names the T5's dtype."""
    _infinity(monkeypatch, tmp_path)
    gen = load_generator("infinity-2b", weights=str(tmp_path), text_encoder=StubT5(128).encode, dtype="bfloat16")
    assert next(gen.transformer.parameters()).dtype == torch.bfloat16


def test_var_dtype_takes_a_name_and_leaves_the_vqvae_fp32(monkeypatch, tmp_path):
    """`dtype="bfloat16"` casts VAR's transformer and class embedding; the VQVAE stays fp32 and images come out."""
    _var(monkeypatch, tmp_path)
    gen = load_generator("var-d16", weights=str(tmp_path), dtype="bfloat16")
    assert {p.dtype for p in gen.transformer.parameters()} | {p.dtype for p in gen.conditioner.parameters()} \
        == {torch.bfloat16}
    assert {p.dtype for p in gen.tokenizer.parameters()} == {torch.float32}
    images = gen.generate([207, 3], 1, seed=0)
    assert images.dtype == torch.float32 and images.shape == (2, 3, gen.image_size, gen.image_size) and torch.isfinite(images).all()


@pytest.mark.parametrize("kind", ["c2i", "t2i"])
def test_llamagen_dtype_takes_a_name_and_casts_only_the_gpt(kind, monkeypatch, tmp_path):
    """`dtype="bfloat16"` loads LlamaGen's GPT in bf16 (upstream's `--precision bf16`), its VQ in fp32; logits are fp32."""
    _llamagen(monkeypatch, tmp_path, kind)
    model, options = (("llamagen-c2i-b", {}) if kind == "c2i" else
                      ("llamagen-t2i-xl", {"text_encoder": StubT5(16).llamagen}))
    gen = load_generator(model, weights=str(tmp_path), dtype="bfloat16", **options)
    assert {p.dtype for p in gen.transformer.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in gen.tokenizer.parameters()} == {torch.float32}
    traj = gen.start([3] if kind == "c2i" else ["a cat"], 2, seed=0)
    assert traj.paired["next_logits"].dtype == torch.float32 and traj.cache.keys[0].dtype == torch.bfloat16
    assert bool(torch.isfinite(traj.paired["next_logits"]).all())


@pytest.mark.parametrize("model", ["var-d16", "infinity-2b", "llamagen-c2i-b", "llamagen-t2i-xl"])
@pytest.mark.parametrize("dtype", ["bf61", torch.float64])
def test_a_dtype_the_transformer_cannot_run_is_one_line_before_loading(model, dtype, tmp_path):
    """A misspelt dtype name, or a dtype autocast does not run in, is refused before any file is looked for."""
    with pytest.raises(ArscaleError, match=rf"unknown dtype 'bf61'; choose from .*bfloat16|{model} runs in float32, "
                                           r"bfloat16 or float16, not torch.float64") as err:
        load_generator(model, weights=str(tmp_path), dtype=dtype)  # an empty folder: the files are not there
    assert "\n" not in str(err.value)


def test_a_var_checkpoint_that_does_not_fit_names_the_file_and_its_own_keys(monkeypatch, tmp_path):
    """A VAR file of another class count names its path and `class_emb.weight` as the file spells it."""
    _var(monkeypatch, tmp_path, num_classes=10)  # not the 1000 ImageNet classes the factory builds
    with pytest.raises(ArscaleError) as err:
        load_generator("var-d16", weights=str(tmp_path))
    message = str(err.value)
    assert str(tmp_path / "var_d16.pth") in message and "class_emb.weight" in message
    assert "conditioner." not in message and "transformer." not in message


def test_a_llamagen_file_of_another_kind_is_named_by_its_own_path(monkeypatch, tmp_path):
    """Passing the VQ tokenizer as the weights names that file in the 'is it the right file?' error."""
    _, vq_file = _llamagen(monkeypatch, tmp_path, "c2i")
    with pytest.raises(ArscaleError, match="image tokenizer") as err:
        load_generator("llamagen-c2i-b", weights=str(vq_file))
    assert str(vq_file) in str(err.value)


def test_bench_takes_a_plain_txt_prompt_file(tmp_path):
    """The kind a bare .txt suite loads as is one the bench runs (class indices for VAR / LlamaGen c2i, captions)."""
    from arscale.bench.runner import Bench
    from arscale.bench.suites import load_prompts

    f = tmp_path / "classes.txt"
    f.write_text("207\n980\n")
    kind, prompts = load_prompts(str(f))
    assert [p.prompt for p in prompts] == ["207", "980"]
    assert Bench(None, None, kind=kind).kind == kind


def test_the_manifest_records_a_local_text_encoder(monkeypatch, tmp_path):
    """Two Flan-T5 folders with other weights give Infinity and LlamaGen t2i different model identities."""
    from arscale.bench import manifest as mf

    (tmp_path / "infinity").mkdir()
    entries = []
    for name, content in (("t5a", b"one"), ("t5b", b"two")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(content)
        monkeypatch.setenv("ARSCALE_T5_WEIGHTS", str(tmp_path / name))
        entries.append([mf.model_entry(model, str(tmp_path / "infinity")) for model in
                        ("infinity-2b", "llamagen-t2i-xl")])
    assert entries[0][0] != entries[1][0] and entries[0][1] != entries[1][1]


@pytest.mark.parametrize("model", ["infinity-2b", "llamagen-t2i-xl"])
def test_a_misspelt_text_dtype_is_one_line_before_loading(model, tmp_path):
    """`text_dtype="bfloat"` is refused before any file is looked for, not after the transformer has loaded."""
    with pytest.raises(ArscaleError, match=r"unknown dtype 'bfloat'; choose from") as err:
        load_generator(model, weights=str(tmp_path), text_dtype="bfloat")  # an empty folder: the files are not there
    assert "\n" not in str(err.value)
