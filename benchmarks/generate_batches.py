"""Many raw images with `arscale generate --n N`: in batches of `--batch` (the default) against one batch of all
N, side by side, each run a fresh process:

    python benchmarks/generate_batches.py --n 1000 --models shapeworld-var --threads 2
    python benchmarks/generate_batches.py --n 256 --models shapeworld-ar --threads 2

Prints wall seconds (the command's own, loading included), the process's peak resident memory, and whether
every image equals the one-batch run's (copy i of the prompt is global prompt i in either layout).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_BATCH = 32  # `arscale generate`'s --batch default


def run(model: str, n: int, batch: int, threads: int, out: Path) -> dict:
    """One `arscale generate` in a child process; its own peak RSS from wait4 (not the largest of all children)."""
    argv = [sys.executable, "-m", "arscale.cli", "generate", "a photo of a red circle", "--model", model,
            "--n", str(n), "--batch", str(batch), "--threads", str(threads), "--out", str(out)]
    t0 = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed")
    kib = usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss  # bytes on macOS, KiB on Linux
    return {"wall": time.perf_counter() - t0, "peak_mib": kib / 1024}


def images(folder: Path, model: str, n: int) -> list[np.ndarray]:
    digits = max(2, len(str(n - 1)))
    return [np.asarray(Image.open(folder / f"{model}_raw_{i:0{digits}d}.png")) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--models", default="shapeworld-var,shapeworld-ar")
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    print("| model | N | --batch | wall s | peak RSS MiB | images equal to one batch's |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            folders = {b: Path(tmp) / f"{model}-{b}" for b in (args.batch, args.n)}
            results = {b: run(model, args.n, b, args.threads, folder) for b, folder in folders.items()}
            whole = images(folders[args.n], model, args.n)
            for b, r in results.items():
                same = sum(bool((a == c).all()) for a, c in zip(images(folders[b], model, args.n), whole))
                print(f"| {model} | {args.n} | {b} | {r['wall']:.1f} | {r['peak_mib']:.0f} | {same} / {args.n} |")


if __name__ == "__main__":
    main()
