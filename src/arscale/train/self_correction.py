"""Self-correcting teacher forcing for next-scale transformers (Infinity's bitwise self-correction, for VQ codes).

Plain teacher forcing only ever shows the transformer perfect prefixes. At inference every token of a
scale is sampled independently, so prefixes are often slightly wrong (one half of an object a
neighbouring colour), and a model that never saw a wrong prefix does not repair it at the next scale.
Here the prefix is corrupted the way sampling corrupts it, and the target of every scale is
re-quantised from what the corrupted prefix left of the true latent: the model learns to steer back.

Infinity (`infinity/models/bitwise_self_correction.py`, `--noise_apply_strength 0.3` in its training
script) flips each bit of a scale's code with probability p drawn uniformly from [0, strength] per scale.
A VQ codebook has no bits; the analogue of a flipped bit is a nearby code, so a replaced token takes one
of the `neighbours` codebook entries nearest (after the best) to the residual it quantises — the
near-misses sampling makes. `neighbours = 0` replaces with any code. The last scale is never an input,
so it is never corrupted.

`with_sampled_scale` adds the other error sampling makes: one scale's tokens drawn by the model itself
(scheduled sampling), so the later scales learn to repair an object whose outline those independently
drawn tokens disagree on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from arscale.errors import ArscaleError
from arscale.generators.next_scale.quantizer import MultiScaleResidualQuantizer, resize
from arscale.generators.sampling import cfg_mix, sample_batch


@dataclass
class CorruptedBatch:
    inputs: torch.Tensor  # [B, L - 1, C]: inputs of scales 1..K-1, built from the corrupted prefix
    targets: torch.Tensor  # [B, L]: per scale, the best codes for what the corrupted prefix left
    used: list[torch.Tensor]  # per scale [B, pn, pn]: the codes the prefix actually accumulated


def check_strength(strength: float, neighbours: int) -> None:
    if not 0 <= strength <= 1:
        raise ArscaleError(f"self-correction strength must be in [0, 1], got {strength}")
    if neighbours < 0:
        raise ArscaleError(f"self-correction neighbours must be ≥ 0, got {neighbours}")


def check_sampled_prefix(share: float, earliest: int, num_scales: int) -> None:
    if not 0 <= share <= 1:
        raise ArscaleError(f"the sampled-prefix share must be in [0, 1], got {share}")
    if share > 0 and not 0 <= earliest < num_scales - 1:
        raise ArscaleError(f"the earliest sampled scale must be in [0, {num_scales - 2}] (the last scale is never "
                           f"an input), got {earliest}")


def _teacher_pass(q: MultiScaleResidualQuantizer, f: torch.Tensor, choose) -> CorruptedBatch:
    """One pass over the scales of the latent f: the target of each scale is the best code for what the
    prefix left of f; `choose(si, dist, best)` -> the codes [B, pn*pn] the prefix actually accumulates."""
    B = f.shape[0]
    f_hat = torch.zeros_like(f)
    inputs, targets, used = [], [], []
    for si, pn in enumerate(q.patch_nums):
        dist = q.distances(resize(f - f_hat, pn, q.down_mode))
        best = dist.argmin(1)
        targets.append(best.view(B, -1))
        codes = choose(si, dist, best).view(B, pn, pn)
        used.append(codes)
        f_hat = f_hat + q.embed_scale(si, codes)
        if si < q.num_scales - 1:
            inputs.append(q.next_input(si, f_hat))
    return CorruptedBatch(torch.cat(inputs, 1), torch.cat(targets, 1), used)


@torch.no_grad()
def corrupted_teacher_batch(q: MultiScaleResidualQuantizer, f: torch.Tensor, strength: float, neighbours: int,
                            generator: torch.Generator | None = None) -> CorruptedBatch:
    """Teacher-forcing inputs and targets for the latent f [B,C,H,W] with a corrupted prefix.

    strength 0 gives exactly the plain teacher forcing of `q.encode(f)`."""
    check_strength(strength, neighbours)
    neighbours = min(neighbours, q.vocab_size - 1)
    B, device = f.shape[0], f.device

    def choose(si: int, dist: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
        if strength == 0 or si == q.num_scales - 1:
            return best
        pn = q.patch_nums[si]
        p = torch.rand(B, 1, generator=generator, device=device) * strength
        replace = (torch.rand(B, pn * pn, generator=generator, device=device) < p).flatten()
        if neighbours:
            near = dist.topk(neighbours + 1, dim=1, largest=False).indices[:, 1:]
            pick = torch.randint(neighbours, (len(best), 1), generator=generator, device=device)
            other = near.gather(1, pick).squeeze(1)
        else:
            other = (best + torch.randint(1, q.vocab_size, best.shape, generator=generator, device=device)
                     ) % q.vocab_size
        return torch.where(replace, other, best)

    return _teacher_pass(q, f, choose)


@torch.no_grad()
def teacher_batch_from_prefix(q: MultiScaleResidualQuantizer, f: torch.Tensor, prefix: list[torch.Tensor],
                              keep_through: torch.Tensor) -> CorruptedBatch:
    """Teacher forcing where row b's prefix is `prefix[si][b]` for every scale si ≤ keep_through[b]; after
    that its codes are re-quantised from what that prefix left of f. Targets are always the best codes
    for the residual, as in `corrupted_teacher_batch`."""
    B = f.shape[0]

    def choose(si: int, dist: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
        keep = (keep_through >= si).view(B, 1)
        return torch.where(keep, prefix[si].reshape(B, -1), best.view(B, -1))

    return _teacher_pass(q, f, choose)


@torch.no_grad()
def with_sampled_scale(gen, f: torch.Tensor, teacher: CorruptedBatch, prompts: list[str], share: float,
                       earliest: int, generator: torch.Generator | None = None) -> CorruptedBatch:
    """Replace, in a share of the rows, the codes of one scale (uniform in [earliest, last − 1]) by tokens the
    transformer samples itself, with its own guidance and sampler, from that row's prefix; later scales
    are re-quantised from what the sampled scale left of the true latent.

    Nearest-code corruption (`corrupted_teacher_batch`) imitates one token's near miss. What the exact
    evaluator punishes is different: the tokens of one scale are drawn independently, so the ones that
    together outline an object at the 4×4 and 5×5 scales can disagree on its extent, and a square comes
    out a rectangle. Only the model's own samples make that error; training on them is meant to teach the
    later scales to pull the object back (on the CPU-sized model it did not: RESULTS.md, Session 13)."""
    q = gen.tokenizer.quantizer
    K, B = q.num_scales, f.shape[0]
    check_sampled_prefix(share, earliest, K)
    device = f.device
    rows = torch.nonzero(torch.rand(B, generator=generator, device=device) < share).flatten()
    if len(rows) == 0:
        return teacher
    scale = torch.randint(earliest, K - 1, (len(rows),), generator=generator, device=device)
    modes = [(m, m.training) for m in (gen.transformer, gen.conditioner)]
    for m, _ in modes:
        m.eval()  # sample as at inference (no dropout)
    try:
        chosen = [prompts[i] for i in rows.tolist()]
        both = gen.conditioner(chosen + [None] * len(chosen))
        x = teacher.inputs[rows].repeat(2, 1, 1)
        cond, uncond = gen.transformer(both.pooled, x, both.context, both.context_mask).chunk(2)
    finally:
        for m, was_training in modes:
            m.train(was_training)
    prefix = [u.clone() for u in teacher.used]
    for si in scale.unique().tolist():
        mine = scale == si
        begin, end = gen.begin_ends[si]
        pn = q.patch_nums[si]
        logits = cfg_mix(cond[mine, begin:end], uncond[mine, begin:end], gen.guidance_at(gen.sampling.cfg, si))
        tokens = sample_batch(logits, generator, **gen.sampler_options(si))
        prefix[si][rows[mine]] = tokens.view(-1, pn, pn)
    keep_through = torch.full((B,), K - 1, dtype=torch.long, device=device)  # other rows keep their prefix
    keep_through[rows] = scale
    return teacher_batch_from_prefix(q, f, prefix, keep_through)
