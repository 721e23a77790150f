"""Decoding many rows a chunk at a time: a decoder's activations grow with rows × pixels, so a large N at a large
image size would otherwise hold every image's activations at once."""

from __future__ import annotations

from collections.abc import Callable

import torch

DECODE_PIXELS = 8 * 1024 * 1024
"""Output pixels one decoder call may make: eight 1024² images, 128 at 256², 2,048 at ShapeWorld's 64²."""


def rows_per_decode(image_size: int, budget: int = DECODE_PIXELS) -> int:
    """How many `image_size`² images one decoder call may make (at least one)."""
    if budget < 1:
        raise ValueError(f"decode_pixels must be a positive pixel count, got {budget}")
    return max(1, budget // max(1, int(image_size) ** 2))


def decode_in_chunks(decode: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor, image_size: int,
                     budget: int = DECODE_PIXELS) -> torch.Tensor:
    """`decode(rows)`, run on consecutive chunks of at most `rows_per_decode` rows and concatenated."""
    chunk = rows_per_decode(image_size, budget)
    if len(rows) <= chunk:
        return decode(rows)
    return torch.cat([decode(part) for part in rows.split(chunk)])
