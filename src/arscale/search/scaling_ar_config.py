"""ScalingAR's settings: every constant of the method (SCALINGAR.md §6) as a config field with the paper's default,
the [PROPOSAL] readings where the paper is silent, the ablation switches of its Tables 2 and 4, and the base sampler.

Step-count constants are given for LlamaGen's 1024-token sequences. With `scale_steps` (default),
the recovery window and the Var(I) window are scaled by T / `reference_tokens` (at least
`min_window` steps), e.g. 32 -> 8 steps on ShapeWorld-AR's 256 tokens; warm-up is a fraction of T
already (12.5 % -> 32 steps, AR-GRPO's own setting). `recovery_window_steps` /
`variance_window_steps` override the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from arscale.errors import ArscaleError
from arscale.generators.sampling import MAX_GUIDANCE
from arscale.search.base import StrategyConfig


@dataclass
class ScalingARConfig(StrategyConfig):
    # profile level (App. C.2)
    alpha_h: float = 0.5
    alpha_m: float = 0.5
    lambda_tok: float = 0.2
    lambda_i: float = 0.2
    w_tok: float = 0.65
    w_blk: float = 0.35
    block: int = 4  # b x b tokens
    worst_q: float = 0.1
    w_i: float = 0.75
    w_d: float = 0.25
    kl_ema: float = 0.0  # [PROPOSAL] optional EMA rate on KL before the z-score; 0 = none (paper lists none)
    z_clip: float = 3.0
    z_eps: float = 1e-6  # [PROPOSAL] z = (v - mean) / (std + z_eps) in the prompt-level normalisation of B and D
    rebound_eps: float = 1e-3
    # [PROPOSAL, revised by measurement] C_min for the rebound R. "flag": once a candidate is flagged, the minimum
    # since its latest flag — probation asks whether it rebounded from *this* dip; "warmup": the minimum since
    # the warm-up (SCALINGAR.md's first proposal), under which one early deep dip excuses every later one.
    # On 480 fresh ShapeWorld prompts "flag" cut tokens by 30 % at equal accuracy (RESULTS.md, Session 9).
    rebound_from: str = "flag"
    confidence_from: str = "conditional"  # [PROPOSAL] "conditional" softmax(l_c), or "guided" (CFG-mixed)
    # policy level: termination
    prune_quantile: float = 0.2  # p
    lambda_theta: float = 0.2
    warmup_fraction: float = 0.125  # W0
    recovery_window: int = 32  # Delta_rec, in the paper's 1024-token steps
    delta_rec: float = 0.05
    min_survivors: int = 1  # [PROPOSAL]
    # [PROPOSAL, revised by measurement] when probation is decided. "end": Algorithm 1's test (C < theta and
    # R < delta_rec) is applied once, when the window ends, so a passing blip inside the window does not excuse
    # a candidate; "any": a flag clears at any step of the window where C >= theta or R >= delta_rec (SCALINGAR.md
    # §3.1's state machine). On 480 fresh ShapeWorld prompts "end" cut tokens by 26 % at equal accuracy
    # (RESULTS.md, Session 10).
    probation: str = "end"
    # [PROPOSAL, revised by measurement] which candidates the p-quantile is taken over. "unflagged": those not on
    # probation, so each step targets the bottom p of the candidates not yet suspect and several probations run
    # at once; "active": every candidate still decoding, so while the lowest wait out their windows nobody else
    # is flagged. The paper's Table 5 (2,350 tokens per image at N = 8, T = 1024) is below what "active" spends
    # with a stable ranking (2,671, `token_floor`) or a wandering one (2,648-2,785, `simulate_termination`);
    # "unflagged" spends 2,214-2,413 there. On 1,440 fresh ShapeWorld prompts "unflagged" cut tokens by 20 % at
    # equal accuracy (-0.1 +- 1.1 points; RESULTS.md, Session 15).
    threshold_pool: str = "unflagged"
    final_pick: str = "last"  # paper: highest final C_T ("last"); "mean": highest mean C after warm-up (ours)
    protect_best: bool = True  # [PROPOSAL] never terminate the current arg-max-C candidate
    # policy level: guidance scheduler
    cfg_base: float | None = None  # None: the generator's default CFG scale (1 where it means no guidance)
    alpha: float = 0.3
    beta: float = 0.4
    gamma: float = 0.4
    variance_window: int = 32  # [PROPOSAL] Var(I) window, in the paper's steps
    clamp_min: float = 1.0  # [PROPOSAL] the floor, or s_base where that is lower (the scale asked for is kept)
    clamp_over: float = 2.0  # [PROPOSAL] s <= s_base + clamp_over
    # step-count scaling rule (ours). The paper applies its 32-step windows to 256-token AR-GRPO unchanged
    # (`scale_steps=False`); on 480 fresh ShapeWorld prompts (256 tokens) that lost 4.2 +- 2.1 points at 2.1x
    # the tokens (RESULTS.md, Session 16), so the windows are scaled by T / reference_tokens.
    scale_steps: bool = True
    reference_tokens: int = 1024
    min_window: int = 2
    recovery_window_steps: int | None = None
    variance_window_steps: int | None = None
    # ablation switches (Tables 2 and 4). A switched-off profile term is dropped and the remaining weights are
    # renormalised (`weights`): without token confidence I = EMA(B), without block stability I = EMA(s_tok),
    # without the conditional channel C = I. `use_conditional=False` removes D from C (and so from ranking,
    # threshold and rebound) only: the guidance scheduler still adds alpha * (1 - D), a policy-level term that
    # Table 4 toggles with `schedule_guidance` (the spec does not say which reading Table 2 used).
    use_token: bool = True
    use_block: bool = True
    use_conditional: bool = True
    terminate: bool = True
    schedule_guidance: bool = True
    # base sampler (None: the generator's defaults)
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    prompt_batch: int = 64  # prompts per batched forward (memory bound)
    # a terminated candidate's raster prefix, decoded once at the end (telemetry for the plot; not counted as cost)
    record_previews: bool = True
    preview_size: int = 64

    # the paper's symbols (SCALINGAR.md) -> fields, for error hints
    symbols: ClassVar[dict[str, str]] = {
        "p": "prune_quantile", "δ_rec": "delta_rec", "Δ_rec": "recovery_window", "Delta_rec": "recovery_window",
        "W0": "warmup_fraction", "warmup": "warmup_fraction", "λ_θ": "lambda_theta", "λ_tok": "lambda_tok",
        "λ_I": "lambda_i", "α": "alpha", "β": "beta", "γ": "gamma", "lambda": "gamma", "λ": "gamma",
        "s_base": "cfg_base", "cfg": "cfg_base", "b": "block", "q": "worst_q", "α_H": "alpha_h", "α_M": "alpha_m",
        "w_I": "w_i", "w_D": "w_d"}

    def __post_init__(self):
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ArscaleError(f"invalid ScalingAR config: {msg}")

        for name, value in vars(self).items():  # inf or NaN passes every range check below, then breaks in torch
            need(not isinstance(value, float) or math.isfinite(value), f"{name} must be finite, got {value}")
        for name in ("alpha_h", "alpha_m", "w_tok", "w_blk", "w_i", "w_d", "alpha", "beta", "gamma", "delta_rec"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lambda_tok", "lambda_i", "lambda_theta"):
            need(0 < getattr(self, name) <= 1, f"{name} must be in (0, 1], got {getattr(self, name)}")
        need(0 <= self.kl_ema < 1, f"kl_ema must be in [0, 1), got {self.kl_ema}")
        need(0 < self.prune_quantile < 1, f"prune_quantile must be in (0, 1), got {self.prune_quantile}")
        need(0 < self.worst_q <= 1, f"worst_q must be in (0, 1], got {self.worst_q}")
        need(0 <= self.warmup_fraction < 1, f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        need(self.block >= 1, f"block must be >= 1, got {self.block}")
        need(self.recovery_window >= 0, f"recovery_window must be >= 0, got {self.recovery_window}")
        need(self.variance_window >= 1, f"variance_window must be >= 1, got {self.variance_window}")
        need(self.min_survivors >= 1, f"min_survivors must be >= 1, got {self.min_survivors}")
        need(self.reference_tokens >= 1 and self.min_window >= 1, "reference_tokens and min_window must be >= 1")
        need(self.confidence_from in ("conditional", "guided"),
             f"confidence_from must be 'conditional' or 'guided', got {self.confidence_from!r}")
        need(self.clamp_min > 0 and self.clamp_over >= 0, "clamp_min must be > 0 and clamp_over >= 0")
        need(self.use_token or self.use_block, "the intrinsic channel needs token confidence or block stability")
        need(self.prompt_batch >= 1, "prompt_batch must be >= 1")
        need(self.preview_size >= 8, f"preview_size must be >= 8, got {self.preview_size}")
        need(self.final_pick in ("last", "mean"), f"final_pick must be 'last' or 'mean', got {self.final_pick!r}")
        need(self.probation in ("any", "end"), f"probation must be 'any' or 'end', got {self.probation!r}")
        need(self.threshold_pool in ("active", "unflagged"),
             f"threshold_pool must be 'active' or 'unflagged', got {self.threshold_pool!r}")
        need(self.rebound_from in ("warmup", "flag"),
             f"rebound_from must be 'warmup' or 'flag', got {self.rebound_from!r}")
        need(self.cfg_base is None or 0 < self.cfg_base <= MAX_GUIDANCE,
             f"cfg_base must be positive and at most {MAX_GUIDANCE:.4g}, got {self.cfg_base}")
        need(self.recovery_window_steps is None or self.recovery_window_steps >= 0,
             f"recovery_window_steps must be >= 0, got {self.recovery_window_steps}")
        need(self.variance_window_steps is None or self.variance_window_steps >= 1,  # 0 would read the whole history
             f"variance_window_steps must be >= 1, got {self.variance_window_steps}")
        need(self.z_clip > 0, f"z_clip must be > 0, got {self.z_clip}")
        need(self.z_eps > 0, f"z_eps must be > 0, got {self.z_eps}")
        need(self.rebound_eps > 0, f"rebound_eps must be > 0, got {self.rebound_eps}")
        need(self.temperature is None or self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        self.weights()  # switched-off channels must leave positive weights

    # -- derived constants -----------------------------------------------------------------------
    def warmup_steps(self, num_tokens: int) -> int:
        return math.ceil(self.warmup_fraction * num_tokens)

    def _scaled(self, paper_value: int, num_tokens: int) -> int:
        if not self.scale_steps:
            return paper_value
        return max(self.min_window, round(paper_value * num_tokens / self.reference_tokens))

    def recovery_steps(self, num_tokens: int) -> int:
        if self.recovery_window_steps is not None:
            return self.recovery_window_steps
        return self._scaled(self.recovery_window, num_tokens)

    def variance_steps(self, num_tokens: int) -> int:
        if self.variance_window_steps is not None:
            return self.variance_window_steps
        return self._scaled(self.variance_window, num_tokens)

    def weights(self) -> tuple[float, float, float, float]:
        """(w_tok, w_blk, w_I, w_D) with switched-off channels removed and the rest renormalised."""
        w_tok = self.w_tok if self.use_token else 0.0
        w_blk = self.w_blk if self.use_block else 0.0
        w_d = self.w_d if self.use_conditional else 0.0
        s = w_tok + w_blk
        if s <= 0:
            raise ArscaleError("invalid ScalingAR config: the intrinsic weights sum to zero")
        t = self.w_i + w_d
        if t <= 0:
            raise ArscaleError("invalid ScalingAR config: w_i + w_d must be positive")
        if s == math.inf or t == math.inf:  # 1e308 + 1e308: every weight would become w / inf = 0, so C = 0
            raise ArscaleError(f"invalid ScalingAR config: the weights' sums w_tok + w_blk = {s} and w_i + w_d = {t} "
                               "must be finite (only their ratios count: scale them down)")
        return w_tok / s, w_blk / s, self.w_i / t, w_d / t
