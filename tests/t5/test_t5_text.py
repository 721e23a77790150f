"""The Flan-T5 text encoder on a tiny random T5 config: compact (Infinity) and left-padded (LlamaGen) layouts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scorers_real"))
from real_tiny import word_tokenizer

from arscale.errors import ArscaleError
from arscale.generators import t5_text

PROMPTS = ["a red circle", "a photo of a blue square left of a green triangle", "the circle"]


@pytest.fixture(scope="module")
def encoder():
    tok = word_tokenizer(bos=None)  # T5 appends </s> and has no start token
    config = transformers.T5Config(vocab_size=len(tok), d_model=16, d_kv=4, num_heads=4, num_layers=2, d_ff=24,
                                   feed_forward_proj="gated-gelu", pad_token_id=tok.pad_token_id,
                                   eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = transformers.T5EncoderModel(config)
    return t5_text.T5TextEncoder(model, tok, max_length=32)


def test_compact_equals_padded_at_valid_positions(encoder):
    feats = encoder.encode(PROMPTS)
    assert feats.lengths.tolist() == [4, 12, 3]  # words + </s>
    assert feats.cu_seqlens.dtype == torch.int32 and feats.cu_seqlens.tolist() == [0, 4, 16, 19]
    assert feats.max_seqlen == 12 and feats.compact.shape == (19, 16)
    for i, row in enumerate(feats.rows()):
        torch.testing.assert_close(row, feats.padded[i, : feats.lengths[i]])
        assert torch.equal(feats.mask[i], torch.arange(12) < feats.lengths[i])
    assert feats.padded[0, 4:].abs().sum() == 0  # padding zeroed


def test_padding_does_not_change_valid_features(encoder):
    longest = encoder.encode(PROMPTS)
    full = encoder.encode(PROMPTS, pad_to_max_length=True)  # upstream Infinity pads to max_length
    assert full.padded.shape == (3, 32, 16)
    torch.testing.assert_close(longest.compact, full.compact, atol=1e-5, rtol=1e-5)
    # each prompt alone gives the same features as in the batch
    alone = torch.cat([encoder.encode([p]).compact for p in PROMPTS])
    torch.testing.assert_close(alone, longest.compact, atol=1e-5, rtol=1e-5)
    # and the features do depend on the words (not a constant)
    assert (longest.rows()[0][:2] - encoder.encode(["a blue square"]).rows()[0][:2]).abs().max() > 1e-4


def test_llamagen_layout_is_left_padded_and_zeroed(encoder):
    feats, mask = encoder.llamagen(PROMPTS, length=20)
    assert feats.shape == (3, 20, 16) and mask.shape == (3, 20)
    right = encoder.encode(PROMPTS)
    for i, n in enumerate(right.lengths.tolist()):
        assert mask[i, -n:].all() and not mask[i, :-n].any()
        torch.testing.assert_close(feats[i, -n:], right.rows()[i], atol=1e-5, rtol=1e-5)
        assert feats[i, :-n].abs().sum() == 0
    # truncation at the LlamaGen length keeps the final row full
    short, m = encoder.llamagen(PROMPTS, length=5)
    assert m[1].all() and short.shape == (3, 5, 16)


def test_llamagen_cleaning_folds_case_and_space(encoder):
    a, _ = encoder.llamagen(["A  Red\tCircle "], length=8)
    b, _ = encoder.llamagen(["a red circle"], length=8)
    torch.testing.assert_close(a, b)


def test_llamagen_cleans_captions_like_upstream(encoder):
    """Markup, a size, a URL and "free shipping" go before tokenising (upstream's clean_caption, twice)."""
    messy = ["<b>A</b> Red 2x2 Circle http://x.com/a free shipping"]
    a, mask = encoder.llamagen(messy, length=8)
    b, _ = encoder.llamagen(["a red circle"], length=8)
    torch.testing.assert_close(a, b)
    assert int(mask.sum()) == 4  # three words and </s>
    _, raw_mask = encoder.llamagen(messy, length=20, clean=False)
    assert int(raw_mask.sum()) > 4


def test_compact_rejects_left_padded_input():
    padded = torch.randn(2, 4, 3)
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    with pytest.raises(ArscaleError, match="pad on the right"):
        t5_text.compact_from_padded(padded, mask)


def test_bad_inputs_and_missing_weights(encoder, tmp_path, monkeypatch):
    with pytest.raises(ArscaleError, match="list of prompts"):
        encoder.encode("a red circle")
    with pytest.raises(ArscaleError, match="no prompts"):
        encoder.encode([])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ArscaleError, match="T5 encoder"):
        t5_text.load_t5(tmp_path / "no-t5")


def test_saved_tiny_encoder_round_trips(encoder, tmp_path):
    encoder.model.save_pretrained(tmp_path / "t5")
    encoder.tokenizer.save_pretrained(tmp_path / "t5")
    loaded = t5_text.load_t5(tmp_path / "t5", max_length=32)
    torch.testing.assert_close(loaded.encode(PROMPTS).compact, encoder.encode(PROMPTS).compact)
    # in upstream LlamaGen's dtype (what `text_dtype="bfloat16"` asks the t2i factory for): close, not equal
    half = t5_text.load_t5(tmp_path / "t5", max_length=32, dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    torch.testing.assert_close(half.encode(PROMPTS).compact.float(), encoder.encode(PROMPTS).compact,
                               atol=0.1, rtol=0.1)


@pytest.mark.real_weights
def test_flan_t5_xl_shapes():
    """ARSCALE_FLAN_T5_XL: a local google/flan-t5-xl snapshot."""
    path = os.environ.get("ARSCALE_FLAN_T5_XL")
    if not path:
        pytest.skip("set ARSCALE_FLAN_T5_XL to a local google/flan-t5-xl directory")
    enc = t5_text.load_t5(path)
    feats = enc.encode(["a photo of a cat", "two dogs"])
    assert feats.compact.shape[1] == 2048 and feats.lengths.tolist()[1] < feats.lengths.tolist()[0]
    llama, mask = enc.llamagen(["a photo of a cat"])
    assert llama.shape == (1, 120, 2048) and mask[0, -1]


def test_the_encoder_counts_the_flops_it_computes(encoder):
    from arscale.search.rollout import flop_counter

    before = encoder.flops_spent
    with flop_counter() as counter:
        encoder.encode(PROMPTS)  # padded to the longest prompt: the padding is computed too
    assert encoder.flops_spent - before == counter.get_total_flops() > 0
    before = encoder.flops_spent
    encoder.llamagen(PROMPTS, length=20)
    assert encoder.flops_spent - before == encoder.forward_flops(3, 20)
