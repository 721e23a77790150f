"""The ShapeWorld text encoder: a word-level vocabulary from the grammar and a tiny transformer.

The unconditional text for classifier-free guidance is the one-token sequence `<null>`; training
replaces prompts by it with some probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from arscale.errors import ArscaleError

PAD, NULL = "<pad>", "<null>"


def shapeworld_vocabulary() -> tuple[str, ...]:
    from arscale.shapeworld import VOCABULARY

    return (PAD, NULL) + tuple(VOCABULARY)


class UnknownWordError(ArscaleError):
    pass


@dataclass
class TextEncoderConfig:
    width: int = 128
    depth: int = 2
    heads: int = 4
    max_len: int = 12

    def to_dict(self) -> dict:
        return asdict(self)


class WordTokenizer:
    def __init__(self, vocabulary: Sequence[str] | None = None, max_len: int = 12):
        self.vocabulary = tuple(vocabulary) if vocabulary is not None else shapeworld_vocabulary()
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        self.max_len = max_len

    def words(self, prompt: str) -> list[str]:
        if not isinstance(prompt, str):
            raise ArscaleError(f"ShapeWorld models take text prompts such as 'a photo of a red circle', got {prompt!r} "
                               f"({type(prompt).__name__})")
        words = prompt.strip().lower().split()
        if not words:
            raise ArscaleError("empty prompt: give a ShapeWorld prompt such as 'a photo of a red circle'")
        unknown = [w for w in words if w not in self.index or w in (PAD, NULL)]
        if unknown:
            known = ", ".join(w for w in self.vocabulary if w not in (PAD, NULL))
            raise UnknownWordError(f"unknown word {unknown[0]!r} in prompt {prompt!r}; the vocabulary is: {known}")
        if len(words) > self.max_len:
            raise ArscaleError(f"prompt has {len(words)} words, more than the encoder's {self.max_len}")
        return words

    def __call__(self, prompts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids [B, max_len] and a validity mask; `None` is the unconditional text."""
        ids = torch.zeros(len(prompts), self.max_len, dtype=torch.long)
        mask = torch.zeros(len(prompts), self.max_len, dtype=torch.bool)
        for i, p in enumerate(prompts):
            toks = [self.index[NULL]] if p is None else [self.index[w] for w in self.words(p)]
            ids[i, : len(toks)] = torch.tensor(toks)
            mask[i, : len(toks)] = True
        return ids, mask


class TextEncoder(nn.Module):
    """Words -> contextual token features [B, L, width] + mask + pooled vector [B, width]."""

    def __init__(self, config: TextEncoderConfig | None = None, vocabulary: Sequence[str] | None = None):
        super().__init__()
        self.config = config or TextEncoderConfig()
        c = self.config
        self.tokenizer = WordTokenizer(vocabulary, c.max_len)
        self.embed = nn.Embedding(len(self.tokenizer.vocabulary), c.width)
        self.pos = nn.Parameter(torch.zeros(1, c.max_len, c.width))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(c.width, c.heads, 4 * c.width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, c.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.width)
        self.flops_spent = 0.0  # every forward so far (read by `t5_text.encoding_flops` for the cost record)

    def forward_flops(self, rows: int) -> float:
        """FLOPs of encoding `rows` prompts, each padded to `max_len` words (what the encoder computes): per
        layer the q/k/v/o projections, the attention scores and their weighted sum, and the 4x feed-forward."""
        w, length = self.config.width, self.config.max_len
        per_layer = 2 * length * w * 4 * w + 2 * 2 * length * length * w + 2 * length * w * 4 * w * 2
        return float(rows * self.config.depth * per_layer)

    def forward(self, prompts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenizer(prompts)  # refuses bad prompts before anything is counted
        self.flops_spent += self.forward_flops(len(prompts))
        device = self.embed.weight.device
        ids, mask = ids.to(device), mask.to(device)
        x = self.embed(ids) + self.pos
        x = self.norm(self.blocks(x, src_key_padding_mask=~mask))
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        return x, mask, pooled
