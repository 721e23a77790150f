"""The two generator protocols (see ../shared/DESIGN.md). A generator knows nothing about search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from arscale.generators.trajectories import Trajectories


@runtime_checkable
class NextScaleGenerator(Protocol):
    """VAR-style: each `step` generates one whole scale for every row.

    `start` returns `Trajectories.for_prompts(...)` with `traj.step = 0`; `step` samples every row from its own
    stream (`seeding.generator_for(traj.seed_key[r], traj.step)`) and adds one to `traj.step`.

    Optional, read when present: `device` (where scorers are loaded), `patch_nums` (side of each scale;
    else `tokens_in_scale(k)`) for token counts, `scale_flops(traj, k)` (scale k's FLOPs for this batch, where
    they depend on its prompts; else `flops_per_scale`), `decode_flops(rows, size)` (else decode FLOPs are
    counted once with torch's FLOP counter); an `unconditional: bool = True` keyword of `start`, which every
    built-in next-scale strategy sets to False (none reads the unconditional logits): where the guidance needs
    none (cfg 1) the generator may run only the conditional half and set `traj.halves = 1`; `scale_flops`
    then counts that half, and `flops_per_scale` is billed by halves; `latent(traj)` (each row's accumulated
    latent, for TTS-VAR's `features: "latent"`). What a strategy may use is in docs/extending.md."""

    name: str
    num_scales: int
    image_size: int

    def start(self, prompts: Sequence[str], rows_per_prompt: int | Sequence[int], seed: int,
              *, prompt_offset: int = 0, cfg: float | None = None) -> Trajectories: ...

    def step(self, traj: Trajectories) -> Trajectories: ...

    def preview(self, traj: Trajectories, size: int | None = None) -> torch.Tensor:
        """Decode the accumulated latent after the current scale: [R, 3, size, size] in [0, 1]."""
        ...

    def finish(self, traj: Trajectories) -> torch.Tensor:
        """Final images [R, 3, H, W] in [0, 1]."""
        ...

    def flops_per_scale(self, rows: int) -> list[float]:
        """Analytic transformer FLOPs of generating each scale for `rows` rows (CFG included)."""
        ...


@runtime_checkable
class NextTokenGenerator(Protocol):
    """LlamaGen-style: raster-order tokens, one per `advance`.

    `start` returns `Trajectories.for_prompts(...)` with `traj.step = 0` and runs the prefill; `advance` writes the
    tokens, adds one to `traj.step` and runs the forward for the next logits; `next_logits` computes nothing and
    may be called more than once per token. Optional for ScalingAR's pictures of terminated candidates:
    `traj.rows["tokens"]` [R, T] and `decode_prefix(tokens, size)`.

    Optional, read when present: `device`; `cfg`, `temperature`, `top_k`, `top_p` (the default sampler
    settings); `sample(traj, logits=None)` (the generator's own guidance and sampler: what raw sampling
    and ScalingAR's unmodified draws use; else guidance `cfg` and per-row seeded sampling with those
    settings); `preview(traj, size)` (a decode of the raster prefix, for importance sampling);
    `flops_per_token(rows, position)` (CFG pair included) and `decode_flops(rows, size)` for the cost record;
    an `unconditional: bool = True` keyword of `start`, which raw sampling, Best-of-N and importance sampling
    set to False: where the generator's guidance needs no unconditional logits (cfg 1) it may then run only the
    conditional half, and says so with `traj.halves = 1` (the cost record bills `flops_per_token` by halves),
    returning the conditional logits as both halves; `needs_unconditional(scale)` (False where the scale means no
    guidance: ScalingAR's base scale is then 1)."""

    name: str
    num_tokens: int
    image_size: int

    def start(self, prompts: Sequence[str], rows_per_prompt: int | Sequence[int], seed: int,
              *, prompt_offset: int = 0) -> Trajectories: ...

    def next_logits(self, traj: Trajectories) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditional and unconditional logits [R, V] for the next token."""
        ...

    def advance(self, traj: Trajectories, tokens: torch.Tensor, guidance: torch.Tensor | None = None) -> Trajectories:
        ...

    def finish(self, traj: Trajectories) -> torch.Tensor: ...
