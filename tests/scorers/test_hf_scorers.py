"""Audit (mutation testing) of arscale.scorers.hf: dtypes, chunking, prompt checks, weight-path handling."""

from __future__ import annotations

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.scorers import hf


def test_as_dtype_names():
    assert hf.as_dtype(None) is torch.float32
    assert hf.as_dtype("fp16") is torch.float16 and hf.as_dtype("float16") is torch.float16
    assert hf.as_dtype("bf16") is torch.bfloat16 and hf.as_dtype("fp32") is torch.float32
    assert hf.as_dtype(torch.float64) is torch.float64
    with pytest.raises(ArscaleError, match="unknown dtype 'half'; choose from float32"):
        hf.as_dtype("half")


@pytest.mark.parametrize("version, key", [("4.48.0", "torch_dtype"), ("5.0.0", "dtype"), ("6.1.0", "dtype")])
def test_dtype_kwarg_follows_the_transformers_major_version(monkeypatch, version, key):
    transformers = pytest.importorskip("transformers")
    monkeypatch.setattr(transformers, "__version__", version)
    assert hf.dtype_kwarg("bf16") == {key: torch.bfloat16}


def test_in_chunks_refuses_an_empty_batch():
    with pytest.raises(ArscaleError, match="empty batch"):
        hf.in_chunks(lambda x: x, 4, torch.zeros(0, 3))


def test_in_chunks_covers_every_row():
    x = torch.arange(7.0)
    assert torch.equal(hf.in_chunks(lambda a: a * 2, 3, x), x * 2)
    assert torch.equal(hf.in_chunks(lambda a: a, 1, x[:1]), x[:1])


@pytest.mark.parametrize("bad", ["", "   "])
def test_check_prompts_refuses_blank_prompts(bad):
    with pytest.raises(ArscaleError, match="non-empty strings"):
        hf.check_prompts(["a red circle", bad], 2)


def test_check_prompts_refuses_too_many_prompts():
    with pytest.raises(ArscaleError, match="got 1 images but 2 prompts"):
        hf.check_prompts(["a", "b"], 1)


class _Recorder:
    @staticmethod
    def from_pretrained(source, **kwargs):
        return source


class _Missing:
    @staticmethod
    def from_pretrained(source, **kwargs):
        raise OSError("no config.json here")


def test_from_pretrained_expands_a_home_relative_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "clip").mkdir()
    assert hf.from_pretrained(_Recorder, "~/clip", what="CLIP model") == str(tmp_path / "clip")


def test_offline_hint_only_for_hub_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ArscaleError) as local:
        hf.from_pretrained(_Missing, tmp_path, what="CLIP model")  # a local folder: simply incomplete
    assert "HF_HUB_OFFLINE" not in str(local.value) and "no config.json here" in str(local.value)
    with pytest.raises(ArscaleError, match="HF_HUB_OFFLINE is set"):
        hf.from_pretrained(_Missing, "owner/repo", what="CLIP model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(ArscaleError) as online:
        hf.from_pretrained(_Missing, "owner/repo", what="CLIP model")
    assert "HF_HUB_OFFLINE" not in str(online.value)
