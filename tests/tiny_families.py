"""Tiny random-weight VAR, Infinity and LlamaGen generators (the real engines) and a stand-in scorer, shared
by every test folder."""

from __future__ import annotations

import zlib

import torch
import torch.nn.functional as F

from arscale.generators.next_scale.bsq import BSQAutoEncoder
from arscale.generators.next_scale.generator import SamplingConfig
from arscale.generators.next_scale.infinity import (
    InfinityConfig,
    InfinityGenerator,
    InfinitySampling,
    InfinityTransformer,
)
from arscale.generators.next_scale.infinity_schedule import scale_schedule
from arscale.generators.next_scale.var import (
    VQVAE,
    VARGenerator,
    VARModel,
    VQVAEConfig,
    var_transformer_config,
)
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig


class BrightnessScorer:
    """A stand-in scorer: reward = mean brightness, features = an 8x8 thumbnail."""

    name, input_size = "brightness", 16
    reads_prompts = False  # image-only, like the aesthetic score

    def reward(self, images, prompts):
        return images.mean(dim=(1, 2, 3))

    def features(self, images):
        return F.adaptive_avg_pool2d(images, 8).flatten(1)


def randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Seeded weights of a useful scale (unit-variance outputs), in place; returns the module."""
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.data = torch.randn(p.shape, generator=g) * (0.5 if p.dim() < 2 else 1 / p.shape[-1] ** 0.5)
    return module


def fake_t5(width: int):
    def encode(prompts):  # deterministic per prompt, variable length
        out = []
        for p in prompts:
            g = torch.Generator().manual_seed(zlib.crc32(p.encode()))
            out.append(torch.randn(3 + len(p) % 4, width, generator=g))
        return out
    return encode


def tiny_infinity() -> InfinityGenerator:
    model = InfinityTransformer(InfinityConfig(embed_dim=64, depth=2, num_heads=2, text_channels=128,
                                               text_maxlen=16, codebook_dim=4))
    vae = BSQAutoEncoder(codebook_dim=4, base_ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_size=2)
    randomised(model, 0)
    randomised(vae, 1)
    sampling = InfinitySampling(cfg=3.0, tau=1.0, top_p=0.97, schedule=scale_schedule(1.0, "0.06M"))
    return InfinityGenerator(model, vae, sampling, text_encoder=fake_t5(128), name="tiny-infinity")


def tiny_var() -> VARGenerator:
    pn = (1, 2, 3, 4, 6)
    model = VARModel(var_transformer_config(depth=2, embed_dim=64, num_heads=2, patch_nums=pn, vocab_size=32,
                                            code_dim=8), num_classes=10)
    vae = VQVAE(VQVAEConfig(vocab_size=32, code_dim=8, ch=32, ch_mult=(1, 1), num_res_blocks=1, patch_nums=pn))
    randomised(model, 2)
    randomised(vae, 3)
    return VARGenerator(model, vae, SamplingConfig(cfg=1.5, cfg_schedule="linear", top_k=8, top_p=0.9))


def tiny_llamagen_vq(**options) -> VQGAN:
    """LlamaGen's VQGAN at 8 px with 32 codes, seeded; `options` override VQGANConfig fields."""
    return randomised(VQGAN(VQGANConfig(**{"codebook_size": 32, "codebook_embed_dim": 4, "z_channels": 32, "ch": 32,
                                           "ch_mult": (1, 2), "num_res_blocks": 1, "image_size": 8, **options})), 5)


def tiny_llamagen() -> LlamaGenGenerator:
    gpt = LlamaGenGPT(LlamaGenConfig("c2i", dim=64, n_layer=2, n_head=2, vocab_size=32, block_size=16,
                                     num_classes=10))
    return LlamaGenGenerator(randomised(gpt, 4), tiny_llamagen_vq(), cfg=2.0, top_k=16, top_p=1.0)


def sample_to_end(gen, traj, record=None):
    """Draw every remaining token of a next-token trajectory with the generator's own sampler; `record` collects
    the (conditional, unconditional) logits of each step."""
    while traj.step < gen.num_tokens:
        if record is not None:
            record.append(gen.next_logits(traj))
        gen.advance(traj, gen.sample(traj))
    return traj


def finished_images(gen, prompts, rows_per_prompt: int = 1) -> torch.Tensor:
    """Raw sampling to the end of either kind of generator (every scale, or every token with its own sampler),
    seeded 0: the decoded images [R, 3, H, W]."""
    with torch.no_grad():
        traj = gen.start(prompts, rows_per_prompt, seed=0)
        if hasattr(gen, "num_scales"):
            while traj.step < gen.num_scales:
                gen.step(traj)
        else:
            sample_to_end(gen, traj)
        return gen.finish(traj)


def shrink_released_var(monkeypatch, depth: int = 1, patch_nums=(1, 2, 3)) -> None:
    """`load_var` (and the names it reads) builds VAR at a test size: `depth` blocks 32 wide, a 16-code VQVAE and
    `patch_nums` scales, whatever depth the loader asks for."""
    from arscale.generators.next_scale import var as var_module

    real_config, real_vae_config = var_module.var_transformer_config, var_module.VQVAEConfig
    monkeypatch.setattr(var_module, "PATCH_NUMS_256", patch_nums)
    monkeypatch.setattr(var_module, "var_transformer_config", lambda **kw: real_config(
        depth=depth, embed_dim=32, num_heads=2, patch_nums=patch_nums, vocab_size=16, code_dim=4))
    monkeypatch.setattr(var_module, "VQVAEConfig", lambda **kw: real_vae_config(
        vocab_size=16, code_dim=4, ch=32, ch_mult=(1, 1), num_res_blocks=1, patch_nums=patch_nums))


def count_scale_flops(gen) -> list[float]:
    """Make `gen.transformer.forward_scale` append torch's FLOP count of each call to the list returned (the
    counter sees every linear layer, not the fused attention on CPU)."""
    from torch.utils.flop_counter import FlopCounterMode

    counted, forward_scale = [], gen.transformer.forward_scale

    def counting(*args, **kwargs):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = forward_scale(*args, **kwargs)
        counted.append(counter.get_total_flops())
        return out

    gen.transformer.forward_scale = counting
    return counted
