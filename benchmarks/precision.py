"""Reduced precision on the real architectures: time per image, memory and logit drift of `dtype=` bf16 / fp16
against fp32, side by side in one run.

    python benchmarks/precision.py [--models var-d16 llamagen-c2i-b] [--batch 4] [--device cpu] [--threads 1]

Each model is built at its released size with seeded random weights (no checkpoint needed; the loaders cast
exactly this way), then, per dtype, in a fresh process: raw sampling of `batch` class-conditional images
(full CFG pair per row, the final decode included, timed after one warm-up), the transformer's weight memory,
its KV cache at the last step, peak memory growth while sampling (CUDA: `max_memory_allocated`; CPU: peak RSS,
sampled; the fp32 decoder's activations dominate it at these batch sizes) and the first step's logits against
the first dtype's (largest difference over the largest logit: a check that the cast model is the same model). Random weights give the speed and memory of the real sizes, not the drift of trained weights.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from generation import PeakRSS

from arscale.devices import check_threads, pick_device
from arscale.generators.next_scale.generator import SamplingConfig
from arscale.generators.next_scale.var import (
    PATCH_NUMS_256,
    VQVAE,
    VARGenerator,
    VARModel,
    VQVAEConfig,
    var_transformer_config,
)
from arscale.generators.next_token.llamagen import C2I_MODELS, LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
LABELS = [207, 360, 387, 974, 88, 979, 417, 279]


def build(model: str, device: torch.device, dtype: torch.dtype):
    """The model as its loader builds it (defaults included), random weights seeded the same for every dtype."""
    torch.manual_seed(0)
    if model.startswith("var-d"):
        transformer = VARModel(var_transformer_config(depth=int(model[5:]), patch_nums=PATCH_NUMS_256), 1000)
        vae = VQVAE(VQVAEConfig(patch_nums=PATCH_NUMS_256))
        gen = VARGenerator(transformer.to(dtype), vae, SamplingConfig(cfg=1.5, cfg_schedule="linear", top_k=900,
                                                                       top_p=0.96), name=model).to(device)
    elif model.startswith("llamagen-c2i-"):
        dim, layers, heads, _, image = C2I_MODELS[model.removeprefix("llamagen-c2i-")]
        gpt = LlamaGenGPT(LlamaGenConfig("c2i", dim, layers, heads, 16384, (image // 16) ** 2))
        gen = LlamaGenGenerator(gpt.to(device, dtype), VQGAN(VQGANConfig(image_size=image)).to(device), name=model,
                                cfg=4.0, top_k=2000)
    else:
        raise SystemExit(f"unknown model {model!r}: var-d16 ... var-d30 or llamagen-c2i-b / -l / -xl")
    gen.transformer.eval()
    return gen


def first_logits(gen, labels: list[int]) -> torch.Tensor:
    """The first step's logits (both CFG halves), in fp32."""
    traj = gen.start(labels, 1, seed=0)
    if hasattr(gen, "next_logits"):
        return torch.cat(gen.next_logits(traj)).float()
    return gen.forward_scale(traj).float()


def sample(gen, labels: list[int], seed: int) -> float:
    """Raw sampling of one image per label, as `generate` runs it; returns the KV cache's MiB before the decode."""
    traj = gen.start(labels, 1, seed, unconditional=False)
    if hasattr(gen, "next_logits"):
        for _ in range(gen.num_tokens):
            gen.advance(traj, gen.sample(traj))
    else:
        for _ in range(gen.num_scales):
            gen.step(traj)
    cache = sum(t.numel() * t.element_size() for t in traj.cache.keys + traj.cache.values if t is not None)
    gen.finish(traj)
    return cache / 2**20


def timed(gen, labels: list[int], device: torch.device) -> tuple[float, float, float]:
    """Seconds per image, peak memory growth (MiB) and KV cache MiB of one raw batch, after a warm-up batch."""
    sample(gen, labels, seed=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        cache = sample(gen, labels, seed=1)
        torch.cuda.synchronize()
        return (time.perf_counter() - t0) / len(labels), (torch.cuda.max_memory_allocated() - base) / 2**20, cache
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        cache = sample(gen, labels, seed=1)
        dt = time.perf_counter() - t0
    return dt / len(labels), mem.growth_mib, cache


def measure_one(model: str, dtype: str, labels: list[int], device: torch.device, logits_file: Path) -> dict:
    """One model in one dtype, in this (fresh) process: its row's numbers; the first logits go to `logits_file`."""
    with torch.no_grad():
        gen = build(model, device, DTYPES[dtype])
        weights = sum(t.numel() * t.element_size() for t in gen.transformer.parameters()) / 2**20
        torch.save(first_logits(gen, labels).cpu(), logits_file)
        secs, mib, cache = timed(gen, labels, device)
    return {"secs": secs, "mib": mib, "cache": cache, "weights": weights}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["var-d16", "llamagen-c2i-b"])
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    p.add_argument("--batch", type=int, default=4, help="images per timed batch (class labels)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--one", nargs=3, metavar=("MODEL", "DTYPE", "LOGITS_FILE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads < 1:
        p.error(f"--threads must be at least 1, got {args.threads}")
    check_threads(args.threads)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)  # "auto" as every arscale command takes it
    labels = [LABELS[i % len(LABELS)] for i in range(args.batch)]
    if args.one:  # the child process of one row
        print(json.dumps(measure_one(args.one[0], args.one[1], labels, device, Path(args.one[2]))))
        return
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    print(f"# {where}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}, batch {args.batch}")
    peak = "peak GPU MiB growth" if device.type == "cuda" else "peak RSS growth MiB"
    print(f"| model | dtype | s/image | × first dtype's time | transformer weights MiB | KV cache MiB | {peak} | logits drift |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    common = ["--batch", str(args.batch), "--device", str(device), "--threads", str(args.threads)]
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            ref, ref_secs = None, None
            for dtype in args.dtypes:
                logits_file = Path(tmp) / f"{model}-{dtype}.pt"
                out = subprocess.run([sys.executable, __file__, *common, "--one", model, dtype, str(logits_file)],
                                     check=True, capture_output=True, text=True).stdout
                row = json.loads(out.strip().splitlines()[-1])
                logits = torch.load(logits_file, weights_only=True)
                if ref is None:
                    ref, ref_secs = logits, row["secs"]
                drift = ((logits - ref).abs().max() / ref.abs().max()).item()
                print(f"| {model} | {dtype} | {row['secs']:.3f} | {row['secs'] / ref_secs:.2f} | {row['weights']:.0f} | "
                      f"{row['cache']:.0f} | {row['mib']:.0f} | {drift:.1e} |", flush=True)


if __name__ == "__main__":
    from arscale.errors import one_line_errors

    one_line_errors(main, "precision")
