"""Does pruning give ScalingAR's KV-cache memory back? Side by side on ShapeWorld-AR, one run each:

    OMP_NUM_THREADS=1 python benchmarks/kv_memory.py --per-tag 5 --seed 99 --n 8

* no termination: ScalingAR with `terminate=False` (all N candidates decode to the end, as Best-of-N);
* pruned, buffers kept: full ScalingAR with the right-sizing of pruned buffers switched off (rows are
  compacted in place, the allocation stays at the starting batch — the behaviour before it);
* pruned, buffers right-sized: full ScalingAR as shipped (`KVCache.keep_` moves the survivors to a
  smaller buffer once they fill at most half of it).

The KV cache's allocated bytes are read after every append (one per layer per step); the table gives
the mean over steps of the whole batch's allocation, its final value, and the live (surviving-row)
bytes at the end. The prompts' candidates share one batch, so the figures are per batch of
`--per-tag` × 6 prompts. Images are identical in the last two runs (only memory differs).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def measure(gen, prompts, n: int, config, right_size: bool) -> dict:
    from arscale.generators import kv_cache
    from arscale.search.scaling_ar import ScalingAR

    samples: list[tuple[int, int]] = []
    original_append, original_threshold = kv_cache.KVCache.append, kv_cache.RIGHT_SIZE_AT

    def append(self, layer, k, v):
        out = original_append(self, layer, k, v)
        if layer == 0:
            samples.append((self.allocated_bytes(), self.nbytes()))
        return out

    kv_cache.KVCache.append = append
    if not right_size:
        kv_cache.RIGHT_SIZE_AT = 0.0
    try:
        result = ScalingAR(config).run(gen, prompts, n, seed=0)
    finally:
        kv_cache.KVCache.append, kv_cache.RIGHT_SIZE_AT = original_append, original_threshold
    alloc = np.array([a for a, _ in samples], dtype=float)
    return {"mean": alloc.mean(), "peak": alloc.max(), "final": alloc[-1], "live_final": samples[-1][1],
            "tokens": result.telemetry["tokens_per_image"], "images": [c.image for cs in result.candidates for c in cs]}


def main() -> None:
    from arscale import shapeworld
    from arscale.generators.next_token.shapeworld import load_shapeworld_ar
    from arscale.search.scaling_ar import ScalingARConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-tag", type=int, default=5)
    p.add_argument("--seed", type=int, default=99)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--weights", default=None, help="a ShapeWorld-AR weights folder (default: the shipped one)")
    args = p.parse_args()
    torch.set_num_threads(1)
    prompts = [r["prompt"] for r in shapeworld.build_suite(args.per_tag, args.seed)]
    gen = load_shapeworld_ar(weights=args.weights)
    batch = {"prompt_batch": len(prompts)}
    norec = ScalingARConfig(delta_rec=1e9, **batch)  # deep pruning: about one survivor per prompt
    runs = {
        "no termination (all N to the end)": measure(gen, prompts, args.n, ScalingARConfig(terminate=False, **batch), True),
        "pruned, buffers kept": measure(gen, prompts, args.n, ScalingARConfig(**batch), False),
        "pruned, buffers right-sized (shipped)": measure(gen, prompts, args.n, ScalingARConfig(**batch), True),
        "no rebound recovery, buffers kept": measure(gen, prompts, args.n, norec, False),
        "no rebound recovery, buffers right-sized": measure(gen, prompts, args.n, norec, True),
    }
    pairs = [("pruned, buffers kept", "pruned, buffers right-sized (shipped)"),
             ("no rebound recovery, buffers kept", "no rebound recovery, buffers right-sized")]
    same = all(np.array_equal(a, b) for x, y in pairs for a, b in zip(runs[x]["images"], runs[y]["images"]))
    base = runs["no termination (all N to the end)"]["mean"]
    mb = 1 / 2**20
    print(f"{len(prompts)} prompts x N = {args.n} in one batch; KV cache of both CFG halves, all layers")
    print("| run | tokens/prompt | KV allocated, mean over steps (MB) | vs no termination | peak (MB) | final (MB) "
          "| live rows at the end (MB) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in runs.items():
        print(f"| {name} | {np.mean(r['tokens']):.0f} | {r['mean'] * mb:.1f} | {r['mean'] / base:.2f}x "
              f"| {r['peak'] * mb:.1f} | {r['final'] * mb:.1f} | {r['live_final'] * mb:.1f} |")
    print(f"buffers kept vs right-sized give identical images: {same}")


if __name__ == "__main__":
    from arscale.errors import one_line_errors

    one_line_errors(main, "kv_memory")
