"""Infinity (FoundationVision/Infinity): text-to-image next-scale prediction with bitwise BSQ tokens.

What distinguishes it from VAR (facts from shared/methods/MODELS.md §2; our own code):
- the text path: Flan-T5 features -> RMSNorm -> (a) an attention pool with a learned query, whose output is
  both the start token and the AdaLN condition, and (b) an MLP giving the cross-attention memory. The
  unconditional half uses the learned `cfg_uncond` truncated to each prompt's own length;
- shared AdaLN: one SiLU->Linear(C, 6C) on the condition, plus a learned per-block offset `ada_gss`;
- self-attention with l2-normalised q/k (per-head learned scale, clamped at ln 100) and then 2-D RoPE whose
  positions are the scale's grid normalised to the last scale of the 1M schedule of that aspect ratio;
- cross-attention of every token to its own prompt's text (padded here, with a key mask);
- the level embedding is added only before block 0; there is no absolute position table;
- the head predicts 2 logits per bit (pairs (2j, 2j+1) = bit j is 0 / 1); CFG is cfg*cond + (1-cfg)*uncond
  on logits/tau; codes accumulate by trilinear upsampling (see `bsq.py`).

On the shared machinery: `InfinityGenerator` is a `NextScaleLoop` (generator.py), so start / forward_scale /
guide / sample / commit / step / preview / finish, the KV cache, CFG pairing and the `Trajectories`
bookkeeping are the ones VAR uses; Infinity supplies its parts (T5 text pairing, the per-scale cfg/tau
profile and guidance formula, per-bit sampling, bit tokens, trilinear accumulation, 2-D RoPE tables (with the
scale schedules, in `infinity_schedule.py`), the BSQ-VAE decode). The block reuses the shared l2-norm
`SelfAttention` (with RoPE), `FFN` and `AdaLNBeforeHead`; it keeps its own class for the shared-AdaLN offsets and Infinity's cross-attention layout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators.kv_cache import KVCache
from arscale.generators.layers import RMSNorm
from arscale.generators.meta_build import parameters_on_meta
from arscale.generators.next_scale.bsq import BSQAutoEncoder, bits_to_codes
from arscale.generators.next_scale.conditioning import Conditioning
from arscale.generators.next_scale.generator import NextScaleLoop, check_one_half
from arscale.generators.next_scale.infinity_schedule import (
    ROPE_MODES,
    SCALES_FOR_PIXELS,
    rope_table,
    scale_schedule,
)
from arscale.generators.next_scale.transformer import FFN, AdaLNBeforeHead, SelfAttention
from arscale.generators.sampling import MAX_GUIDANCE
from arscale.generators.trajectories import Trajectories


# -- transformer ----------------------------------------------------------------------------------------
@dataclass
class InfinityConfig:
    embed_dim: int = 2048
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: float = 4.0
    text_channels: int = 2048
    text_maxlen: int = 512
    codebook_dim: int = 32
    norm_eps: float = 1e-6
    rope_mode: int = 2  # upstream rope2d_normalized_by_hw (see `rope_table`)
    block_chunks: int = 1  # only matters when the level embedding is added before every chunk
    lvl_embed_only_first_block: bool = True  # False: upstream adds lvl_embed again before every block chunk

    @property
    def ffn_dim(self) -> int:
        return round(self.embed_dim * self.mlp_ratio / 256) * 256  # Python round: half to even, like upstream

    @property
    def pool_heads(self) -> int:
        return self.text_channels // (128 if self.embed_dim <= 4096 else 64)

    @classmethod
    def from_upstream(cls, kw: dict) -> InfinityConfig:
        """From upstream Infinity's constructor arguments; settings this implementation does not follow are an
        error rather than silently different numbers."""
        unsupported = {k: kw[k] for k, ok in _FIXED_UPSTREAM.items() if k in kw and not ok(kw[k])}
        if unsupported:
            raise ArscaleError(f"Infinity constructor settings not supported by arscale: {unsupported}")
        cfg = cls(embed_dim=kw["embed_dim"], depth=kw["depth"], num_heads=kw["num_heads"],
                  mlp_ratio=kw.get("mlp_ratio", 4.0), text_channels=kw["text_channels"],
                  text_maxlen=kw["text_maxlen"], codebook_dim=kw.get("codebook_dim", 32),
                  norm_eps=kw.get("norm_eps", 1e-6), rope_mode=int(kw.get("rope2d_normalized_by_hw", 2)),
                  block_chunks=int(kw.get("block_chunks") or 1),
                  lvl_embed_only_first_block=bool(kw.get("add_lvl_embeding_only_first_block", 1)))
        if cfg.rope_mode not in ROPE_MODES:
            raise ArscaleError(f"unknown rope2d_normalized_by_hw {cfg.rope_mode!r}; choose from {ROPE_MODES}")
        if cfg.depth % cfg.block_chunks:
            raise ArscaleError(f"depth {cfg.depth} is not a multiple of block_chunks {cfg.block_chunks}")
        return cfg


# Upstream constructor options whose other values change the architecture or the numbers (our code follows
# the released models' values only).
_FIXED_UPSTREAM: dict[str, Callable[[object], bool]] = {
    "shared_aln": bool, "head_aln": bool, "cos_attn": bool, "use_bit_label": bool, "rope2d_each_sa_layer": bool,
    "rms_norm": lambda v: not v, "swiglu": lambda v: not v, "nm0": lambda v: not v,
    "apply_spatial_patchify": lambda v: not v, "head_depth": lambda v: v == 1,
    "cross_attn_layer_scale": lambda v: v < 0,
}


def _ada_ln(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x.float(), (x.shape[-1],), eps=eps).mul(scale + 1).add(shift)


class CrossAttention(nn.Module):
    """Queries attend to their own row's text memory [B, T, kv_dim] (mask [B, T], True = a real token)."""

    def __init__(self, dim: int, kv_dim: int, heads: int, *, pool: bool = False):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        if pool:
            self.mat_q = nn.Parameter(torch.zeros(1, heads, self.head_dim))
        else:
            self.mat_q = nn.Linear(dim, dim)
        self.mat_kv = nn.Linear(kv_dim, 2 * dim, bias=False)
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)
        self.pool = pool

    def forward(self, x: torch.Tensor | None, mem: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, _ = mem.shape
        bias = torch.cat([torch.zeros_like(self.v_bias), self.v_bias])
        k, v = F.linear(mem, self.mat_kv.weight, bias).view(B, T, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.pool:
            q = self.mat_q.expand(B, -1, -1).unsqueeze(2)  # [B, H, 1, hd]
        else:
            q = self.mat_q(x).view(B, x.shape[1], self.heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return self.proj(out.transpose(1, 2).reshape(B, q.shape[2], -1))

class Block(nn.Module):
    """Shared AdaLN (the model's modulation + this block's `ada_gss`) around the shared l2-norm attention with
    2-D RoPE, Infinity's cross-attention and the shared FFN."""

    def __init__(self, cfg: InfinityConfig):
        super().__init__()
        C = cfg.embed_dim
        self.eps = cfg.norm_eps
        self.ada_gss = nn.Parameter(torch.zeros(1, 1, 6, C))
        self.sa = SelfAttention(C, cfg.num_heads, l2_norm=True)
        self.ca = CrossAttention(C, C, cfg.num_heads)
        self.ffn = FFN(C, cfg.ffn_dim)
        self.ca_norm = nn.LayerNorm(C, eps=cfg.norm_eps)

    def forward(self, x, gss, mask, cache, layer, context, context_mask, rope):
        gamma1, gamma2, scale1, scale2, shift1, shift2 = (self.ada_gss + gss).unbind(2)
        x = x + self.sa(_ada_ln(x, scale1, shift1, self.eps), mask, cache, layer, rope) * gamma1
        normed = F.layer_norm(x.float(), x.shape[-1:], self.ca_norm.weight.float(), self.ca_norm.bias.float(),
                              self.ca_norm.eps)  # fp32, as under upstream's autocast
        x = x + self.ca(normed, context, context_mask).float()
        return x + self.ffn(_ada_ln(x, scale2, shift2, self.eps)) * gamma2


class InfinityTransformer(nn.Module):
    """Parameter names follow the released checkpoint after `block_chunks.c.module.j` -> `blocks.i`.

    Schedule-free: the caller passes the RoPE table of the positions it runs (`rope_table`).
    """

    def __init__(self, cfg: InfinityConfig):
        super().__init__()
        self.cfg = cfg
        C, Ct5 = cfg.embed_dim, cfg.text_channels
        self.cfg_uncond = nn.Parameter(torch.zeros(cfg.text_maxlen, Ct5))
        self.pos_start = nn.Parameter(torch.zeros(1, 1, C))
        self.text_norm = RMSNorm(Ct5, cfg.norm_eps)
        self.text_proj_for_sos = nn.Module()
        self.text_proj_for_sos.ca = CrossAttention(C, Ct5, cfg.pool_heads, pool=True)
        self.text_proj_for_ca = nn.Sequential(nn.Linear(Ct5, C), nn.GELU(approximate="tanh"), nn.Linear(C, C))
        self.lvl_embed = nn.Embedding(15, C)
        self.word_embed = nn.Linear(cfg.codebook_dim, C)
        self.shared_ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.head_nm = AdaLNBeforeHead(C, C, cfg.norm_eps)
        self.head = nn.Linear(C, 2 * cfg.codebook_dim)

    @property
    def head_dim(self) -> int:
        return self.cfg.embed_dim // self.cfg.num_heads

    def precision(self):
        """Weights cast to bf16 / fp16 (`load_infinity_2b(dtype=...)`) run as upstream runs its bf16 blocks: under
        autocast to that dtype, with the norms, the shared AdaLN and the logits in fp32 (`_in_fp32`). A no-op for fp32
        weights."""
        dtype = self.pos_start.dtype
        if dtype == torch.float32:  # also leaves a caller's own autocast in force
            return contextlib.nullcontext()
        return torch.autocast(self.pos_start.device.type, dtype=dtype)

    # -- text ------------------------------------------------------------------------------------------
    def encode_text(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-row T5 features [L_i, Ct5] -> (pooled condition [B, C], memory [B, T, C], mask [B, T])."""
        lens = [int(f.shape[0]) for f in features]
        if min(lens) < 1:
            raise ArscaleError("every prompt needs at least one text token")
        if max(lens) > self.cfg.text_maxlen:
            raise ArscaleError(f"a prompt has {max(lens)} text tokens; this model takes at most {self.cfg.text_maxlen}")
        T = max(lens)
        dev = self.pos_start.device
        padded = torch.zeros(len(features), T, self.cfg.text_channels, device=dev)
        mask = torch.zeros(len(features), T, dtype=torch.bool, device=dev)
        for i, f in enumerate(features):
            padded[i, : lens[i]] = f.to(dev, torch.float32)
            mask[i, : lens[i]] = True
        with self.precision():
            normed = self.text_norm(padded)
            pooled = self.text_proj_for_sos.ca(None, normed, mask).squeeze(1)
            return pooled, self.text_proj_for_ca(normed), mask

    def unconditional_features(self, lens: Sequence[int]) -> list[torch.Tensor]:
        return [self.cfg_uncond[:n] for n in lens]

    # -- image tokens ----------------------------------------------------------------------------------
    def _run(self, h, lvl, cond, context, context_mask, rope, *, mask=None, cache=None) -> torch.Tensor:
        """Blocks and head: h [B, n, C] and its level embedding lvl (added before block 0, or before every
        block chunk when `lvl_embed_only_first_block` is off) -> logits [B, n, 2d]."""
        gss = self._in_fp32(self.shared_ada_lin, cond.float()).view(-1, 1, 6, self.cfg.embed_dim)
        per_chunk = self.cfg.depth // self.cfg.block_chunks
        for i, block in enumerate(self.blocks):
            if i == 0 or (not self.cfg.lvl_embed_only_first_block and i % per_chunk == 0):
                h = h + lvl
            h = block(h, gss, mask, cache, i, context, context_mask, rope)
        return self._in_fp32(self.head, self._in_fp32(self.head_nm, h.float(), cond.float()))

    def _in_fp32(self, module: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        """`module` in fp32 with autocast off, as upstream runs `shared_ada_lin` and `get_logits` (only its blocks are
        bf16): weights cast to bf16 / fp16 are read as fp32 copies for this call."""
        if self.pos_start.dtype == torch.float32:
            return module(*inputs).float()
        weights = {name: p.float() for name, p in module.named_parameters()}
        with torch.autocast(self.pos_start.device.type, enabled=False):
            return torch.func.functional_call(module, weights, inputs).float()

    def forward_scale(self, si: int, cond: torch.Tensor, x: torch.Tensor | None, cache: KVCache,
                      context: torch.Tensor, context_mask: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        """One scale against the KV cache: x [B, h*w, d] (None for si = 0) -> logits [B, h*w, 2d]."""
        with self.precision():
            h = cond.unsqueeze(1) + self.pos_start if x is None else self.word_embed(x)
            return self._run(h, self.lvl_embed.weight[si], cond, context, context_mask, rope, cache=cache)

    def teacher_forced(self, features: Sequence[torch.Tensor], x_in: torch.Tensor,
                       schedule: Sequence[Sequence[int]]) -> torch.Tensor:
        """Full-sequence forward with the block-causal mask: x_in [B, L-1, d] (next-scale inputs) -> [B, L, 2d]."""
        cond, mem, mem_mask = self.encode_text(features)
        with self.precision():
            x = torch.cat([cond.unsqueeze(1) + self.pos_start, self.word_embed(x_in.float())], dim=1)
            sizes = [t * h * w for t, h, w in schedule]
            level = torch.cat([torch.full((n,), i, device=x.device) for i, n in enumerate(sizes)])
            mask = torch.where(level[:, None] >= level[None, :], 0.0, float("-inf"))[None, None]
            rope = rope_table(self.head_dim, schedule, self.cfg.rope_mode).to(x.device)
            return self._run(x, self.lvl_embed(level)[None], cond, mem, mem_mask, rope, mask=mask)


# -- generator ------------------------------------------------------------------------------------------
def _likelier_bit_where_overflowed(mixed: torch.Tensor, exact: Callable[[], torch.Tensor]) -> torch.Tensor:
    """A tau so small (or a cfg so large) that float32 overflows gives inf or NaN logits, and so NaN probabilities:
    such a bit takes the limit, its likelier value (logits 0 / -inf; a tie shares), as the sampler does for a tiny
    temperature. `exact()`: the same mix without tau, in float64, where it does not overflow."""
    bad = ~torch.isfinite(mixed).all(-1, keepdim=True)
    if mixed.device.type == "cpu" and not bool(bad.any()):  # the usual draw: the where below changes nothing
        return mixed  # (on a GPU this test would cost a sync per scale, as `greedy_where_overflowed` says)
    plain = exact()
    top = plain.amax(-1, keepdim=True)  # both values -inf: neither is likelier, the NaN stays (as a model's own NaN)
    bad &= ~plain.isnan().any(-1, keepdim=True) & (top > -math.inf)  # the sampler refuses them
    greedy = torch.zeros_like(mixed).masked_fill(plain < top, float("-inf"))
    return torch.where(bad, greedy, mixed)


TextEncoderFn = Callable[[Sequence[str]], list[torch.Tensor]]


@dataclass
class InfinitySampling:
    cfg: float | list[float] = 3.0
    tau: float | list[float] = 0.5
    top_k: int = 900
    top_p: float = 0.97
    h_div_w: float = 1.0
    pixels: str = "1M"
    schedule: list[tuple[int, int, int]] | None = field(default=None)
    # Partial images for a scorer of input size s: "downsampled" decodes the code sum area-resized to the
    # latent that yields about s pixels (a 224-px scorer costs ~1/20 of a 1024-px decode); "full" decodes
    # the full latent and resizes the image, as the official TTS-VAR loop does.
    preview_decode: str = "downsampled"

    def __post_init__(self) -> None:
        """Values no draw can use, refused in one line when the sampling is made (`load_infinity_2b` makes it before
        it reads a file), not as a ZeroDivisionError, a TypeError or NaN probabilities at the first scale."""
        for what, value, low in (("cfg", self.cfg, 0.0), ("tau", self.tau, None)):
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or \
                        (v <= 0 if low is None else not low <= v <= MAX_GUIDANCE):
                    raise ArscaleError(f"Infinity's {what} must be a finite number "
                                       f"{'> 0' if low is None else f'≥ 0 (at most {MAX_GUIDANCE:.4g})'}, "
                                       f"or a list of them (one per scale), got {value!r}")
        h = self.h_div_w
        if isinstance(h, bool) or not isinstance(h, numbers.Real) or not 0 < h < math.inf:
            raise ArscaleError(f"h_div_w is the image's height / width, a positive number (0.5 for 1:2), got {h!r}")
        if self.pixels not in SCALES_FOR_PIXELS:
            raise ArscaleError(f"unknown Infinity resolution {self.pixels!r}; choose from {', '.join(SCALES_FOR_PIXELS)}")
        if self.preview_decode not in ("downsampled", "full"):
            raise ArscaleError(f"preview_decode must be 'downsampled' or 'full', got {self.preview_decode!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, numbers.Integral):
            raise ArscaleError(f"Infinity's top_k must be a whole number (≤ 0 or ≥ 2 is off on bits), got {self.top_k!r}")
        if isinstance(self.top_p, bool) or not isinstance(self.top_p, numbers.Real) or math.isnan(self.top_p):
            raise ArscaleError(f"Infinity's top_p must be a number (≤ 0 or ≥ 1 is off), got {self.top_p!r}")
        scales = len(self.schedule) if self.schedule is not None else SCALES_FOR_PIXELS[self.pixels]
        for what, value in (("cfg", self.cfg), ("tau", self.tau)):
            if isinstance(value, (list, tuple)) and len(value) < scales:
                raise ArscaleError(f"{what} list has {len(value)} entries for {scales} scales")


class InfinityGenerator(NextScaleLoop):
    """A `NextScaleGenerator` over Infinity: the shared loop with Infinity's parts.

    Tokens are bits [R, 1, h, w, d] per scale (`rows["tokens"]` [R, L, d]); f̂ is the running code sum
    [R, d, 1, H, W]; `paired` holds the pooled text `cond`, the cross-attention memory `context` and its
    `context_mask`; the cache holds post-RoPE keys; `extra["cfg"]` is the per-scale guidance of the batch.
    """

    def __init__(self, model: InfinityTransformer, vae: BSQAutoEncoder, sampling: InfinitySampling | None = None,
                 *, text_encoder: TextEncoderFn | None = None, name: str = "infinity"):
        super().__init__()
        self.transformer, self.vae = model, vae
        self.sampling = sampling or InfinitySampling()
        self.text_encoder = text_encoder
        self.name = name
        self.token_dims = (model.cfg.codebook_dim,)
        self.token_dtype = torch.int8
        self.token_values = 2  # bits
        self.set_schedule(self.sampling.schedule or scale_schedule(self.sampling.h_div_w, self.sampling.pixels))
        self.eval()

    @property
    def model(self) -> InfinityTransformer:
        return self.transformer

    # -- configuration -----------------------------------------------------------------------------
    def set_schedule(self, schedule: Sequence[Sequence[int]]) -> None:
        schedule = [tuple(int(v) for v in s) for s in schedule]
        if len(schedule) > self.model.lvl_embed.num_embeddings:
            raise ArscaleError(f"Infinity has {self.model.lvl_embed.num_embeddings} level embeddings; "
                               f"a schedule of {len(schedule)} scales does not fit")
        if any(t != 1 for t, _, _ in schedule):
            raise ArscaleError(f"image schedules have t = 1 at every scale, got {schedule}")
        # before anything changes: a cfg / tau list too short for this schedule leaves the generator as it was
        cfg_list = self._per_scale(self.sampling.cfg, "cfg", len(schedule))
        tau_list = self._per_scale(self.sampling.tau, "tau", len(schedule))
        self.schedule = schedule
        self.set_scales([(h, w) for _, h, w in schedule])
        self.rope = rope_table(self.model.head_dim, schedule, self.model.cfg.rope_mode)
        self._rope_moved: torch.Tensor | None = None  # `self.rope` where the model runs (`rope_on`)
        self.cfg_list, self.tau_list = cfg_list, tau_list

    def _per_scale(self, value, what: str, scales: int | None = None) -> list[float]:
        scales = len(self.schedule) if scales is None else scales
        if isinstance(value, numbers.Real):  # as InfinitySampling takes it: numpy scalars too
            return [float(value)] * scales
        if len(value) < scales:
            raise ArscaleError(f"{what} list has {len(value)} entries for {scales} scales")
        return [float(v) for v in value[:scales]]

    @property
    def image_size(self) -> int:
        return max(self.schedule[-1][1], self.schedule[-1][2]) * self.vae.patch_size

    @property
    def patch_nums(self) -> list[tuple[int, int]]:
        """(h, w) of every scale (what strategies read to count generated tokens)."""
        return self.scales

    def _apply(self, fn, recurse=True):
        """`.to(device)` / `.cuda()` move Flan-T5 too: it hangs on as a bound `encode`, which nn.Module does not
        see; a dtype cast leaves it at its own `text_dtype`."""
        super()._apply(fn, recurse)
        encoder = getattr(self.text_encoder, "__self__", None)
        if callable(getattr(encoder, "to", None)) and getattr(encoder, "device", None) != self.device:
            encoder.to(self.device)
        return self

    # -- start -------------------------------------------------------------------------------------
    def encode_prompts(self, prompts: list[str]) -> list[torch.Tensor]:
        if self.text_encoder is None:
            raise ArscaleError("this Infinity generator has no text encoder; load it with text_encoder=... "
                               "(Flan-T5-XL) or call start_from_features with T5 features")
        features = self.text_encoder(list(prompts))
        if hasattr(features, "rows"):  # arscale.generators.t5_text.TextFeatures
            features = features.rows()
        return features

    def start_from_features(self, features: Sequence[torch.Tensor], prompts: Sequence[str],
                            rows_per_prompt: int | Sequence[int], seed: int, *, prompt_offset: int = 0,
                            cfg: float | None = None, unconditional: bool = True) -> Trajectories:
        """Rows for each prompt given its T5 features [L_i, Ct5] (one tensor per prompt)."""
        if len(features) != len(prompts):
            raise ArscaleError(f"{len(features)} text feature tensors for {len(prompts)} prompts")
        return self.start_encoded(features, prompts, rows_per_prompt, seed, prompt_offset=prompt_offset, cfg=cfg,
                                  unconditional=unconditional)

    def pair_conditions(self, features: Sequence[torch.Tensor], traj: Trajectories) -> Conditioning:
        """Each row's own features; the unconditional half is `cfg_uncond` cut to that row's text length."""
        per_row = [features[int(p)] for p in traj.prompt_index]
        if traj.halves == 2:
            per_row = list(per_row) + self.model.unconditional_features([int(f.shape[0]) for f in per_row])
        # each forward row's text length, on the host: `scale_flops` bills it without reading the device's mask
        traj.paired["text_tokens"] = torch.tensor([int(f.shape[0]) for f in per_row])
        return Conditioning(*self.model.encode_text(per_row))

    def init_guidance(self, traj: Trajectories, cfg: float | None) -> None:
        traj.extra["cfg"] = self._cfg_per_scale(cfg)

    def needs_unconditional(self, cfg: float | None) -> bool:
        return any(float(c) != 1.0 for c in self._cfg_per_scale(cfg))

    def _cfg_per_scale(self, cfg: float | None) -> list[float]:
        return list(self.cfg_list) if cfg is None else [cfg] * self.num_scales

    @property
    def latent_shape(self) -> tuple[int, ...]:
        _, H, W = self.schedule[-1]
        return (self.model.cfg.codebook_dim, 1, H, W)

    # -- one scale ---------------------------------------------------------------------------------
    def transformer_scale(self, si: int, x: torch.Tensor | None, traj: Trajectories) -> torch.Tensor:
        b, e = self.begin_ends[si]
        p = traj.paired
        return self.model.forward_scale(si, p["cond"], x, traj.cache, p["context"], p["context_mask"],
                                        self.rope_on(p["cond"])[b:e])

    def rope_on(self, like: torch.Tensor) -> torch.Tensor:
        """The RoPE table on the device of `like`, copied there once, not at every scale (a copy from the host
        waits for the device)."""
        if self._rope_moved is None or self._rope_moved.device != like.device:
            self._rope_moved = self.rope.to(like.device)
        return self._rope_moved

    def guide(self, traj: Trajectories, logits: torch.Tensor, *, upstream: bool = False) -> torch.Tensor:
        """CFG on logits/tau, cfg·cond + (1-cfg)·uncond: [halves·R, h*w, 2d] -> the sampler input [R, h*w*d, 2]
        (one half: started where every scale's cfg is 1, so cond/tau)."""
        si, R = traj.step, len(traj)
        scaled = logits.mul(1 / self.tau_list[si])
        cfg = traj.extra["cfg"][si]
        if traj.halves == 1:
            check_one_half(cfg)
            return _likelier_bit_where_overflowed(scaled.reshape(R, -1, 2), lambda: logits.double().reshape(R, -1, 2))
        mixed = cfg * scaled[:R] + (1 - cfg) * scaled[R:]

        def exact() -> torch.Tensor:  # the mix without tau, in float64: only where float32 overflowed
            wide = logits.double()
            return (cfg * wide[:R] + (1 - cfg) * wide[R:]).reshape(R, -1, 2)

        return _likelier_bit_where_overflowed(mixed.reshape(R, -1, 2), exact)

    def sampler_options(self, si: int) -> dict:
        return {"top_k": min(self.sampling.top_k, 2), "top_p": self.sampling.top_p}  # top-k over 2 values: a no-op

    def shape_tokens(self, si: int, flat: torch.Tensor) -> torch.Tensor:
        h, w = self.scales[si]
        return flat.reshape(len(flat), 1, h, w, -1)

    def accumulate(self, si: int, f_hat: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        return BSQAutoEncoder.accumulate(f_hat, bits_to_codes(bits), self.schedule[-1], si == self.num_scales - 1)

    def next_input(self, si: int, f_hat: torch.Tensor) -> torch.Tensor:
        nxt = F.interpolate(f_hat, size=self.schedule[si + 1], mode="trilinear").squeeze(2)
        return nxt.flatten(2).transpose(1, 2)

    # -- images ------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, traj: Trajectories) -> torch.Tensor:
        """The VAE decode of the running code sum, in [-1, 1] (what TTS-VAR scores at every scale)."""
        return self.vae.decode(traj.rows["f_hat"])

    def preview_latent(self, size: int | None) -> tuple[int, int]:
        """The latent (h, w) a preview of `size` pixels is decoded from."""
        _, H, W = self.schedule[-1]
        if size is None or self.sampling.preview_decode == "full" or size >= self.image_size:
            return H, W
        f = size / self.image_size
        return max(1, math.ceil(H * f)), max(1, math.ceil(W * f))

    def decode_latent(self, f_hat: torch.Tensor, size: int | None) -> torch.Tensor:
        if self.sampling.preview_decode not in ("downsampled", "full"):
            raise ArscaleError(f"preview_decode must be 'downsampled' or 'full', got {self.sampling.preview_decode!r}")
        summed = f_hat.squeeze(2)
        h, w = self.preview_latent(size)
        if (h, w) != tuple(summed.shape[-2:]):
            summed = F.interpolate(summed, size=(h, w), mode="area")
        img = (self.vae.decode(summed) + 1) / 2
        if size is not None and tuple(img.shape[-2:]) != (size, size):
            img = F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return img.clamp(0, 1)

    def decode_flops(self, rows: int, size: int | None = None) -> float:
        """Decoder FLOPs of `rows` previews at `size` (the full image when None)."""
        return rows * self.vae.decode_flops(*self.preview_latent(size))

    # -- cost --------------------------------------------------------------------------------------
    def flops_per_scale(self, rows: int, text_tokens: int = 32) -> list[float]:
        """Each scale's FLOPs for `rows` rows (both CFG halves) whose prompts are `text_tokens` long: a nominal
        length, for sizing; a run bills each row's own length through `scale_flops`."""
        return [self._scale_flops(k, 2 * rows, 2 * rows * text_tokens) for k in range(self.num_scales)]

    def scale_flops(self, traj: Trajectories, k: int) -> float:
        """FLOPs of scale k for this batch, cross-attention over each row's real text length (its halves)."""
        text = traj.paired.get("text_tokens")  # on the host (the mask's sum would cost a device sync per scale)
        text = traj.paired["context_mask"] if text is None else text
        return self._scale_flops(k, traj.halves * len(traj), float(text.sum()))

    def _scale_flops(self, k: int, rows: int, text_tokens: float) -> float:
        """`rows` forward rows whose text lengths sum to `text_tokens`. The text's K/V projection and the
        cross-attention scores grow with each row's own length, the rest with the scale's tokens only."""
        cfg = self.model.cfg
        C, F_, depth, d = cfg.embed_dim, cfg.ffn_dim, cfg.depth, cfg.codebook_dim
        n, seen = self.sizes[k], sum(self.sizes[:k + 1])
        per_row = (2 * 3 * C * C * n + 2 * C * C * n + 4 * n * seen * C  # self-attention
                   + 2 * C * C * n + 2 * C * C * n  # cross-attention: queries and output
                   + 4 * C * F_ * n)  # FFN
        per_text_token = 4 * C * C + 4 * n * C  # the text's keys and values, and the attention over them
        head = 2 * C * 2 * d * n
        # once per row and forward however many tokens: the shared AdaLN modulation and the head's
        modulation = 2 * C * 6 * C + 2 * C * 2 * C
        embed = 2 * n * d * C if k else 0  # the bits of earlier scales in (scale 0 starts from the text)
        return float(rows * (depth * per_row + head + modulation + embed) + depth * per_text_token * text_tokens)


def upstream_filters(top_k: float, top_p: float, model_top_k: float = 0.0, model_top_p: float = 0.0,
                     codebook_dim: int = 32) -> tuple[int, float]:
    """The top-k / top-p upstream's sampler gets: `top_k or model.top_k`, `top_p or model.top_p`, where the
    model's values come from the constructor (top_p clamped to [0, 1], under 1e-5 off; top_k a fraction of the
    2d logits when in (0, 1), off when >= 2d or <= 0). A zero passed at sampling time falls back to them."""
    V = 2 * codebook_dim
    mp = max(min(model_top_p, 1), 0)
    mp = 0 if mp < 1e-5 else mp
    mk = round(model_top_k * V) if 0 < model_top_k < 1 else round(model_top_k)
    mk = 0 if mk >= V or mk <= 0 else mk
    return int(top_k or mk), float(top_p or mp)


def to_uint8_bgr(img_minus1_1: torch.Tensor) -> torch.Tensor:
    """Upstream's final image: ((x+1)/2*255) truncated to uint8, [B, H, W, 3] with channels flipped to BGR."""
    return ((img_minus1_1 + 1) / 2).permute(0, 2, 3, 1).mul(255).to(torch.uint8).flip(dims=(3,))


# -- released checkpoint ----------------------------------------------------------------------------------
HUB_REPO = "FoundationVision/Infinity"
MODEL_FILE, VAE_FILE = "infinity_2b_reg.pth", "infinity_vae_d32reg.pth"
INFINITY_2B = InfinityConfig(embed_dim=2048, depth=32, num_heads=16, text_channels=2048, text_maxlen=512,
                             codebook_dim=32)


def load_infinity_2b(weights: str | None = None, vae_weights: str | None = None, *,
                     text_encoder: str | TextEncoderFn | None = "google/flan-t5-xl",
                     device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                     text_dtype: str | torch.dtype | None = None, **sampling) -> InfinityGenerator:
    """Infinity-2B with its BSQ-VAE (d=32) and Flan-T5-XL; `weights` is a file, a directory or a hub id
    ($ARSCALE_INFINITY_WEIGHTS when not given; $ARSCALE_T5_WEIGHTS overrides the T5 hub id).

    Sampling defaults follow the official script and TTS-VAR: cfg 3, tau 0.5, top-k 900 (a no-op on bits),
    top-p 0.97, the 1M schedule (13 scales, 1024x1024) of the aspect ratio `h_div_w`.
    """
    from arscale.generators import loading
    from arscale.generators.registry import check_options

    check_options("infinity-2b", sampling, [f.name for f in dataclasses.fields(InfinitySampling)],
                  others=("device", "weights", "vae_weights", "text_encoder", "dtype", "text_dtype"))
    dtype = loading.transformer_dtype("infinity-2b", dtype)
    loading.check_text_dtype(text_dtype)
    defaults = {"cfg": 3.0, "tau": 0.5, "top_k": 900, "top_p": 0.97, "h_div_w": 1.0, "pixels": "1M"}
    defaults.update(sampling)
    sampling_config = InfinitySampling(**defaults)  # its values checked before any file is read
    weights = weights or os.environ.get("ARSCALE_INFINITY_WEIGHTS")
    if isinstance(text_encoder, str) and text_encoder == "google/flan-t5-xl":
        text_encoder = os.environ.get("ARSCALE_T5_WEIGHTS", text_encoder)
    if weights is None:
        raise ArscaleError(
            f"Infinity-2B needs its released weights: download {MODEL_FILE} and {VAE_FILE} from "
            f"https://huggingface.co/{HUB_REPO} (and google/flan-t5-xl) and pass weights=PATH (a file or directory; `generate --weights` or `bench --model-weights`) "
            f"or weights={HUB_REPO!r}, or set ARSCALE_INFINITY_WEIGHTS to the download directory"
        )
    # both files found before the (large) model is built: a wrong path fails at once
    model_file = loading.resolve(weights, MODEL_FILE)
    vae_file = loading.resolve(vae_weights or weights, VAE_FILE, beside=vae_weights is None)
    # meta parameters, filled by the files' tensors (cast to `dtype` as they are assigned): no random init; the
    # files are read inside the calls, so nothing holds their tensors once the modules own them
    with parameters_on_meta(dtype):
        model = InfinityTransformer(INFINITY_2B)
    loading.load_strict(model, loading.infinity_state(loading.read_checkpoint(model_file), INFINITY_2B.text_maxlen),
                        ignore=loading.INFINITY_IGNORED, what=f"Infinity-2B ({model_file})")
    with parameters_on_meta():
        vae = BSQAutoEncoder(codebook_dim=32, base_ch=128, ch_mult=(1, 2, 4, 4, 4), num_res_blocks=2, patch_size=16)
    loading.load_strict(vae, loading.infinity_vae_state(loading.read_checkpoint(vae_file), vae.state_dict().keys()),
                        ignore=loading.INFINITY_VAE_IGNORED, what=f"Infinity VAE ({vae_file})")
    if isinstance(text_encoder, str):
        from arscale.generators.t5_text import load_t5

        t5 = load_t5(text_encoder, device=device, dtype=text_dtype)  # upstream: float16
        if getattr(t5, "width", INFINITY_2B.text_channels) != INFINITY_2B.text_channels:  # e.g. flan-t5-large: would fail only at the first prompt
            raise ArscaleError(f"the text encoder {text_encoder} gives {t5.width}-wide features, but Infinity-2B "
                               f"reads {INFINITY_2B.text_channels} (google/flan-t5-xl)")
        text_encoder = t5.encode
    return InfinityGenerator(model.to(device, dtype), vae.to(device), sampling_config,
                             text_encoder=text_encoder, name="infinity-2b")
