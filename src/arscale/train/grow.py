"""Deepen a trained scale-wise transformer without changing what it computes.

A small model that has stopped improving can be given more depth and trained on, instead of being
trained again from scratch (which, on a CPU, takes the better part of a day). Block j of the deeper
model copies block ⌊j·D/D'⌋ of the trained one; the first copy of each block is that block, every
further copy has its three residual output projections (self-attention, cross-attention, FFN) set to
zero, so it adds nothing until training moves them. Copying a neighbour rather than starting at random
gives the new block features that already suit its place in the stack.
"""

from __future__ import annotations

import re

import torch

from arscale.errors import ArscaleError

_BLOCK_KEY = re.compile(r"^(?P<prefix>.*\bblocks\.)(?P<index>\d+)\.(?P<rest>.+)$")
# The projections that write into the residual stream; zero in a block, the block is the identity.
_RESIDUAL_OUTPUTS = ("attn.proj.", "cross_attn.proj.", "ffn.fc2.")


def block_sources(old_depth: int, new_depth: int) -> list[int]:
    """Which trained block each block of the deeper stack copies (spread evenly, order kept)."""
    if old_depth < 1 or new_depth < old_depth:
        raise ArscaleError(f"can only deepen a stack: {old_depth} -> {new_depth} blocks")
    return [j * old_depth // new_depth for j in range(new_depth)]


def deepen_state(state: dict[str, torch.Tensor], old_depth: int, new_depth: int) -> dict[str, torch.Tensor]:
    """`state` (a model's state dict with `…blocks.<i>.…` keys) with `new_depth` blocks, same function."""
    sources = block_sources(old_depth, new_depth)
    blocks: dict[int, dict[str, tuple[str, torch.Tensor]]] = {}
    grown: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _BLOCK_KEY.match(key)
        if match is None:
            grown[key] = value
            continue
        blocks.setdefault(int(match["index"]), {})[match["rest"]] = (match["prefix"], value)
    if sorted(blocks) != list(range(old_depth)):
        raise ArscaleError(f"expected blocks 0..{old_depth - 1} in the state, found {sorted(blocks)}")
    seen: set[int] = set()
    for j, source in enumerate(sources):
        silent = source in seen
        seen.add(source)
        for rest, (prefix, value) in blocks[source].items():
            value = value.clone()
            if silent and rest.startswith(_RESIDUAL_OUTPUTS):
                value.zero_()
            grown[f"{prefix}{j}.{rest}"] = value
    return grown
