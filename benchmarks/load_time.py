"""Loading a released checkpoint: the former path (build the model with its random fp32 init, copy the file in)
against the shipped one (meta parameters that the file's tensors fill, `arscale.generators.meta_build`).

    OMP_NUM_THREADS=1 python benchmarks/load_time.py                 # VAR-d16 (310 M + VQVAE 109 M parameters)
    OMP_NUM_THREADS=1 python benchmarks/load_time.py --depth 20 --dtypes float32

Writes VAR-d{depth}'s two files with random weights in the released layout (`var_d16.pth`, flat keys;
`vae_ch160v4096z32.pth` with upstream's φ names) to a temporary folder, then loads them once per variant, each in
a fresh Python process (`--repeat` times, alternating), and prints the median wall time of the load (files read,
model built, generator made) and the largest peak resident memory of the process (VmHWM; its RSS after the
imports is given beside it). The digest column hashes every parameter and buffer of the loaded generator: old and
new must agree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from process_memory import as_cell, current_mib, peak_mib


def write_checkpoint(folder: Path, depth: int) -> int:
    """The two released files of VAR-d{depth}, seeded normal weights (std 0.02); returns the parameter count."""
    import torch

    from arscale.generators.meta_build import parameters_on_meta
    from arscale.generators.next_scale import var

    patch_nums = var.PATCH_NUMS_512 if depth == 36 else var.PATCH_NUMS_256
    with parameters_on_meta():  # shapes only: the file's values are drawn below
        model = var.VARModel(var.var_transformer_config(depth=depth, patch_nums=patch_nums, shared_aln=depth == 36),
                             1000)
        vae = var.VQVAE(var.VQVAEConfig(patch_nums=patch_nums))
    g = torch.Generator().manual_seed(0)

    def random_like(t):
        return torch.randn(t.shape, generator=g).mul_(0.02)

    released = {k.split(".", 1)[1]: random_like(v) for k, v in model.state_dict().items()}  # flat upstream names
    torch.save(released, folder / var.VAR_RELEASES[depth])
    count = sum(v.numel() for v in released.values())
    del released
    vae_sd = {k.replace("quantize.phis.", "quantize.quant_resi.qresi_ls."): random_like(v)
              for k, v in vae.state_dict().items()}
    torch.save(vae_sd, folder / var.VAE_FILE)
    return count + sum(v.numel() for v in vae_sd.values())


def load_old(folder: Path, depth: int, dtype):
    """`load_var` as it was: every module built eagerly (random fp32 init on the CPU), the file copied in."""
    import torch

    from arscale.generators import loading
    from arscale.generators.next_scale import var
    from arscale.generators.next_scale.generator import SamplingConfig

    patch_nums = var.PATCH_NUMS_512 if depth == 36 else var.PATCH_NUMS_256
    model = var.VARModel(var.var_transformer_config(depth=depth, patch_nums=patch_nums, shared_aln=depth == 36), 1000)
    model.load_released(loading.read_checkpoint(folder / var.VAR_RELEASES[depth]))
    vae = var.VQVAE(var.VQVAEConfig(patch_nums=patch_nums))
    loading.load_strict(vae, var.vqvae_state(loading.read_checkpoint(folder / var.VAE_FILE)),
                        ignore=loading.VAR_VAE_IGNORED)
    if dtype != torch.float32:
        model = model.to(dtype)
    sampling = SamplingConfig(cfg=1.5, cfg_schedule="linear", top_k=900, top_p=0.96)
    return var.VARGenerator(model, vae, sampling, name=f"var-d{depth}").eval()


def load_new(folder: Path, depth: int, dtype):
    from arscale.generators.next_scale import var

    return var.load_var(depth, weights=folder, dtype=dtype)


def digest(gen) -> str:
    """A hash of every parameter and buffer (names, dtypes and bytes) of the generator's modules."""
    import torch

    h = hashlib.blake2b(digest_size=8)
    for name, t in [*gen.named_parameters(), *gen.named_buffers()]:
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def measure(path: str, folder: Path, depth: int, dtype_name: str) -> dict:
    """One load in this (fresh) process: its wall time, the peak RSS and the loaded weights' digest."""
    import torch

    import arscale.generators.next_scale.var  # noqa: F401  (imports are not part of the load)

    dtype = getattr(torch, dtype_name)
    rss_before = current_mib()
    start = time.perf_counter()
    gen = (load_old if path == "old" else load_new)(folder, depth, dtype)
    seconds = time.perf_counter() - start
    peak = peak_mib()  # read before hashing, which only reads the loaded tensors
    return {"seconds": seconds, "rss_before_mb": rss_before, "peak_mb": peak, "digest": digest(gen)}


def combined(runs: list[dict]) -> dict:
    """One row from a variant's repeated fresh-process runs: the median time, the lowest starting RSS, the highest
    peak, and every digest seen (one, when the loads agree)."""
    def extreme(pick, key):  # None where the platform does not tell (`process_memory`)
        values = [r[key] for r in runs if r[key] is not None]
        return pick(values) if values else None

    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "rss_before_mb": extreme(min, "rss_before_mb"), "peak_mb": extreme(max, "peak_mb"),
            "digest": "/".join(sorted({r["digest"] for r in runs}))}


def print_table(group: str, rows: dict[tuple[str, str], dict]) -> None:
    """Rows keyed (group, path): a dtype or a scorer, then "old" or "new"; then whether old and new agree in each."""
    print(f"\n{group:<12} {'path':<5} {'load s':>7} {'RSS before MiB':>14} {'peak RSS MiB':>12} {'peak - before':>14}"
          "  digest")
    for (name, path), r in rows.items():
        before, peak = r["rss_before_mb"], r["peak_mb"]
        growth = None if before is None or peak is None else peak - before
        print(f"{name:<12} {path:<5} {r['seconds']:>7.1f} {as_cell(before, 0):>14} {as_cell(peak, 0):>12} "
              f"{as_cell(growth, 0):>14}  {r['digest']}")
    for name in dict.fromkeys(name for name, _ in rows):
        digests = {r["digest"] for (n, _), r in rows.items() if n == name}
        print(f"{name}: old and new load {'the same' if len(digests) == 1 else 'DIFFERENT'} weights and buffers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=16, choices=(16, 20, 24, 30, 36))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=("float32", "bfloat16"))
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per variant (median time)")
    parser.add_argument("--tmp", default=None, help="where to write the checkpoint (default: the system's temp)")
    parser.add_argument("--measure", choices=("old", "new"), help=argparse.SUPPRESS)  # a variant's subprocess
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, Path(args.folder), args.depth, args.dtypes[0])))
        return

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        count = write_checkpoint(folder, args.depth)
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**30
        print(f"VAR-d{args.depth} checkpoint: {count / 1e6:.0f} M parameters, {size:.2f} GiB on disk, written in "
              f"{time.perf_counter() - start:.0f} s; torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}")
        runs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.repeat):  # old and new alternate, so a busy spell of the machine hits both
            for dtype in args.dtypes:
                for path in ("old", "new"):
                    out = subprocess.run([sys.executable, __file__, "--measure", path, "--folder", str(folder),
                                          "--depth", str(args.depth), "--dtypes", dtype],
                                         capture_output=True, text=True, check=True)
                    runs.setdefault((dtype, path), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
                    print(f"  {dtype} {path}: {runs[dtype, path][-1]['seconds']:.1f} s", flush=True)  # progress
    print_table("dtype", {key: combined(rs) for key, rs in runs.items()})


if __name__ == "__main__":
    main()
