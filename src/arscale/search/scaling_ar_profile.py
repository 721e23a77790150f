"""ScalingAR's Stage I and II (SCALINGAR.md §2 and §3.2): the dual-channel confidence profile of every active
candidate, step by step, and the per-candidate guidance scale it sets for the next token.

The profile combines the signals of `search.confidence`: token confidence s_tok (entropy + top-1/top-2 margin, EMA),
worst-block stability B (prompt-level z-score of the worst b x b block entropy), the intrinsic score
I = EMA(w_tok s_tok + w_blk B), the drift score D (prompt-level z-score of KL(cond || uncond)), the unified
confidence C = w_I I + w_D D and the rebound R over the running minimum of C: since a candidate's latest flag
(`rebound_from="flag"`; the strategy resets the minimum there), else since the warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from arscale.errors import ArscaleError
from arscale.generators.sampling import cfg_mix
from arscale.search import confidence as sig
from arscale.search.scaling_ar_config import ScalingARConfig


def guidance_schedule(config: ScalingARConfig, s_base: float, drift: torch.Tensor, var_intrinsic: torch.Tensor,
                      rebound: torch.Tensor) -> torch.Tensor:
    """Per-candidate CFG scale (Eq. 10, Algorithm 1 line 12), rebound clipped to [0, 1], then clamped
    to [min(clamp_min, s_base), s_base + clamp_over]: a base scale below clamp_min is kept as the floor, so
    the schedule moves around the scale asked for instead of lifting every candidate to clamp_min."""
    s = s_base + config.alpha * (1 - drift) + config.beta * var_intrinsic - config.gamma * rebound.clamp(0, 1)
    # a ceiling beyond float32 (clamp_over 1e308: no ceiling) is float32's largest; torch refuses it as a bound
    return s.clamp(min(config.clamp_min, s_base), min(s_base + config.clamp_over, torch.finfo(s.dtype).max))



@dataclass
class ProfileStep:
    """One step's profile of every active row: unified confidence C, rebound R, the guidance scale for the token
    about to be drawn, and the log-probabilities of both branches (for the sampled tokens' pmi)."""

    c: torch.Tensor
    r: torch.Tensor
    guidance: torch.Tensor
    log_cond: torch.Tensor
    log_uncond: torch.Tensor

    def keep(self, rows: list[int]) -> ProfileStep:
        """The profile of `rows` only (the candidates left after a termination)."""
        cpu = torch.as_tensor(rows, dtype=torch.long)
        dev = cpu.to(self.log_cond.device)
        return ProfileStep(self.c[cpu], self.r[cpu], self.guidance[cpu], self.log_cond[dev], self.log_uncond[dev])


class ConfidenceProfile:
    """Algorithm 1's Stage I (the dual-channel profile, SCALINGAR.md §2) and the guidance schedule of Stage II.

    Per-row state lives in `traj.rows` (gathered by `traj.select` with the generator's state), per-prompt
    normalisers here; every signal is recorded in `traj.history` for the telemetry.
    """

    def __init__(self, config: ScalingARConfig, traj: Any, *, num_prompts: int, num_tokens: int, s_base: float):
        grid = round(math.sqrt(num_tokens))
        if grid * grid != num_tokens:
            raise ArscaleError(f"ScalingAR's blocks need a square token grid, got {num_tokens} tokens")
        self.config, self.grid, self.num_tokens, self.s_base = config, grid, num_tokens, s_base
        self.weights = config.weights()
        self.warmup = config.warmup_steps(num_tokens)
        self.var_window = config.variance_steps(num_tokens)
        self.block_z = sig.PromptZScore(num_prompts, config.z_clip, config.z_eps)
        self.kl_z = sig.PromptZScore(num_prompts, config.z_clip, config.z_eps)
        nan = torch.full((len(traj),), float("nan"))
        for name in ("sar_s_tok", "sar_i", "sar_kl", "sar_c_min"):
            traj.rows[name] = nan.clone()

    def step(self, traj: Any, t: int, cond: torch.Tensor, uncond: torch.Tensor,
             pmi: torch.Tensor | None = None) -> ProfileStep:
        """`pmi`: the previous token's pmi [R] where it was drawn (telemetry), recorded at column t - 1 here, so the
        host reads it with this step's signals in one transfer."""
        cfg = self.config
        w_tok, w_blk, w_i, w_d = self.weights
        prompt = traj.prompt_index
        # s_{t-1}; at t = 0 there is none yet: s_base (the generator's own scale may differ from cfg_base)
        # (the scale this profile set at t - 1, from its own history: a generator need not keep rows["guidance"])
        guidance_prev = traj.history["guidance"][:, t - 1].clone() if t > 0 else torch.full((len(traj),), self.s_base)
        if cfg.confidence_from == "guided":
            dist = cfg_mix(cond.float(), uncond.float(), guidance_prev.to(cond.device))
        else:
            dist = cond.float()
        # log-probabilities once per step: the KL here, the sampled tokens' pmi after sampling
        log_cond = torch.log_softmax(cond.float(), dim=-1)
        log_uncond = torch.log_softmax(uncond.float(), dim=-1)
        # what the host reads of this step, in one transfer (one device sync, not one per signal)
        read = [sig.normalized_entropy(dist), sig.top2_margin(dist), sig.kl_from_log_probs(log_cond, log_uncond)]
        h_norm, margin, kl, *late = torch.stack(read + ([pmi.float()] if pmi is not None else [])).cpu()
        if pmi is not None:
            traj.record("pmi", t - 1, late[0])
        # intrinsic channel: token confidence and worst-block stability
        x_tok = 1.0 - (cfg.alpha_h * h_norm + cfg.alpha_m * (1.0 - margin))
        s_tok = sig.ema(traj.rows["sar_s_tok"], x_tok, cfg.lambda_tok)
        traj.rows["sar_s_tok"] = s_tok
        traj.record("entropy", t, h_norm)
        traj.record("margin", t, margin)
        worst = sig.worst_block_entropy(_pad_cols(traj.history["entropy"], self.num_tokens), self.grid, cfg.block,
                                        cfg.worst_q)
        self.block_z.update(worst, prompt)
        b = 1.0 - self.block_z.normalize(worst, prompt)
        intr = sig.ema(traj.rows["sar_i"], w_tok * s_tok + w_blk * b, cfg.lambda_i)
        traj.rows["sar_i"] = intr
        # conditional channel: KL(cond || uncond)
        if cfg.kl_ema > 0:
            kl = sig.ema(traj.rows["sar_kl"], kl, cfg.kl_ema)
        traj.rows["sar_kl"] = kl
        self.kl_z.update(kl, prompt)
        drift = self.kl_z.normalize(kl, prompt)
        # unified state and rebound
        c = sig.unified_confidence(intr, drift, w_i, w_d)
        if t >= self.warmup:
            traj.rows["sar_c_min"] = torch.fmin(traj.rows["sar_c_min"], c)
        r = sig.rebound(c, traj.rows["sar_c_min"], cfg.rebound_eps)
        traj.record("I", t, intr)
        traj.record("D", t, drift)
        if cfg.schedule_guidance:
            s = guidance_schedule(cfg, self.s_base, drift, sig.windowed_variance(traj.history["I"], self.var_window), r)
        else:
            s = torch.full((len(traj),), self.s_base)
        for name, v in (("C", c), ("R", r), ("guidance", s), ("s_tok", s_tok), ("B", b), ("K", kl)):
            traj.record(name, t, v)
        return ProfileStep(c, r, s, log_cond, log_uncond)



def _pad_cols(history: torch.Tensor, width: int) -> torch.Tensor:
    out = torch.full((history.shape[0], width), float("nan"))
    out[:, : history.shape[1]] = history
    return out

