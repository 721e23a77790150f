"""ImageReward and HPSv2 build their towers with meta parameters that the released file fills (`meta_build`), as the
released generators do: the loaded scorer must hold bit for bit what an eager build (random init) plus a copy holds —
the state dict, every buffer (the position ids the constructors compute), which names share one parameter, every
plain attribute of every submodule — and score the same images the same. Tiny configurations in the released key
layouts, the loaders' full-size architectures swapped by monkeypatching."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from real_tiny import PROMPTS, bert_tokenizer, images, word_tokenizer
from test_real_hpsv2 import open_clip_state_dict, tiny_config
from test_real_imagereward import TINY, released_state_dict

from arscale.generators import loading
from arscale.generators.meta_build import meta_tensors, parameters_on_meta
from arscale.scorers import hpsv2
from arscale.scorers import imagereward as ir


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bit pattern (so -0.0 differs from 0.0 and NaNs compare)."""
    if not t.is_floating_point():
        return t
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def _tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer under every name it has (a tied one twice), non-persistent buffers included."""
    return dict([*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)])


def _ties(model: torch.nn.Module) -> list[list[str]]:
    """The names that share one tensor object."""
    by_object: dict[int, list[str]] = {}
    for name, tensor in _tensors(model).items():
        by_object.setdefault(id(tensor), []).append(name)
    return sorted(names for names in by_object.values() if len(names) > 1)


def _same_values(a: dict, b: dict, where: str) -> None:
    assert a.keys() == b.keys(), where
    for key, x in a.items():
        y = b[key]
        if isinstance(x, torch.Tensor):
            assert (type(x), x.dtype, x.shape, x.stride(), x.requires_grad) == \
                   (type(y), y.dtype, y.shape, y.stride(), y.requires_grad), f"{where} {key}"
            assert torch.equal(_bits(x), _bits(y)), f"{where} {key}"
        else:
            assert x == y, f"{where} {key}"


def assert_same_model(new: torch.nn.Module, old: torch.nn.Module) -> None:
    assert meta_tensors(new) == [] and not any(t.is_meta for t in _tensors(new).values())
    _same_values(new.state_dict(), old.state_dict(), "state_dict")
    _same_values(_tensors(new), _tensors(old), "tensor")
    assert _ties(new) == _ties(old)
    modules = [dict(m.named_modules()) for m in (new, old)]
    assert modules[0].keys() == modules[1].keys()
    for name, module in modules[0].items():  # configs, flags, the tied-keys maps transformers records
        assert type(module) is type(modules[1][name]), name
        plain = [{k: v for k, v in vars(m).items() if k not in ("_parameters", "_buffers", "_modules")}
                 for m in (module, modules[1][name])]
        _same_values(*plain, name or "<root>")


@pytest.fixture
def skeletons(monkeypatch):
    """Whether each module `load_strict` filled was a meta skeleton."""
    real, seen = loading.load_strict, []

    def watching(module, sd, **options):
        seen.append(bool(meta_tensors(module)))
        return real(module, sd, **options)

    monkeypatch.setattr(loading, "load_strict", watching)
    return seen


def test_load_imagereward_fills_a_skeleton_equal_to_an_eager_build(tmp_path, monkeypatch, skeletons):
    torch.save(released_state_dict(TINY, seed=3), tmp_path / ir.FILENAME)
    bert_tokenizer(tmp_path)  # vocab.txt beside the weights
    full_size = ir.ImageRewardModel
    monkeypatch.setattr(ir, "ImageRewardModel", lambda config=None: full_size(config or TINY))  # not ViT-L + BERT
    new = ir.load_imagereward(tmp_path, tokenizer=tmp_path)
    assert skeletons == [True]
    old_model = ir.load_released(full_size(TINY), ir.read_released(tmp_path / ir.FILENAME))  # the former path
    old = ir.ImageRewardScorer(old_model, new.tokenizer)
    assert skeletons == [True, False]
    assert_same_model(new.model, old.model)
    assert "text.embeddings.position_ids" in _tensors(new.model)  # the constructor's buffer, real and equal
    imgs = images(3, 40, seed=5)
    assert torch.equal(_bits(new.reward(imgs, PROMPTS)), _bits(old.reward(imgs, PROMPTS)))
    assert torch.equal(_bits(new.features(imgs)), _bits(old.features(imgs)))


def test_load_hpsv2_fills_a_skeleton_equal_to_an_eager_build(tmp_path, monkeypatch, skeletons):
    tok = word_tokenizer(eos_last=True)
    tok.save_pretrained(tmp_path / "tokenizer")
    torch.save({"state_dict": open_clip_state_dict(len(tok), seed=4)}, tmp_path / hpsv2.FILES["v2.1"])
    config = tiny_config(tok)
    monkeypatch.setattr(hpsv2, "vit_h_14_config", lambda: config)  # not ViT-H-14
    new = hpsv2.load_hpsv2(tmp_path, tokenizer=tmp_path / "tokenizer")
    assert skeletons == [True]
    sd = loading.unwrap(loading.read_checkpoint(tmp_path / hpsv2.FILES["v2.1"]), ("state_dict",))
    old = hpsv2.Hpsv2Scorer(hpsv2.load_open_clip_weights(transformers.CLIPModel(config), sd), new.tokenizer)
    assert_same_model(new.model, old.model)
    buffers = dict(new.model.named_buffers())  # computed by the constructors, not in the file
    assert {"text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"} <= buffers.keys()
    assert isinstance(new.model.logit_scale, torch.nn.Parameter)  # a parameter the file fills, not a buffer
    imgs = images(3, 40, seed=6)
    assert torch.equal(_bits(new.reward(imgs, PROMPTS)), _bits(old.reward(imgs, PROMPTS)))
    assert torch.equal(_bits(new.features(imgs)), _bits(old.features(imgs)))


def test_a_tie_made_by_transformers_survives_a_meta_build():
    """BLIP's BERT with its LM head ties the decoder to the word embeddings (transformers' `tie_weights`, run in the
    constructor): built on meta and filled, the two names stay one parameter holding what an eager load leaves, even
    where the file's two copies differ (the one loaded last wins, as copying both into one tensor does)."""
    config = transformers.BlipTextConfig(vocab_size=20, hidden_size=16, encoder_hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=32, max_position_embeddings=12,
                                         pad_token_id=0, bos_token_id=None, sep_token_id=None)
    eager = transformers.BlipTextLMHeadModel(config)
    g = torch.Generator().manual_seed(7)
    sd = {k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v for k, v in eager.state_dict().items()}
    with parameters_on_meta():
        skeleton = transformers.BlipTextLMHeadModel(config)
    assert _ties(skeleton) == _ties(eager) == [["bert.embeddings.word_embeddings.weight",
                                                "cls.predictions.decoder.weight"],
                                               ["cls.predictions.bias", "cls.predictions.decoder.bias"]]
    for module in (skeleton, eager):
        loading.load_strict(module, sd)
    assert_same_model(skeleton, eager)
    assert skeleton.cls.predictions.decoder.weight is skeleton.bert.embeddings.word_embeddings.weight
    assert torch.equal(skeleton.cls.predictions.decoder.weight, sd["cls.predictions.decoder.weight"])
