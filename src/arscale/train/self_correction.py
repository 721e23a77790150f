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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from arscale.errors import ArscaleError
from arscale.generators.next_scale.quantizer import MultiScaleResidualQuantizer, resize


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


@torch.no_grad()
def corrupted_teacher_batch(q: MultiScaleResidualQuantizer, f: torch.Tensor, strength: float, neighbours: int,
                            generator: torch.Generator | None = None) -> CorruptedBatch:
    """Teacher-forcing inputs and targets for the latent f [B,C,H,W] with a corrupted prefix.

    strength 0 gives exactly the plain teacher forcing of `q.encode(f)`."""
    check_strength(strength, neighbours)
    neighbours = min(neighbours, q.vocab_size - 1)
    B, device = f.shape[0], f.device
    f_hat = torch.zeros_like(f)
    inputs, targets, used = [], [], []
    for si, pn in enumerate(q.patch_nums):
        dist = q.distances(resize(f - f_hat, pn, q.down_mode))
        best = dist.argmin(1)
        targets.append(best.view(B, -1))
        codes = best
        if strength > 0 and si < q.num_scales - 1:
            p = torch.rand(B, 1, generator=generator, device=device) * strength
            replace = (torch.rand(B, pn * pn, generator=generator, device=device) < p).flatten()
            if neighbours:
                near = dist.topk(neighbours + 1, dim=1, largest=False).indices[:, 1:]
                pick = torch.randint(neighbours, (len(best), 1), generator=generator, device=device)
                other = near.gather(1, pick).squeeze(1)
            else:
                other = (best + torch.randint(1, q.vocab_size, best.shape, generator=generator, device=device)
                         ) % q.vocab_size
            codes = torch.where(replace, other, best)
        codes = codes.view(B, pn, pn)
        used.append(codes)
        f_hat = f_hat + q.embed_scale(si, codes)
        if si < q.num_scales - 1:
            inputs.append(q.next_input(si, f_hat))
    return CorruptedBatch(torch.cat(inputs, 1), torch.cat(targets, 1), used)
