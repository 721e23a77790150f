"""Peak memory of decoding many rows in one decoder call against in chunks (`decode_pixels`), side by side:

    python benchmarks/decode_memory.py --rows 16 --chunk 4

A VAR generator with VAR's released VQVAE architecture (random weights: memory and time do not depend on them) decodes
`--rows` random latents at 256 px, once per setting, each setting in a fresh process (the peak resident set is per
process): every row in one call (`decode_pixels` at least rows × 256²), then chunks of `--chunk` rows. The table
gives each process's peak resident memory above what it held before the decode, the decode's wall time, and the
largest pixel difference between the two settings' images (batch size moves only the last bits). `--tiny` swaps in
a tiny VQVAE (what the test suite runs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def build(tiny: bool):
    from arscale.generators.next_scale.generator import SamplingConfig
    from arscale.generators.next_scale.var import (
        VQVAE,
        VARGenerator,
        VARModel,
        VQVAEConfig,
        var_transformer_config,
    )

    torch.manual_seed(0)
    if tiny:
        patch_nums, vae = (1, 2, 4), VQVAEConfig(vocab_size=32, code_dim=8, ch=32, ch_mult=(1, 1), num_res_blocks=1,
                                                 patch_nums=(1, 2, 4))
    else:
        patch_nums, vae = VQVAEConfig.patch_nums, VQVAEConfig()
    # the transformer is never run here: the smallest one the generator accepts
    model = VARModel(var_transformer_config(depth=1, embed_dim=32, num_heads=1, patch_nums=patch_nums,
                                            vocab_size=vae.vocab_size, code_dim=vae.code_dim), num_classes=2)
    return VARGenerator(model, VQVAE(vae), SamplingConfig())


def child(rows: int, chunk: int | None, tiny: bool, out: str) -> None:
    """One setting in this process: the decode's peak memory above the baseline, its wall time, the images."""
    sys.path.insert(0, str(HERE))
    from process_memory import current_mib, peak_mib

    torch.set_num_threads(1)
    gen = build(tiny).eval()
    side = gen.tokenizer.quantizer.latent_size
    f_hat = torch.randn(rows, gen.tokenizer.config.code_dim, side, side, generator=torch.Generator().manual_seed(1))
    gen.decode_pixels = (chunk if chunk else rows) * gen.image_size ** 2
    before = current_mib()
    t0 = time.perf_counter()
    with torch.no_grad():
        images = gen._decode_rows(f_hat, None)
    wall = time.perf_counter() - t0
    peak = peak_mib()
    torch.save(images, out)
    print(json.dumps({"peak_above_mib": None if peak is None or before is None else peak - before, "wall_s": wall}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--chunk", type=int, default=4, help="rows per decoder call in the chunked setting")
    p.add_argument("--tiny", action="store_true", help="a tiny VQVAE instead of VAR's (for tests)")
    p.add_argument("--child", nargs=2, metavar=("CHUNK", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rows < 1 or not 1 <= args.chunk <= args.rows:
        p.error("--rows must be >= 1 and --chunk between 1 and --rows")
    if args.child:
        chunk, out = args.child
        child(args.rows, int(chunk) or None, args.tiny, out)
        return
    rows_out, images = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for label, chunk in ((f"one call ({args.rows} rows)", 0), (f"chunks of {args.chunk}", args.chunk)):
            print(f"decoding: {label} ...", file=sys.stderr, flush=True)  # minutes at 256 px
            out = str(Path(tmp) / f"{chunk}.pt")
            cmd = [sys.executable, __file__, "--rows", str(args.rows), "--chunk", str(args.chunk), "--child", str(chunk),
                   out] + (["--tiny"] if args.tiny else [])
            done = subprocess.run(cmd, check=False, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"the {label} process failed:\n{done.stderr.strip()[-2000:]}")
            rows_out.append((label, json.loads(done.stdout.strip().splitlines()[-1])))
            images.append(torch.load(out, weights_only=True))
    diff = (images[0] - images[1]).abs().max().item()
    size = images[0].shape[-1]
    print(f"VAR VQVAE{' (tiny)' if args.tiny else ''} decode of {args.rows} rows at {size} px, one thread\n")
    print("| setting | peak memory above baseline (MiB) | wall (s) |")
    print("|---|---|---|")
    for label, r in rows_out:
        peak = "–" if r["peak_above_mib"] is None else f"{r['peak_above_mib']:.0f}"
        print(f"| {label} | {peak} | {r['wall_s']:.2f} |")
    print(f"\nlargest pixel difference between the two settings: {diff:.2e}")


if __name__ == "__main__":
    main()
