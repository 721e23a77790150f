"""The next-scale loop, shared by every next-scale family (VAR, ShapeWorld-VAR, Infinity).

`NextScaleLoop` owns the loop; a family plugs in its parts. One `step` generates one whole scale for
every row:

    forward_scale   next input of the scale (each CFG half run) → transformer against the KV cache →
                    pre-guidance logits [halves·R, n, ·]                    family: `transformer_scale`
    guide           CFG (and any temperature) → the sampler input            family: `guide`
    sample          per-row seeded streams (or one generator, upstream order) family: `sampler_options`,
                                                                                     `shape_tokens`
    commit          tokens → accumulated latent f̂ → the next scale's input   family: `accumulate`,
                                                                                     `next_input`,
                    (tokens outside [0, `token_values`) are refused first)           `token_values`

`start` builds the rows and the CFG halves of the condition (family: `encode_prompts`,
`pair_conditions`, `init_guidance`); `preview` / `finish` decode f̂ (family: `decode_latent`).
`start(..., unconditional=False)` is the caller's promise to read no unconditional logits: where the family's
guidance needs none either (`needs_unconditional(cfg)` is false, e.g. a constant cfg of 1), only the
conditional half is run, at half the transformer compute (`traj.halves == 1`; `scale_logits` then returns
the conditional logits as both halves).
Scales are rectangular (h, w) grids; `scales`, `sizes` and `begin_ends` describe the schedule.

Families here: `ScaleGenerator` below (codebook indices, the shared `ScaleTransformer`, φ-residual
upsampling; VAR and ShapeWorld-VAR) and `InfinityGenerator` in `infinity.py` (bit tokens, 2-D RoPE,
per-bit logits, trilinear accumulation).

Trajectories keys (dim 0 = rows R, or halves·R for `paired`: conditional rows, then unconditional):
- rows["f_hat"]       accumulated latent after the scales generated so far (the family's layout)
- rows["next_input"]  [R, n, d]  input tokens of the next scale (absent before scale 0 and after the last)
- rows["tokens"]      [R, L, *token_dims] token_dtype  sampled tokens of every scale so far, -1 where not generated
- rows["cfg"]         [R] float  each row's guidance scale (families with a per-scale profile keep it in extra)
- paired["cond"]      [halves·R, cond_dim]  pooled condition (AdaLN, start token)
- paired["context"], paired["context_mask"]  [halves·R, Lt, Dt], [halves·R, Lt]  text tokens (cross-attention)
- cache               KVCache over halves·R rows, one entry per block
- extra["scales"], extra["model"]; `traj.step` = number of scales generated.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators.decode_chunks import DECODE_PIXELS, decode_in_chunks
from arscale.generators.kv_cache import KVCache
from arscale.generators.next_scale.conditioning import Conditioning
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer
from arscale.generators.next_scale.transformer import ScaleTransformer
from arscale.generators.sampling import (
    MAX_GUIDANCE,
    cfg_mix,
    check_guidance,
    check_sampler,
    sample_batch,
    sample_per_row,
)
from arscale.generators.t5_text import encoding_flops
from arscale.generators.trajectories import Trajectories


class NextScaleLoop(nn.Module):
    """The shared loop. A family sets `transformer`, `name`, calls `set_scales` and supplies the hooks."""

    transformer: nn.Module
    name: str
    token_dims: tuple[int, ...] = ()  # trailing shape of one token (Infinity: its d bits)
    token_dtype: torch.dtype = torch.long  # storage of the token record (bits fit int8: 8x less per row)
    token_values: int | None = None  # values one token (element) takes: the codebook size (Infinity's bits: 2);
    # None: a family that does not say is not range-checked
    decode_pixels: int = DECODE_PIXELS  # output pixels per decoder call: a large N decodes in chunks

    # -- schedule ---------------------------------------------------------------------------------
    def set_scales(self, scales: Sequence[Sequence[int]]) -> None:
        """The (h, w) of every scale, in generation order."""
        self.scales = [(int(h), int(w)) for h, w in scales]
        self.sizes = [h * w for h, w in self.scales]
        self.begin_ends, cur = [], 0
        for n in self.sizes:
            self.begin_ends.append((cur, cur + n))
            cur += n
        self.seq_len = cur

    @property
    def num_scales(self) -> int:
        return len(self.scales)

    def extra_repr(self) -> str:  # the first line of repr(generator): which model and how it samples
        return (f"name={getattr(self, 'name', '?')!r}, scales={len(getattr(self, 'scales', ()))}, "
                f"image_size={getattr(self, 'image_size', '?')}, sampling={getattr(self, 'sampling', None)!r}")

    def tokens_in_scale(self, si: int) -> int:
        return self.sizes[si]

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    # -- family parts -------------------------------------------------------------------------------
    def encode_prompts(self, prompts: list[Any]) -> Any:
        """Validate and encode the prompts once (whatever `pair_conditions` consumes)."""
        raise NotImplementedError

    def pair_conditions(self, encoded: Any, traj: Trajectories) -> Conditioning:
        """The condition of every row, conditional half then (when `traj.halves == 2`) unconditional half."""
        raise NotImplementedError

    def needs_unconditional(self, cfg: float | None) -> bool:
        """Whether the guidance at `cfg` (None: the sampling config's) reads the unconditional logits at any
        scale. A family that does not say runs both halves."""
        return True

    def init_guidance(self, traj: Trajectories, cfg: float | None) -> None:
        """Store the rows' guidance (`cfg` overrides the sampling config's)."""
        raise NotImplementedError

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one row's accumulated latent f̂."""
        raise NotImplementedError

    def transformer_scale(self, si: int, x: torch.Tensor | None, traj: Trajectories) -> torch.Tensor:
        """The transformer on scale si: inputs x [halves·R, n, d] (None at si = 0) -> logits [halves·R, n, ·]."""
        raise NotImplementedError

    def guide(self, traj: Trajectories, logits: torch.Tensor, *, upstream: bool = False) -> torch.Tensor:
        """Pre-guidance logits [halves·R, n, ·] -> the sampler input [R, ..., V] (`upstream`: the released code's
        exact formula, for parity runs). With one half every row's guidance leaves the conditional logits."""
        raise NotImplementedError

    def sampler_options(self, si: int) -> dict[str, Any]:
        """temperature / top_k / top_p of the sampler at scale si."""
        raise NotImplementedError

    def shape_tokens(self, si: int, flat: torch.Tensor) -> torch.Tensor:
        """Sampled tokens as the sampler returns them [R, ...] -> the family's token layout of scale si."""
        return flat

    def accumulate(self, si: int, f_hat: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """f̂ after adding scale si's tokens."""
        raise NotImplementedError

    def next_input(self, si: int, f_hat: torch.Tensor) -> torch.Tensor:
        """Input tokens [R, n_{si+1}, d] of scale si+1 from f̂ after scale si."""
        raise NotImplementedError

    def decode_latent(self, f_hat: torch.Tensor, size: int | None) -> torch.Tensor:
        """f̂ -> images [R, 3, size, size] in [0, 1] (the native size when `size` is None)."""
        raise NotImplementedError

    # -- start --------------------------------------------------------------------------------------
    @torch.no_grad()
    def start(self, prompts: Sequence[Any], rows_per_prompt: int | Sequence[int], seed: int, *,
              prompt_offset: int = 0, cfg: float | None = None, unconditional: bool = True) -> Trajectories:
        """Encode the prompts and make `rows_per_prompt` rows of each at `traj.step = 0` (`cfg`: another guidance
        scale than the sampling config's; `unconditional=False`: see the module docstring)."""
        prompts, counts, cfg = self._check_start(prompts, rows_per_prompt, cfg)
        encoder = getattr(self, "text_encoder", None)  # T5; else ShapeWorld's own (a class label costs nothing)
        encoder = getattr(self, "conditioner", None) if encoder is None else encoder
        encoded, text_flops = encoding_flops(encoder, lambda: self.encode_prompts(prompts))
        traj = self.start_encoded(encoded, prompts, counts, seed, prompt_offset=prompt_offset, cfg=cfg,
                                  unconditional=unconditional)
        traj.extra["text_flops"] = text_flops  # the text encoder's FLOPs (start_encoded's callers encoded it themselves)
        return traj

    @torch.no_grad()
    def start_encoded(self, encoded: Any, prompts: Sequence[Any], rows_per_prompt: int | Sequence[int],
                      seed: int, *, prompt_offset: int = 0, cfg: float | None = None,
                      unconditional: bool = True) -> Trajectories:
        """`start` with the prompts already encoded (`encode_prompts`' result)."""
        prompts, counts, cfg = self._check_start(prompts, rows_per_prompt, cfg)
        halves = 2 if unconditional or self.needs_unconditional(cfg) else 1
        traj = Trajectories.for_prompts(prompts, counts, seed, prompt_offset=prompt_offset, halves=halves)
        R, dev = len(traj), self.device
        paired = self.pair_conditions(encoded, traj)
        traj.paired["cond"] = paired.pooled
        if paired.context is not None:
            traj.paired["context"], traj.paired["context_mask"] = paired.context, paired.context_mask
        traj.rows["f_hat"] = torch.zeros(R, *self.latent_shape, device=dev)
        traj.rows["tokens"] = torch.full((R, self.seq_len, *self.token_dims), -1, dtype=self.token_dtype,
                                        device=dev)
        self.init_guidance(traj, cfg)
        traj.cache = KVCache(len(self.transformer.blocks), self.seq_len, grow=True)  # positions as scales need them
        traj.extra.update(scales=list(self.scales), model=self.name)
        return traj

    @staticmethod
    def _check_start(prompts, rows_per_prompt, cfg) -> tuple[list, list[int], float | None]:
        if isinstance(prompts, (str, bytes)):  # else each character would be a prompt
            raise ArscaleError(f"prompts must be a list, got one string {prompts[:40]!r}: pass [prompt]")
        prompts = list(prompts)
        if not prompts:
            raise ArscaleError("no prompts given")
        counts = [rows_per_prompt] * len(prompts) if isinstance(rows_per_prompt, int) else list(rows_per_prompt)
        if len(counts) != len(prompts) or any(int(c) <= 0 for c in counts):
            raise ArscaleError(f"each prompt needs at least one image (n ≥ 1), got {rows_per_prompt}")
        if cfg is not None:
            cfg = float(cfg)
            check_guidance(cfg)
        return prompts, [int(c) for c in counts], cfg

    # -- one scale, in pieces (strategies and parity tests may call them one by one) ----------------
    @torch.no_grad()
    def forward_scale(self, traj: Trajectories) -> torch.Tensor:
        """Pre-guidance logits [halves·R, n, ·] of the next scale. Must be followed by `commit`."""
        si = self._next_scale(traj)
        if traj.extra.get("pending"):
            raise RuntimeError("forward_scale called twice without commit")
        if traj.cache.length != self.begin_ends[si][0]:
            raise RuntimeError(f"KV cache holds {traj.cache.length} positions but scale {si} starts at "
                               f"{self.begin_ends[si][0]}")
        x = traj.rows["next_input"] if si > 0 else None
        if x is not None:
            x = torch.cat([x] * traj.halves)  # the same image tokens feed each CFG half the trajectory runs
        logits = self.transformer_scale(si, x, traj)
        traj.extra["pending"] = True
        return logits

    def scale_logits(self, traj: Trajectories) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditional and unconditional logits [R, n, ·] of the next scale (the conditional twice where the
        trajectory runs one half). Must be followed by `commit`."""
        logits = self.forward_scale(traj)
        return tuple(logits.chunk(2)) if traj.halves == 2 else (logits, logits)

    def sample(self, traj: Trajectories, guided: torch.Tensor, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """Tokens of the next scale: each row from its own seeded stream, or the batch from `generator`."""
        si, opts = traj.step, self.sampler_options(traj.step)
        if generator is not None:
            flat = sample_batch(guided, generator, **opts)
        else:
            flat = sample_per_row(guided, traj.seed_key, si, **opts)
        return self.shape_tokens(si, flat)

    @torch.no_grad()
    def commit(self, traj: Trajectories, tokens: torch.Tensor) -> Trajectories:
        """Append the next scale's tokens: update f̂, the token record and the next input; advance `traj.step`."""
        si = self._pending_scale(traj)
        return self._append(traj, si, self._checked_tokens(traj, si, tokens))

    def _pending_scale(self, traj: Trajectories) -> int:
        si = self._next_scale(traj)
        if not traj.extra.get("pending", False):
            raise RuntimeError("commit needs a preceding forward_scale (the KV cache must hold this scale)")
        return si

    def _append(self, traj: Trajectories, si: int, tokens: torch.Tensor) -> Trajectories:
        """Scale si's tokens, checked (or the sampler's own) into f̂, the token record and the next input."""
        del traj.extra["pending"]  # only now: a refused commit leaves the trajectory ready for a valid one
        f_hat = self.accumulate(si, traj.rows["f_hat"], tokens)
        traj.rows["f_hat"] = f_hat
        b, e = self.begin_ends[si]
        traj.rows["tokens"][:, b:e] = tokens.reshape(len(traj), e - b, *self.token_dims)
        if si + 1 < self.num_scales:
            traj.rows["next_input"] = self.next_input(si, f_hat)
        else:
            traj.rows.pop("next_input", None)
        traj.step = si + 1
        return traj

    def _checked_tokens(self, traj: Trajectories, si: int, tokens: torch.Tensor) -> torch.Tensor:
        """Scale si's tokens for every row, refused in one line where they are not integers, not one scale's worth
        per row, or outside [0, token_values) (a wrong bit would change the latent silently, and on a GPU an
        out-of-range codebook index stops the device). One host sync per commit; `step` commits its own sampled tokens
        unchecked."""
        tokens = torch.as_tensor(tokens, device=self.device)
        if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
            raise ArscaleError(f"tokens must be integers (codebook indices or bits), got {tokens.dtype}")
        b, e = self.begin_ends[si]
        per_row = (e - b) * math.prod(self.token_dims)
        if tokens.dim() == 0 or tokens.shape[0] != len(traj) or tokens.numel() != len(traj) * per_row:
            raise ArscaleError(f"commit got tokens of shape {tuple(tokens.shape)} for {len(traj)} rows of scale {si} "
                               f"({per_row} values per row)")
        if self.token_values is not None and bool(((tokens < 0) | (tokens >= self.token_values)).any()):
            raise ArscaleError(f"tokens of scale {si} must lie in [0, {self.token_values})")
        return tokens.long()  # the codebook lookup takes int64 / int32 only; uint8, int8, int16 are integers too

    @torch.no_grad()
    def step(self, traj: Trajectories, *, generator: torch.Generator | None = None) -> Trajectories:
        """One whole scale for every row; with `generator`, the upstream sampling order and CFG formula."""
        logits = self.forward_scale(traj)
        guided = self.guide(traj, logits, upstream=generator is not None)
        # the sampler's own tokens lie in the codebook by construction: `commit`'s check (a device sync) is for
        # tokens from outside
        return self._append(traj, self._pending_scale(traj), self.sample(traj, guided, generator))

    def scale_tokens(self, traj: Trajectories, si: int) -> torch.Tensor:
        """The tokens sampled at scale si, in the family's layout."""
        b, e = self.begin_ends[si]
        return self.shape_tokens(si, traj.rows["tokens"][:, b:e].reshape(len(traj), -1).long())

    def latent(self, traj: Trajectories) -> torch.Tensor:
        """The accumulated latent f̂ of every row [R, C, ...] (what `preview` would decode)."""
        return traj.rows["f_hat"]

    # -- images -------------------------------------------------------------------------------------
    @torch.no_grad()
    def preview(self, traj: Trajectories, size: int | None = None) -> torch.Tensor:
        """The accumulated latent of every row decoded: [R, 3, size, size] in [0, 1] (full size when None)."""
        if traj.step == 0:
            raise ArscaleError("nothing to preview before the first scale is generated")
        return self._decode_rows(traj.rows["f_hat"], size)

    @torch.no_grad()
    def finish(self, traj: Trajectories) -> torch.Tensor:
        """Final images [R, 3, H, W] in [0, 1], once every scale is generated."""
        if traj.step != self.num_scales:
            raise ArscaleError(f"generation is at scale {traj.step} of {self.num_scales}; step to the end first")
        return self._decode_rows(traj.rows["f_hat"], None)

    def _decode_rows(self, f_hat: torch.Tensor, size: int | None) -> torch.Tensor:
        # chunked by the full image size: a preview decodes at full size on some families before it shrinks
        return decode_in_chunks(lambda part: self.decode_latent(part, size), f_hat, self.image_size,
                                self.decode_pixels)

    @torch.no_grad()
    def generate(self, prompts: Sequence[Any], rows_per_prompt: int | Sequence[int] = 1, seed: int = 0, *,
                 prompt_offset: int = 0, cfg: float | None = None) -> torch.Tensor:
        """All scales, no search: images [R, 3, H, W] in [0, 1]."""
        traj = self.start(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset, cfg=cfg, unconditional=False)
        for _ in range(self.num_scales):
            self.step(traj)
        return self.finish(traj)

    def _next_scale(self, traj: Trajectories) -> int:
        si = traj.step
        if si >= self.num_scales:
            raise ArscaleError(f"all {self.num_scales} scales are already generated")
        return si


def check_one_half(guidance: torch.Tensor | float) -> None:
    """A one-half trajectory takes guidance 1 alone: any other would mix in the unconditional half it never ran."""
    values = sorted(set(torch.as_tensor(guidance, dtype=torch.float32).flatten().tolist()))
    if values != [1.0]:
        raise ArscaleError("this trajectory was started without its unconditional half (unconditional=False), so "
                           f"it cannot take guidance that mixes one in: got {values}")


@dataclass
class SamplingConfig:
    cfg: float = 3.0
    cfg_schedule: str = "constant"  # "constant": scale cfg at every scale; "linear": VAR's ramp 1 + cfg·si/(K-1)
    top_k: int = 0
    top_p: float = 0.0
    temperature: float = 1.0
    # The first `coarse_scales` scales sample at `coarse_temperature` with top-k `coarse_top_k` (0 = off) and no
    # top-p. These scales choose each object's colour and place; sharpened there, ShapeWorld-VAR drew 4 in 10
    # uncoloured squares yellow, the colour whose outlines fail most (benchmarks/RESULTS.md, Session 14).
    coarse_scales: int = 0
    coarse_temperature: float = 1.0
    coarse_top_k: int = 0

    def __post_init__(self):
        def whole(value: Any) -> bool:  # a count: 2.5 scales or a top-k of 2.5 fails in torch at the first draw
            return isinstance(value, numbers.Integral) and not isinstance(value, bool)

        if not whole(self.coarse_scales) or self.coarse_scales < 0 or isinstance(self.coarse_temperature, bool) \
                or not self.coarse_temperature > 0 or not whole(self.coarse_top_k) or self.coarse_top_k < 0:
            raise ArscaleError(f"invalid coarse-scale sampling: coarse_scales {self.coarse_scales!r} (a whole number "
                               f"≥ 0), coarse_temperature {self.coarse_temperature!r} (> 0), coarse_top_k "
                               f"{self.coarse_top_k!r} (a whole number ≥ 0)")
        if self.cfg_schedule not in ("constant", "linear"):
            raise ArscaleError(f"cfg_schedule must be 'constant' or 'linear', got {self.cfg_schedule!r}")
        check_sampler(self.temperature, self.top_k, top_p=self.top_p)
        try:  # refused here, not at the first start (a trainer's --config would train to its first evaluation)
            cfg = float(self.cfg)
        except (TypeError, ValueError):
            cfg = math.nan
        if not 0 <= cfg <= MAX_GUIDANCE:
            raise ArscaleError(f"invalid sampling: cfg {self.cfg!r} (the guidance scale: a finite number ≥ 0, at "
                               f"most {MAX_GUIDANCE:.4g})")

    def options_at(self, si: int) -> dict[str, Any]:
        """temperature / top_k / top_p of the sampler at scale si."""
        if si < self.coarse_scales:
            return {"temperature": self.coarse_temperature, "top_k": self.coarse_top_k, "top_p": 0.0}
        return {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}


class ScaleGenerator(NextScaleLoop):
    """Codebook-index families: a multi-scale VQ tokenizer + the shared `ScaleTransformer` + a conditioner.

    Tokens are codebook indices [R, pn²] of square scales; f̂ [R, Cvae, h, w] accumulates φ(up(codebook[idx]))
    and the next input is f̂ area-downsampled to the next scale; guidance is `cfg_mix` with a constant or
    linear per-scale ramp of the row's `cfg`.
    """

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
        self.token_values = transformer.config.vocab_size
        self.set_scales([(pn, pn) for pn in self.patch_nums])
        self.image_size = tokenizer.config.image_size
        self.eval()

    # -- family parts -------------------------------------------------------------------------------
    def encode_prompts(self, prompts: list[Any]) -> Conditioning:
        self.conditioner.validate(prompts)
        return self.conditioner(prompts + [None])  # all prompts + the unconditional one, once

    def pair_conditions(self, encoded: Conditioning, traj: Trajectories) -> Conditioning:
        pidx = traj.prompt_index.to(self.device)
        uncond = torch.full_like(pidx, len(traj.prompts))
        return Conditioning.cat([encoded.index_select(pidx)] + [encoded.index_select(uncond)] * (traj.halves - 1))

    def needs_unconditional(self, cfg: float | None) -> bool:
        cfg = self.sampling.cfg if cfg is None else float(cfg)
        return any(float(self.guidance_at(cfg, si)) != 1.0 for si in range(self.num_scales))

    def init_guidance(self, traj: Trajectories, cfg: float | None) -> None:
        cfg = self.sampling.cfg if cfg is None else cfg
        check_guidance(float(cfg))
        traj.rows["cfg"] = torch.full((len(traj),), float(cfg), device=self.device)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        h = self.patch_nums[-1]
        return (self.tokenizer.config.code_dim, h, h)

    def transformer_scale(self, si: int, x: torch.Tensor | None, traj: Trajectories) -> torch.Tensor:
        p = traj.paired
        return self.transformer.forward_scale(si, p["cond"], x, traj.cache, p.get("context"), p.get("context_mask"))

    def guidance(self, traj: Trajectories, si: int) -> torch.Tensor:
        """Per-row guidance scale at scale si."""
        return self.guidance_at(traj.rows["cfg"], si)

    def guidance_at(self, base: torch.Tensor | float, si: int) -> torch.Tensor | float:
        """The guidance scale at scale si for a base scale `base` (the schedule applied)."""
        if self.sampling.cfg_schedule == "linear":
            return 1 + base * si / max(1, self.num_scales - 1)
        return base

    def guide(self, traj: Trajectories, logits: torch.Tensor, *, upstream: bool = False) -> torch.Tensor:
        g = torch.as_tensor(self.guidance(traj, traj.step), device=logits.device)
        if traj.halves == 1:  # started where every scale's guidance is 1
            check_one_half(g)
            return logits
        cond, uncond = logits.chunk(2)
        # at 1 the mix is the conditional up to rounding: take it exactly, as a conditional-only batch does
        return torch.where((g == 1.0).view(-1, *[1] * (cond.dim() - 1)), cond, cfg_mix(cond, uncond, g))

    def sampler_options(self, si: int) -> dict[str, Any]:
        return self.sampling.options_at(si)

    def accumulate(self, si: int, f_hat: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        pn = self.patch_nums[si]
        return f_hat + self.tokenizer.quantizer.embed_scale(si, tokens.view(len(f_hat), pn, pn))

    def next_input(self, si: int, f_hat: torch.Tensor) -> torch.Tensor:
        return self.tokenizer.quantizer.next_input(si, f_hat)

    def decode_latent(self, f_hat: torch.Tensor, size: int | None) -> torch.Tensor:
        decoder_dtype = next(self.tokenizer.parameters()).dtype  # a caller's .to(torch.bfloat16) casts it too
        return self.tokenizer.decode_fhat(f_hat.to(decoder_dtype), size).float()

    # -- cost ---------------------------------------------------------------------------------------
    def flops_per_scale(self, rows: int) -> list[float]:
        """Transformer FLOPs of each scale for `rows` rows, both CFG halves included (one half: half of it)."""
        ctx = 0
        if self.transformer.config.context_dim:
            ctx = getattr(getattr(self.conditioner, "encoder", None), "config", None)
            ctx = ctx.max_len if ctx is not None else 0
        return self.transformer.flops_per_scale(2 * rows, ctx)
