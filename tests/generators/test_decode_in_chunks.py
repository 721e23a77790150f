"""A large N decodes its rows a chunk at a time (`decode_pixels` output pixels per decoder call): the images, the
previews and the search's cost record are those of one decode of every row."""

from __future__ import annotations

import pytest
import torch
from tiny_families import BrightnessScorer, sample_to_end, tiny_infinity, tiny_llamagen, tiny_var

from arscale.generators.decode_chunks import DECODE_PIXELS, decode_in_chunks, rows_per_decode
from arscale.search.best_of_n import BestOfN
from arscale.search.tts_var import TTSVAR


def test_rows_per_decode_follows_the_pixel_budget():
    assert rows_per_decode(1024) == 2 and rows_per_decode(256) == 32 and rows_per_decode(64) == 512
    assert rows_per_decode(2048) == 1  # one image over the budget still decodes
    assert rows_per_decode(10, budget=250) == 2
    with pytest.raises(ValueError, match="decode_pixels must be a positive"):
        rows_per_decode(64, budget=0)


def test_decode_in_chunks_splits_in_order_and_concatenates():
    calls = []

    def decode(rows):
        calls.append(len(rows))
        return rows * 2

    rows = torch.arange(7.0)
    out = decode_in_chunks(decode, rows, image_size=10, budget=300)
    assert calls == [3, 3, 1] and torch.equal(out, rows * 2)
    calls.clear()
    decode_in_chunks(decode, rows, image_size=10, budget=700)
    assert calls == [7]  # fits: one call, no copy


def _counting(decoder):
    """Wrap a decoder function: returns the list of row counts it is called with."""
    seen = []

    def wrapped(x, *args, **kwargs):
        seen.append(len(x))
        return decoder(x, *args, **kwargs)
    return wrapped, seen


def _finished(gen, prompt, rows):
    with torch.no_grad():
        traj = gen.start([prompt], rows, seed=0)
        if hasattr(gen, "num_scales"):
            for _ in range(gen.num_scales - 1):
                gen.step(traj)
            preview = gen.preview(traj, 8)
            gen.step(traj)
        else:
            sample_to_end(gen, traj)
            preview = gen.preview(traj, 8)
        return gen.finish(traj), preview


@pytest.mark.parametrize("family", ["var", "infinity", "llamagen"])
def test_chunked_decodes_equal_one_decode(monkeypatch, family):
    gen = {"var": tiny_var, "infinity": tiny_infinity, "llamagen": tiny_llamagen}[family]()
    prompt = "a photo of a cat" if family == "infinity" else 3  # the class-conditional ones take a label
    assert gen.decode_pixels == DECODE_PIXELS
    whole, whole_preview = _finished(gen, prompt, 5)
    if family == "var":
        wrapped, seen = _counting(gen.tokenizer.decode_fhat)
        monkeypatch.setattr(gen.tokenizer, "decode_fhat", wrapped)
    elif family == "infinity":
        wrapped, seen = _counting(gen.vae.decode)
        monkeypatch.setattr(gen.vae, "decode", wrapped)
    else:
        wrapped, seen = _counting(gen.tokenizer.decode_codes)
        monkeypatch.setattr(gen.tokenizer, "decode_codes", wrapped)
    gen.decode_pixels = 2 * gen.image_size ** 2  # two rows a call
    chunked, chunked_preview = _finished(gen, prompt, 5)
    assert seen and max(seen) == 2 and sum(seen) == 2 * 5  # the preview's five rows and the finish's five
    assert chunked.shape == whole.shape == (5, 3, gen.image_size, gen.image_size)
    torch.testing.assert_close(chunked, whole, atol=1e-4, rtol=1e-4)  # batch size moves the last bits
    torch.testing.assert_close(chunked_preview, whole_preview, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("strategy", [BestOfN, TTSVAR])
def test_a_search_with_small_decode_chunks_picks_and_bills_the_same(strategy):
    def run(decode_pixels):
        gen = tiny_var()
        gen.decode_pixels = decode_pixels
        return strategy().run(gen, [3, 5], 6, seed=7, scorer=BrightnessScorer())

    whole, chunked = run(DECODE_PIXELS), run(tiny_var().image_size ** 2)  # one row a decoder call
    for a, b in zip(whole.candidates, chunked.candidates):
        assert [c.chosen for c in a] == [c.chosen for c in b]
        assert [c.score for c in a] == pytest.approx([c.score for c in b], abs=1e-5)
        for ca, cb in zip(a, b):
            assert abs(ca.image.astype(int) - cb.image.astype(int)).max() <= 1
    assert chunked.cost.decode_count == whole.cost.decode_count
    assert chunked.cost.decode_flops == whole.cost.decode_flops
