"""ScalingAR (arXiv 2509.26376): reward-free test-time scaling for next-token image generators.

For each prompt, N candidates decode in parallel (all prompts share one batched forward). Every
step, from the model's own logits only:

1. Profile (`ConfidenceProfile`; the signals are in `search.confidence`): token confidence s_tok (entropy + top-1/top-2 margin,
   EMA), worst-block stability B (prompt-level z-score of the worst b x b block entropy), the
   intrinsic score I = EMA(w_tok s_tok + w_blk B), the drift score D (prompt-level z-score of
   KL(cond || uncond)), the unified confidence C = w_I I + w_D D and the rebound R over the running
   minimum of C: since a candidate's latest flag (`rebound_from="flag"`), else since the warm-up.
2. Guidance (`guidance_schedule`): s = clamp(s_base + a (1 - D) + b Var(I) - g clip(R, 0, 1), clamp_min, s_base + clamp_over),
   per candidate; the token is drawn from uncond + s (cond - uncond) with the base sampler.
3. Termination (`TerminationPolicy`, after warm-up): theta = EMA of the p-quantile of the C of the prompt's candidates not on
   probation (`threshold_pool="unflagged"`; "active": of all its active candidates); a candidate
   below theta is flagged; `recovery_window` steps later it is terminated if C < theta and R < delta_rec
   then (`probation="end"`; with "any" the flag clears at any step of the window where C >= theta or
   R >= delta_rec, and a candidate still flagged at its end is terminated): its rows leave the batch (`traj.select`),
   so its KV cache rows stop costing compute. The last survivor and the current arg-max-C candidate
   of a prompt are never terminated; freed budget is not reallocated.
Final pick: the survivor with the highest final C (`final_pick="last"`, the paper's rule; "mean"
ranks by the mean C after warm-up instead). No partial decoding, no reward model.

Telemetry (`SearchResult.telemetry`): `prompts[p]` = one trace per candidate (`candidate`, `node`,
per-step lists `C`, `I`, `D`, `R`, `guidance`, `s_tok`, `B`, `K`, `pmi` — log p_cond − log p_uncond of
the sampled token, not used by the method — and `ended` / `reason` if it was terminated; with
`record_previews`, a terminated one also has the `tokens` it generated and their decode, `preview`, a
uint8 image: the only value that is not plain JSON), `events` (flag / recover / terminate with prompt,
candidate, step, C), `threshold[p]` (theta per step), `tokens_per_prompt` (generated image tokens of each
prompt, a CFG pair counted once) and `tokens_per_image` (their mean), `cost_per_prompt` (each prompt's own
tokens, transformer and decode FLOPs and decodes, adding up to the run's cost), and the step constants in use.
`write_extras` plots the C trajectories with the prune events, and every candidate under them.

Step-count constants are given for LlamaGen's 1024-token sequences. With `scale_steps` (default),
the recovery window and the Var(I) window are scaled by T / `reference_tokens` (at least
`min_window` steps), e.g. 32 -> 8 steps on ShapeWorld-AR's 256 tokens; warm-up is a fraction of T
already (12.5 % -> 32 steps, AR-GRPO's own setting). `recovery_window_steps` /
`variance_window_steps` override the rule.

`simulate_termination` / `token_floor` run the termination policy alone on synthetic confidences: how many
tokens a reading of the policy spends at a given T, N and p (`benchmarks/scaling_ar_token_floor.py`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from arscale.errors import ArscaleError
from arscale.generators.sampling import cfg_mix, sample_per_row
from arscale.search import confidence as sig
from arscale.search.base import StrategyConfig
from arscale.search.result import Candidate, CostRecord, SearchResult
from arscale.search.rollout import check_n, check_prompt_list, count_decode, to_uint8


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
    cfg_base: float | None = None  # None: the generator's default CFG scale
    alpha: float = 0.3
    beta: float = 0.4
    gamma: float = 0.4
    variance_window: int = 32  # [PROPOSAL] Var(I) window, in the paper's steps
    clamp_min: float = 1.0  # [PROPOSAL]
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

        for name in ("alpha_h", "alpha_m", "w_tok", "w_blk", "w_i", "w_d", "alpha", "beta", "gamma", "delta_rec"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lambda_tok", "lambda_i", "lambda_theta"):
            need(0 < getattr(self, name) <= 1, f"{name} must be in (0, 1], got {getattr(self, name)}")
        need(0 <= self.kl_ema < 1, f"kl_ema must be in [0, 1), got {self.kl_ema}")
        need(0 < self.prune_quantile < 1, f"prune_quantile must be in (0, 1), got {self.prune_quantile}")
        need(0 < self.worst_q <= 1, f"worst_q must be in (0, 1], got {self.worst_q}")
        need(0 <= self.warmup_fraction < 1, f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        need(self.block >= 1, f"block must be >= 1, got {self.block}")
        need(self.recovery_window >= 0 and self.variance_window >= 1, "windows must be positive")
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
        need(self.cfg_base is None or self.cfg_base > 0, f"cfg_base must be positive, got {self.cfg_base}")
        need(self.recovery_window_steps is None or self.recovery_window_steps >= 0,
             f"recovery_window_steps must be >= 0, got {self.recovery_window_steps}")
        need(self.variance_window_steps is None or self.variance_window_steps >= 1,  # 0 would read the whole history
             f"variance_window_steps must be >= 1, got {self.variance_window_steps}")
        need(self.z_clip > 0, f"z_clip must be > 0, got {self.z_clip}")
        need(self.rebound_eps > 0, f"rebound_eps must be > 0, got {self.rebound_eps}")
        need(self.temperature is None or self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        need(self.cfg_base is None or self.clamp_min <= self.cfg_base + self.clamp_over,
             f"clamp_min {self.clamp_min} exceeds cfg_base + clamp_over = {self.cfg_base} + {self.clamp_over}")
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
        return w_tok / s, w_blk / s, self.w_i / t, w_d / t


def guidance_schedule(config: ScalingARConfig, s_base: float, drift: torch.Tensor, var_intrinsic: torch.Tensor,
                      rebound: torch.Tensor) -> torch.Tensor:
    """Per-candidate CFG scale (Eq. 10, Algorithm 1 line 12), rebound clipped to [0, 1], then clamped
    to [clamp_min, s_base + clamp_over]."""
    s = s_base + config.alpha * (1 - drift) + config.beta * var_intrinsic - config.gamma * rebound.clamp(0, 1)
    return s.clamp(config.clamp_min, s_base + config.clamp_over)


def grouped_quantile(values: torch.Tensor, group: torch.Tensor, keep: torch.Tensor, num_groups: int,
                     q: float) -> torch.Tensor:
    """The q-quantile (linear interpolation, as `torch.quantile`) of the kept values of each group: [num_groups],
    NaN for a group with none kept. One sort for every group at once."""
    v, g = values[keep], group[keep]
    order = torch.argsort(g, stable=True)
    v, g = v[order], g[order]
    counts = torch.bincount(g, minlength=num_groups)
    starts = torch.cumsum(counts, 0) - counts
    table = torch.full((num_groups, max(int(counts.max()) if len(g) else 0, 1)), float("nan"), dtype=values.dtype)
    table[g, torch.arange(len(g)) - starts[g]] = v
    return torch.nanquantile(table, q, dim=1)


class TerminationPolicy:
    """Quantile threshold with EMA, probation window and rebound test (SCALINGAR.md §3.1).

    Per-row state lives in tensors the caller gathers on `select` (`flagged`, `flag_step`); the
    per-prompt threshold lives here. `step(...)` returns (events, rows to terminate).
    Choices where the spec is silent: the p-quantile is `torch.quantile`'s linear interpolation; the strategy
    calls `step` for warm-up <= t < T - 1 (no decision at the last token, where terminating saves nothing).
    """

    def __init__(self, config: ScalingARConfig, num_prompts: int, window: int):
        self.config = config
        self.window = window
        self.theta: list[float | None] = [None] * num_prompts

    def update_threshold(self, c: torch.Tensor, prompt: torch.Tensor, flagged: torch.Tensor | None = None) -> torch.Tensor:
        """Move each prompt's threshold toward the p-quantile of the C of its rows in `threshold_pool` (all its rows
        where every one is flagged); returns theta per row."""
        lam = self.config.lambda_theta
        pool = torch.ones_like(prompt, dtype=torch.bool)
        if self.config.threshold_pool == "unflagged" and flagged is not None:
            unflagged = torch.bincount(prompt[~flagged], minlength=len(self.theta))
            pool = ~flagged | (unflagged[prompt] == 0)
        q = grouped_quantile(c.double(), prompt, pool, len(self.theta), self.config.prune_quantile).tolist()
        for p in prompt.unique().tolist():
            old = self.theta[p]
            self.theta[p] = q[p] if old is None else (1 - lam) * old + lam * q[p]
        return torch.tensor([self.theta[p] for p in prompt.tolist()], dtype=torch.float32)

    def step(self, t: int, c: torch.Tensor, r: torch.Tensor, prompt: torch.Tensor, flagged: torch.Tensor,
             flag_step: torch.Tensor) -> tuple[list[tuple[int, str]], list[int]]:
        """Update flags in place (rows = positions in the current batch); returns events and terminations."""
        theta = self.update_threshold(c, prompt, flagged)
        below = c < theta
        # rows of a prompt down to its last survivors cannot be terminated: no probation for them
        counts = torch.bincount(prompt, minlength=len(self.theta))
        settled = counts[prompt] <= self.config.min_survivors
        decided = torch.full_like(flagged, self.config.probation == "any") | (t - flag_step >= self.window)
        flag = ~settled & ~flagged & below
        recover = ~settled & flagged & (~below | (r >= self.config.delta_rec)) & decided
        flagged[settled | recover], flag_step[settled | recover] = False, -1
        flagged[flag], flag_step[flag] = True, t
        events = [(int(i), "flag" if flag[i] else "recover") for i in torch.nonzero(flag | recover).flatten()]
        due = flagged & (flag_step >= 0) & (t - flag_step >= self.window)
        doomed: list[int] = []
        for p in prompt[due].unique().tolist():
            rows = torch.nonzero(prompt == p).flatten()
            cut = [int(i) for i in rows if due[i]]
            if not cut:
                continue
            if self.config.protect_best:
                best = int(rows[int(torch.argmax(c[rows]))])
                cut = [i for i in cut if i != best]
            room = len(rows) - self.config.min_survivors
            if len(cut) > room:  # keep the most confident of the doomed ones
                cut = sorted(cut, key=lambda i: float(c[i]))[:max(room, 0)]
            doomed += cut
        events += [(i, "terminate") for i in doomed]
        return events, doomed


def _cost_per_prompt(gen: Any, per_prompt: list[list[dict[str, Any]]], num_tokens: int,
                     spent: dict[str, float]) -> list[dict[str, float]]:
    """Each prompt's own share of a batch's cost, since its candidates stop at their own steps. Every row of a
    step sits at the same position, so a candidate that generated L tokens cost the forwards of positions
    0..min(L, T-1) (the last token fed, for the next logits, unless it was the final one); only survivors are
    decoded. The shares are scaled to the batch's measured totals, so they add up to them exactly."""
    lengths = [[len(tr["C"]) for tr in traces] for traces in per_prompt]
    flops_of = getattr(gen, "flops_per_token", None)
    if callable(flops_of):
        cumulative = np.cumsum([float(flops_of(1, pos)) for pos in range(num_tokens)])
        weights = [sum(float(cumulative[min(L, num_tokens - 1)]) for L in ls) for ls in lengths]
    else:  # no per-position count: a token's share
        weights = [float(sum(ls)) for ls in lengths]
    survivors = [float(sum(L == num_tokens for L in ls)) for ls in lengths]

    def share(total: float, w: list[float]) -> list[float]:
        return [total * x / sum(w) if sum(w) else 0.0 for x in w]

    flops = share(spent["transformer_flops"], weights)
    decode_flops = share(spent["decode_flops"], survivors)
    decodes = share(spent["decode_count"], survivors)
    return [{"generated_tokens": float(sum(ls)), "transformer_flops": f, "decode_flops": df, "decode_count": dc}
            for ls, f, df, dc in zip(lengths, flops, decode_flops, decodes)]


