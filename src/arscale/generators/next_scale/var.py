"""VAR (FoundationVision/VAR): class-conditional next-scale prediction, on the shared next-scale machinery.

The transformer is the shared `ScaleTransformer` (VAR's blocks: AdaLN, l2-normalised attention, absolute
position table, level embedding) and the loop is the shared `ScaleGenerator` with VAR's linear CFG ramp
(the first scale unguided). What is VAR-only lives here:
- `VQVAE`: the LDM-style conv autoencoder of VAR's tokenizer (the shared `LDMResnetBlock` / `Resample`
  of `conv_autoencoder.py`, a single-`qkv` self-attention at the lowest resolution and in the middle; 3x3
  quant/post-quant convs) around the shared multi-scale residual quantizer;
- the mapping of VAR's released key names onto those modules;
- VAR's exact CFG formula for `step(generator=...)` (the upstream sampling order: one seeded generator for
  the whole batch), used by the parity tests.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators import loading
from arscale.generators.class_names import class_index, class_prompt_text
from arscale.generators.conv_autoencoder import LDMResnetBlock, Resample, group_norm_32
from arscale.generators.meta_build import parameters_on_meta
from arscale.generators.next_scale.conditioning import ClassConditioner
from arscale.generators.next_scale.generator import SamplingConfig, ScaleGenerator
from arscale.generators.next_scale.quantizer import MultiScaleResidualQuantizer
from arscale.generators.next_scale.transformer import ScaleTransformer, ScaleTransformerConfig
from arscale.generators.trajectories import Trajectories

PATCH_NUMS_256 = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
PATCH_NUMS_512 = (1, 2, 3, 4, 6, 9, 13, 18, 24, 32)


# -- tokenizer --------------------------------------------------------------------------------------------
class AttnBlock(nn.Module):
    """Single-head spatial self-attention through one 1x1 `qkv` conv, scale C^-1/2."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm, self.qkv, self.proj_out = group_norm_32(ch), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)
        w = torch.bmm(q.transpose(1, 2), k).mul(C ** -0.5).softmax(dim=2)  # [B, HWq, HWk]
        h = torch.bmm(v, w.transpose(1, 2)).view(B, C, H, W)
        return x + self.proj_out(h)


class _Level(nn.Module):
    def __init__(self, blocks, attns):
        super().__init__()
        self.block, self.attn = nn.ModuleList(blocks), nn.ModuleList(attns)

    def run(self, h):
        for i, b in enumerate(self.block):
            h = b(h)
            if len(self.attn):
                h = self.attn[i](h)
        return h


class _Mid(nn.Module):
    def __init__(self, ch: int, attn: bool):
        super().__init__()
        self.block_1, self.block_2 = LDMResnetBlock(ch, ch), LDMResnetBlock(ch, ch)
        self.attn_1 = AttnBlock(ch) if attn else nn.Identity()

    def forward(self, h):
        return self.block_2(self.attn_1(self.block_1(h)))


