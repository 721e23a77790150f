"""ScalingAR's confidence signals: small functions on logits and per-row state tensors.

Equations and [PROPOSAL] choices follow ../shared/methods/SCALINGAR.md (§2):
- token confidence: x_tok = 1 - (a_H * H/log|V| + a_M * (1 - m)), with H the entropy and m the
  top-1/top-2 probability margin of one distribution, smoothed by an EMA;
- worst-block stability: mean normalised entropy of the worst q of b x b token blocks that hold
  at least one generated token;
- conditional channel: KL(p_cond || p_uncond);
- prompt-level running z-score (pooled over all candidates of a prompt and all steps so far),
  clipped and squashed by a logistic into [0, 1];
- rebound R = (C - C_min) / (|C_min| + eps).
Everything is fp32 and per row; NaN marks "not yet".
"""

from __future__ import annotations

import math

import torch


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of softmax(logits) over the last dim, computed through log-softmax."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    # a -inf logit (masked code): p log p = 0 · (finite) = 0, not 0 · -inf; finite log-probabilities are unchanged
    plogp = logp.exp() * logp.clamp_min(torch.finfo(logp.dtype).min)
    return (-plogp.sum(-1)).clamp_min(0.0)


def normalized_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy divided by log|V|, in [0, 1]."""
    return entropy(logits) / math.log(logits.shape[-1])


def top2_margin(logits: torch.Tensor) -> torch.Tensor:
    """Probability of the most likely token minus that of the second."""
    top = torch.softmax(logits.float(), dim=-1).topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def token_confidence(logits: torch.Tensor, alpha_h: float = 0.5, alpha_m: float = 0.5) -> torch.Tensor:
    """x_tok = 1 - (a_H * normalised entropy + a_M * (1 - margin)) (SCALINGAR.md §2.1a)."""
    return 1.0 - (alpha_h * normalized_entropy(logits) + alpha_m * (1.0 - top2_margin(logits)))


def kl_divergence(cond_logits: torch.Tensor, uncond_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_cond || p_uncond) over the full vocabulary (nats)."""
    return kl_from_log_probs(torch.log_softmax(cond_logits.float(), dim=-1),
                             torch.log_softmax(uncond_logits.float(), dim=-1))


def kl_from_log_probs(log_cond: torch.Tensor, log_uncond: torch.Tensor) -> torch.Tensor:
    """`kl_divergence` from log-probabilities a caller has already computed."""
    terms = torch.where(torch.isneginf(log_cond), 0.0, log_cond.exp() * (log_cond - log_uncond))  # p_c = 0: 0
    return terms.sum(-1).clamp_min(0.0)