class ScalingAR:
    name = "scaling-ar"
    uses_reward = False  # `scorer` is accepted (one interface) and ignored
    Config = ScalingARConfig

    def __init__(self, config: ScalingARConfig | None = None):
        self.config = config or ScalingARConfig()

    def run(self, generator: Any, prompts: Sequence[str], n: int, *, seed: int = 0, prompt_offset: int = 0,
            scorer: Any = None) -> SearchResult:
        n = check_n(n)
        for attr in ("next_logits", "advance", "finish"):
            if not hasattr(generator, attr):
                name = getattr(generator, "name", type(generator).__name__)
                raise ArscaleError(f"ScalingAR steers token by token: it needs a next-token model (shapeworld-ar, "
                                   f"llamagen-...), and {name} has no {attr}() (next-scale models: tts-var)")
        prompts = check_prompt_list(prompts)
        cost = CostRecord()
        t0 = time.perf_counter()
        candidates: list[list[Candidate]] = []
        telemetry: dict[str, Any] = {"prompts": [], "events": [], "threshold": [], "cost_per_prompt": []}
        tree = None
        step_size = self.config.prompt_batch
        for start in range(0, len(prompts), step_size):
            chunk = prompts[start:start + step_size]
            cands, tele, chunk_tree, uncounted = self._run_chunk(generator, chunk, n, seed, prompt_offset + start,
                                                                 start, cost)
            t0 += uncounted  # telemetry-only time (a FLOP-counting repeat of the decode, previews)
            candidates += cands
            for key in ("prompts", "threshold", "cost_per_prompt"):
                telemetry[key] += tele[key]
            telemetry["events"] += tele["events"]
            tree = chunk_tree if tree is None else _merge_trees(tree, chunk_tree)
            merged = ("prompts", "events", "threshold", "cost_per_prompt")
            telemetry.update({k: v for k, v in tele.items() if k not in merged})
        cost.total_wall = time.perf_counter() - t0
        telemetry["tokens_per_image"] = cost.generated_tokens / max(1, len(prompts))
        telemetry["tokens_per_prompt"] = [c["generated_tokens"] for c in telemetry["cost_per_prompt"]]
        return SearchResult(prompts, candidates, tree, cost, self.name, self.config.to_dict(), telemetry)

    # -- one batch of prompts ----------------------------------------------------------------------
    def _run_chunk(self, gen: Any, prompts: list[str], n: int, seed: int, prompt_offset: int, index_offset: int,
                   cost: CostRecord):
        cfg = self.config
        T = gen.num_tokens
        warmup = cfg.warmup_steps(T)
        window = cfg.recovery_steps(T)
        s_base = float(cfg.cfg_base if cfg.cfg_base is not None else getattr(gen, "cfg", 1.0))
        if cfg.clamp_min > s_base + cfg.clamp_over:
            raise ArscaleError(f"invalid ScalingAR config: clamp_min {cfg.clamp_min} exceeds s_base + clamp_over = "
                               f"{s_base} + {cfg.clamp_over}")
        temperature = cfg.temperature if cfg.temperature is not None else getattr(gen, "temperature", 1.0)
        top_k = cfg.top_k if cfg.top_k is not None else getattr(gen, "top_k", 0)
        top_p = cfg.top_p if cfg.top_p is not None else getattr(gen, "top_p", 1.0)
        own_sampler = cfg.temperature is None and cfg.top_k is None and cfg.top_p is None and hasattr(gen, "sample")

        before = CostRecord().add(cost)
        with cost.timer("model"):
            traj = gen.start(prompts, n, seed, prompt_offset=prompt_offset)
        P = len(prompts)
        profile = ConfidenceProfile(cfg, traj, num_prompts=P, num_tokens=T, s_base=s_base)
        traj.rows["sar_flagged"] = torch.zeros(len(traj), dtype=torch.bool)
        traj.rows["sar_flag_step"] = torch.full((len(traj),), -1, dtype=torch.long)
        traj.rows["sar_candidate"] = torch.arange(len(traj)) % n
        policy = TerminationPolicy(cfg, P, window)
        log = _Telemetry(traj, index_offset, P, T, previews=cfg.record_previews and "tokens" in traj.rows
                         and callable(getattr(gen, "decode_prefix", None)))

        for t in range(T):
            with cost.timer("model"):
                cond, uncond = gen.next_logits(traj)
            with cost.timer("selection"):  # Stage I: the profile; Stage II: this step's guidance per candidate
                step = profile.step(traj, t, cond, uncond)
            with cost.timer("model"):
                mixed = cfg_mix(cond, uncond, step.guidance.to(cond.device))
                if own_sampler:  # the generator's own filter and streams (LlamaGen's HF-style top-k / top-p), as raw
                    tokens = gen.sample(traj, mixed)
                else:
                    tokens = sample_per_row(mixed, traj.seed_key, t, temperature=temperature, top_k=top_k,
                                            top_p=top_p)
                gen.advance(traj, tokens, guidance=step.guidance.to(cond.device))
            with cost.timer("selection"):
                traj.record("pmi", t, sig.token_pmi(step.log_cond, step.log_uncond, tokens).cpu())
            cost.generated_tokens += len(traj)
            if cfg.terminate and warmup <= t < T - 1:
                with cost.timer("selection"):  # Stage III
                    self._terminate(traj, t, step, policy, log)
        cost.transformer_flops += float(traj.extra.get("transformer_flops", 0.0) + traj.extra.get("text_flops", 0.0))
        traj.finish_tree("final")

        with cost.timer("decode"):
            images = gen.finish(traj)
        uncounted = count_decode(cost, gen, len(traj), int(gen.image_size), lambda: gen.finish(traj))
        log.end(range(len(traj)), None, None)
        if log.pruned_tokens:
            uncounted += _attach_previews(gen, log.pruned_tokens, log.traces, cfg.preview_size)
        if cfg.final_pick == "mean":
            final_c = traj.history["C"][:, warmup:].nanmean(1)
        else:
            final_c = traj.history["C"][:, T - 1]
        pixels = to_uint8(images)
        candidates: list[list[Candidate]] = []
        for p in range(P):
            rows = traj.rows_of(p)
            best = int(rows[int(torch.argmax(final_c[rows]))])
            candidates.append([Candidate(index_offset + p, int(traj.node[r]), pixels[r], float(final_c[r]),
                                         chosen=int(r) == best) for r in rows.tolist()])
        per_prompt = log.per_prompt()
        spent = {k: getattr(cost, k) - getattr(before, k) for k in ("transformer_flops", "decode_flops", "decode_count")}
        telemetry = {"prompts": per_prompt, "events": log.events, "threshold": log.thresholds,
                     "cost_per_prompt": _cost_per_prompt(gen, per_prompt, T, spent),
                     "warmup_steps": warmup, "recovery_window_steps": window,
                     "variance_window_steps": cfg.variance_steps(T), "num_tokens": T, "s_base": s_base}
        return candidates, telemetry, traj.tree, uncounted

    def _terminate(self, traj: Any, t: int, step: ProfileStep, policy: TerminationPolicy, log: _Telemetry) -> None:
        """Stage III: flag, recover and terminate; terminated rows leave the batch (and the KV cache)."""
        prompt = traj.prompt_index
        events, doomed = policy.step(t, step.c, step.r, prompt, traj.rows["sar_flagged"], traj.rows["sar_flag_step"])
        for p in prompt.unique().tolist():
            log.thresholds[p][t] = policy.theta[p]
        if self.config.rebound_from == "flag":  # the probation window's rebound is measured from the flag on
            flagged_now = [row for row, kind in events if kind == "flag"]
            traj.rows["sar_c_min"][flagged_now] = step.c[flagged_now]
        log.add_events(events, t, step.c)
        if doomed:
            log.end(doomed, t, "prune")
            gone = set(doomed)
            traj.select([i for i in range(len(traj)) if i not in gone], reason="prune")


