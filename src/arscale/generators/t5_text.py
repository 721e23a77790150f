"""Flan-T5-XL prompt features for the real text-to-image models (Infinity, LlamaGen t2i).

Both upstreams run `transformers.T5EncoderModel` (`google/flan-t5-xl`, d_model 2048) on the
tokenised prompt (the tokenizer appends `</s>`) and read `last_hidden_state`; they differ only in how
the features are laid out:

- **Infinity** pads to 512, then keeps each prompt's valid tokens only, concatenated:
  `kv_compact` [ΣLᵢ, 2048], `lens`, `cu_seqlens_k` (int32, [B+1], starts at 0) and `max_seqlen`
  (`TextFeatures.compact`, `.lengths`, `.cu_seqlens`, `.max_seqlen`). Upstream loads T5 in fp16.
- **LlamaGen** pads to 120 (truncating longer prompts), then *left*-pads: each row's valid tokens are
  moved to the end, the mask is flipped, and the features are multiplied by the mask so padding is
  exactly zero (`T5TextEncoder.llamagen`). Upstream loads T5 in bf16 and cleans captions first
  (ftfy, BeautifulSoup and a long list of regexes, applied twice); `llamagen_caption.clean_llamagen_caption`
  re-implements that cleaning (ftfy and bs4 optional; docs/scorers.md says what changes without them).

The encoder attends only to valid tokens, so a valid position's feature does not depend on how much
padding follows; `encode` therefore pads only to the longest prompt of the batch (the tests check
this against padding to `max_length`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from arscale.errors import ArscaleError
from arscale.generators.llamagen_caption import clean_llamagen_caption

WEIGHTS = "google/flan-t5-xl"
INFINITY_MAX_LENGTH = 512
LLAMAGEN_LENGTH = 120


@dataclass
class TextFeatures:
    """One batch of prompt features in both layouts (float32 unless the encoder runs in another dtype)."""

    padded: torch.Tensor  # [B, L, D], right-padded, zeros at padding
    mask: torch.Tensor  # [B, L] bool, True at valid tokens
    compact: torch.Tensor  # [sum(lengths), D], the valid tokens of every prompt, in order
    lengths: torch.Tensor  # [B] int64, valid tokens per prompt (including the final </s>)
    cu_seqlens: torch.Tensor  # [B + 1] int32, cumulative lengths starting at 0 (flash-attn varlen layout)
    max_seqlen: int

    def rows(self) -> list[torch.Tensor]:
        """Each prompt's valid features [Lᵢ, D]."""
        return list(self.compact.split(self.lengths.tolist()))


def compact_from_padded(padded: torch.Tensor, mask: torch.Tensor) -> TextFeatures:
    """Right-padded features + mask -> all layouts. Rows must be right-padded (valid tokens first)."""
    mask = mask.bool()
    lengths = mask.sum(1)
    if (lengths == 0).any():
        raise ArscaleError("a prompt produced no tokens; T5 needs at least the end-of-sequence token")
    positions = torch.arange(mask.shape[1], device=mask.device)
    if not torch.equal(mask, positions[None, :] < lengths[:, None]):
        raise ArscaleError("the tokenizer must pad on the right (padding_side='right') for compact features")
    compact = padded[mask]  # row-major boolean indexing keeps prompt order
    cu = torch.zeros(len(lengths) + 1, dtype=torch.int32, device=mask.device)
    cu[1:] = lengths.cumsum(0).to(torch.int32)
    return TextFeatures(padded=padded * mask[..., None].to(padded.dtype), mask=mask, compact=compact,
                        lengths=lengths.to(torch.int64), cu_seqlens=cu, max_seqlen=int(lengths.max()))


