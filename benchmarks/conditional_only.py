"""What running only the conditional half saves when guidance needs no unconditional logits (cfg 1).

    OMP_NUM_THREADS=1 python benchmarks/conditional_only.py --model shapeworld-ar --per-tag 4 --n 8 --seed 5

Raw sampling with a shipped ShapeWorld model (`shapeworld-ar` or `shapeworld-var`) at cfg 1, the same prompts
and seeds twice in one run: once with both CFG halves (what every strategy ran before), once with
`unconditional=False` (what `Search.start` asks for). The table gives the transformer FLOPs billed, the model
wall time and whether the images are the same (ScalingAR, on ShapeWorld-AR, is the one strategy that keeps both
halves at cfg 1: it reads their KL). Walls are side by side on one machine; the ratio is the number to read.
"""

from __future__ import annotations

import argparse
import time

import torch
from tqdm import tqdm


def run(gen, prompts, n: int, seed: int, unconditional: bool) -> tuple[torch.Tensor, float, float]:
    t0 = time.perf_counter()
    traj = gen.start(prompts, n, seed, unconditional=unconditional)
    if hasattr(gen, "num_scales"):  # next-scale: billed as `Search.advance` bills a scale
        flops = 0.0
        for k in range(gen.num_scales):
            gen.step(traj)
            own = getattr(gen, "scale_flops", None)
            flops += own(traj, k) if callable(own) else gen.flops_per_scale(len(traj))[k] * traj.halves / 2
    else:
        while traj.step < gen.num_tokens:
            gen.advance(traj, gen.sample(traj))
        flops = traj.extra["transformer_flops"]
    wall = time.perf_counter() - t0
    return gen.finish(traj), flops, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("shapeworld-ar", "shapeworld-var"), default="shapeworld-ar")
    parser.add_argument("--per-tag", type=int, default=4)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each; the best wall counts")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    from arscale.generators.registry import load_generator
    from arscale.shapeworld.suite import build_suite

    gen = load_generator(args.model, cfg=1.0)
    prompts = [r["prompt"] for r in build_suite(args.per_tag, args.seed)]
    rows: dict[bool, list] = {True: [], False: []}
    with torch.no_grad(), tqdm(total=2 * args.repeats, desc="runs", unit="run") as bar:
        for _ in range(args.repeats):
            for unconditional in (True, False):
                rows[unconditional].append(run(gen, prompts, args.n, args.seed, unconditional))
                bar.update()
    both, alone = rows[True], rows[False]
    same = all(torch.equal(a[0], b[0]) for a, b in zip(both, alone))
    wall_both, wall_alone = min(r[2] for r in both), min(r[2] for r in alone)
    print(f"{args.model} at cfg 1, {len(prompts)} prompts x {args.n} rows, {torch.get_num_threads()} thread(s), "
          f"best of {args.repeats}")
    print("| halves run | transformer GFLOPs | model wall (s) | images |")
    print("|---|---|---|---|")
    print(f"| both (before) | {both[0][1] / 1e9:.2f} | {wall_both:.2f} | reference |")
    print(f"| conditional only | {alone[0][1] / 1e9:.2f} | {wall_alone:.2f} | "
          f"{'identical' if same else 'DIFFERENT'} |")
    print(f"| ratio | {alone[0][1] / both[0][1]:.2f}x | {wall_alone / wall_both:.2f}x | |")


if __name__ == "__main__":
    from arscale.errors import one_line_errors

    one_line_errors(main, "conditional_only")