@dataclass
class ProfileStep:
    """One step's profile of every active row: unified confidence C, rebound R, the guidance scale for the token
    about to be drawn, and the log-probabilities of both branches (for the sampled tokens' pmi)."""

    c: torch.Tensor
    r: torch.Tensor
    guidance: torch.Tensor
    log_cond: torch.Tensor
    log_uncond: torch.Tensor


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
        self.block_z = sig.PromptZScore(num_prompts, config.z_clip)
        self.kl_z = sig.PromptZScore(num_prompts, config.z_clip)
        nan = torch.full((len(traj),), float("nan"))
        for name in ("sar_s_tok", "sar_i", "sar_kl", "sar_c_min"):
            traj.rows[name] = nan.clone()

    def step(self, traj: Any, t: int, cond: torch.Tensor, uncond: torch.Tensor) -> ProfileStep:
        cfg = self.config
        w_tok, w_blk, w_i, w_d = self.weights
        prompt = traj.prompt_index
        # s_{t-1}; at t = 0 there is none yet: s_base (the generator's own scale may differ from cfg_base)
        guidance_prev = traj.rows["guidance"].float().cpu() if t > 0 and "guidance" in traj.rows else \
            torch.full((len(traj),), self.s_base)
        if cfg.confidence_from == "guided":
            dist = cfg_mix(cond.float(), uncond.float(), guidance_prev.to(cond.device))
        else:
            dist = cond.float()
        # intrinsic channel: token confidence and worst-block stability
        h_norm = sig.normalized_entropy(dist).cpu()
        x_tok = 1.0 - (cfg.alpha_h * h_norm + cfg.alpha_m * (1.0 - sig.top2_margin(dist).cpu()))
        s_tok = sig.ema(traj.rows["sar_s_tok"], x_tok, cfg.lambda_tok)
        traj.rows["sar_s_tok"] = s_tok
        traj.record("entropy", t, h_norm)
        worst = sig.worst_block_entropy(_pad_cols(traj.history["entropy"], self.num_tokens), self.grid, cfg.block,
                                        cfg.worst_q)
        self.block_z.update(worst, prompt)
        b = 1.0 - self.block_z.normalize(worst, prompt)
        intr = sig.ema(traj.rows["sar_i"], w_tok * s_tok + w_blk * b, cfg.lambda_i)
        traj.rows["sar_i"] = intr
        # conditional channel; log-probabilities once per step: the KL here, the sampled tokens' pmi after sampling
        log_cond = torch.log_softmax(cond.float(), dim=-1)
        log_uncond = torch.log_softmax(uncond.float(), dim=-1)
        kl = sig.kl_from_log_probs(log_cond, log_uncond).cpu()
        if cfg.kl_ema > 0:
            kl = sig.ema(traj.rows["sar_kl"], kl, cfg.kl_ema)
        traj.rows["sar_kl"] = kl
        self.kl_z.update(kl, prompt)
        drift = self.kl_z.normalize(kl, prompt)
        # unified state and rebound
        c = w_i * intr + w_d * drift
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