def left_pad(padded: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LlamaGen's layout: valid tokens moved to the end of each row, features zeroed at padding."""
    mask = mask.bool()
    rows = []
    for feats, m in zip(padded, mask, strict=True):
        n = int(m.sum())
        rows.append(torch.cat([feats[n:], feats[:n]]))  # upstream rotates the row by its valid length
    shifted = torch.stack(rows)
    flipped = mask.flip(-1)
    return shifted * flipped[..., None].to(shifted.dtype), flipped


class T5TextEncoder:
    """`encode(prompts)` -> TextFeatures (Infinity); `llamagen(prompts)` -> (features [B,120,D], mask)."""

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = INFINITY_MAX_LENGTH,
                 device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None, batch_size: int = 64):
        from arscale.scorers.hf import as_dtype

        self.dtype = as_dtype(dtype)
        self.device = torch.device(device)
        self.model = model.eval().requires_grad_(False).to(self.device, self.dtype)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.width = int(model.config.d_model)
        self.flops_spent = 0.0  # every forward so far, padding included (what the encoder computed)

    def to(self, device: str | torch.device) -> T5TextEncoder:
        """Move the encoder (with the generator that reads it); its dtype stays the one `dtype=` chose."""
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def forward_flops(self, rows: int, length: int) -> float:
        """FLOPs of encoding `rows` sequences padded to `length` tokens: per layer the q/k/v/o projections,
        the attention scores and their weighted sum, and the (gated) feed-forward."""
        c = self.model.config
        inner = c.num_heads * c.d_kv
        ffn_matrices = 3 if getattr(c, "is_gated_act", "gated" in str(getattr(c, "feed_forward_proj", ""))) else 2
        per_layer = (2 * length * c.d_model * 4 * inner + 2 * 2 * length * length * inner
                     + 2 * length * c.d_model * c.d_ff * ffn_matrices)
        return float(rows * c.num_layers * per_layer)

    def _check(self, prompts: Sequence[str]) -> list[str]:
        if isinstance(prompts, str):
            raise ArscaleError("give a list of prompts, not a single string")
        prompts = list(prompts)
        if not prompts:
            raise ArscaleError("no prompts to encode")
        bad = [p for p in prompts if not isinstance(p, str)]
        if bad:
            raise ArscaleError(f"prompts must be strings, got {bad[0]!r}")
        return prompts

    @torch.no_grad()
    def hidden(self, prompts: Sequence[str], *, padding: str = "longest",
               max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`last_hidden_state` [B, L, D] and attention mask [B, L] (right-padded, truncated at max_length)."""
        prompts = self._check(prompts)
        max_length = max_length or self.max_length
        outs, masks = [], []
        for i in range(0, len(prompts), self.batch_size):
            tokens = self.tokenizer(prompts[i: i + self.batch_size], padding=padding, truncation=True,
                                    max_length=max_length, return_tensors="pt")
            ids = tokens["input_ids"].to(self.device)
            mask = tokens["attention_mask"].to(self.device)
            outs.append(self.model(input_ids=ids, attention_mask=mask).last_hidden_state)
            masks.append(mask)
            self.flops_spent += self.forward_flops(*ids.shape)
        width = max(o.shape[1] for o in outs)
        outs = [torch.nn.functional.pad(o, (0, 0, 0, width - o.shape[1])) for o in outs]
        masks = [torch.nn.functional.pad(m, (0, width - m.shape[1])) for m in masks]
        return torch.cat(outs), torch.cat(masks).bool()

    def encode(self, prompts: Sequence[str], *, pad_to_max_length: bool = False) -> TextFeatures:
        """Infinity's text condition. `pad_to_max_length=True` gives `padded` at [B, 512, D] like upstream."""
        padded, mask = self.hidden(prompts, padding="max_length" if pad_to_max_length else "longest")
        return compact_from_padded(padded, mask)

    def llamagen(self, prompts: Sequence[str], *, length: int = LLAMAGEN_LENGTH,
                 clean: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """LlamaGen t2i's caption input: left-padded features [B, length, D] (zeros at padding), mask [B, length].
        `clean=True` first cleans each prompt as upstream's T5 embedder does (`clean_llamagen_caption`)."""
        prompts = self._check(prompts)
        if clean:
            prompts = [clean_llamagen_caption(p) for p in prompts]
        padded, mask = self.hidden(prompts, padding="max_length", max_length=length)
        return left_pad(padded, mask)


def encoding_flops(encoder: Any, call: Any) -> tuple[Any, float]:
    """`call()`'s result and the FLOPs the text encoder behind `encoder` (an encoder or its bound method)
    spent on it; 0 for an encoder that does not count (`flops_spent`)."""
    owner = getattr(encoder, "__self__", encoder)
    before = getattr(owner, "flops_spent", None)
    result = call()
    return result, (float(owner.flops_spent - before) if before is not None else 0.0)


def load_t5(weights: str | os.PathLike = WEIGHTS, *, tokenizer: str | os.PathLike | None = None,
            max_length: int = INFINITY_MAX_LENGTH, device: str | torch.device = "cpu",
            dtype: str | torch.dtype | None = None, batch_size: int = 64) -> T5TextEncoder:
    """Flan-T5 encoder from a local directory or hub id (only the encoder weights are read)."""
    from arscale.scorers.hf import dtype_kwarg, from_pretrained, require_transformers

    transformers = require_transformers()
    option = "text_encoder= (or $ARSCALE_T5_WEIGHTS)"
    model = from_pretrained(transformers.T5EncoderModel, weights, what="T5 encoder", option=option,
                            **dtype_kwarg(dtype))
    tok = from_pretrained(transformers.AutoTokenizer, tokenizer or weights, what="T5 tokenizer", option=option)
    tok.padding_side = "right"
    return T5TextEncoder(model, tok, max_length=max_length, device=device, dtype=dtype, batch_size=batch_size)
