"""Analytic FLOPs of TTS on the real model sizes (no weights, no GPU: models are built on the meta device).

Infinity-2B at 1024x1024 (1M 1:1 schedule, 13 scales, 10,521 tokens per image):
- one raw image: every scale for 1 row (both CFG halves), one final VAE decode;
- TTS-VAR N=8 with the paper's batch schedule (8,8,8,6,6,6,4,2,2,2,1,1,1 rows per scale, clustering after
  scales 2 and 5, resampling after 6 and 9), decoding only where a scorer consumes the images (the rows
  alive at each operation, and the final candidate);
- the official loop: the same schedule, but every row decoded at full size after every scale.
LlamaGen-XL t2i at 512x512 (1,024 tokens, 120 caption tokens): one raw image vs ScalingAR with N=8 rows
from the start (the upper bound; adaptive termination only lowers it, and the run's CostRecord reports what
was spent).

Usage: python benchmarks/flops_real.py   (prints a markdown table)
"""

from __future__ import annotations

import torch
from torch import nn

from arscale.generators.next_scale.bsq import BSQAutoEncoder
from arscale.generators.next_scale.infinity import (
    INFINITY_2B,
    InfinityGenerator,
    InfinitySampling,
    InfinityTransformer,
)
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGPT
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig
from arscale.search.schedule import build_schedule

T5_TOKENS = 32  # a typical prompt; cross-attention cost grows with it but is small either way


def conv_flops(module: nn.Module, shape: tuple[int, ...]) -> float:
    """2 x multiply-adds of every convolution in one forward of `module` on a meta tensor of `shape`."""
    total = 0.0

    def hook(mod, _inp, out):
        nonlocal total
        total += 2.0 * mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups * out.numel()

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        module(torch.empty(shape, device="meta"))
    for h in handles:
        h.remove()
    return total


def infinity_rows() -> tuple[list[tuple[str, float, float, int]], tuple[int, ...]]:
    """(run, transformer FLOPs, decode FLOPs, decodes) rows and the TTS-VAR batch schedule."""
    with torch.device("meta"):
        model = InfinityTransformer(INFINITY_2B)
        vae = BSQAutoEncoder(codebook_dim=32, base_ch=128, ch_mult=(1, 2, 4, 4, 4), num_res_blocks=2, patch_size=16)
    gen = InfinityGenerator(model, vae, InfinitySampling(h_div_w=1.0, pixels="1M"))
    _, H, W = gen.schedule[-1]
    decode = conv_flops(vae.decoder, (1, 32, H, W))
    K = gen.num_scales

    def transformer(batch: list[int]) -> float:
        return sum(gen.flops_per_scale(b, T5_TOKENS)[k] for k, b in enumerate(batch))

    raw_t = transformer([1] * K)
    # The paper's N=8 run: 8 rows per prompt start, 1 is kept.
    plan = build_schedule(K, 8)
    tts_t = transformer(list(plan.batch))
    consumed = sum(plan.batch[k] for k in plan.cluster_at + plan.resample_at) + plan.batch[-1]
    every_scale = sum(plan.batch)
    small = gen.decode_flops(1, 224)  # the scorers' input size (DINOv2 / ImageReward): downsampled decodes
    partial = consumed - plan.batch[-1]  # rows decoded at the operations; the final candidates at full size
    return [
        ("raw, 1 image", raw_t, decode, 1),
        ("TTS-VAR N=8, partial decodes at 224 px (default preview)", tts_t,
         small * partial + decode * plan.batch[-1], consumed),
        ("TTS-VAR N=8, every consumed decode at full size", tts_t, decode * consumed, consumed),
        ("TTS-VAR N=8, official loop (decode every scale, full size)", tts_t, decode * every_scale, every_scale),
    ], plan.batch


def llamagen_rows() -> list[tuple[str, float, float, int]]:
    """(run, transformer FLOPs, decode FLOPs, decodes)."""
    with torch.device("meta"):
        gpt = LlamaGenGPT(LlamaGenConfig("t2i", 1280, 36, 20, 16384, 1024))
        vq = VQGAN(VQGANConfig(image_size=512))
    P, T = gpt.prefix_len, gpt.config.num_tokens
    per_row = sum(gpt.flops_per_position(i + 1) for i in range(P)) + sum(
        gpt.flops_per_position(P + s + 1) for s in range(T - 1))
    cfg_rows = 2  # conditional and unconditional halves
    decode = conv_flops(nn.Sequential(vq.post_quant_conv, vq.decoder), (1, 8, vq.grid, vq.grid))
    return [
        ("raw, 1 image", cfg_rows * per_row, decode, 1),
        ("ScalingAR N=8 (upper bound: no row terminated early)", 8 * cfg_rows * per_row, 8 * decode, 8),
    ]


def main() -> None:
    inf, batch = infinity_rows()
    lines = ["| model | run | transformer TFLOPs | decodes | decode TFLOPs | total TFLOPs | x raw |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, rows in (("Infinity-2B 1024²", inf), ("LlamaGen-XL t2i 512²", llamagen_rows())):
        base = rows[0][1] + rows[0][2]
        for run, t, d, n in rows:
            lines.append(f"| {name} | {run} | {t / 1e12:.1f} | {n} | {d / 1e12:.1f} | {(t + d) / 1e12:.1f} | "
                         f"{(t + d) / base:.2f} |")
    print("\n".join(lines))
    print(f"\nTTS-VAR N=8 rows per scale: {', '.join(map(str, batch))}")


if __name__ == "__main__":
    main()
