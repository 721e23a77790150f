"""Resampling potentials from a per-row reward history, and numerically safe resampling weights.

The history is `Trajectories.history["reward"]`, [R, T] with NaN where a scale was not scored; it
moves with its row through `select`, so a duplicated row carries its ancestor's rewards (the
official code never permuted its `scores_record`, which is why only VALUE worked there).

With r_t the reward at the current scale and r_<t the recorded earlier ones:
- VALUE: r_t
- DIFF:  r_t − (the most recent earlier *recorded* reward), i.e. the previous scoring step, not the
         previous scale column as in the official code; VALUE when there is none;
- MAX:   max(r_t, r_<t)
- SUM:   r_t + Σ r_<t
The potential is exp(λ·φ); weights are normalised within each prompt through log-sum-exp, so
λ·φ in the thousands neither overflows nor underflows to an all-zero draw.
"""

from __future__ import annotations

import torch

from arscale.errors import ArscaleError

POTENTIALS = ("value", "diff", "max", "sum")


def check_finite(values: torch.Tensor, what: str) -> None:
    """NaN or ±inf rewards are an error: silently dropping or keeping such rows would bias the search."""
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        rows = torch.nonzero(bad).flatten().tolist()
        raise ArscaleError(f"{what} is not finite for row(s) {rows[:8]} (values {values[bad][:8].tolist()}); "
                           "the scorer returned NaN/inf — check its inputs and weights")


def potential(history: torch.Tensor, column: int, kind: str = "value") -> torch.Tensor:
    """φ per row from `history[:, :column+1]`; the current reward must be recorded at `column`."""
    if kind not in POTENTIALS:
        raise ArscaleError(f"unknown potential {kind!r}; choose from {', '.join(POTENTIALS)}")
    if history.dim() != 2 or history.shape[1] <= column:
        raise ArscaleError(f"reward history of shape {tuple(history.shape)} has no column {column}")
    current = history[:, column]
    check_finite(current, f"reward at scale {column}")
    past = history[:, :column]
    if kind == "value" or past.shape[1] == 0:
        return current.clone()
    recorded = ~torch.isnan(past)
    if kind == "diff":
        # Most recent recorded column per row (rows share scoring steps, but do not assume it).
        cols = torch.arange(past.shape[1]).expand_as(past)
        last = torch.where(recorded, cols, torch.full_like(cols, -1)).max(1).values
        prev = past.gather(1, last.clamp_min(0).unsqueeze(1)).squeeze(1)
        return torch.where(last >= 0, current - prev, current)
    if kind == "max":
        masked = torch.where(recorded, past, torch.full_like(past, float("-inf")))
        return torch.maximum(current, masked.max(1).values)
    return current + torch.where(recorded, past, torch.zeros_like(past)).sum(1)  # sum


def log_weights(phi: torch.Tensor, lam: float, groups: torch.Tensor) -> torch.Tensor:
    """log of the normalised weights exp(λφ)/Σ_group exp(λφ), computed stably per group."""
    check_finite(phi, "potential")
    phi = phi.double()
    out = torch.empty_like(phi)
    for g in torch.unique(groups).tolist():
        m = groups == g
        top = phi[m].max() if lam >= 0 else phi[m].min()
        z = float(lam) * (phi[m] - top)  # ≤ 0: λ·φ beyond the double range gives -inf (weight 0), never NaN
        out[m] = z - torch.logsumexp(z, 0)
    return out


def resample(phi: torch.Tensor, lam: float, count: int, generator: torch.Generator) -> torch.Tensor:
    """Draw `count` indices into phi (one prompt's rows) with replacement, ∝ exp(λφ)."""
    logw = log_weights(phi, lam, torch.zeros(len(phi), dtype=torch.long))
    probs = torch.exp(logw - logw.max())  # max-shifted: the best row has weight 1, never 0/0
    return torch.multinomial(probs.float(), count, replacement=True, generator=generator)
