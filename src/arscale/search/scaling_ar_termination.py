"""ScalingAR's Stage III (SCALINGAR.md §3.1): which candidates stop decoding.

theta = EMA of the p-quantile of the C of a prompt's candidates not on probation (`threshold_pool="unflagged"`;
"active": of all its active candidates); a candidate below theta is flagged; `recovery_window` steps later it is
terminated if C < theta and R < delta_rec then (`probation="end"`; with "any" the flag clears at any step of the
window where C >= theta or R >= delta_rec, and a candidate still flagged at its end is terminated). The last
survivors (`min_survivors`) and, with `protect_best` (default), the current arg-max-C candidate of a prompt are
never terminated.

`simulate_termination` / `token_floor` run the policy alone on synthetic confidences: how many tokens a reading of
the policy spends at a given T, N and p (`benchmarks/scaling_ar_token_floor.py`).
"""

from __future__ import annotations

import torch

from arscale.errors import ArscaleError
from arscale.search.scaling_ar_config import ScalingARConfig


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
        settle = settled & flagged  # its probation ends unjudged: it is one of its prompt's last survivors
        flagged[settled | recover], flag_step[settled | recover] = False, -1
        flagged[flag], flag_step[flag] = True, t
        kinds = {"flag": flag, "recover": recover, "settle": settle}
        events = [(int(i), next(k for k, m in kinds.items() if m[i])) for i in torch.nonzero(flag | recover | settle).flatten()]
        due = flagged & (flag_step >= 0) & (t - flag_step >= self.window)
        doomed: list[int] = []
        for p in prompt[due].unique().tolist():
            rows = torch.nonzero(prompt == p).flatten()
            cut = [int(i) for i in rows if due[i]]  # not empty: p has a due row
            if self.config.protect_best:
                best = int(rows[int(torch.argmax(c[rows]))])
                cut = [i for i in cut if i != best]
            room = len(rows) - self.config.min_survivors
            if len(cut) > room:  # keep the most confident of the doomed ones
                cut = sorted(cut, key=lambda i: float(c[i]))[:max(room, 0)]
            doomed += cut
        events += [(i, "terminate") for i in doomed]
        return events, doomed



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