def token_pmi(log_cond: torch.Tensor, log_uncond: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log p_cond(token) - log p_uncond(token) of the sampled tokens, from the two log-probability rows: summed
    over a sequence, the model's own estimate of log p(prompt | image) - log p(prompt), the implicit classifier
    behind CFG (nats)."""
    index = tokens.view(-1, 1)
    return (log_cond.gather(-1, index) - log_uncond.gather(-1, index)).squeeze(-1)


def ema(previous: torch.Tensor, value: torch.Tensor, rate: float) -> torch.Tensor:
    """(1 - rate) * previous + rate * value; rows whose previous value is NaN start at value."""
    out = (1.0 - rate) * previous + rate * value
    return torch.where(torch.isnan(previous), value, out)


def worst_block_entropy(entropy_grid: torch.Tensor, grid: int, block: int, quantile: float) -> torch.Tensor:
    """Mean entropy of the worst `quantile` of active b x b blocks, per row.

    `entropy_grid` [R, grid*grid] holds each generated token's normalised entropy in raster order
    and NaN where nothing is generated yet. A block is active if it holds at least one generated
    token; its entropy is the mean over its generated tokens. The worst are those with the highest
    mean entropy, ceil(quantile * active) of them (at least one). Blocks at the right/bottom edge
    are smaller when `block` does not divide `grid`.
    """
    R = entropy_grid.shape[0]
    e = entropy_grid.float().reshape(R, grid, grid)
    nb = -(-grid // block)
    pad = nb * block - grid
    if pad:
        e = torch.nn.functional.pad(e, (0, pad, 0, pad), value=float("nan"))
    blocks = e.reshape(R, nb, block, nb, block).permute(0, 1, 3, 2, 4).reshape(R, nb * nb, block * block)
    valid = ~torch.isnan(blocks)
    count = valid.sum(-1)
    means = torch.where(valid, blocks, torch.zeros_like(blocks)).sum(-1) / count.clamp_min(1)
    active = count > 0
    means = torch.where(active, means, torch.full_like(means, float("-inf")))
    n_active = active.sum(-1)
    k = torch.clamp(torch.ceil(quantile * n_active.float()).long(), min=1)
    ordered = means.sort(dim=-1, descending=True).values
    take = torch.arange(nb * nb, device=e.device)[None, :] < k[:, None]
    worst = torch.where(take, ordered, torch.zeros_like(ordered)).sum(-1) / k
    return torch.where(n_active > 0, worst, torch.full_like(worst, float("nan")))


class PromptZScore:
    """Running mean/variance per prompt (Welford/Chan), pooled over rows and steps.

    `update(values, prompt)` adds this step's values of every active row; `normalize(values, prompt)`
    returns sigmoid(clip((v - mean) / (std + eps), -clip, clip)) in [0, 1].
    """

    def __init__(self, num_prompts: int, clip: float = 3.0, eps: float = 1e-6):
        self.count = torch.zeros(num_prompts, dtype=torch.float64)
        self.mean = torch.zeros(num_prompts, dtype=torch.float64)
        self.m2 = torch.zeros(num_prompts, dtype=torch.float64)
        self.clip, self.eps = clip, eps

    def update(self, values: torch.Tensor, prompt: torch.Tensor) -> None:
        v = values.detach().double().cpu()
        p = prompt.long().cpu()
        ok = torch.isfinite(v)  # NaN: not yet; inf (KL where p_u = 0): clipped by `zscore`, not averaged in
        v, p = v[ok], p[ok]
        n_b = torch.zeros_like(self.count).index_add_(0, p, torch.ones_like(v))
        s_b = torch.zeros_like(self.count).index_add_(0, p, v)
        mean_b = s_b / n_b.clamp_min(1)
        m2_b = torch.zeros_like(self.count).index_add_(0, p, (v - mean_b[p]) ** 2)
        n = self.count + n_b
        delta = mean_b - self.mean
        has = n_b > 0
        new_mean = self.mean + delta * n_b / n.clamp_min(1)
        new_m2 = self.m2 + m2_b + delta**2 * self.count * n_b / n.clamp_min(1)
        self.mean = torch.where(has, new_mean, self.mean)
        self.m2 = torch.where(has, new_m2, self.m2)
        self.count = n

    def std(self) -> torch.Tensor:
        return (self.m2 / self.count.clamp_min(1)).sqrt()

    def zscore(self, values: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        p = prompt.long().cpu()
        z = (values.detach().double().cpu() - self.mean[p]) / (self.std()[p] + self.eps)
        return z.clamp(-self.clip, self.clip).float().to(values.device)

    def normalize(self, values: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.zscore(values, prompt))


def rebound(confidence: torch.Tensor, running_min: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """R = (C - C_min) / (|C_min| + eps); 0 where C_min is not set yet (NaN)."""
    r = (confidence - running_min) / (running_min.abs() + eps)
    return torch.where(torch.isnan(running_min), torch.zeros_like(r), r)


def windowed_variance(history: torch.Tensor, window: int) -> torch.Tensor:
    """Population variance of the non-NaN values in each row's last `window` columns of `history` [R, T];
    0 where fewer than 2 (every row of a history without columns)."""
    recent = history[:, -window:]
    valid = ~torch.isnan(recent)
    n = valid.sum(-1)
    x = torch.where(valid, recent, torch.zeros_like(recent))
    mean = x.sum(-1) / n.clamp_min(1)
    var = (torch.where(valid, (recent - mean[:, None]) ** 2, torch.zeros_like(recent))).sum(-1) / n.clamp_min(1)
    return torch.where(n >= 2, var, torch.zeros_like(var))


def unified_confidence(intrinsic: torch.Tensor, drift: torch.Tensor, w_i: float = 0.75,
                       w_d: float = 0.25) -> torch.Tensor:
    """C = w_I * I + w_D * D (Eq. 8)."""
    return w_i * intrinsic + w_d * drift
