"""Deterministic per-row seeds.

Every row carries a 63-bit key. A row's random draws at a step come from a generator seeded
with `mix(key, step)`, so results depend on (prompt index, candidate index, step) only — never
on batch layout, process rank or how many prompts share a forward. A row duplicated by
`select` gets a fresh key derived from its parent's, so copies diverge after resampling.

On a CPU, torch's generator reads only a seed's low 32 bits, so streams number 2^32: at 10^5 prompts × 64
candidates about 9,600 rows (4,800 pairs, the birthday count) share each step's draws (never a whole image);
CUDA's Philox reads all 64. Widening the CPU state would change every recorded CPU result, so it is left as it is.
"""

from __future__ import annotations

import numbers

import torch

from arscale.errors import ArscaleError

_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def mix(*values: int) -> int:
    """Hash any number of integers into one non-negative 63-bit seed."""
    h = 0x5EED
    for v in values:
        h = _splitmix64(h ^ (int(v) & _MASK))
    return h >> 1


def check_seed(seed: int) -> int:
    """A run seed: a whole number in [0, 2**64) (a negative one would alias a large one: -1 is 2**64 - 1)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ArscaleError(f"the seed must be a whole number, got {seed!r}")
    if not 0 <= int(seed) <= _MASK:
        raise ArscaleError(f"the seed must lie in [0, 2**64), got {seed}")
    return int(seed)


def row_key(seed: int, prompt_index: int, candidate: int) -> int:
    """The key of candidate `candidate` of global prompt `prompt_index` under run seed `seed`."""
    return mix(seed, prompt_index, candidate)


def generator_for(key: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh generator for one row at one step."""
    g = torch.Generator(device=device)
    g.manual_seed(mix(key, step))
    return g
