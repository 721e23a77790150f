"""Token sampling: temperature, top-k, top-p, on explicit generators.

Two entry points:
- `sample_per_row`: each row draws from its own generator (seeded by its key and the step), so
  a row's tokens do not depend on the batch it is in. This is what strategies use.
- `sample_batch`: one generator for the whole batch, drawn in row order, for parity with
  upstream code that samples `multinomial(softmax(logits.view(-1, V)), 1, generator=rng)`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from arscale.errors import ArscaleError
from arscale.generators.seeding import generator_for


def check_sampler(temperature: float, top_k: int, *, top_p: float = 0.0, zero_temperature: bool = False,
                  top_p_off: str = "≤ 0 or ≥ 1") -> None:
    """A generator's sampler settings, refused in one line when it is built rather than at its first draw (a NaN or
    zero temperature, a fractional top-k). `zero_temperature`: a temperature ≤ 0 is allowed, as in LlamaGen, whose
    upstream sampler takes any temperature below 1e-5 as 1e-5. `top_p_off`: the top-p values the sampler ignores,
    in words (LlamaGen's upstream filter takes 0 as "the top token alone")."""
    number = not isinstance(temperature, bool) and isinstance(temperature, numbers.Real) and not math.isnan(temperature)
    if not number or not (zero_temperature or temperature > 0) or isinstance(top_k, bool) \
            or not isinstance(top_k, numbers.Integral):
        wanted = "a number" if zero_temperature else "must be > 0"
        raise ArscaleError(f"invalid sampling: temperature {temperature!r} ({wanted}), top_k {top_k!r} (a whole number; "
                           "≤ 0 is off)")
    if isinstance(top_p, bool) or not isinstance(top_p, numbers.Real) or math.isnan(top_p):
        raise ArscaleError(f"invalid sampling: top_p {top_p!r} (a number; {top_p_off} is off)")


# The largest guidance scale: the rows' scales are float32 tensors, which cannot hold a larger one (1e39 failed in
# torch.full at the first start, after the model had loaded)
MAX_GUIDANCE = float(torch.finfo(torch.float32).max)


def check_guidance(cfg: float) -> None:
    """A guidance scale: a finite number ≥ 0 (NaN or inf would reach the sampler as NaN probabilities) that float32
    holds."""
    if not 0 <= cfg <= MAX_GUIDANCE:
        raise ArscaleError(f"the guidance scale must be ≥ 0 and finite, got {cfg} (at most {MAX_GUIDANCE:.4g})")


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 0.0) -> torch.Tensor:
    """Mask logits outside top-k / top-p with -inf (a new tensor).

    top-k keeps every logit >= the k-th largest (ties survive). top-p sorts ascending and drops
    entries whose ascending cumulative probability is <= 1 - top_p; the largest always stays.
    `top_k <= 0` or `top_k >= V` and `top_p <= 0` or `top_p >= 1` disable the filters.
    """
    V = logits.shape[-1]
    out = logits.clone()
    if 0 < top_k < V:
        kth = torch.topk(out, top_k, dim=-1).values[..., -1:]
        out = out.masked_fill(out < kth, float("-inf"))
    if 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(out, dim=-1, descending=False)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cum <= (1.0 - top_p)
        drop_sorted[..., -1] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


def _probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = logits.float()
    return filter_logits(greedy_where_overflowed(logits, logits / temperature), top_k, top_p).softmax(-1)


def greedy_where_overflowed(logits: torch.Tensor, scaled: torch.Tensor) -> torch.Tensor:
    """`scaled` (logits / temperature), except in rows where it overflowed: a temperature so small that it overflows
    float32 (1e-40; 1e-320 even rounds to 0), or guided logits that already did (a cfg near float32's largest), would
    give NaN probabilities; such a row takes the limit, the argmax (tied maxima share), as a temperature such as 1e-8
    already does. A row whose logits hold a NaN, or are all -inf, keeps it (the sampler refuses it)."""
    peak = scaled.amax(-1, keepdim=True)
    if scaled.device.type == "cpu" and bool(torch.isfinite(peak).all()):  # the usual draw: one reduction, no more
        return scaled  # (on a GPU this test would cost a sync per draw: the where below runs instead)
    top = logits.amax(-1, keepdim=True)  # -inf: no likeliest token to take (NaN probabilities, refused as before)
    over = ~torch.isfinite(peak) & ~logits.isnan().any(-1, keepdim=True) & (top > -math.inf)
    greedy = torch.zeros_like(scaled).masked_fill(logits < top, float("-inf"))
    return torch.where(over, greedy, scaled)


def sample_batch(logits: torch.Tensor, generator: torch.Generator | None, *, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 0.0) -> torch.Tensor:
    """Sample [..., V] logits with one generator; returns [...] long tokens."""
    shape = logits.shape[:-1]
    probs = _probs(logits, temperature, top_k, top_p).reshape(-1, logits.shape[-1])
    return torch.multinomial(probs, 1, generator=generator).reshape(shape)


def sample_per_row(logits: torch.Tensor, keys: Sequence[int], step: int, *, temperature: float = 1.0,
                   top_k: int = 0, top_p: float = 0.0) -> torch.Tensor:
    """Sample [R, ..., V] logits, row r from the generator of (keys[r], step); returns [R, ...]."""
    if logits.shape[0] != len(keys):
        raise ValueError(f"{logits.shape[0]} rows of logits but {len(keys)} keys")
    probs = _probs(logits, temperature, top_k, top_p)
    R, V = probs.shape[0], probs.shape[-1]
    flat = probs.reshape(R, -1, V)
    out = torch.empty(flat.shape[:2], dtype=torch.long, device=logits.device)
    for r, key in enumerate(keys):
        g = generator_for(key, step, device=logits.device)
        out[r] = torch.multinomial(flat[r], 1, generator=g).squeeze(-1)
    return out.reshape(probs.shape[:-1])


def cfg_mix(cond: torch.Tensor, uncond: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Classifier-free guidance on logits: uncond + scale * (cond - uncond), per row if `scale` is [R]."""
    if isinstance(scale, torch.Tensor) and scale.dim() == 1:
        scale = scale.view(-1, *([1] * (cond.dim() - 1))).to(cond)
    return uncond + scale * (cond - uncond)


def filter_logits_hf(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """LlamaGen's (Hugging Face style) filter; differs from `filter_logits` at the top-p boundary.

    top-k keeps every logit >= the k-th largest. top-p (only when < 1) sorts descending and drops
    entries whose cumulative probability exceeds top_p, shifted right by one so the entry that
    crosses the threshold stays (and the largest always stays).
    """
    out = logits.clone()
    V = out.shape[-1]
    if top_k > 0:
        kth = torch.topk(out, min(top_k, V), dim=-1).values[..., -1:]
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(out, dim=-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cum > top_p
        drop_sorted[..., 1:] = drop_sorted[..., :-1].clone()
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out
