"""Partial decodes in the reward trainer: which rows change, to what, and a fine-tuning run end to end."""

import json

import pytest
import torch
from safetensors.torch import save_file

from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.generators.next_scale.shapeworld import load_shapeworld_tokenizer
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer, MultiScaleTokenizerConfig
from arscale.train.reward import PartialDecodes

TOKENIZER = {"image_size": 64, "patch_nums": [1, 2, 4, 8], "vocab_size": 24, "code_dim": 8, "ch": 4,
             "ch_mult": [1, 2, 2, 2]}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    torch.manual_seed(0)
    tok = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(TOKENIZER))
    d = tmp_path_factory.mktemp("tokenizer")
    save_file({k: v.contiguous() for k, v in tok.state_dict().items()}, str(d / "tokenizer.safetensors"))
    (d / "tokenizer_config.json").write_text(json.dumps(TOKENIZER))
    return d


def test_picked_rows_become_truncated_decodes_and_the_rest_stay(tokenizer_dir):
    tok = load_shapeworld_tokenizer(tokenizer_dir)
    partial = PartialDecodes(tok, share=0.6, first_scale=1)
    clean = torch.rand(12, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    shown = clean * 0.5  # stands for the degraded images
    out, kept = partial(clean, shown, torch.Generator().manual_seed(2))
    changed = kept >= 0
    assert 0 < changed.sum() < 12  # seeded: some rows of each kind
    assert ((kept[changed] >= 1) & (kept[changed] <= 3)).all()
    assert torch.equal(out[~changed], shown[~changed])
    with torch.no_grad():
        codes = tok.encode(clean)
        for i in torch.nonzero(changed).flatten().tolist():
            k = int(kept[i])
            expect = tok.decode_fhat(tok.quantizer.indices_to_fhat([c[i : i + 1] for c in codes[: k + 1]]))
            assert torch.allclose(out[i : i + 1], expect, atol=1e-5)


def test_partial_decodes_reject_bad_settings(tokenizer_dir, tmp_path):
    tok = load_shapeworld_tokenizer(tokenizer_dir)
    with pytest.raises(ArscaleError, match="first-scale"):
        PartialDecodes(tok, first_scale=4)
    with pytest.raises(ArscaleError, match="share"):
        PartialDecodes(tok, share=1.5)
    with pytest.raises(ArscaleError, match="no multi-scale tokenizer"):
        load_shapeworld_tokenizer(tmp_path)


def test_fine_tuning_from_weights_with_partial_decodes(tokenizer_dir, tmp_path, capsys):
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    common = ["train", "shapeworld-reward", "--batch-size", "4"]
    assert cli([*common, "--steps", "1", "--out", str(base), "--state-dir", str(tmp_path / "s1")]) == 0
    assert cli([*common, "--steps", "1", "--out", str(tuned), "--state-dir", str(tmp_path / "s2"),
                "--init", str(base), "--partial-tokenizer", str(tokenizer_dir), "--partial-share", "1.0",
                "--lr", "0"]) == 0  # lr 0: the weights must come through --init unchanged
    from safetensors.torch import load_file

    a, b = load_file(str(base / "model.safetensors")), load_file(str(tuned / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cfg_a, cfg_b = (json.loads((d / "config.json").read_text()) for d in (base, tuned))
    assert cfg_a["shift"] != cfg_b["shift"]  # calibrated on partial decodes, not on the base mix
    assert cli([*common, "--steps", "1", "--out", str(tmp_path / "x"), "--state-dir", str(tmp_path / "s3"),
                "--init", str(tmp_path)]) != 0
    assert "no model.safetensors" in capsys.readouterr().err
