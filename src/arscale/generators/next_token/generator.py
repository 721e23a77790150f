"""The next-token generator: a raster-order transformer + VQ tokenizer behind `NextTokenGenerator`.

API (see `generators/protocol.py`):

- `start(prompts, rows_per_prompt, seed, *, prompt_offset=0, cfg=None, unconditional=True) -> Trajectories`:
  encodes each prompt of the call and the empty text once, prefills the condition tokens of both CFG
  halves into a KV cache and leaves the logits of image token 0 ready. `unconditional=False` is the caller's promise to read
  no unconditional logits and set no guidance: where the guidance at `cfg` needs none either
  (`needs_unconditional(cfg)` is false: cfg 1, and for LlamaGen any cfg <= 1), only the conditional
  half is run, at half the compute (`traj.halves == 1`).
- `next_logits(traj) -> (cond [R, V], uncond [R, V])`: the fp32 logits of token `traj.step`.
  Nothing is computed here; `start`/`advance` already ran the forward. A conditional-only trajectory
  returns its conditional logits as both, so every CFG mix of them is the conditional distribution.
- `advance(traj, tokens [R], guidance=None) -> traj`: *receives* the sampled tokens (the strategy
  samples, so it can look at the distributions first), writes them at column `traj.step`, runs one
  cached forward of the trajectory's halves and stores the next logits (skipped after the last token).
  `guidance` [R] (or a float), if given, becomes each row's CFG scale for mixing the NEXT token's
  logits in `guided_logits` / `sample`; rows keep their previous scale otherwise (a conditional-only
  trajectory refuses a scale that would need the unconditional half).
- `guided_logits(traj)` = `cfg_mix(cond, uncond, traj.rows["guidance"])` (exactly `cond` on rows at
  guidance 1, so one half or two give the same draws), and `sample(traj)`
  draws from them with the generator's temperature / top-k / top-p on each row's own
  `torch.Generator` (seeded by the row key and step: results do not depend on the batch layout).
- `preview(traj, size) -> [R, 3, size, size]` in [0, 1]: a partial decode of the raster prefix.
  Unfilled positions are set to `preview_fill`: `"background"` (default) = the code the tokenizer
  gives an empty background patch (found on first use by encoding a blank canvas), so a preview
  shows the rows generated so far on a blank canvas below them. No model forward is spent.
- `finish(traj) -> [R, 3, H, W]` in [0, 1]: decode the complete token grids.
- `to(device=None, dtype=None) -> self`: moves transformer, tokenizer, condition encoder; `dtype` casts the
  transformer only.
- Cost: `prefill_flops(rows, halves=2)`, `step_flops(rows, step, halves=2)`, `flops_per_token(rows,
  position)` (CFG pair included, so a conditional-only trajectory spends half; what producing token
  `position` costs) and `decode_flops(rows, size)`. `start`/`advance` also add the transformer FLOPs they spend
  to `traj.extra["transformer_flops"]`.

Trajectories keys: `rows["tokens"]` [R, T] long (-1 where not yet generated), `rows["guidance"]`
[R] float; `paired["next_logits"]` [halves·R, V] fp32, `paired["prefix_mask"]` [halves·R, P] bool (valid
left-padded condition positions: this per-row mask follows `select` with the KV cache, every CFG
half); `cache` the `KVCache`; `extra["transformer_flops"]`. `traj.step` = tokens generated.

Importance sampling on next-token models (how `search/importance.py` uses this generator): at a
few checkpoints along the raster order, the strategy calls `preview` — the prefix decoded with the
rest of the grid set to the background code — scores those partial images with the reward model
and resamples rows ∝ exp(λ·potential) with `traj.select`. A prefix preview shows the objects
whose rows are already generated and nothing below them, so early checkpoints judge only the top
part of the image; this is the weakness ScalingAR's reward-free signals avoid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from arscale.errors import ArscaleError
from arscale.generators.decode_chunks import DECODE_PIXELS, decode_in_chunks
from arscale.generators.kv_cache import KVCache
from arscale.generators.next_token.tokenizer import VQTokenizer
from arscale.generators.next_token.transformer import Transformer
from arscale.generators.sampling import cfg_mix, check_guidance, sample_per_row
from arscale.generators.t5_text import encoding_flops
from arscale.generators.trajectories import Trajectories

PREVIEW_FILLS = ("background",)

# prompts (None = unconditional) -> (features [B, P, caption_dim], valid mask [B, P]), right-padded
ConditionEncoder = Callable[[Sequence[str | None]], tuple[torch.Tensor, torch.Tensor]]


def left_pad(features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's valid (leading) positions to the end, zeroing the pads (LlamaGen's layout).

    Left padding puts the last valid condition token at the last prefix position, whose logits
    predict the first image token for every row alike.
    """
    _B, L = mask.shape
    n = mask.sum(1, keepdim=True)
    pos = torch.arange(L, device=mask.device)[None, :]
    src = pos - (L - n)
    new_mask = src >= 0
    gathered = features.gather(1, src.clamp_min(0)[..., None].expand(-1, -1, features.shape[-1]))
    return gathered * new_mask[..., None].to(features.dtype), new_mask


