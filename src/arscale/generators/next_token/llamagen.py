"""LlamaGen (FoundationVision/LlamaGen): class- and text-conditional next-token models, on the shared
next-token machinery.

The transformer is the shared Llama-style `Transformer` (2-D RoPE, RMSNorm, SwiGLU, per-row prefix key
mask, `KVCache`) in LlamaGen's layout with `prefix_rope="zero"`: condition positions get an all-zero
rotation, so their q/k are exactly zero. The loop is the shared `TokenGenerator`. What is LlamaGen-only:
- the condition embedders: `embedding_table` (c2i, one prefix token, null class = num_classes) and the
  caption MLP with the learned `uncond_embedding` (t2i, 120 prefix tokens of T5 features, left-padded);
  the unconditional half of a t2i batch reuses the conditional row's padding mask, as upstream does;
- `VQGAN`, LlamaGen's image tokenizer (`llamagen_vq`; l2-normalised codebook, decode not clamped);
- `sample_upstream`: HF-style filtering and one `torch.multinomial` per step on the global RNG, the
  upstream order used by the parity tests (with `cfg_interval`: cond-only logits late in the raster).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators import loading
from arscale.generators.class_names import class_index, class_prompt_text, is_class_index
from arscale.generators.kv_cache import KVCache
from arscale.generators.meta_build import parameters_on_meta
from arscale.generators.next_token.generator import TokenGenerator
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig
from arscale.generators.next_token.transformer import (
    CaptionEmbedder,
    Transformer,
    TransformerConfig,
    rope_2d_table,
)
from arscale.generators.sampling import (
    cfg_mix,
    check_guidance,
    check_sampler,
    filter_logits_hf,
    greedy_where_overflowed,
)
from arscale.generators.seeding import generator_for
from arscale.generators.t5_text import encoding_flops
from arscale.generators.trajectories import Trajectories

T2I_TOKENS = 120  # the length of LlamaGen's uncond_embedding: t2i models take exactly 120 caption tokens

# upstream's filter acts on any top_p < 1: 0 keeps the most probable token alone (greedy), as in HF's top-p
UPSTREAM_TOP_P_OFF = "≥ 1"


# -- transformer --------------------------------------------------------------------------------------------
class LabelEmbedder(nn.Module):
    def __init__(self, num_classes: int, dim: int, null_class: bool = True):
        super().__init__()
        # the last row is the null class; upstream has it only when trained with class dropout (> 0)
        self.embedding_table = nn.Embedding(num_classes + int(null_class), dim)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels.long()).unsqueeze(1)


class CaptionEmbedderWithNull(CaptionEmbedder):
    def __init__(self, caption_dim: int, dim: int, tokens: int = T2I_TOKENS):
        super().__init__(caption_dim, dim)
        self.register_buffer("uncond_embedding", torch.zeros(tokens, caption_dim))


@dataclass
class LlamaGenConfig:
    model_type: str = "t2i"  # or "c2i"
    dim: int = 1280
    n_layer: int = 36
    n_head: int = 20
    vocab_size: int = 16384
    block_size: int = 1024  # image tokens; grid = sqrt(block_size)
    num_classes: int = 1000
    caption_dim: int = 2048
    multiple_of: int = 256
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    ffn_dim_multiplier: float | None = None
    class_dropout_prob: float = 0.1  # c2i: > 0 gives the label table its null-class row (needed for CFG)
    # c2i: upstream's cls_token_num. The label is always one prefix token, but upstream's RoPE table starts with
    # this many all-zero rows, so for k > 1 image position p reads row p of that table (shifted by k - 1).
    c2i_rope_prefix: int = 1

    @property
    def has_null_class(self) -> bool:
        return self.model_type == "t2i" or self.class_dropout_prob > 0

    @property
    def cls_token_num(self) -> int:
        return T2I_TOKENS if self.model_type == "t2i" else 1

    @classmethod
    def from_upstream(cls, kw: dict) -> LlamaGenConfig:
        if kw.get("n_kv_head") not in (None, kw["n_head"]):
            raise ArscaleError("grouped-query attention (n_kv_head < n_head) is not supported: no released LlamaGen "
                               "model uses it, and upstream's KV-cached generate() cannot run it")
        if kw["model_type"] == "t2i" and int(kw.get("cls_token_num", T2I_TOKENS)) != T2I_TOKENS:
            raise ArscaleError(f"LlamaGen t2i models take exactly {T2I_TOKENS} caption tokens, got cls_token_num "
                               f"{kw['cls_token_num']}")
        return cls(model_type=kw["model_type"], dim=kw["dim"], n_layer=kw["n_layer"], n_head=kw["n_head"],
                   vocab_size=kw["vocab_size"], block_size=kw["block_size"], num_classes=kw["num_classes"],
                   caption_dim=kw["caption_dim"], multiple_of=kw["multiple_of"], norm_eps=kw["norm_eps"],
                   rope_base=float(kw["rope_base"]), ffn_dim_multiplier=kw.get("ffn_dim_multiplier"),
                   class_dropout_prob=float(kw.get("class_dropout_prob", 0.1)),
                   c2i_rope_prefix=int(kw.get("cls_token_num", 1)) if kw["model_type"] == "c2i" else 1)


class LlamaGenGPT(Transformer):
    """The shared transformer with LlamaGen's condition embedder; key names match released checkpoints."""

    def __init__(self, cfg: LlamaGenConfig):
        grid = round(cfg.block_size ** 0.5)
        if grid * grid != cfg.block_size:
            raise ArscaleError(f"block_size {cfg.block_size} is not a square number of image tokens")
        super().__init__(TransformerConfig(
            dim=cfg.dim, n_layer=cfg.n_layer, n_head=cfg.n_head, vocab_size=cfg.vocab_size, grid=grid,
            cls_token_num=cfg.cls_token_num, caption_dim=cfg.caption_dim, multiple_of=cfg.multiple_of,
            norm_eps=cfg.norm_eps, rope_base=cfg.rope_base, prefix_rope="zero",
            ffn_dim_multiplier=cfg.ffn_dim_multiplier))
        self.llamagen = cfg
        if cfg.model_type == "c2i" and cfg.c2i_rope_prefix != 1:
            if cfg.c2i_rope_prefix < 1:
                raise ArscaleError(f"c2i cls_token_num must be >= 1, got {cfg.c2i_rope_prefix}")
            self.rope = rope_2d_table(replace(self.config, cls_token_num=cfg.c2i_rope_prefix))
        if cfg.model_type == "c2i":
            self.cls_embedding = LabelEmbedder(cfg.num_classes, cfg.dim, cfg.has_null_class)
        elif cfg.model_type == "t2i":
            self.cls_embedding = CaptionEmbedderWithNull(cfg.caption_dim, cfg.dim)
        else:
            raise ArscaleError(f"unknown LlamaGen model_type {cfg.model_type!r}; use c2i or t2i")

    def condition_prefix(self, cond: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """CFG prefix for B rows: labels [B] or left-padded captions [B, 120, Dc] (+ mask [B, 120]).

        Returns (prefix embeddings [2B, P, dim] = [cond; uncond], key mask [2B, P])."""
        B = cond.shape[0]
        if self.llamagen.model_type == "c2i":
            # without a null class (no CFG possible) the unconditional half repeats the condition
            null = cond.long()
            if self.llamagen.has_null_class:
                null = torch.full_like(null, self.llamagen.num_classes)
            labels = torch.cat([cond.long(), null])
            key_mask = torch.ones(2 * B, 1, dtype=torch.bool, device=cond.device)
            return self.cls_embedding(labels), key_mask
        cond = cond.float()  # a T5 run in bf16 / fp16: one dtype into the autocast, whatever the GPT's
        null = torch.zeros_like(cond) + self.cls_embedding.uncond_embedding
        mask = torch.ones(cond.shape[:2], dtype=torch.bool, device=cond.device) if mask is None else mask.bool()
        with self.precision():  # fp32 caption features into bf16 / fp16 weights
            return self.cls_embedding(torch.cat([cond, null])), torch.cat([mask, mask])


def gpt_state(obj) -> dict[str, torch.Tensor]:
    return loading.llamagen_state(obj)


# -- generator ----------------------------------------------------------------------------------------------


def left_pad_captions(features: Sequence[torch.Tensor], length: int = T2I_TOKENS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-prompt features [L_i, D] -> ([B, length, D] with the valid tokens at the end, zeros before; mask)."""
    D = features[0].shape[-1]
    out = torch.zeros(len(features), length, D)
    mask = torch.zeros(len(features), length, dtype=torch.bool)
    for i, f in enumerate(features):
        n = min(int(f.shape[0]), length)
        if n == 0:
            raise ArscaleError("a prompt produced no caption tokens")
        out[i, length - n:] = f[:n].float().cpu()
        mask[i, length - n:] = True
    return out, mask


def check_cfg_interval(value) -> None:
    """Upstream's `--cfg-interval` (a float): guidance until decode step `value`; -1 (or below) keeps it on."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ArscaleError(f"cfg_interval must be a number (-1: guidance at every token), got {value!r}")


class LlamaGenGenerator(TokenGenerator):
    """Prompts are class labels (c2i) or strings encoded by `text_encoder` (t2i)."""

    def __init__(self, gpt: LlamaGenGPT, vq: VQGAN, *, name: str = "llamagen", cfg: float = 4.0,
                 temperature: float = 1.0, top_k: int = 2000, top_p: float = 1.0, cfg_interval: int = -1,
                 text_encoder=None, sample_logits: bool = True):
        check_sampler(temperature, top_k, top_p=top_p, zero_temperature=True, top_p_off=UPSTREAM_TOP_P_OFF)
        check_cfg_interval(cfg_interval)
        super().__init__(gpt, vq, self._no_encoder, name=name, cfg=cfg, temperature=temperature, top_k=top_k,
                         top_p=top_p)
        self.gpt, self.cfg_interval, self.text_encoder = gpt, cfg_interval, text_encoder
        self.sample_logits = sample_logits  # upstream's switch: False takes the most probable token (no RNG draw)
        self.class_names: list[str] | None = None  # c2i: what a scorer reads for each class index
        self.class_conditional = gpt.llamagen.model_type == "c2i"

    def prompt_text(self, prompt) -> str:
        if self.gpt.llamagen.model_type == "c2i":
            return class_prompt_text(self.name, self.class_names, prompt)
        return prompt

    @staticmethod
    def _no_encoder(_prompts):  # start() is overridden; the base class's encoder slot is unused
        raise AssertionError("unreachable")

    @property
    def background_code(self) -> int:
        """Unfilled preview positions: the code of a mid-grey patch (real models have no ShapeWorld canvas)."""
        if self._background_code is None:
            weight = next(self.tokenizer.parameters())  # a VQGAN cast to bf16 encodes bf16 pixels
            grey = torch.full((1, 3, self.image_size, self.image_size), 0.5, device=weight.device, dtype=weight.dtype)
            self._background_code = int(torch.mode(self.tokenizer.encode(grey).flatten()).values)
        return self._background_code

    def needs_unconditional(self, scale: float | None = None) -> bool:
        """Upstream mixes only above 1; at or below it samples from the conditional logits alone (None: `cfg`)."""
        return float(self.cfg if scale is None else scale) > 1.0

    def start(self, prompts: Sequence, rows_per_prompt: int | Sequence[int], seed: int, *, prompt_offset: int = 0,
              cfg: float | None = None, unconditional: bool = True) -> Trajectories:
        text_flops = 0.0  # a T5 encoder's, for t2i
        if self.gpt.llamagen.model_type == "c2i":
            prompts = [class_index(p) for p in prompts]
            for p in prompts:
                if not is_class_index(p, self.gpt.llamagen.num_classes):
                    raise ArscaleError(f"class label must be an integer in [0, {self.gpt.llamagen.num_classes}), "
                                       f"got {p!r}")
            cond, mask = torch.tensor(list(prompts)), None
        else:
            if self.text_encoder is None:
                raise ArscaleError("this LlamaGen t2i generator has no text encoder; load it with text_encoder=... "
                                   "(Flan-T5-XL) or call start_from_condition with caption features")
            encoded, text_flops = encoding_flops(self.text_encoder, lambda: self.text_encoder(list(prompts)))
            # either (left-padded features [B, 120, D], mask) like T5TextEncoder.llamagen, or per-prompt features
            cond, mask = encoded if isinstance(encoded, tuple) else left_pad_captions(encoded)
        traj = self.start_from_condition(cond, mask, prompts, rows_per_prompt, seed, prompt_offset=prompt_offset,
                                         cfg=cfg, unconditional=unconditional)
        traj.extra["text_flops"] = text_flops
        return traj

    @torch.no_grad()
    def start_from_condition(self, cond: torch.Tensor, mask: torch.Tensor | None, prompts: Sequence,
                             rows_per_prompt: int | Sequence[int], seed: int, *, prompt_offset: int = 0,
                             cfg: float | None = None, unconditional: bool = True) -> Trajectories:
        """Per-prompt labels [P] or left-padded captions [P, 120, Dc] with masks [P, 120]; prefill both halves
        (only the conditional one with `unconditional=False` at cfg <= 1, see `TokenGenerator.start`)."""
        scale = float(self.cfg if cfg is None else cfg)
        check_guidance(scale)
        if scale > 1.0 and not self.gpt.llamagen.has_null_class:
            raise ArscaleError(f"cfg {scale} needs a null class, but this c2i model was trained without class "
                               "dropout (class_dropout_prob 0); use cfg <= 1")
        halves = self._halves(scale, unconditional)
        traj = Trajectories.for_prompts(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset, halves=halves)
        R, dev = len(traj), self.device
        idx = traj.prompt_index.to(cond.device)
        prefix, key_mask = self.gpt.condition_prefix(cond[idx].to(dev), None if mask is None else mask[idx].to(dev))
        prefix, key_mask = prefix[:halves * R], key_mask[:halves * R]  # [cond; uncond]: the first half is cond
        traj.cache = KVCache(self.gpt.config.n_layer, self.prefix_len + self.num_tokens)
        logits = self.gpt(prefix, key_mask, start=0, cache=traj.cache)[:, -1]
        traj.paired["next_logits"] = logits
        traj.paired["prefix_mask"] = key_mask
        traj.rows["tokens"] = torch.full((R, self.num_tokens), -1, dtype=torch.long, device=dev)
        traj.rows["guidance"] = torch.full((R,), scale, device=dev)
        traj.extra["transformer_flops"] = self.prefill_flops(R, halves)
        return traj

    def guided_logits(self, traj: Trajectories) -> torch.Tensor:
        cond, uncond = self.next_logits(traj)
        # upstream's decode-loop index i = step - 1: cond-only logits once i > cfg_interval
        if self.cfg_interval > -1 and traj.step - 1 > self.cfg_interval:
            return cond
        # upstream mixes only when cfg_scale > 1; at or below 1 it samples from the conditional logits alone
        g = traj.rows["guidance"]
        return torch.where((g > 1.0).view(-1, 1).to(cond.device), cfg_mix(cond, uncond, g), cond)

    def probs_upstream(self, logits: torch.Tensor) -> torch.Tensor:
        """LlamaGen's sampling distribution: temperature, HF-style top-k / top-p, softmax."""
        logits = greedy_where_overflowed(logits, logits / max(self.temperature, 1e-5))  # a cfg near float32's largest
        if self.top_k > 0 or self.top_p < 1.0:
            logits = filter_logits_hf(logits, self.top_k, self.top_p)
        return logits.softmax(-1)

    def sample(self, traj: Trajectories, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Per-row seeded draws (batch-independent, what strategies use) from LlamaGen's own distribution."""
        probs = self.probs_upstream(self.guided_logits(traj) if logits is None else logits)
        if not self.sample_logits:  # upstream's greedy switch: the most probable token, no draw
            return probs.topk(1, dim=-1).indices.squeeze(1)
        out = torch.empty(len(traj), dtype=torch.long, device=probs.device)
        for r, key in enumerate(traj.seed_key):
            out[r] = torch.multinomial(probs[r], 1, generator=generator_for(key, traj.step, probs.device))[0]
        return out

    def sample_upstream(self, traj: Trajectories) -> tuple[torch.Tensor, torch.Tensor]:
        """One multinomial over the whole batch on the global RNG (seed with torch.manual_seed): (tokens, probs).

        With `sample_logits=False` it is upstream's greedy `topk(probs, 1)` and draws nothing."""
        probs = self.probs_upstream(self.guided_logits(traj))
        if not self.sample_logits:
            return probs.topk(1, dim=-1).indices.squeeze(1), probs
        return torch.multinomial(probs, num_samples=1).squeeze(1), probs


# -- released checkpoints -----------------------------------------------------------------------------------
C2I_MODELS = {  # name: (dim, layers, heads, file, image size)
    "b": (768, 12, 12, "c2i_B_256.pt", 256), "l": (1024, 24, 16, "c2i_L_256.pt", 256),
    "l-384": (1024, 24, 16, "c2i_L_384.pt", 384), "xl": (1280, 36, 20, "c2i_XL_384.pt", 384),
    "xxl": (1536, 48, 24, "c2i_XXL_384.pt", 384), "3b": (3200, 24, 32, "c2i_3B_384.pt", 384),
}
HUB_REPO = "FoundationVision/LlamaGen"  # c2i models and both VQ tokenizers
HUB_REPO_T2I = "peizesun/llamagen_t2i"  # t2i models, as listed in LlamaGen's README


def _check_options(model: str, sampling: dict, others: tuple[str, ...], dtype) -> torch.dtype:
    """An option the loader does not take, or a dtype it does not know, fails in one line before the (large)
    model is built; returns the GPT's dtype."""
    from arscale.generators.registry import check_options

    check_options(model, sampling, ("cfg", "temperature", "top_k", "top_p", "cfg_interval", "sample_logits"),
                  others + ("dtype",))
    check_sampler(sampling.get("temperature", 1.0), sampling.get("top_k", 0), top_p=sampling.get("top_p", 1.0),
                  zero_temperature=True, top_p_off=UPSTREAM_TOP_P_OFF)
    check_cfg_interval(sampling.get("cfg_interval", -1))
    return loading.transformer_dtype(model, dtype)


def _vq(path_or_hub, filename: str, image_size: int) -> VQGAN:
    with parameters_on_meta():  # filled by the file's tensors: no random init
        vq = VQGAN(VQGANConfig(image_size=image_size))
    path = loading.resolve(path_or_hub, filename)
    obj = loading.read_checkpoint(path)
    loading.load_strict(vq, loading.upcast(loading.unwrap(obj, loading.GPT_CONTAINERS)),
                        ignore=loading.LLAMAGEN_VQ_IGNORED, what=f"LlamaGen {path}")
    return vq


def load_llamagen_c2i(size: str = "xl", weights: str | Path | None = None, vq_weights: str | Path | None = None,
                      device: str | torch.device = "cpu", dtype: str | torch.dtype = torch.float32,
                      **sampling) -> LlamaGenGenerator:
    """`dtype="bfloat16"` runs the GPT as upstream's sample scripts do (`--precision bf16`); the VQ stays fp32."""
    dim, layers, heads, filename, image = C2I_MODELS[size]
    dtype = _check_options(f"llamagen-c2i-{size}", sampling, ("device", "weights", "vq_weights"), dtype)
    weights = weights or os.environ.get("ARSCALE_LLAMAGEN_WEIGHTS")
    if weights is None:
        raise ArscaleError(f"LlamaGen c2i-{size} needs its released weights: download {filename} and "
                           f"vq_ds16_c2i.pt from https://huggingface.co/{HUB_REPO} and pass weights=PATH "
                           f"(a file or directory; `generate --weights` or `bench --model-weights`) or weights={HUB_REPO!r}, or set ARSCALE_LLAMAGEN_WEIGHTS")
    # both files found before the (large) model is built: a wrong path fails at once
    model_file = loading.resolve(weights, filename)
    vq_file = loading.resolve(vq_weights or weights, "vq_ds16_c2i.pt", beside=vq_weights is None)
    with parameters_on_meta(dtype):  # filled by the file's tensors, cast to `dtype` as assigned: no random init
        gpt = LlamaGenGPT(LlamaGenConfig("c2i", dim, layers, heads, 16384, (image // 16) ** 2))
    loading.load_strict(gpt, gpt_state(loading.read_checkpoint(model_file)),
                        ignore=loading.LLAMAGEN_IGNORED, what=f"LlamaGen {model_file}")
    vq = _vq(vq_file, "vq_ds16_c2i.pt", image)
    kw = {"cfg": 4.0, "top_k": 2000, "top_p": 1.0, "temperature": 1.0, **sampling}
    return LlamaGenGenerator(gpt.to(device, dtype), vq.to(device), name=f"llamagen-c2i-{size}", **kw)


def load_llamagen_t2i_xl(weights: str | Path | None = None, vq_weights: str | Path | None = None,
                         device: str | torch.device = "cpu", text_encoder="google/flan-t5-xl", stage: int = 2,
                         dtype: str | torch.dtype = torch.float32, text_dtype: str | torch.dtype | None = None,
                         **sampling) -> LlamaGenGenerator:
    """`dtype=` is the GPT's (upstream samples in bf16), `text_dtype=` the T5's (upstream: bf16); the VQ stays fp32."""
    dtype = _check_options("llamagen-t2i-xl", sampling, ("device", "weights", "vq_weights", "text_encoder", "stage",
                                                          "text_dtype"), dtype)
    loading.check_text_dtype(text_dtype)
    if isinstance(stage, bool) or stage not in (1, 2):  # else any other value read as stage 1
        raise ArscaleError(f"llamagen-t2i-xl: stage is 1 (256 px) or 2 (512 px), got {stage!r}")
    filename, image = ("t2i_XL_stage2_512.pt", 512) if stage == 2 else ("t2i_XL_stage1_256.pt", 256)
    weights = weights or os.environ.get("ARSCALE_LLAMAGEN_T2I_WEIGHTS")
    if isinstance(text_encoder, str) and text_encoder == "google/flan-t5-xl":
        text_encoder = os.environ.get("ARSCALE_T5_WEIGHTS", text_encoder)
    if weights is None:
        raise ArscaleError(f"LlamaGen t2i-XL needs its released weights: download {filename} and vq_ds16_t2i.pt "
                           f"from https://huggingface.co/{HUB_REPO_T2I} (and google/flan-t5-xl for the text) and pass "
                           f"weights=PATH (a file or directory; `generate --weights` or `bench --model-weights`) or weights={HUB_REPO_T2I!r}, or set ARSCALE_LLAMAGEN_T2I_WEIGHTS")
    model_file = loading.resolve(weights, filename)
    vq_file = loading.resolve(vq_weights or weights, "vq_ds16_t2i.pt", beside=vq_weights is None)
    with parameters_on_meta(dtype):  # filled by the file's tensors, cast to `dtype` as assigned: no random init
        gpt = LlamaGenGPT(LlamaGenConfig("t2i", 1280, 36, 20, 16384, (image // 16) ** 2))
    loading.load_strict(gpt, gpt_state(loading.read_checkpoint(model_file)),
                        ignore=loading.LLAMAGEN_IGNORED, what=f"LlamaGen {model_file}")
    vq = _vq(vq_file, "vq_ds16_t2i.pt", image)
    if isinstance(text_encoder, str):
        from arscale.generators.t5_text import load_t5

        t5 = load_t5(text_encoder, device=device, dtype=text_dtype)  # upstream: bfloat16
        if getattr(t5, "width", gpt.llamagen.caption_dim) != gpt.llamagen.caption_dim:  # e.g. flan-t5-large: would fail only at the first prompt
            raise ArscaleError(f"the text encoder {text_encoder} gives {t5.width}-wide features, but LlamaGen t2i-XL "
                               f"reads {gpt.llamagen.caption_dim} (google/flan-t5-xl)")
        text_encoder = t5.llamagen
    kw = {"cfg": 7.5, "top_k": 1000, "top_p": 1.0, "temperature": 1.0, **sampling}
    return LlamaGenGenerator(gpt.to(device, dtype), vq.to(device), name="llamagen-t2i-xl", text_encoder=text_encoder,
                             **kw)


def load_llamagen_c2i_b(**options) -> LlamaGenGenerator:
    return load_llamagen_c2i("b", **options)


def load_llamagen_c2i_l(**options) -> LlamaGenGenerator:
    return load_llamagen_c2i("l", **options)


def load_llamagen_c2i_l_384(**options) -> LlamaGenGenerator:
    return load_llamagen_c2i("l-384", **options)


def load_llamagen_c2i_xl(**options) -> LlamaGenGenerator:
    return load_llamagen_c2i("xl", **options)


def load_llamagen_c2i_xxl(**options) -> LlamaGenGenerator:
    return load_llamagen_c2i("xxl", **options)


def load_llamagen_c2i_3b(**options) -> LlamaGenGenerator:
    return load_llamagen_c2i("3b", **options)
