"""At which scale does ShapeWorld-VAR's drawing of a single object go wrong?

For clean renders of one object of each class (optionally of given colours), the image's true codes are
kept for the scales before k and the model samples scale k and every later one itself, with its own
guidance and sampler, prompted `a photo of a {class}`; the exact evaluator then judges each decoded image
as a single_object prompt. k = K (nothing sampled) is the tokenizer's reconstruction; k = 0 is plain raw
sampling (the image no longer matters). The column where accuracy falls is the scale whose tokens,
drawn independently of each other, stop agreeing on the object's outline.

    OMP_NUM_THREADS=2 python benchmarks/where_shapes_break.py --per-class 300 [--colors yellow red] \\
        [--weights SHIPPED_DIR NEW_DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def clean_objects(cls: str, color: str | None, count: int, seed: int) -> torch.Tensor:
    """`count` renders [count, 3, 64, 64] in [0, 1] of one object of class `cls` (colour random when None)."""
    from arscale import shapeworld

    rng = np.random.default_rng(seed)
    md = {"tag": "colors", "include": [{"class": cls, "count": 1, **({"color": color} if color else {})}]}
    pixels = shapeworld.render_batch([shapeworld.sample_scene(md, rng) for _ in range(count)])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255


@torch.no_grad()
def accuracy_by_start_scale(gen, images: torch.Tensor, cls: str, starts: list[int], seed: int,
                            batch: int) -> dict[int, float]:
    """Single-object accuracy of the decoded images when sampling starts at each scale in `starts`."""
    from arscale import shapeworld
    from arscale.train.generated_latents import continued_latents

    judge = {"tag": "single_object", "include": [{"class": cls, "count": 1}], "prompt": f"a photo of a {cls}"}
    out = {}
    for k in starts:
        hits = 0
        for s in range(0, len(images), batch):
            chunk = images[s:s + batch]
            f_hat = continued_latents(gen, gen.tokenizer, chunk, [judge["prompt"]] * len(chunk),
                                      torch.full((len(chunk),), k), seed=seed + s)
            pixels = (gen.tokenizer.decode_fhat(f_hat) * 255).round().byte().permute(0, 2, 3, 1).numpy()
            hits += sum(bool(shapeworld.evaluate(px, judge).correct) for px in pixels)
        out[k] = hits / len(images)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="+", default=[None], help="ShapeWorld-VAR weights folders (default: shipped)")
    ap.add_argument("--per-class", type=int, default=300, help="objects per class and colour (default %(default)s)")
    ap.add_argument("--colors", nargs="+", default=[None], help="object colours (default: uniformly random)")
    ap.add_argument("--classes", nargs="+", default=None, help="default: all four")
    ap.add_argument("--starts", type=int, nargs="+", default=None, help="start scales (default: every one, K..0)")
    ap.add_argument("--seed", type=int, default=4711, help="scene and sampling seed (default %(default)s)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.per_class < 1 or args.batch < 1:
        ap.error("--per-class and --batch must be >= 1")

    from arscale import shapeworld
    from arscale.errors import ArscaleError
    from arscale.generators.next_scale.shapeworld import load_shapeworld_var

    classes = args.classes or list(shapeworld.CLASSES)
    try:
        unknown = [c for c in classes if c not in shapeworld.CLASSES] + [
            c for c in args.colors if c is not None and c not in shapeworld.COLORS]
        if unknown:
            raise ArscaleError(f"unknown class or colour {unknown[0]!r}; classes: {', '.join(shapeworld.CLASSES)}; "
                               f"colours: {', '.join(shapeworld.COLORS)}")
        gens = [load_shapeworld_var(weights=w) for w in args.weights]
    except ArscaleError as e:
        raise SystemExit(f"where_shapes_break: {e}") from None
    K = gens[0].num_scales
    starts = args.starts if args.starts is not None else list(range(K, -1, -1))
    if any(not 0 <= k <= K for k in starts):
        raise SystemExit(f"where_shapes_break: start scales must be in [0, {K}], got {starts}")

    from tqdm import tqdm

    t0 = time.perf_counter()
    rows = []
    jobs = [(w, g, color, ci, cls) for w, g in zip(args.weights, gens) for color in args.colors
            for ci, cls in enumerate(classes)]
    for weights, gen, color, ci, cls in tqdm(jobs, desc="where_shapes_break", unit="row"):
        images = clean_objects(cls, color, args.per_class, args.seed + ci)
        acc = accuracy_by_start_scale(gen, images, cls, starts, args.seed, args.batch)
        rows.append({"weights": weights or "shipped", "color": color or "any", "class": cls,
                     "accuracy": {str(k): v for k, v in acc.items()}})
    print(f"{len(rows)} rows of {args.per_class} objects in {time.perf_counter() - t0:.0f} s "
          f"(k = {K}: reconstruction; k = 0: raw sampling)\n")
    print("| weights | colour | class | " + " | ".join(f"sampled from {k}" for k in starts) + " |")
    print("|---|---|---|" + "---|" * len(starts))
    for r in rows:
        print(f"| {r['weights']} | {r['color']} | {r['class']} | "
              + " | ".join(f"{r['accuracy'][str(k)]:.3f}" for k in starts) + " |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"per_class": args.per_class, "seed": args.seed, "starts": starts, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
