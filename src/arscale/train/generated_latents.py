"""Latents the generator itself makes for a training image, for fine-tuning the tokenizer's decoder.

A decoder trained on clean encoder codes only ever sees tokens that agree with each other. At inference
it decodes sampled tokens, and every token of a scale is drawn independently: the tokens of one object
can disagree (half a square a neighbouring palette colour, one edge a token too wide). Here the generator
continues from the image's own codes — scales before a per-row start scale keep the true codes, the
rest are sampled with the generator's own guidance and sampler — and the decoder is trained to map such
latents back to the clean image, which is what the sampled tokens were trying to draw. The codebook, the
encoder and the transformer are untouched, so the generator stays valid.
"""

from __future__ import annotations

import torch

from arscale.errors import ArscaleError
from arscale.generators.next_scale.generator import ScaleGenerator
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer


def check_same_codes(tokenizer: MultiScaleTokenizer, gen: ScaleGenerator, tol: float = 1e-3) -> None:
    """The generator must have been trained on this tokenizer's codes (encoder, codebook and φ equal)."""
    mine, theirs = tokenizer.state_dict(), gen.tokenizer.state_dict()
    for key, value in mine.items():
        if key.startswith(("decoder.", "post_quant_conv.")):
            continue
        other = theirs.get(key)
        if other is None or other.shape != value.shape or (other.float() - value.float()).abs().max() > tol:
            raise ArscaleError(f"the generator's tokenizer differs from the one being fine-tuned ({key}): "
                               "continued latents only make sense for the codes the generator was trained on; "
                               "start from that tokenizer's training state (--state-dir, e.g. a copy of "
                               "train_state/shapeworld-tokenizer for the shipped generator)")


def draw_start_scales(batch: int, num_scales: int, generated_fraction: float, earliest: int,
                      generator: torch.Generator) -> torch.Tensor:
    """Per row, the first sampled scale: `num_scales` (all codes true) for a clean row, otherwise uniform
    over [earliest, num_scales - 1]."""
    if not 0 <= generated_fraction <= 1:
        raise ArscaleError(f"the generated fraction must be in [0, 1], got {generated_fraction}")
    if not 0 <= earliest < num_scales:
        raise ArscaleError(f"the earliest sampled scale must be in [0, {num_scales - 1}], got {earliest}")
    generated = torch.rand(batch, generator=generator) < generated_fraction
    start = torch.randint(earliest, num_scales, (batch,), generator=generator)
    return torch.where(generated, start, torch.full_like(start, num_scales))


@torch.no_grad()
def continued_latents(gen: ScaleGenerator, tokenizer: MultiScaleTokenizer, images: torch.Tensor,
                      prompts: list[str], start_scales: torch.Tensor, seed: int) -> torch.Tensor:
    """Accumulated latents f̂ [B, C, h, w]: row b keeps the true codes of `images[b]` before scale
    `start_scales[b]` and samples the rest from `gen` given `prompts[b]` (seeded by `seed`)."""
    true = tokenizer.encode(images)
    f_hat = tokenizer.quantizer.indices_to_fhat(true)
    rows = torch.nonzero(start_scales < gen.num_scales).flatten()
    if len(rows) == 0:
        return f_hat
    # rows that sample nothing never reach the transformer; the rest keep their own seeds through select
    traj = gen.start(prompts, 1, seed).select(rows)
    rows = rows.to(f_hat.device)
    keep = start_scales.to(f_hat.device)[rows].view(-1, 1)
    for si in range(gen.num_scales):
        logits = gen.forward_scale(traj)
        given = true[si][rows].flatten(1)
        if bool((keep > si).all()):
            tokens = given  # no row samples yet: skip the sampler
        else:
            tokens = torch.where(keep > si, given, gen.sample(traj, gen.guide(traj, logits)).view(len(traj), -1))
        gen.commit(traj, tokens)
    f_hat[rows] = gen.latent(traj)
    return f_hat
