"""Conditioners: what a next-scale transformer is conditioned on.

A conditioner maps a list of conditions (text prompts, or class labels; `None` = the unconditional
one used by classifier-free guidance) to a `Conditioning`: the pooled vector that drives AdaLN and the
start token, plus (for cross-attention models) text tokens and their mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators.class_names import is_class_index
from arscale.generators.text import TextEncoder, TextEncoderConfig


@dataclass
class Conditioning:
    pooled: torch.Tensor  # [B, cond_dim]
    context: torch.Tensor | None = None  # [B, Lt, context_dim]
    context_mask: torch.Tensor | None = None  # [B, Lt] bool

    def index_select(self, index: torch.Tensor) -> Conditioning:
        def pick(t):
            return None if t is None else t.index_select(0, index.to(t.device))

        return Conditioning(pick(self.pooled), pick(self.context), pick(self.context_mask))

    @staticmethod
    def cat(parts: Sequence[Conditioning]) -> Conditioning:
        def join(ts):
            return None if ts[0] is None else torch.cat(ts)

        return Conditioning(join([p.pooled for p in parts]), join([p.context for p in parts]),
                            join([p.context_mask for p in parts]))


class TextConditioner(nn.Module):
    """ShapeWorld text: the word-level encoder; pooled text → AdaLN/start token, tokens → cross-attention."""

    def __init__(self, config: TextEncoderConfig | None = None):
        super().__init__()
        self.encoder = TextEncoder(config)
        self.width = self.encoder.config.width

    @property
    def flops_spent(self) -> float:
        return self.encoder.flops_spent

    def validate(self, prompts: Sequence[str]) -> None:
        for p in prompts:
            if not isinstance(p, str):
                raise ArscaleError(f"prompts must be strings, got {p!r}")
            self.encoder.tokenizer.words(p)

    def forward(self, prompts: Sequence[str | None]) -> Conditioning:
        tokens, mask, pooled = self.encoder(prompts)
        return Conditioning(pooled, tokens, mask)


class ClassConditioner(nn.Module):
    """Class labels (VAR): an embedding with one extra row, the null class, for guidance."""

    def __init__(self, num_classes: int, width: int):
        super().__init__()
        self.num_classes = num_classes
        self.class_emb = nn.Embedding(num_classes + 1, width)
        nn.init.trunc_normal_(self.class_emb.weight, std=0.02)

    def validate(self, labels: Sequence[int]) -> None:
        for label in labels:
            if not is_class_index(label, self.num_classes):
                raise ArscaleError(f"class label must be an integer in [0, {self.num_classes}), got {label!r}")

    def forward(self, labels: Sequence[int | None]) -> Conditioning:
        ids = torch.tensor([self.num_classes if x is None else int(x) for x in labels],
                           device=self.class_emb.weight.device)
        return Conditioning(self.class_emb(ids))