class _Telemetry:
    """What a ScalingAR run reports beside its images: one trace per candidate, the flag / recover / terminate
    events, each prompt's threshold per step, and the tokens of terminated candidates (for their previews)."""

    SIGNALS = ("C", "I", "D", "R", "guidance", "s_tok", "B", "K", "pmi")

    def __init__(self, traj: Any, index_offset: int, num_prompts: int, num_tokens: int, previews: bool):
        self.traj, self.index_offset, self.num_prompts, self.previews = traj, index_offset, num_prompts, previews
        self.traces: dict[int, dict[str, Any]] = {}  # node -> trace of a candidate that ended
        self.events: list[dict[str, Any]] = []
        self.thresholds = [[float("nan")] * num_tokens for _ in range(num_prompts)]
        self.pruned_tokens: dict[int, torch.Tensor] = {}  # node -> its tokens when it was terminated

    def add_events(self, events: list[tuple[int, str]], t: int, c: torch.Tensor) -> None:
        traj = self.traj
        for row, kind in events:
            self.events.append({"prompt": self.index_offset + int(traj.prompt_index[row]),
                                "candidate": int(traj.rows["sar_candidate"][row]), "node": int(traj.node[row]),
                                "step": t, "event": kind, "C": float(c[row])})

    def end(self, rows: Sequence[int], ended: int | None, reason: str | None) -> None:
        """Close the traces of `rows`: terminated at step `ended`, or (None) alive at the end."""
        traj = self.traj
        for r in rows:
            node = int(traj.node[r])
            self.traces[node] = {
                "prompt": self.index_offset + int(traj.prompt_index[r]),
                "candidate": int(traj.rows["sar_candidate"][r]), "node": node,
                **{k: traj.history[k][r].tolist() for k in self.SIGNALS}, "ended": ended, "reason": reason}
            if reason == "prune" and self.previews:
                self.pruned_tokens[node] = traj.rows["tokens"][r].clone()

    def per_prompt(self) -> list[list[dict[str, Any]]]:
        out = [[tr for tr in self.traces.values() if tr["prompt"] == self.index_offset + p]
               for p in range(self.num_prompts)]
        for traces in out:
            traces.sort(key=lambda tr: tr["candidate"])
        return out