class VQEncoder(nn.Module):
    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, z_channels: int,
                 using_sa: bool = True, using_mid_sa: bool = True):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin, last = ch, len(ch_mult) - 1
        for i, mult in enumerate(ch_mult):
            blocks, attns = [], []
            for _ in range(num_res_blocks):
                blocks.append(LDMResnetBlock(cin, ch * mult))
                cin = ch * mult
                if i == last and using_sa:
                    attns.append(AttnBlock(cin))
            level = _Level(blocks, attns)
            if i != last:
                level.downsample = Resample(cin, down=True)
            self.down.append(level)
        self.mid = _Mid(cin, using_mid_sa)
        self.norm_out, self.conv_out = group_norm_32(cin), nn.Conv2d(cin, z_channels, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            h = level.run(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class VQDecoder(nn.Module):
    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, z_channels: int,
                 using_sa: bool = True, using_mid_sa: bool = True):
        super().__init__()
        last = len(ch_mult) - 1
        cin = ch * ch_mult[last]
        self.conv_in = nn.Conv2d(z_channels, cin, 3, padding=1)
        self.mid = _Mid(cin, using_mid_sa)
        levels = []
        for i in reversed(range(len(ch_mult))):
            blocks, attns = [], []
            for _ in range(num_res_blocks + 1):
                blocks.append(LDMResnetBlock(cin, ch * ch_mult[i]))
                cin = ch * ch_mult[i]
                if i == last and using_sa:
                    attns.append(AttnBlock(cin))
            level = _Level(blocks, attns)
            if i != 0:
                level.upsample = Resample(cin, down=False)
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out, self.conv_out = group_norm_32(cin), nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level.run(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


@dataclass
class VQVAEConfig:
    """What the shared generator reads from a tokenizer config (code_dim, vocab_size, image_size)."""

    vocab_size: int = 4096
    code_dim: int = 32
    ch: int = 160
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    patch_nums: tuple[int, ...] = PATCH_NUMS_256
    share_quant_resi: int = 4
    default_qresi_counts: int = 0  # share_quant_resi 0: this many φ (0 = one per scale)
    quant_resi: float = 0.5
    quant_conv_ks: int = 3
    using_sa: bool = True
    using_mid_sa: bool = True
    using_znorm: bool = False  # nearest code by cosine similarity (encoding only)

    @property
    def image_size(self) -> int:
        return self.patch_nums[-1] * 2 ** (len(self.ch_mult) - 1)

    @property
    def num_phi(self) -> int:
        return {0: self.default_qresi_counts or len(self.patch_nums), 1: 1}.get(self.share_quant_resi,
                                                                                   self.share_quant_resi)


class VQVAE(nn.Module):
    """VAR's tokenizer; duck-types the shared `MultiScaleTokenizer` (images in [0, 1] at the edges)."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        c = self.config = config
        self.encoder = VQEncoder(c.ch, c.ch_mult, c.num_res_blocks, c.code_dim, c.using_sa, c.using_mid_sa)
        self.decoder = VQDecoder(c.ch, c.ch_mult, c.num_res_blocks, c.code_dim, c.using_sa, c.using_mid_sa)
        ks = c.quant_conv_ks
        self.quant_conv = nn.Conv2d(c.code_dim, c.code_dim, ks, padding=ks // 2)
        self.post_quant_conv = nn.Conv2d(c.code_dim, c.code_dim, ks, padding=ks // 2)
        # upstream mixes φ with |quant_resi|, and a ratio of (about) 0 makes every φ the identity (no convs)
        ratio = abs(c.quant_resi)
        num_phi = c.num_phi if ratio > 1e-6 else 0
        self.quantize = MultiScaleResidualQuantizer(c.vocab_size, c.code_dim, c.patch_nums, num_phi=num_phi,
                                                    phi_ratio=ratio, using_znorm=c.using_znorm)
        if num_phi:
            self.quantize.phi_for_scale = var_phi_for_scale(num_phi, len(c.patch_nums))

    @property
    def quantizer(self) -> MultiScaleResidualQuantizer:
        return self.quantize

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return self.quantize.patch_nums

    def latent_signed(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> the continuous latent f."""
        return self.quant_conv(self.encoder(x))

    def latent(self, images: torch.Tensor) -> torch.Tensor:
        return self.latent_signed(images * 2 - 1)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.quantize.encode(self.latent(images))

    def fhat_to_signed(self, f_hat: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(f_hat)).clamp(-1, 1)

    def decode_fhat(self, f_hat: torch.Tensor, size: int | None = None) -> torch.Tensor:
        img = (self.fhat_to_signed(f_hat) + 1) / 2
        if size is not None and size != img.shape[-1]:
            img = F.interpolate(img, size=(size, size), mode="area" if size < img.shape[-1] else "bicubic")
        return img.clamp(0, 1)


def var_phi_for_scale(num_phi: int, num_scales: int) -> list[int]:
    """VAR's choice of φ per scale: the tick nearest si/(K-1), ticks in float64 as upstream's numpy.

    With 4 φ and 5 scales, scale 2 (at 0.5) lies halfway between two ticks; float64 rounding decides the tie
    (for index 2), float32 ticks would decide it the other way.
    """
    K = num_phi
    lo = 1 / 3 / K if K == 4 else 1 / 2 / K
    ticks = np.linspace(lo, 1 - lo, K)  # numpy, not torch: the two linspaces round differently for some K
    return [int(np.argmin(np.abs(ticks - (si / (num_scales - 1) if num_scales > 1 else 1.0))))
            for si in range(num_scales)]


_PHI_KEYS = [
    (re.compile(r"^quantize\.quant_resi\.qresi_ls\.(\d+)\."), r"quantize.phis.\1."),
    (re.compile(r"^quantize\.quant_resi\.qresi\."), "quantize.phis.0."),
    (re.compile(r"^quantize\.quant_resi\.(\d+)\."), r"quantize.phis.\1."),
]


def vqvae_state(obj) -> dict[str, torch.Tensor]:
    """VAR's VAE file (flat) -> our key names (φ convs live in the shared quantizer's `phis`)."""
    out = {}
    for k, v in loading.var_state(obj).items():
        for pattern, repl in _PHI_KEYS:
            k = pattern.sub(repl, k)
        out[k] = v
    return out


# -- transformer + generator ------------------------------------------------------------------------------
class VARModel(nn.Module):
    """The shared scale transformer plus the class embedding, laid out so VAR's flat keys map one to one."""

    def __init__(self, config: ScaleTransformerConfig, num_classes: int):
        super().__init__()
        self.transformer = ScaleTransformer(config)
        self.conditioner = ClassConditioner(num_classes, config.width)

    @staticmethod
    def checkpoint_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {(f"conditioner.{k}" if k.startswith("class_emb.") else f"transformer.{k}"): v for k, v in sd.items()}

    def load_released(self, obj, what: str = "VAR checkpoint") -> None:
        ignore = tuple(f"transformer.{p}" for p in loading.VAR_IGNORED)
        try:
            loading.load_strict(self, self.checkpoint_keys(loading.var_state(obj)), ignore=ignore, what=what)
        except ArscaleError as exc:  # name the keys as the file spells them, not with our module prefixes
            raise ArscaleError(re.sub(r"(?<=[\s(])(?:transformer|conditioner)\.", "", str(exc))) from None


def var_transformer_config(*, depth: int, embed_dim: int | None = None, num_heads: int | None = None,
                           patch_nums: Sequence[int] = PATCH_NUMS_256, vocab_size: int = 4096, code_dim: int = 32,
                           shared_aln: bool = False, mlp_ratio: float = 4.0, norm_eps: float = 1e-6,
                           attn_l2_norm: bool = True) -> ScaleTransformerConfig:
    """VAR ties width and heads to depth (C = 64·depth, heads = depth) unless given."""
    C = embed_dim or 64 * depth
    return ScaleTransformerConfig(patch_nums=tuple(patch_nums), vocab_size=vocab_size, code_dim=code_dim, width=C,
                                  depth=depth, heads=num_heads or depth, mlp_ratio=mlp_ratio,
                                  attn_l2_norm=attn_l2_norm, shared_aln=shared_aln, norm_eps=norm_eps, cond_dim=C,
                                  context_dim=0)


class VARGenerator(ScaleGenerator):
    """Prompts are class labels (ints). Guidance ramps linearly from 1 at the first scale (VAR's schedule)."""

    def __init__(self, model: VARModel, vae: VQVAE, sampling: SamplingConfig | None = None, *, name: str = "var"):
        sampling = sampling or SamplingConfig(cfg=1.5, cfg_schedule="linear", top_k=900, top_p=0.96)
        super().__init__(vae, model.transformer, model.conditioner, sampling, name=name)
        self.class_names: list[str] | None = None  # what a scorer reads for each class index
        self.class_conditional = True

    def prompt_text(self, prompt) -> str:
        return class_prompt_text(self.name, self.class_names, prompt)

    def start(self, prompts: Sequence, rows_per_prompt: int | Sequence[int], seed: int, *, prompt_offset: int = 0,
              cfg: float | None = None, unconditional: bool = True) -> Trajectories:
        """Prompts are ImageNet class indices; digit strings ("207", e.g. from the CLI) are accepted too."""
        labels = [class_index(p) for p in prompts]
        return super().start(labels, rows_per_prompt, seed, prompt_offset=prompt_offset, cfg=cfg,
                             unconditional=unconditional)

    def init_guidance(self, traj: Trajectories, cfg: float | None) -> None:
        super().init_guidance(traj, cfg)
        traj.extra["upstream_cfg"] = float(self.sampling.cfg if cfg is None else cfg)  # upstream's Python float

    def guide(self, traj: Trajectories, logits: torch.Tensor, *, upstream: bool = False) -> torch.Tensor:
        """With `upstream`, VAR's own formula (1 + t)·cond - t·uncond, t = cfg·si/(K-1), for bitwise parity: the
        linear ramp's (another schedule has no upstream formula and takes the usual mix)."""
        if not upstream or traj.halves == 1 or self.sampling.cfg_schedule != "linear":
            return super().guide(traj, logits, upstream=False)  # one half: started where t is 0 at every scale
        cond, uncond = logits.chunk(2)
        # upstream's Python floats: ratio = si/(K-1), t = cfg·ratio and 1 + t in double (here on the CPU, which every
        # device can copy from), each rounded once to float32; float32 arithmetic rounds twice (1 ulp off at K = 10).
        # cfg itself as given: the rows' float32 copy of a cfg such as 1.3 is another number
        ratio = traj.step / max(1, self.num_scales - 1)
        cfg = traj.rows["cfg"].cpu().double()
        exact = traj.extra.get("upstream_cfg")
        if exact is not None and bool((cfg == torch.tensor(exact, dtype=torch.float32).double()).all()):
            cfg = torch.full_like(cfg, exact)  # rows still at the cfg they started with (none was given another)
        t = cfg * ratio
        one_plus_t, t = (x.float().to(cond.device).view(-1, 1, 1) for x in (1 + t, t))
        return one_plus_t * cond - t * uncond


# -- released checkpoints ---------------------------------------------------------------------------------
VAR_RELEASES = {16: "var_d16.pth", 20: "var_d20.pth", 24: "var_d24.pth", 30: "var_d30.pth", 36: "var_d36.pth"}
VAE_FILE = "vae_ch160v4096z32.pth"
HUB_REPO = "FoundationVision/var"


def load_var(depth: int = 16, weights: str | Path | None = None, vae_weights: str | Path | None = None,
             device: str | torch.device = "cpu", dtype: str | torch.dtype = torch.float32,
             **sampling) -> VARGenerator:
    """A released VAR model: `weights` is the var_d*.pth file, a directory holding it, or a hub id.

    Without `weights`, the directory in $ARSCALE_VAR_WEIGHTS is used (so the CLI can find them).
    `dtype` ("bfloat16", "float16" or a torch dtype) casts the transformer and its class embedding, which then
    run under autocast (`ScaleTransformer.precision`; upstream's demo: fp32 weights under fp16 autocast); the
    VQVAE stays fp32.
    """
    from arscale.generators.registry import check_options

    check_options(f"var-d{depth}", sampling, [f.name for f in dataclasses.fields(SamplingConfig)],
                  others=("device", "weights", "vae_weights", "dtype"))
    dtype = loading.transformer_dtype(f"var-d{depth}", dtype)
    weights = weights or os.environ.get("ARSCALE_VAR_WEIGHTS")
    if weights is None:
        raise ArscaleError(
            f"VAR-d{depth} needs its released weights: download {VAR_RELEASES[depth]} and {VAE_FILE} from "
            f"https://huggingface.co/{HUB_REPO} and pass weights=PATH (a file or directory; `generate --weights` or `bench --model-weights`) or weights={HUB_REPO!r}, "
            "or set ARSCALE_VAR_WEIGHTS to the download directory"
        )
    # both files found before the (large) model is built: a wrong path fails at once
    model_file = loading.resolve(weights, VAR_RELEASES[depth])
    vae_file = loading.resolve(vae_weights or weights, VAE_FILE, beside=vae_weights is None)
    patch_nums = PATCH_NUMS_512 if depth == 36 else PATCH_NUMS_256
    # meta parameters, filled by the files' tensors (cast to `dtype` as they are assigned): no random init
    with parameters_on_meta(dtype):
        model = VARModel(var_transformer_config(depth=depth, patch_nums=patch_nums, shared_aln=depth == 36), 1000)
    model.load_released(loading.read_checkpoint(model_file), f"VAR-d{depth} weights ({model_file})")
    with parameters_on_meta():
        vae = VQVAE(VQVAEConfig(patch_nums=patch_nums))
    loading.load_strict(vae, vqvae_state(loading.read_checkpoint(vae_file)),
                        ignore=loading.VAR_VAE_IGNORED, what=f"VAR VQVAE weights ({vae_file})")
    defaults = {"cfg": 1.5, "cfg_schedule": "linear", "top_k": 900, "top_p": 0.96}
    defaults.update(sampling)
    if dtype != torch.float32:  # the transformer only: the VQVAE decodes in fp32 (as Infinity's VAE)
        model = model.to(dtype)  # its parameters already are; this casts the float buffers (zero key biases)
    return VARGenerator(model, vae, SamplingConfig(**defaults), name=f"var-d{depth}").to(device).eval()


def load_var_d16(**options) -> VARGenerator:
    return load_var(16, **options)


def load_var_d20(**options) -> VARGenerator:
    return load_var(20, **options)


def load_var_d24(**options) -> VARGenerator:
    return load_var(24, **options)


def load_var_d30(**options) -> VARGenerator:
    return load_var(30, **options)


def load_var_d36(**options) -> VARGenerator:
    return load_var(36, **options)
