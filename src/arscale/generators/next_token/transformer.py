"""A Llama-style decoder for raster-order image tokens, laid out like LlamaGen's GPT.

Structure and parameter names follow LlamaGen (`autoregressive/models/gpt.py`) so that a real
checkpoint maps onto it by name: `tok_embeddings`, `layers.N.attention.{wqkv,wo}`,
`layers.N.feed_forward.{w1,w2,w3}` (SwiGLU: w2(silu(w1 x) * w3 x)), `layers.N.{attention_norm,
ffn_norm}` (RMSNorm computed in fp32), `norm`, `output`, and a condition embedder
`cls_embedding` whose outputs are the `cls_token_num` prefix tokens.

Sequence layout: [P condition (prefix) tokens][image tokens 0..T-1]. The logits at the last
prefix position predict image token 0; those at image position i predict token i+1. Prompts are
left-padded (valid condition tokens at the end of the prefix), and padded prefix keys are masked
per row (the diagonal is always kept so no query row is empty).

2-D RoPE: interleaved pairs; the first half of the pairs rotate by the token's grid row, the
second half by its column; base 10000. Condition positions get either an all-zero (cos, sin)
table (`prefix_rope="zero"`, LlamaGen's quirk: their q/k become exactly zero, so their scores
are 0 rather than masked) or the identity rotation (`prefix_rope="identity"`, ShapeWorld-AR: the
prefix keeps its content-based attention).

Decoding uses `KVCache` from `generators.kv_cache`: `forward(x, cache=..., key_mask=...)`
appends the new positions and attends to everything cached so far.

Reduced precision (`load_llamagen_*(dtype=...)`): weights cast to bf16 / fp16 run under autocast to that
dtype, as upstream LlamaGen samples with `--precision bf16`; RMSNorm still computes in fp32, the RoPE table
stays fp32 (upstream's is a plain attribute that its cast leaves alone), the KV cache takes the weights' dtype
and the logits come back in fp32. fp32 weights run exactly as before.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from arscale.generators.kv_cache import KVCache
from arscale.generators.layers import RMSNorm, apply_rope


def find_multiple(n: int, k: int) -> int:
    return n if n % k == 0 else n + k - (n % k)


@dataclass
class TransformerConfig:
    dim: int = 192
    n_layer: int = 4
    n_head: int = 6
    vocab_size: int = 512  # image codebook size
    grid: int = 8  # image tokens form a grid x grid raster
    cls_token_num: int = 12  # prefix (condition) positions
    caption_dim: int = 128  # width of the condition features fed to the caption embedder
    multiple_of: int = 256  # SwiGLU hidden = find_multiple(int(2 * 4 * dim / 3), multiple_of)
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    prefix_rope: str = "identity"  # "identity" or "zero" (LlamaGen)
    dropout: float = 0.0
    ffn_dim_multiplier: float | None = None  # Llama's: hidden = int(m * int(2 * 4 * dim / 3)) before rounding up

    def __post_init__(self):
        if self.dim % self.n_head:
            raise ValueError(f"dim {self.dim} is not divisible by n_head {self.n_head}")
        if (self.dim // self.n_head) % 4:
            raise ValueError("head_dim must be a multiple of 4 for 2-D RoPE")
        if self.prefix_rope not in ("identity", "zero"):
            raise ValueError(f"prefix_rope must be 'identity' or 'zero', got {self.prefix_rope!r}")

    @property
    def num_tokens(self) -> int:
        return self.grid * self.grid

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def ffn_hidden(self) -> int:
        hidden = int(2 * 4 * self.dim / 3)
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return find_multiple(hidden, self.multiple_of)

    def to_dict(self) -> dict:
        return asdict(self)


def rope_2d_table(config: TransformerConfig) -> torch.Tensor:
    """(cos, sin) per position and pair: [P + T, head_dim // 2, 2] in fp32."""
    pairs = config.head_dim // 2
    half = pairs // 2  # pairs per axis
    freqs = 1.0 / (config.rope_base ** (torch.arange(0, half).float() * 2 / (2 * half)))
    t = torch.arange(config.grid).float()
    rows = torch.outer(t, freqs)  # [grid, half]
    grid_angles = torch.cat([rows[:, None, :].expand(-1, config.grid, -1),
                             rows[None, :, :].expand(config.grid, -1, -1)], dim=-1).reshape(-1, pairs)
    image = torch.stack([grid_angles.cos(), grid_angles.sin()], dim=-1)
    prefix = torch.zeros(config.cls_token_num, pairs, 2)
    if config.prefix_rope == "identity":
        prefix[..., 0] = 1.0
    return torch.cat([prefix, image], dim=0)


class Attention(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.n_head, self.head_dim = c.n_head, c.head_dim
        self.wqkv = nn.Linear(c.dim, 3 * c.dim, bias=False)
        self.wo = nn.Linear(c.dim, c.dim, bias=False)
        self.dropout = c.dropout

    def forward(self, x, table, mask, cache: KVCache | None, layer: int):
        B, S, _ = x.shape
        qkv = self.wqkv(x).view(B, S, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(qkv[:2], table)  # q and k in one pass: half the small ops of a decoding step's rotation
        v = qkv[2]
        if cache is not None:
            k, v = cache.append(layer, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.wo(out.transpose(1, 2).reshape(B, S, -1))


class FeedForward(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.w1 = nn.Linear(c.dim, c.ffn_hidden, bias=False)
        self.w3 = nn.Linear(c.dim, c.ffn_hidden, bias=False)
        self.w2 = nn.Linear(c.ffn_hidden, c.dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.attention = Attention(c)
        self.feed_forward = FeedForward(c)
        self.attention_norm = RMSNorm(c.dim, c.norm_eps)
        self.ffn_norm = RMSNorm(c.dim, c.norm_eps)

    def forward(self, x, table, mask, cache, layer):
        x = x + self.attention(self.attention_norm(x), table, mask, cache, layer)
        return x + self.feed_forward(self.ffn_norm(x))


class CaptionEmbedder(nn.Module):
    """LlamaGen's caption projection: fc1 -> GELU(tanh) -> fc2, both without bias."""

    def __init__(self, caption_dim: int, dim: int):
        super().__init__()
        self.cap_proj = nn.ModuleDict({"fc1": nn.Linear(caption_dim, dim, bias=False),
                                       "fc2": nn.Linear(dim, dim, bias=False)})

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.cap_proj["fc2"](F.gelu(self.cap_proj["fc1"](features), approximate="tanh"))


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = c = config
        self.cls_embedding = CaptionEmbedder(c.caption_dim, c.dim)
        self.tok_embeddings = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = RMSNorm(c.dim, c.norm_eps)
        self.output = nn.Linear(c.dim, c.vocab_size, bias=False)
        self.register_buffer("rope", rope_2d_table(c), persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def _apply(self, fn, recurse=True):
        # a dtype cast (`.to(torch.bfloat16)`) would round the RoPE angles too; upstream keeps them in fp32
        rope = self.rope
        super()._apply(fn, recurse)
        if self.rope.dtype != rope.dtype:
            self.rope = rope.to(self.rope.device)
        return self

    def precision(self):
        """Autocast to the weights' dtype when they are bf16 / fp16 (fp32 inputs such as caption features then
        meet the cast weights); a no-op for fp32 weights, which also leaves a caller's own autocast in force."""
        weight = self.tok_embeddings.weight
        if weight.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(weight.device.type, dtype=weight.dtype)

    @property
    def prefix_len(self) -> int:
        return self.config.cls_token_num

    def embed_condition(self, features: torch.Tensor) -> torch.Tensor:
        """Condition features [B, P, caption_dim] (left-padded, zeros at pads) -> prefix [B, P, dim]."""
        with self.precision():
            return self.cls_embedding(features)

    def attention_mask(self, key_mask: torch.Tensor, start: int, length: int) -> torch.Tensor:
        """Boolean [B, 1, length, start + length]: causal over positions, padded prefix keys hidden.

        `key_mask` [B, P] marks the valid prefix positions; image positions are always valid.
        """
        B, P = key_mask.shape
        total = start + length
        q_pos = torch.arange(start, total, device=key_mask.device)
        k_pos = torch.arange(total, device=key_mask.device)
        causal = k_pos[None, :] <= q_pos[:, None]
        valid = torch.ones(B, total, dtype=torch.bool, device=key_mask.device)
        valid[:, : min(P, total)] = key_mask[:, : min(P, total)]
        mask = causal[None] & valid[:, None, :]
        mask |= (k_pos[None, :] == q_pos[:, None])[None]  # keep the diagonal (LlamaGen does too)
        return mask[:, None]

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, start: int = 0,
                cache: KVCache | None = None) -> torch.Tensor:
        """Hidden states x [B, S, dim] at positions start..start+S-1 -> logits [B, S, V] (fp32)."""
        S = x.shape[1]
        table = self.rope[start:start + S]
        mask = self.attention_mask(key_mask, start, S)
        with self.precision():
            for i, layer in enumerate(self.layers):
                x = layer(x, table, mask, cache, i)
            return self.output(self.norm(x)).float()

    def teacher_forced_logits(self, prefix: torch.Tensor, key_mask: torch.Tensor,
                              tokens: torch.Tensor) -> torch.Tensor:
        """All next-token logits in one pass: [B, T, V], row i predicting tokens[:, i]."""
        x = torch.cat([prefix, self.tok_embeddings(tokens[:, :-1])], dim=1)
        return self.forward(x, key_mask)[:, self.prefix_len - 1:]

    # -- analytic cost ---------------------------------------------------------------------------
    def condition_flops(self) -> float:
        """Forward FLOPs of embedding one row's condition prefix: the caption projection (fc1, fc2) at every prefix
        position; a class-label lookup costs none."""
        if not isinstance(self.cls_embedding, CaptionEmbedder):
            return 0.0
        c = self.config
        return float(self.prefix_len * (2 * c.caption_dim * c.dim + 2 * c.dim * c.dim))

    def flops_per_position(self, context: int) -> float:
        """Forward FLOPs for one sequence position attending to `context` keys (one row)."""
        c = self.config
        dense = c.n_layer * (2 * c.dim * 3 * c.dim + 2 * c.dim * c.dim + 3 * 2 * c.dim * c.ffn_hidden)
        attention = c.n_layer * 2 * 2 * context * c.dim
        return float(dense + attention + 2 * c.dim * c.vocab_size)
