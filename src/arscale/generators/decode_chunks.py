"""Decoding many rows a chunk at a time: a decoder's activations grow with rows × pixels, so a large N at a large
image size would otherwise hold every image's activations at once."""

from __future__ import annotations

from collections.abc import Callable

import torch

DECODE_PIXELS = 2 * 1024 * 1024
"""Output pixels one decoder call may make: two 1024² images, 32 at 256², 512 at ShapeWorld's 64². VAR's VQVAE
decoder peaks at about 245 MiB per 256² image in fp32 (`benchmarks/decode_memory.py`), so about 7.5 GiB a call."""


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