class TokenGenerator:
    """A `NextTokenGenerator` over any `Transformer` + `VQTokenizer` + condition encoder."""

    def __init__(self, transformer: Transformer, tokenizer: VQTokenizer, encode_condition: ConditionEncoder, *,
                 name: str, cfg: float = 3.0, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 preview_fill: str = "background"):
        if transformer.config.num_tokens != tokenizer.num_tokens:
            raise ArscaleError(f"transformer expects {transformer.config.num_tokens} tokens but the tokenizer "
                               f"makes {tokenizer.num_tokens}")
        codes = getattr(getattr(tokenizer, "config", None), "codebook_size", None)
        if codes is not None and transformer.config.vocab_size > codes:  # it could draw a code the decoder lacks
            raise ArscaleError(f"the transformer predicts {transformer.config.vocab_size} codes but the tokenizer's "
                               f"codebook has {codes}: pair checkpoints made for each other")
        if preview_fill not in PREVIEW_FILLS:
            raise ArscaleError(f"preview_fill must be one of {PREVIEW_FILLS}, got {preview_fill!r}")
        self.transformer = transformer.eval()
        self.tokenizer = tokenizer.eval()
        self.encode_condition = encode_condition
        self.name = name
        self.cfg, self.temperature, self.top_k, self.top_p = cfg, temperature, top_k, top_p
        self.preview_fill = preview_fill
        self.num_tokens = tokenizer.num_tokens
        self.grid = tokenizer.grid
        self.image_size = tokenizer.config.image_size
        self.vocab_size = transformer.config.vocab_size
        self.prefix_len = transformer.prefix_len
        self._background_code: int | None = None
        self._decode_flops: float | None = None
        self.decode_pixels = DECODE_PIXELS  # output pixels per decoder call: a large N decodes in chunks

    def __repr__(self) -> str:  # which model and how it samples, not `<... object at 0x...>`
        return (f"{type(self).__name__}(name={self.name!r}, num_tokens={self.num_tokens}, "
                f"image_size={self.image_size}, cfg={self.cfg}, temperature={self.temperature}, top_k={self.top_k}, "
                f"top_p={self.top_p}, device={next((p.device for p in self.transformer.parameters()), None)})")

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    def to(self, device: str | torch.device | torch.dtype | None = None,
           dtype: torch.dtype | None = None) -> TokenGenerator:
        """Move the transformer, the tokenizer and the condition encoder (one with a `.to`) to `device`; `dtype`
        casts the transformer only, as the loaders' `dtype=` (the tokenizer decodes in fp32, a text encoder keeps
        its own dtype; the transformer runs in float32, bfloat16 or float16). Returns the generator."""
        if isinstance(device, torch.dtype):  # `gen.to(torch.bfloat16)`, as nn.Module takes it
            device, dtype = None, device
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):  # a name: no .to
            raise TypeError(f"a generator's transformer takes a floating torch dtype (e.g. torch.bfloat16), got {dtype!r}")
        self.transformer.to(device=device, dtype=dtype)
        if device is not None:
            self.tokenizer.to(device)
            for encoder in (self.encode_condition, getattr(self, "text_encoder", None)):
                owner = getattr(encoder, "__self__", encoder)  # a bound method (T5's `llamagen`) moves its encoder
                if owner is not None and owner is not self and callable(getattr(owner, "to", None)):
                    owner.to(device)
        self._background_code = None  # found again by the tokenizer where it now runs
        return self

    # -- protocol --------------------------------------------------------------------------------
    def needs_unconditional(self, scale: float | None = None) -> bool:
        """Whether guidance at `scale` (None: the model's `cfg`) reads the unconditional logits (`cfg_mix` is the
        conditional at 1)."""
        return float(self.cfg if scale is None else scale) != 1.0

    def _halves(self, scale: float, unconditional: bool) -> int:
        return 2 if unconditional or self.needs_unconditional(scale) else 1

    @torch.no_grad()
    def start(self, prompts: Sequence[str], rows_per_prompt: int | Sequence[int], seed: int, *,
              prompt_offset: int = 0, cfg: float | None = None, unconditional: bool = True) -> Trajectories:
        """Rows for each prompt, prefilled, with the logits of image token 0 ready (see the module docstring)."""
        scale = float(self.cfg if cfg is None else cfg)
        check_guidance(scale)
        halves = self._halves(scale, unconditional)
        traj = Trajectories.for_prompts(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset, halves=halves)
        R, P = len(traj), self.prefix_len
        (features, mask), text_flops = encoding_flops(  # each prompt of the call once
            self.encode_condition, lambda: self.encode_condition(list(prompts) + [None] * (halves - 1)))
        features, mask = left_pad(features.float(), mask)
        if features.shape[1] != P:
            raise ArscaleError(f"condition encoder gave {features.shape[1]} positions, the model expects {P}")
        index = torch.cat([traj.prompt_index] + [torch.full((R,), len(prompts), dtype=torch.long)] * (halves - 1))
        features, key_mask = features[index.to(features.device)], mask[index.to(mask.device)]
        traj.cache = KVCache(self.transformer.config.n_layer, P + self.num_tokens)
        prefix = self.transformer.embed_condition(features)
        logits = self.transformer(prefix, key_mask, start=0, cache=traj.cache)[:, -1]
        traj.paired["next_logits"] = logits
        traj.paired["prefix_mask"] = key_mask
        traj.rows["tokens"] = torch.full((R, self.num_tokens), -1, dtype=torch.long, device=self.device)
        traj.rows["guidance"] = torch.full((R,), scale, device=self.device)
        traj.extra["transformer_flops"] = self.prefill_flops(R, halves)
        traj.extra["text_flops"] = text_flops
        traj.step = 0
        return traj

    def next_logits(self, traj: Trajectories) -> tuple[torch.Tensor, torch.Tensor]:
        """Conditional and unconditional fp32 logits [R, V] of token `traj.step` (computed by `start` / `advance`)."""
        if traj.step >= self.num_tokens:
            raise ArscaleError(f"all {self.num_tokens} tokens are generated; call finish")
        logits = traj.paired["next_logits"]
        R = len(traj)
        return (logits[:R], logits[R:]) if traj.halves == 2 else (logits, logits)

    @torch.no_grad()
    def advance(self, traj: Trajectories, tokens: torch.Tensor,
                guidance: torch.Tensor | float | None = None) -> Trajectories:
        """Write `tokens` [R] at column `traj.step`, take `guidance` (per row, for the next token's mix) and run the
        forward for the next logits."""
        R, step = len(traj), traj.step
        if step >= self.num_tokens:
            raise ArscaleError(f"all {self.num_tokens} tokens are generated; call finish")
        tokens = torch.as_tensor(tokens, device=self.device).reshape(-1)
        if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:  # as select's indices
            raise ArscaleError(f"tokens must be integer codebook indices, got {tokens.dtype}")
        tokens = tokens.long()
        if tokens.shape[0] != R:
            raise ArscaleError(f"advance got {tokens.shape[0]} tokens for {R} rows")
        checks = [((tokens < 0) | (tokens >= self.vocab_size)).any()]
        if guidance is not None:
            g = torch.as_tensor(guidance, dtype=torch.float32, device=self.device)
            if g.dim() and g.numel() != R:  # e.g. a strategy's per-row scales not selected with the rows
                raise ArscaleError(f"advance got {g.numel()} guidance scales for {R} rows")
            g = g.expand(R).clone() if g.dim() == 0 else g.reshape(R).clone()
            checks.append(~(torch.isfinite(g) & (g >= 0)).all())  # as start's check: NaN / inf would reach the sampler
        bad_tokens, *bad_guidance = torch.stack(checks).tolist()  # one device sync per step
        if bad_tokens:
            raise ArscaleError(f"tokens must lie in [0, {self.vocab_size})")
        if any(bad_guidance):
            raise ArscaleError(f"the guidance scale must be ≥ 0 and finite, got {sorted(set(g.tolist()))}")
        if guidance is not None:
            if traj.halves == 1 and any(self.needs_unconditional(v) for v in g.unique().tolist()):
                raise ArscaleError("this trajectory was started without its unconditional half "
                                   "(unconditional=False), so it cannot take guidance that mixes one in: "
                                   f"got {sorted(set(g.tolist()))}")
            traj.rows["guidance"] = g
        traj.rows["tokens"][:, step] = tokens
        traj.step = step + 1
        if traj.step < self.num_tokens:
            x = self.transformer.tok_embeddings(torch.cat([tokens] * traj.halves))[:, None]
            logits = self.transformer(x, traj.paired["prefix_mask"], start=self.prefix_len + step,
                                      cache=traj.cache)[:, -1]
            traj.paired["next_logits"] = logits
            traj.extra["transformer_flops"] = (traj.extra.get("transformer_flops", 0.0)
                                               + self.step_flops(R, step, traj.halves))
        return traj

    def guided_logits(self, traj: Trajectories) -> torch.Tensor:
        cond, uncond = self.next_logits(traj)
        if traj.halves == 1:  # `advance` took no guidance that would mix: every row is at 1
            return cond
        g = traj.rows["guidance"]
        # at 1 the mix is the conditional up to rounding: take it exactly, as a conditional-only batch does
        return torch.where((g == 1.0).view(-1, 1).to(cond.device), cond, cfg_mix(cond, uncond, g))

    def sample(self, traj: Trajectories, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Draw the next token of every row (from `guided_logits` unless `logits` are given)."""
        logits = self.guided_logits(traj) if logits is None else logits
        return sample_per_row(logits, traj.seed_key, traj.step, temperature=self.temperature,
                              top_k=self.top_k, top_p=self.top_p)

    @torch.no_grad()
    def finish(self, traj: Trajectories) -> torch.Tensor:
        """Final images [R, 3, H, W] in [0, 1], once every token is generated."""
        if traj.step < self.num_tokens:
            raise ArscaleError(f"only {traj.step} of {self.num_tokens} tokens are generated; use preview "
                               "for partial images")
        return decode_in_chunks(self.tokenizer.decode_codes, traj.rows["tokens"], self.image_size, self.decode_pixels)

    @torch.no_grad()
    def preview(self, traj: Trajectories, size: int | None = None) -> torch.Tensor:
        """The raster prefix of every row decoded, ungenerated positions as background (`decode_prefix`)."""
        return self.decode_prefix(traj.rows["tokens"], size)

    @torch.no_grad()
    def decode_prefix(self, tokens: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """Images [R, 3, size, size] in [0, 1] of token rows [R, num_tokens] whose ungenerated positions are
        negative (shown as background): the raster prefix so far."""
        codes = tokens.masked_fill(tokens < 0, self.background_code)  # no boolean indexing: no device sync
        images = decode_in_chunks(self.tokenizer.decode_codes, codes, self.image_size, self.decode_pixels)
        if size is not None and size != images.shape[-1]:
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                                   antialias=size < images.shape[-1]).clamp(0, 1)
        return images

    def generate(self, prompts: Sequence[str], rows_per_prompt: int = 1, seed: int = 0, *,
                 prompt_offset: int = 0) -> torch.Tensor:
        """Plain CFG sampling at the generator's defaults: images [R, 3, H, W] in [0, 1]."""
        traj = self.start(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset, unconditional=False)
        for _ in range(self.num_tokens):
            self.advance(traj, self.sample(traj))
        return self.finish(traj)

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def background_code(self) -> int:
        if self._background_code is None:
            from arscale.shapeworld import BACKGROUND

            weight = next(self.tokenizer.parameters())  # a tokenizer cast to bf16 encodes bf16 pixels
            blank = torch.tensor(BACKGROUND, dtype=torch.float32, device=weight.device).div(255).to(weight.dtype)
            blank = blank.view(1, 3, 1, 1).expand(1, 3, self.image_size, self.image_size)
            with torch.no_grad():
                codes = self.tokenizer.encode(blank).flatten()
            self._background_code = int(torch.mode(codes).values)
        return self._background_code

    def prefill_flops(self, rows: int, halves: int = 2) -> float:
        t = self.transformer
        per_row = t.condition_flops() + sum(t.flops_per_position(i + 1) for i in range(self.prefix_len))
        return float(halves) * rows * per_row

    def step_flops(self, rows: int, step: int, halves: int = 2) -> float:
        """FLOPs of feeding image token `step` for `rows` rows, both CFG halves (or only the conditional)."""
        return float(halves) * rows * self.transformer.flops_per_position(self.prefix_len + step + 1)

    def flops_per_token(self, rows: int = 1, position: int | None = None) -> float:
        """Transformer FLOPs (CFG pair included) spent to produce the logits of token `position`:
        the prefill for position 0, feeding token position-1 otherwise. Without `position`: the
        average over the grid, so `num_tokens * flops_per_token(rows)` is one full generation."""
        if position is not None:
            return self.prefill_flops(rows) if position == 0 else self.step_flops(rows, position - 1)
        total = self.prefill_flops(rows) + sum(self.step_flops(rows, s) for s in range(self.num_tokens - 1))
        return total / self.num_tokens

    def decode_flops(self, rows: int = 1, size: int | None = None) -> float:
        """Tokenizer-decoder FLOPs for `rows` images (the resize to `size` is negligible)."""
        if self._decode_flops is None:
            self._decode_flops = self.tokenizer.decode_flops(1)
        return rows * self._decode_flops
