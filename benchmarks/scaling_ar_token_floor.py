"""How many image tokens can ScalingAR's termination policy spend? (no model; about 2 minutes on one CPU core)

    python benchmarks/scaling_ar_token_floor.py [--n 8] [--seeds 20]

Runs the method's own `TerminationPolicy` on synthetic confidences (`arscale.search.scaling_ar_termination.
simulate_termination`) for LlamaGen's 1024-token sequences (the paper's Table 5) and ShapeWorld-AR's 256:
a ranking that never changes (the floor of a cascade from the bottom), and rankings that wander (AR(1)
noise, mean over seeds), for each threshold pool and pruning quantile p. Prints tokens per image and the
ratio to Best-of-N's N·T, beside the paper's reported 2,350 of 8,192 (0.287×) at N = 8, T = 1024.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from arscale.search.scaling_ar_config import ScalingARConfig
from arscale.search.scaling_ar_termination import simulate_termination

PAPER_TOKENS = {1024: 2350}  # Table 5, LlamaGen, N = 8


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=8, help="candidates per prompt (default 8)")
    p.add_argument("--seeds", type=int, default=20, help="wandering rankings averaged per cell (default 20)")
    p.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.03, 0.1],
                   help="AR(1) step sd of the wandering confidences (default 0.01 0.03 0.1)")
    args = p.parse_args()
    if args.n < 1 or args.seeds < 1 or any(x <= 0 for x in args.noise):
        p.error("--n and --seeds must be >= 1 and every --noise > 0")
    noise_cols = " | ".join(f"wander sd {x:g}" for x in args.noise)
    print(f"| T | threshold pool | p | stable ranking | {noise_cols} | paper (Table 5) |")
    print("|---|---|---|---|" + "---|" * len(args.noise) + "---|")
    bar = tqdm(total=2 * 2 * 3, desc="simulating", unit="cell")  # stderr: the table stays clean on stdout
    for num_tokens in (1024, 256):
        full = args.n * num_tokens
        paper = PAPER_TOKENS.get(num_tokens) if args.n == 8 else None
        for pool in ("active", "unflagged"):
            for quantile in (0.1, 0.2, 0.3):
                cfg = ScalingARConfig(threshold_pool=pool, prune_quantile=quantile)
                cells = [simulate_termination(cfg, num_tokens, args.n)]
                for sd in args.noise:
                    runs = [simulate_termination(cfg, num_tokens, args.n, sd, seed) for seed in range(args.seeds)]
                    cells.append(sum(runs) / len(runs))
                shown = " | ".join(f"{c:.0f} ({c / full:.3f}×)" for c in cells)
                ref = f"{paper} ({paper / full:.3f}×)" if paper and quantile == 0.2 else "–"
                bar.write(f"| {num_tokens} | {pool} | {quantile:g} | {shown} | {ref} |", file=sys.stdout)
                bar.update()
    bar.close()


if __name__ == "__main__":
    main()
