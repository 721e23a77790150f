"""ShapeWorld throughput: scene sampling, rendering and exact evaluation (one process, one thread).

    OMP_NUM_THREADS=1 python benchmarks/shapeworld.py [--repeats 3]

Workload: the public suite `shapeworld-v1-eval` (600 prompts, 100 per tag), one scene per prompt.
Each row is the best of ``--repeats`` passes over the 600 items (images/s = 600 / best time).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import io
import platform
import time

import numpy as np
from PIL import Image

from arscale.shapeworld import (
    PUBLIC_SUITE,
    detect,
    evaluate,
    load_suite,
    render,
    render_batch,
    sample_scene,
)


def _degrade(
    image: np.ndarray, rng: np.random.Generator, sigma: float = 0.6, noise: float = 6.0
) -> np.ndarray:
    """Separable Gaussian blur + Gaussian noise, back to uint8 (closer to what a model produces)."""
    t = np.arange(-2, 3, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    x = image.astype(np.float64)
    p = np.pad(x, ((2, 2), (0, 0), (0, 0)), mode="edge")
    x = sum(k[i] * p[i : i + 64] for i in range(5))
    p = np.pad(x, ((0, 0), (2, 2), (0, 0)), mode="edge")
    x = sum(k[i] * p[:, i : i + 64] for i in range(5)) + rng.normal(0, noise, size=x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    records = load_suite(PUBLIC_SUITE)
    n = len(records)
    scenes = [sample_scene(r, np.random.default_rng([0, i])) for i, r in enumerate(records)]
    images = [render(s) for s in scenes]
    rng = np.random.default_rng(0)
    degraded = [_degrade(im, rng) for im in images]
    pngs = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="PNG")
        pngs.append(buf.getvalue())

    def decode(b: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(b)) as im:
            return np.asarray(im.convert("RGB"))

    rows = [
        (
            "sample_scene",
            lambda: [sample_scene(r, np.random.default_rng([1, i])) for i, r in enumerate(records)],
        ),
        ("render (one by one)", lambda: [render(s) for s in scenes]),
        ("render_batch (600)", lambda: render_batch(scenes)),
        ("detect", lambda: [detect(im) for im in images]),
        (
            "evaluate (detect + judge)",
            lambda: [evaluate(im, r) for im, r in zip(images, records, strict=True)],
        ),
        (
            "evaluate, blurred + noisy",
            lambda: [evaluate(im, r) for im, r in zip(degraded, records, strict=True)],
        ),
        (
            "PNG decode + evaluate",
            lambda: [evaluate(decode(b), r) for b, r in zip(pngs, records, strict=True)],
        ),
        (
            "sample + render + evaluate",
            lambda: [
                evaluate(render(sample_scene(r, np.random.default_rng([2, i]))), r)
                for i, r in enumerate(records)
            ],
        ),
    ]
    print(
        f"ShapeWorld throughput, {n} items per pass, best of {args.repeats}; python {platform.python_version()}, "
        f"numpy {np.__version__}, {platform.machine()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    )
    print(f"| {'operation':<28} | {'ms / pass':>10} | {'items/s':>9} |")
    print(f"|{'-' * 30}|{'-' * 12}|{'-' * 11}|")
    for name, fn in rows:
        t = _best(fn, args.repeats)
        print(f"| {name:<28} | {t * 1000:>10.1f} | {n / t:>9.0f} |")


if __name__ == "__main__":
    main()
