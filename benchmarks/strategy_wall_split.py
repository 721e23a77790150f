"""Where each strategy's wall time goes on ShapeWorld-AR: model forwards, decodes, scoring and the strategy's
own selection logic, side by side in one run on the same prompts and seeds:

    python benchmarks/strategy_wall_split.py --per-tag 8 --seed 4101 --n 8 --threads 2

`outside the record` is wall time the cost record leaves out on purpose: telemetry only (ScalingAR's
previews of terminated candidates). Every strategy runs once on one prompt first, so loading scorers and
counting their FLOPs fall outside the table. It is measured as the run's wall clock minus the
record's total. ScalingAR runs twice, with and without those previews, so their cost shows on its own.
"""

from __future__ import annotations

import argparse
import time

import torch
from tqdm import tqdm


def main() -> None:
    from arscale.bench.suites import draw_shapeworld
    from arscale.generators.next_token.shapeworld import load_shapeworld_ar
    from arscale.search.base import make_strategy
    from arscale.shapeworld.suite import PUBLIC_SUITE_SEED

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-tag", type=int, default=8)
    p.add_argument("--seed", type=int, default=4101)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if args.seed == PUBLIC_SUITE_SEED:
        p.error("that is the public suite's seed: measure on fresh prompts")
    if args.seed < 0:
        p.error("--seed must be >= 0")
    for name in ("per_tag", "n", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    torch.set_num_threads(args.threads)
    gen = load_shapeworld_ar()
    prompts = [sp.prompt for sp in draw_shapeworld(args.per_tag, args.seed)]
    runs = [("raw", "raw", {}), ("best-of-n", "best-of-n", {}),
            ("scaling-ar", "scaling-ar", {}), ("scaling-ar, no previews", "scaling-ar", {"record_previews": False})]
    for _, name, config in runs:  # warm-up: first-call allocations, scorer loading and FLOP counting are nobody's cost
        make_strategy(name, config).run(gen, prompts[:1], 1, seed=0)
    rows = []
    for label, name, config in tqdm(runs, desc="strategies", unit="run"):  # stderr: the table stays clean on stdout
        t0 = time.perf_counter()
        with torch.no_grad():
            result = make_strategy(name, config).run(gen, prompts, args.n, seed=0)
        clock = time.perf_counter() - t0
        cost = result.cost
        total = cost.total_wall
        rows.append((label, cost.generated_tokens / len(prompts), total / len(prompts),
                     *(cost.wall[k] / total for k in ("model", "decode", "reward", "selection")),
                     (clock - total) / len(prompts)))
    print(f"ShapeWorld-AR, {len(prompts)} prompts (draw:{args.per_tag}:{args.seed}), N = {args.n}, "
          f"{args.threads} threads\n")
    print("| run | tokens/prompt | wall s/prompt (record) | model | decode | reward | selection | outside the record, "
          "s/prompt |")
    print("|---|---|---|---|---|---|---|---|")
    for label, tokens, wall, model, decode, reward, selection, outside in rows:
        print(f"| {label} | {tokens:.0f} | {wall:.3f} | {model:.0%} | {decode:.0%} | {reward:.0%} | {selection:.0%} "
              f"| {outside:.3f} |")


if __name__ == "__main__":
    main()
