"""The next-scale generator: a multi-scale tokenizer + a scale-wise transformer + a conditioner.

One `step` generates one whole scale for every row: transformer on the new scale's tokens (both CFG
halves, against the KV cache) → guided logits → per-row sampling → f̂ update → next-scale input.
`scale_logits` + `commit` are the same step split in two, for strategies and tests that need logits.

Trajectories keys used (dim 0 = rows R, or 2R for `paired`: conditional rows, then unconditional):
- rows["f_hat"]       [R, Cvae, h, w]   accumulated latent after the scales generated so far
- rows["next_input"]  [R, pn², Cvae]    input tokens of the next scale (absent before scale 0 and after the last)
- rows["tokens"]      [R, L] long       sampled indices of every scale so far, -1 where not generated yet
- rows["cfg"]         [R] float         each row's guidance scale
- paired["cond"]      [2R, cond_dim]    pooled condition (AdaLN, start token)
- paired["context"], paired["context_mask"]  [2R, Lt, Dt], [2R, Lt]   text tokens (cross-attention models)
- cache               KVCache over 2R rows, one entry per block
- extra["patch_nums"], extra["model"]; `traj.step` = number of scales generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators.kv_cache import KVCache
from arscale.generators.next_scale.conditioning import Conditioning
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer
from arscale.generators.next_scale.transformer import ScaleTransformer
from arscale.generators.sampling import cfg_mix, sample_per_row
from arscale.generators.trajectories import Trajectories


@dataclass
class SamplingConfig:
    cfg: float = 3.0
    cfg_schedule: str = "constant"  # "constant": scale cfg at every scale; "linear": VAR's ramp 1 + cfg·si/(K-1)
    top_k: int = 0
    top_p: float = 0.0
    temperature: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


class ScaleGenerator(nn.Module):
    def __init__(self, tokenizer: MultiScaleTokenizer, transformer: ScaleTransformer, conditioner: nn.Module,
                 sampling: SamplingConfig | None = None, *, name: str = "next-scale"):
        super().__init__()
        if tuple(tokenizer.patch_nums) != tuple(transformer.patch_nums):
            raise ArscaleError(f"schedule mismatch: the tokenizer's patch_nums {tuple(tokenizer.patch_nums)} "
                               f"differ from the transformer's {tuple(transformer.patch_nums)}")
        if tokenizer.config.code_dim != transformer.config.code_dim:
            raise ArscaleError(f"code dim mismatch: tokenizer {tokenizer.config.code_dim}, "
                               f"transformer {transformer.config.code_dim}")
        if tokenizer.config.vocab_size != transformer.config.vocab_size:
            raise ArscaleError(f"codebook size mismatch: tokenizer {tokenizer.config.vocab_size}, "
                               f"transformer {transformer.config.vocab_size}")
        self.tokenizer, self.transformer, self.conditioner = tokenizer, transformer, conditioner
        self.sampling = sampling or SamplingConfig()
        self.name = name
        self.patch_nums = tuple(transformer.patch_nums)
        self.num_scales = len(self.patch_nums)
        self.image_size = tokenizer.config.image_size
        self.eval()

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    # -- protocol ---------------------------------------------------------------------------------
    @torch.no_grad()
    def start(self, prompts: Sequence[Any], rows_per_prompt: int | Sequence[int], seed: int, *,
              prompt_offset: int = 0, cfg: float | None = None) -> Trajectories:
        prompts = list(prompts)
        if not prompts:
            raise ArscaleError("no prompts given")
        counts = [rows_per_prompt] * len(prompts) if isinstance(rows_per_prompt, int) else list(rows_per_prompt)
        if len(counts) != len(prompts) or any(int(c) <= 0 for c in counts):
            raise ArscaleError(f"each prompt needs at least one image (n ≥ 1), got {rows_per_prompt}")
        cfg = self.sampling.cfg if cfg is None else float(cfg)
        if not cfg >= 0:  # also rejects NaN
            raise ArscaleError(f"the guidance scale must be ≥ 0, got {cfg}")
        self.conditioner.validate(prompts)

        traj = Trajectories.for_prompts(prompts, counts, seed, prompt_offset=prompt_offset, halves=2)
        R, dev = len(traj), self.device
        enc: Conditioning = self.conditioner(prompts + [None])  # all prompts + the unconditional text, once
        pidx = traj.prompt_index.to(dev)
        paired = Conditioning.cat([enc.index_select(pidx), enc.index_select(torch.full_like(pidx, len(prompts)))])
        traj.paired["cond"] = paired.pooled
        if paired.context is not None:
            traj.paired["context"], traj.paired["context_mask"] = paired.context, paired.context_mask
        h = self.patch_nums[-1]
        traj.rows["f_hat"] = torch.zeros(R, self.tokenizer.config.code_dim, h, h, device=dev)
        traj.rows["tokens"] = torch.full((R, self.transformer.seq_len), -1, dtype=torch.long, device=dev)
        traj.rows["cfg"] = torch.full((R,), cfg, device=dev)
        traj.cache = KVCache(len(self.transformer.blocks), self.transformer.seq_len)
        traj.extra.update(patch_nums=self.patch_nums, model=self.name)
        return traj

    @torch.no_grad()
    def scale_logits(self, traj: Trajectories) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditional and unconditional logits [R, pn², V] of the next scale. Must be followed by `commit`."""
        si = self._next_scale(traj)
        if traj.extra.get("pending"):
            raise RuntimeError("scale_logits called twice without commit")
        x = traj.rows.get("next_input") if si > 0 else None
        if x is not None:
            x = torch.cat([x, x])  # the same image tokens feed both CFG halves
        logits = self.transformer.forward_scale(si, traj.paired["cond"], x, traj.cache, traj.paired.get("context"),
                                                traj.paired.get("context_mask"))
        traj.extra["pending"] = True
        return logits.chunk(2)

    def guidance(self, traj: Trajectories, si: int) -> torch.Tensor:
        """Per-row guidance scale at scale si."""
        g = traj.rows["cfg"]
        if self.sampling.cfg_schedule == "linear":
            return 1 + g * si / max(1, self.num_scales - 1)
        return g

    @torch.no_grad()
    def commit(self, traj: Trajectories, indices: torch.Tensor) -> Trajectories:
        """Append the sampled indices [R, pn²] of the next scale; update f̂ and the next input."""
        si = self._next_scale(traj)
        if not traj.extra.pop("pending", False):
            raise RuntimeError("commit needs a preceding scale_logits (the KV cache must hold this scale)")
        pn = self.patch_nums[si]
        q = self.tokenizer.quantizer
        f_hat = traj.rows["f_hat"] + q.embed_scale(si, indices.view(len(traj), pn, pn))
        traj.rows["f_hat"] = f_hat
        b, e = self.transformer.begin_ends[si]
        traj.rows["tokens"][:, b:e] = indices.reshape(len(traj), -1)
        if si + 1 < self.num_scales:
            traj.rows["next_input"] = q.next_input(si, f_hat)
        else:
            traj.rows.pop("next_input", None)
        traj.step = si + 1
        return traj

    @torch.no_grad()
    def step(self, traj: Trajectories) -> Trajectories:
        si = traj.step
        cond, uncond = self.scale_logits(traj)
        logits = cfg_mix(cond, uncond, self.guidance(traj, si))
        s = self.sampling
        idx = sample_per_row(logits, traj.seed_key, si, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p)
        return self.commit(traj, idx)

    @torch.no_grad()
    def preview(self, traj: Trajectories, size: int | None = None) -> torch.Tensor:
        if traj.step == 0:
            raise ArscaleError("nothing to preview before the first scale is generated")
        return self.tokenizer.decode_fhat(traj.rows["f_hat"], size)

    @torch.no_grad()
    def finish(self, traj: Trajectories) -> torch.Tensor:
        if traj.step != self.num_scales:
            raise ArscaleError(f"generation is at scale {traj.step} of {self.num_scales}; step to the end first")
        return self.tokenizer.decode_fhat(traj.rows["f_hat"])

    @torch.no_grad()
    def generate(self, prompts: Sequence[Any], rows_per_prompt: int | Sequence[int] = 1, seed: int = 0, *,
                 prompt_offset: int = 0, cfg: float | None = None) -> torch.Tensor:
        """All scales, no search: images [R, 3, H, W] in [0, 1]."""
        traj = self.start(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset, cfg=cfg)
        for _ in range(self.num_scales):
            self.step(traj)
        return self.finish(traj)

    def flops_per_scale(self, rows: int) -> list[float]:
        """Transformer FLOPs of each scale for `rows` rows, both CFG halves included."""
        ctx = 0
        if self.transformer.config.context_dim:
            ctx = getattr(getattr(self.conditioner, "encoder", None), "config", None)
            ctx = ctx.max_len if ctx is not None else 0
        return self.transformer.flops_per_scale(2 * rows, ctx)

    def _next_scale(self, traj: Trajectories) -> int:
        si = traj.step
        if si >= self.num_scales:
            raise ArscaleError(f"all {self.num_scales} scales are already generated")
        return si
