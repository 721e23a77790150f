"""The scale-wise transformer (VAR-compatible blocks, optional text cross-attention).

Sequence: the token maps of all scales concatenated, row-major inside a scale. Scale 0 is the start
token (condition + `pos_start`); scale si>0 is `word_embed(down(f̂ → pn_si))`. Every token gets
`lvl_embed[scale]` and `pos_1LC[position]` once, at the input.

Block (VAR's AdaLN order — gamma1, gamma2, scale1, scale2, shift1, shift2):
    x += attn(LN(x)·(1+scale1)+shift1)·gamma1
    x += cross_attn(LN_ca(x), text)                  (text models only)
    x += FFN(LN(x)·(1+scale2)+shift2)·gamma2
Attention optionally l2-normalises q and k with a learned per-head scale (VAR's `attn_l2_norm`); the same
`SelfAttention` takes an optional RoPE table, which is how Infinity's blocks (infinity.py) reuse it.
Teacher forcing uses a block-causal mask; inference runs one whole scale per call against a KV cache.

Reduced precision: a transformer cast to bf16 / fp16 (`load_var(dtype=...)`) runs its blocks under autocast to
that dtype, as upstream VAR samples under `torch.autocast(dtype=float16)`: the residual stream, the norms and the
logits stay fp32, the KV cache holds the reduced dtype (`ScaleTransformer.precision`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators.kv_cache import KVCache
from arscale.generators.layers import apply_rope


@dataclass
class ScaleTransformerConfig:
    patch_nums: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8)
    vocab_size: int = 512
    code_dim: int = 16
    width: int = 256
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    attn_l2_norm: bool = True
    shared_aln: bool = False
    norm_eps: float = 1e-6
    cond_dim: int = 256  # width of the pooled condition (AdaLN input and start token)
    context_dim: int = 0  # width of text tokens for cross-attention; 0 = no cross-attention

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ScaleTransformerConfig:
        d = dict(data)
        d["patch_nums"] = tuple(d.get("patch_nums", cls.patch_nums))
        return cls(**d)


class SelfAttention(nn.Module):
    """VAR-style attention: bias-free qkv matrix + (q_bias, 0, v_bias); optional l2-norm with per-head scale.

    `rope` ([L, head_dim/2, 2] cos/sin of the new positions) rotates q and k after the norm (Infinity's 2-D
    RoPE); the cache then holds rotated keys.
    """

    def __init__(self, width: int, heads: int, l2_norm: bool):
        super().__init__()
        self.heads, self.head_dim, self.l2_norm = heads, width // heads, l2_norm
        self.mat_qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.register_buffer("zero_k_bias", torch.zeros(width), persistent=False)
        self.proj = nn.Linear(width, width)
        if l2_norm:
            self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), math.log(4.0)))
            self.scale = 1.0
        else:
            self.scale = 0.25 / math.sqrt(self.head_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache: KVCache | None, layer: int,
                rope: torch.Tensor | None = None) -> torch.Tensor:
        B, L, C = x.shape
        bias = torch.cat([self.q_bias, self.zero_k_bias, self.v_bias])
        qkv = F.linear(x, self.mat_qkv.weight, bias).view(B, L, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [B,H,L,d]
        if self.l2_norm:
            q = F.normalize(q, dim=-1).mul(self.scale_mul_1H11.clamp(max=math.log(100.0)).exp())
            k = F.normalize(k, dim=-1)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        # under CUDA autocast the l2 norm runs in fp32 and would cache fp32 keys; attention casts them to v's
        # dtype anyway, so they are kept in it (a no-op without autocast)
        k = k.to(v.dtype)
        if cache is not None:
            k, v = cache.append(layer, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(B, L, C))


class CrossAttention(nn.Module):
    """Image tokens attend to text tokens (padding masked out)."""

    def __init__(self, width: int, context_dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(context_dim, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        q = self.q(x).view(B, L, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(context).view(B, -1, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=context_mask[:, None, None, :])
        return self.proj(out.transpose(1, 2).reshape(B, L, C))


class FFN(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class AdaLNBlock(nn.Module):
    def __init__(self, c: ScaleTransformerConfig):
        super().__init__()
        C = c.width
        self.width, self.shared_aln = C, c.shared_aln
        self.ln = nn.LayerNorm(C, eps=c.norm_eps, elementwise_affine=False)
        self.attn = SelfAttention(C, c.heads, c.attn_l2_norm)
        self.ffn = FFN(C, round(C * c.mlp_ratio))
        if c.shared_aln:
            self.ada_gss = nn.Parameter(torch.randn(1, 1, 6, C) / C**0.5)
        else:
            self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(c.cond_dim, 6 * C))
        if c.context_dim:
            self.ca_norm = nn.LayerNorm(C, eps=c.norm_eps)
            self.cross_attn = CrossAttention(C, c.context_dim, c.heads)

    def forward(self, x, cond, mask, cache, layer, context=None, context_mask=None):
        """`cond` is [B, cond_dim], or with shared AdaLN the shared [B,1,6,C] modulation."""
        if self.shared_aln:
            ada = cond + self.ada_gss
        else:
            ada = self.ada_lin(cond).view(-1, 1, 6, self.width)
        gamma1, gamma2, scale1, scale2, shift1, shift2 = ada.unbind(2)
        x = x + self.attn(self.ln(x).mul(1 + scale1).add(shift1), mask, cache, layer).mul(gamma1)
        if context is not None:
            n = self.ca_norm  # in fp32 also for cast weights (CPU layer_norm takes no bf16 weights on fp32 input)
            normed = F.layer_norm(x.float(), n.normalized_shape, n.weight.float(), n.bias.float(), n.eps)
            x = x + self.cross_attn(normed, context, context_mask)
        return x + self.ffn(self.ln(x).mul(1 + scale2).add(shift2)).mul(gamma2)


class AdaLNBeforeHead(nn.Module):
    def __init__(self, width: int, cond_dim: int, eps: float):
        super().__init__()
        self.ln = nn.LayerNorm(width, eps=eps, elementwise_affine=False)
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * width))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.ada_lin(cond).view(-1, 1, 2, x.shape[-1]).unbind(2)
        return self.ln(x).mul(1 + scale).add(shift)


class ScaleTransformer(nn.Module):
    def __init__(self, config: ScaleTransformerConfig):
        super().__init__()
        c = self.config = config
        C = c.width
        if C % c.heads:
            raise ArscaleError(f"width {C} is not divisible by {c.heads} heads")
        self.patch_nums = tuple(c.patch_nums)
        self.first_l = self.patch_nums[0] ** 2
        self.begin_ends = []
        cur = 0
        for pn in self.patch_nums:
            self.begin_ends.append((cur, cur + pn * pn))
            cur += pn * pn
        L = cur
        self.cond_proj = nn.Linear(c.cond_dim, C) if c.cond_dim != C else nn.Identity()
        self.pos_start = nn.Parameter(torch.randn(1, self.first_l, C) * 0.02)
        self.pos_1LC = nn.Parameter(torch.randn(1, L, C) * 0.02)
        self.lvl_embed = nn.Embedding(len(self.patch_nums), C)
        nn.init.normal_(self.lvl_embed.weight, std=0.02)
        self.word_embed = nn.Linear(c.code_dim, C)
        if c.shared_aln:
            self.shared_ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(c.cond_dim, 6 * C))
        self.blocks = nn.ModuleList([AdaLNBlock(c) for _ in range(c.depth)])
        self.head_nm = AdaLNBeforeHead(C, c.cond_dim, c.norm_eps)
        self.head = nn.Linear(C, c.vocab_size)
        lvl = torch.cat([torch.full((pn * pn,), i) for i, pn in enumerate(self.patch_nums)])
        self.register_buffer("lvl_1L", lvl, persistent=False)
        # block-causal: a token sees every token of its own scale and of earlier scales
        self.register_buffer("attn_mask", lvl[:, None] >= lvl[None, :], persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        C, depth = self.config.width, self.config.depth
        for b in self.blocks:
            # residual outputs start small so the deep stack begins close to the identity
            b.attn.proj.weight.data.div_(math.sqrt(2 * depth))
            b.ffn.fc2.weight.data.div_(math.sqrt(2 * depth))
            if not b.shared_aln:
                lin = b.ada_lin[1]
                lin.weight.data.mul_(0.5)
                lin.bias.data[: 2 * C] = 1.0  # gamma1, gamma2
        self.head.weight.data.mul_(0.1)

    @property
    def seq_len(self) -> int:
        return self.begin_ends[-1][1]

    def precision(self):
        """Weights cast to bf16 / fp16 run under autocast to that dtype (matmuls and attention in it, norms and
        logits in fp32). A no-op for fp32 weights, which also leaves a caller's own autocast in force."""
        dtype = self.pos_start.dtype
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.pos_start.device.type, dtype=dtype)

    def _modulation(self, cond: torch.Tensor) -> torch.Tensor:
        return self.shared_ada_lin(cond).view(-1, 1, 6, self.config.width) if self.config.shared_aln else cond

    def _embed(self, si_range: tuple[int, int], cond: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        """Input embeddings of the scales si_range[0]..si_range[1]-1 (scale 0 from the condition)."""
        s0, s1 = si_range
        parts = []
        if s0 == 0:
            parts.append(self.cond_proj(cond).unsqueeze(1).expand(-1, self.first_l, -1) + self.pos_start)
        if x is not None:
            parts.append(self.word_embed(x))
        h = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        b, e = self.begin_ends[s0][0], self.begin_ends[s1 - 1][1]
        return h + self.lvl_embed(self.lvl_1L[b:e]).unsqueeze(0) + self.pos_1LC[:, b:e]

    def _run(self, h, cond, mask, cache, context, context_mask) -> torch.Tensor:
        if not self.config.context_dim:
            context = context_mask = None  # a pooled-only model ignores text tokens
        mod = self._modulation(cond)
        for i, block in enumerate(self.blocks):
            h = block(h, mod, mask, cache, i, context, context_mask)
        return self.head(self.head_nm(h.float(), cond.float())).float()

    def forward(self, cond: torch.Tensor, x_inputs: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: `x_inputs` [B, L - first_l, code_dim] (scales 1..K-1) -> logits [B, L, V]."""
        self._check_context(context)
        expected = self.seq_len - self.first_l
        if x_inputs.shape[1] != expected:
            raise ArscaleError(f"teacher-forcing inputs have {x_inputs.shape[1]} tokens, the schedule "
                               f"{self.patch_nums} needs {expected}")
        with self.precision():
            h = self._embed((0, len(self.patch_nums)), cond, x_inputs).float()  # fp32 residual stream, as upstream
            return self._run(h, cond, self.attn_mask, None, context, context_mask)

    def forward_scale(self, si: int, cond: torch.Tensor, x: torch.Tensor | None, cache: KVCache,
                      context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One scale against the KV cache: x [B, pn_si², code_dim] (None for si = 0) -> logits [B, pn², V]."""
        self._check_context(context)
        with self.precision():
            h = self._embed((si, si + 1), cond, x).float()  # fp32 residual stream, as upstream
            return self._run(h, cond, None, cache, context, context_mask)

    def _check_context(self, context: torch.Tensor | None) -> None:
        if context is None and self.config.context_dim:
            raise ArscaleError("this model cross-attends to text tokens: pass the conditioner's context")

    def flops_per_scale(self, rows: int, context_len: int = 0) -> list[float]:
        """Analytic forward FLOPs (2 per multiply-add) of each scale for `rows` transformer rows."""
        c, C = self.config, self.config.width
        # once per row and forward, however many tokens the scale has: the AdaLN modulations (every block's, or
        # the shared one) and the head's. They weigh most at the one-token scales, where TTS-VAR has most rows.
        modulation = 2 * c.cond_dim * 6 * C * (1 if c.shared_aln else c.depth) + 2 * c.cond_dim * 2 * C
        out = []
        for si, (b, e) in enumerate(self.begin_ends):
            n, seen = e - b, e
            per_layer = 2 * n * (4 * C * C + 2 * round(C * c.mlp_ratio) * C) + 2 * 2 * n * seen * C  # FFN as built
            if c.context_dim:
                per_layer += 2 * n * 2 * C * C + 2 * context_len * 2 * c.context_dim * C + 2 * 2 * n * context_len * C
            head = 2 * n * C * c.vocab_size + 2 * n * C
            embed = 2 * n * c.code_dim * C if si else (2 * c.cond_dim * C if c.cond_dim != C else 0)
            out.append(float(rows * (c.depth * per_layer + head + embed + modulation)))
        return out