def _attach_previews(gen: Any, tokens: dict[int, torch.Tensor], traces: dict[int, dict], size: int,
                     chunk: int = 256) -> float:
    """Each terminated candidate's raster prefix into its trace: `tokens` (those it generated) and `preview` (their
    decode, uint8 [size, size, 3]; decoded in batches). Returns the seconds spent: telemetry, not the method's cost."""
    t0 = time.perf_counter()
    nodes = list(tokens)
    for i in range(0, len(nodes), chunk):
        batch = nodes[i:i + chunk]
        images = to_uint8(gen.decode_prefix(torch.stack([tokens[n] for n in batch]), size))
        for node, image in zip(batch, images):
            traces[node]["preview"] = image
            traces[node]["tokens"] = tokens[node][: traces[node]["ended"] + 1].tolist()
    return time.perf_counter() - t0


def simulate_termination(config: ScalingARConfig, num_tokens: int, n: int, noise: float = 0.0,
                         seed: int = 0) -> int:
    """Image tokens per prompt the termination policy spends on synthetic confidences: its own
    `TerminationPolicy`, N = n candidates over `num_tokens` steps, candidate k's C a constant (evenly spaced,
    distinct) plus an AR(1) wander (coefficient 0.9, step sd `noise`, seeded); the rebound R is 0. With
    `noise = 0` the ranking never changes and nothing recovers (`token_floor`)."""
    if n < 1 or num_tokens < 1:
        raise ArscaleError(f"simulate_termination needs n >= 1 and num_tokens >= 1, got n={n}, num_tokens={num_tokens}")
    if noise < 0:
        raise ArscaleError(f"noise must be >= 0, got {noise}")
    gen = torch.Generator().manual_seed(seed)
    warmup = config.warmup_steps(num_tokens)
    policy = TerminationPolicy(config, 1, config.recovery_steps(num_tokens))
    base, wander = torch.linspace(0.4, 0.6, n), torch.zeros(n)
    alive = torch.arange(n)
    flagged = torch.zeros(n, dtype=torch.bool)
    flag_step = torch.full((n,), -1, dtype=torch.long)
    tokens = 0
    for t in range(num_tokens):
        wander = 0.9 * wander + noise * torch.randn(n, generator=gen)
        tokens += len(alive)
        if config.terminate and warmup <= t < num_tokens - 1:
            rows = len(alive)
            _, doomed = policy.step(t, (base + wander)[alive], torch.zeros(rows), torch.zeros(rows, dtype=torch.long),
                                    flagged, flag_step)
            gone = set(doomed)
            keep = [i for i in range(rows) if i not in gone]
            alive, flagged, flag_step = alive[keep], flagged[keep], flag_step[keep]
    return tokens


