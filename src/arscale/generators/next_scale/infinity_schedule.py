"""Where Infinity's tokens sit: the aspect-ratio templates of its scale schedules and the 2-D RoPE tables drawn from
one 128 x 128 position grid (2048 px / 16), with the three position modes of the released checkpoints.
Facts from shared/methods/MODELS.md §2; our own code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from arscale.errors import ArscaleError

# Aspect-ratio templates h/w -> the 13 scales (h, w) of the 1M schedule; 0.06M/0.25M/0.60M are prefixes.
_RATIO_SCALES: dict[float, list[tuple[int, int]]] = {
    1.000: [(1, 1), (2, 2), (4, 4), (6, 6), (8, 8), (12, 12), (16, 16), (20, 20), (24, 24), (32, 32), (40, 40),
            (48, 48), (64, 64)],
    1.250: [(1, 1), (2, 2), (3, 3), (5, 4), (10, 8), (15, 12), (20, 16), (25, 20), (30, 24), (35, 28), (45, 36),
            (55, 44), (70, 56)],
    1.333: [(1, 1), (2, 2), (4, 3), (8, 6), (12, 9), (16, 12), (20, 15), (24, 18), (28, 21), (36, 27), (48, 36),
            (60, 45), (72, 54)],
    1.500: [(1, 1), (2, 2), (3, 2), (6, 4), (9, 6), (15, 10), (21, 14), (27, 18), (33, 22), (39, 26), (48, 32),
            (63, 42), (78, 52)],
    1.750: [(1, 1), (2, 2), (3, 3), (7, 4), (11, 6), (14, 8), (21, 12), (28, 16), (35, 20), (42, 24), (56, 32),
            (70, 40), (84, 48)],
    2.000: [(1, 1), (2, 2), (4, 2), (6, 3), (10, 5), (16, 8), (22, 11), (30, 15), (38, 19), (46, 23), (60, 30),
            (74, 37), (90, 45)],
    2.500: [(1, 1), (2, 2), (5, 2), (10, 4), (15, 6), (20, 8), (25, 10), (30, 12), (40, 16), (50, 20), (65, 26),
            (80, 32), (100, 40)],
    3.000: [(1, 1), (2, 2), (6, 2), (9, 3), (15, 5), (21, 7), (27, 9), (36, 12), (45, 15), (54, 18), (72, 24),
            (90, 30), (111, 37)],
}
SCALES_FOR_PIXELS = {"0.06M": 7, "0.25M": 10, "0.60M": 12, "1M": 13}


def _templates() -> dict[float, list[tuple[int, int]]]:
    out = {}
    for ratio, hws in _RATIO_SCALES.items():
        out[ratio] = hws
        if ratio != 1.0:
            out[int(1 / ratio * 1000) / 1000] = [(w, h) for h, w in hws]
    return out


RATIO_TEMPLATES = _templates()


def nearest_ratio(h_div_w: float) -> float:
    return min(RATIO_TEMPLATES, key=lambda r: abs(r - h_div_w))


def scale_schedule(h_div_w: float = 1.0, pixels: str = "1M") -> list[tuple[int, int, int]]:
    """The (t=1, h, w) scales of Infinity's schedule for the template nearest `h_div_w`."""
    if pixels not in SCALES_FOR_PIXELS:
        raise ArscaleError(f"unknown Infinity resolution {pixels!r}; choose from {', '.join(SCALES_FOR_PIXELS)}")
    hws = RATIO_TEMPLATES[nearest_ratio(h_div_w)][: SCALES_FOR_PIXELS[pixels]]
    return [(1, h, w) for h, w in hws]


def rope_positions(schedule: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column RoPE positions of every token: each scale's grid stretched to the 1M last scale."""
    h, w = schedule[-1][1], schedule[-1][2]
    ref = RATIO_TEMPLATES[nearest_ratio(h / w)][-1]
    rows, cols = [], []
    for _, ph, pw in schedule:
        # float32 arithmetic and round-half-even, as upstream builds its table
        r = (torch.arange(ph) * (ref[0] / ph)).round().long()
        c = (torch.arange(pw) * (ref[1] / pw)).round().long()
        rows.append(r[:, None].expand(ph, pw).reshape(-1))
        cols.append(c[None, :].expand(ph, pw).reshape(-1))
    return torch.cat(rows), torch.cat(cols)


ROPE_MODES = (0, 1, 2)
_ROPE_GRID = 128  # edge of the position grid upstream's 2-D RoPE draws from (2048 px / 16)


def rope_table(head_dim: int, schedule: Sequence[Sequence[int]], mode: int = 2) -> torch.Tensor:
    """cos/sin [L, head_dim/2, 2]: the first half of the rotation pairs turn with the row, the second with the column.

    `mode` is upstream's `rope2d_normalized_by_hw`: 2 (released models) stretches every scale's grid to the 1M
    last scale (`rope_positions`); 0 uses the raw grid positions 0..h-1, 0..w-1; 1 resizes the cos/sin
    table of a 128-edge grid (cropped to the aspect ratio of the 1M last scale) to each scale with
    align-corners bilinear interpolation, so its values are blends of cos/sin, not cos/sin of a position.
    """
    if mode not in ROPE_MODES:
        raise ArscaleError(f"unknown Infinity RoPE mode (rope2d_normalized_by_hw) {mode!r}; choose from {ROPE_MODES}")
    half = head_dim // 2
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, half, 2, dtype=torch.int64).float() / half))
    if mode == 1:
        return _rope_table_resized(inv_freq, schedule)
    if mode == 2:
        rows, cols = rope_positions(schedule)
    else:
        rows = torch.cat([torch.arange(h)[:, None].expand(h, w).reshape(-1) for _, h, w in schedule])
        cols = torch.cat([torch.arange(w)[None, :].expand(h, w).reshape(-1) for _, h, w in schedule])
    angles = torch.cat([torch.outer(rows.float(), inv_freq), torch.outer(cols.float(), inv_freq)], dim=-1)
    return torch.stack([angles.cos(), angles.sin()], dim=-1)


def _rope_table_resized(inv_freq: torch.Tensor, schedule: Sequence[Sequence[int]]) -> torch.Tensor:
    ref_h, ref_w = RATIO_TEMPLATES[nearest_ratio(schedule[-1][1] / schedule[-1][2])][-1]
    if ref_h >= ref_w:
        gh, gw = _ROPE_GRID, int(_ROPE_GRID / ref_h * ref_w)
    else:
        gh, gw = int(_ROPE_GRID / ref_w * ref_h), _ROPE_GRID
    rows = torch.outer(torch.arange(gh).float(), inv_freq)[:, None, :].expand(gh, gw, -1)
    cols = torch.outer(torch.arange(gw).float(), inv_freq)[None, :, :].expand(gh, gw, -1)
    angles = torch.cat([rows, cols], dim=-1)
    grid = torch.stack([angles.cos(), angles.sin()]).permute(0, 3, 1, 2)  # [2 (cos, sin), half, gh, gw]
    out = []
    for _, h, w in schedule:
        t = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=True)  # [2, half, h, w]
        out.append(t.flatten(2).permute(2, 1, 0))  # [h*w, half, 2]
    return torch.cat(out)
