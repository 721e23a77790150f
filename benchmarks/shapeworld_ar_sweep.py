"""Sampling-default sweep and raw/reconstruction scores for ShapeWorld-AR (and ShapeWorld-VAR).

    OMP_NUM_THREADS=1 python benchmarks/shapeworld_ar_sweep.py sweep --per-tag 20 --seed 7
    OMP_NUM_THREADS=1 python benchmarks/shapeworld_ar_sweep.py sweep --model shapeworld-var --weights DIR \
        --per-tag 30 --seed 2024 --cfg 2 3 4.5 --temperature 1.0 0.8 0.6 --top-k 0 16
    OMP_NUM_THREADS=1 python benchmarks/shapeworld_ar_sweep.py raw --suite shapeworld-v1-eval --cfg 3 ...
    OMP_NUM_THREADS=1 python benchmarks/shapeworld_ar_sweep.py recon --suite shapeworld-v1-eval

`sweep` tunes CFG / temperature / top-k on fresh prompts (`build_suite(per_tag, seed)`, never the
public seed) with one image per prompt; `raw` scores one image per prompt on a suite; `recon` scores
tokenizer reconstructions of clean renders of a suite's prompts. Scores use the exact evaluator.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import torch


def prompts_for(args) -> list[dict]:
    from arscale import shapeworld

    if args.suite:
        return shapeworld.load_suite(args.suite)
    if args.seed == shapeworld.suite.PUBLIC_SUITE_SEED:
        raise SystemExit("use a seed other than the public suite's")
    return shapeworld.build_suite(args.per_tag, args.seed)


def score(images: torch.Tensor, records: list[dict]) -> dict[str, float]:
    from arscale import shapeworld

    pixels = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    hits: dict[str, list[bool]] = {}
    for px, md in zip(pixels, records):
        hits.setdefault(md["tag"], []).append(bool(shapeworld.evaluate(px, md).correct))
    out = {t: float(np.mean(v)) for t, v in hits.items()}
    out["overall"] = float(np.mean([out[t] for t in hits]))
    return out


def generate(gen, records: list[dict], seed: int, batch: int = 100) -> torch.Tensor:
    images = []
    for s in range(0, len(records), batch):
        chunk = [md["prompt"] for md in records[s:s + batch]]
        images.append(gen.generate(chunk, 1, seed, prompt_offset=s))
    return torch.cat(images)


def loader(model: str):
    """(load(weights=, **sampling), reconstruct(gen, images)) for one of the two ShapeWorld models."""
    if model == "shapeworld-var":
        from arscale.generators.next_scale.shapeworld import load_shapeworld_var

        def recon_var(gen, x):
            return gen.tokenizer.decode_indices(gen.tokenizer.encode(x))

        return load_shapeworld_var, recon_var
    from arscale.generators.next_token.shapeworld import load_shapeworld_ar

    return load_shapeworld_ar, lambda gen, x: gen.tokenizer.decode_codes(gen.tokenizer.encode(x))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["sweep", "raw", "recon"])
    p.add_argument("--model", choices=["shapeworld-ar", "shapeworld-var"], default="shapeworld-ar")
    p.add_argument("--suite", default=None)
    p.add_argument("--per-tag", type=int, default=20)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--weights", default=None)
    p.add_argument("--cfg", type=float, nargs="*", default=[1.5, 2.5, 3.5, 5.0])
    p.add_argument("--temperature", type=float, nargs="*", default=[1.0, 0.8])
    p.add_argument("--top-k", type=int, nargs="*", default=[0, 64])
    args = p.parse_args()
    torch.set_num_threads(1)
    records = prompts_for(args)
    load, reconstruct = loader(args.model)
    if args.mode == "recon":
        from arscale import shapeworld

        gen = load(weights=args.weights)
        rng = np.random.default_rng(args.seed)
        pixels = shapeworld.render_batch([shapeworld.sample_scene(md, rng) for md in records])
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
        with torch.no_grad():
            recon = torch.cat([reconstruct(gen, x[s:s + 100])
                               for s in range(0, len(x), 100)])
        print(json.dumps({"mode": "recon", "prompts": len(records), **score(recon, records)}))
        return
    for cfg, temp, top_k in itertools.product(args.cfg, args.temperature, args.top_k):
        gen = load(weights=args.weights, cfg=cfg, temperature=temp, top_k=top_k)
        t0 = time.perf_counter()
        images = generate(gen, records, args.seed)
        result = score(images, records)
        print(json.dumps({"model": args.model, "mode": args.mode, "cfg": cfg, "temperature": temp, "top_k": top_k,
                          "prompts": len(records), "seconds": round(time.perf_counter() - t0, 1), **result}),
              flush=True)


if __name__ == "__main__":
    from arscale.errors import one_line_errors

    one_line_errors(main, "shapeworld_ar_sweep")