def token_floor(config: ScalingARConfig, num_tokens: int, n: int) -> int:
    """Image tokens per prompt the termination policy spends when the ranking never changes: the fastest
    case for a cascade from the bottom (moving signals mostly add recoveries; `simulate_termination`)."""
    return simulate_termination(config, num_tokens, n)


def _pad_cols(history: torch.Tensor, width: int) -> torch.Tensor:
    out = torch.full((history.shape[0], width), float("nan"))
    out[:, : history.shape[1]] = history
    return out


def _merge_trees(a, b):
    """Append tree `b` (a later prompt chunk) to `a`, shifting node ids."""
    shift = len(a)
    for i in range(len(b)):
        a.parent.append(b.parent[i] + shift if b.parent[i] >= 0 else -1)
        a.prompt.append(b.prompt[i])
        a.born.append(b.born[i])
        a.ended.append(b.ended[i])
        a.reason.append(b.reason[i])
    return a


def write_extras(result: SearchResult, out_dir: str | Path, max_prompts: int = 64) -> list[Path]:
    """Plot each prompt's confidence trajectories C_t with prune events (the paper's Fig. 1, bottom left), and
    under it every candidate: what a terminated one had drawn when it stopped, and the survivors' images.

    Writes `confidence_<prompt index>.png` into `out_dir`; returns the written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tele = result.telemetry
    if "prompts" not in tele:
        raise ArscaleError("this result has no ScalingAR telemetry to plot")
    written = []
    for p, traces in enumerate(tele["prompts"][:max_prompts]):
        chosen_node = result.chosen(p).node if result.candidates[p] else None
        final_images = {c.node: c.image for c in result.candidates[p]}
        fig = plt.figure(figsize=(max(6.0, 0.8 * len(traces)), 4.8), dpi=100)
        grid = fig.add_gridspec(2, max(1, len(traces)), height_ratios=(3.2, 1.2))
        ax = fig.add_subplot(grid[0, :])
        line_color: dict[int, Any] = {}
        for tr in traces:
            c = np.asarray(tr["C"], dtype=float)
            steps = np.arange(len(c))
            # the candidates in the colour cycle; black is the pick's alone, so no colour means two things
            style = {"lw": 2.4, "color": "black"} if tr["node"] == chosen_node else {"lw": 1.0, "alpha": 0.8}
            label = f"cand {tr['candidate']}" + (" (chosen)" if tr["node"] == chosen_node else "")
            (line,) = ax.plot(steps, c, label=label, **style)
            line_color[tr["node"]] = line.get_color()
            if tr["reason"] == "prune" and tr["ended"] is not None:  # in the line's own colour, where it stops
                ax.scatter([tr["ended"]], [c[tr["ended"]]], marker="x", color=line.get_color(), zorder=5, s=40,
                           linewidths=1.8)
        theta = np.asarray(tele["threshold"][p], dtype=float)
        ax.plot(np.arange(len(theta)), theta, ls="--", color="gray", lw=1, label="threshold θ")
        ax.axvline(tele.get("warmup_steps", 0), color="gray", lw=0.8, ls=":", label="warm-up ends")
        ax.scatter([], [], marker="x", color="gray", label="terminated")
        ax.set_xlabel("token step")
        ax.set_ylabel("confidence C")
        ax.set_title(result.prompts[p][:70], fontsize=9)
        ax.legend(fontsize=6, ncol=2, loc="best")
        for i, tr in enumerate(traces):
            thumb = fig.add_subplot(grid[1, i])
            thumb.set_xticks([])
            thumb.set_yticks([])
            image = final_images.get(tr["node"], tr.get("preview"))
            if image is not None:
                thumb.imshow(image)
            if tr["node"] == chosen_node:
                caption, color = "chosen", "black"
            elif tr["reason"] == "prune":
                caption, color = f"× step {tr['ended']}", "lightgray"
            else:
                caption, color = "survived", "gray"
            # the caption in the candidate's line colour, the frame in its fate's
            thumb.set_title(f"cand {tr['candidate']}\n{caption}", fontsize=6, color=line_color[tr["node"]])
            for spine in thumb.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(2.0 if tr["node"] == chosen_node else 0.8)
        fig.tight_layout()
        path = out / f"confidence_{p:05d}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
