"""Infinity's 2-D RoPE positions: each scale's (h, w) grid is stretched to the last scale of the 1M schedule of
its aspect ratio, rows by ref_h/h and columns by ref_w/w (they differ for a non-square image)."""

import pytest
import torch

from arscale.generators.next_scale.infinity_schedule import (
    RATIO_TEMPLATES,
    nearest_ratio,
    rope_positions,
    scale_schedule,
)


@pytest.mark.parametrize("h_div_w", [2.0, 0.5, 1.333, 0.75])
def test_positions_stretch_rows_and_columns_to_their_own_reference(h_div_w):
    full = scale_schedule(h_div_w, "1M")
    _, H, W = full[-1]
    assert H != W
    rows, cols = rope_positions(full)
    n = H * W
    assert torch.equal(rows[-n:], torch.arange(H).repeat_interleave(W))  # the 1M last scale: its own grid
    assert torch.equal(cols[-n:], torch.arange(W).repeat(H))
    small = scale_schedule(h_div_w, "0.06M")
    ref_h, ref_w = RATIO_TEMPLATES[nearest_ratio(h_div_w)][-1]
    rows, cols = rope_positions(small)
    assert int(rows.max()) < ref_h and int(cols.max()) < ref_w
    b = 0
    for _, h, w in small:
        r = rows[b:b + h * w].view(h, w)[:, 0]
        c = cols[b:b + h * w].view(h, w)[0]
        assert torch.equal(r, (torch.arange(h) * (ref_h / h)).round().long())
        assert torch.equal(c, (torch.arange(w) * (ref_w / w)).round().long())
        b += h * w


@pytest.mark.parametrize("h_div_w", [3.0, 2.0, 1.333, 1.0, 0.75, 0.5, 0.333])
def test_schedule_follows_the_asked_aspect_ratio(h_div_w):
    for pixels in ("0.06M", "1M"):
        _, h, w = scale_schedule(h_div_w, pixels)[-1]
        assert abs(h / w - h_div_w) <= 0.1 * h_div_w, (pixels, h, w)
