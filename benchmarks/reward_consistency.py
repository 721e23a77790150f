"""The reward's consistency curve (the paper's Fig. 5b) on ShapeWorld-VAR.

For P fresh prompts (drawn from the grammar, not the public suite) and N independent rows each,
every scale's partial decode is scored. Per scale k:
- `top1_agreement`: how often the row with the best reward at scale k is the row with the best
  final reward (the paper's consistency);
- `spearman`: mean rank correlation between scale-k and final rewards across a prompt's rows;
- `pick_accuracy`: evaluator accuracy of the row a greedy pick at scale k would keep (vs `mean_accuracy`,
  a random row), i.e. what selecting at that scale would buy.

    python benchmarks/reward_consistency.py --per-tag 20 --n 8 --json c.json --plot c.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from arscale import shapeworld as sw
from arscale.generators.registry import load_generator
from arscale.scorers.base import load_scorer


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (Spearman's convention): rows that share a coarse scale's tokens score alike, and
    their row order must not rank them."""
    r = np.empty(len(x))
    r[np.argsort(x, kind="stable")] = np.arange(len(x))
    for v in np.unique(x):
        tied = x == v
        r[tied] = r[tied].mean()
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@torch.no_grad()
def run(generator, scorer, metadata: list[dict], n: int, seed: int, batch_prompts: int = 8) -> dict:
    K = generator.num_scales
    rewards = np.zeros((len(metadata), n, K))
    correct = np.zeros((len(metadata), n))
    for start in range(0, len(metadata), batch_prompts):
        chunk = metadata[start : start + batch_prompts]
        prompts = [md["prompt"] for md in chunk]
        traj = generator.start(prompts, n, seed, prompt_offset=start)
        row_prompts = [prompts[int(p)] for p in traj.prompt_index]
        for k in range(K):
            generator.step(traj)
            r = scorer.reward(generator.preview(traj, scorer.input_size), row_prompts).numpy()
            rewards[start : start + len(chunk), :, k] = r.reshape(len(chunk), n)
        final = (generator.finish(traj).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        for i, img in enumerate(final):
            p = start + i // n
            correct[p, i % n] = float(sw.evaluate(img, metadata[p]).correct)
    best_final = rewards[:, :, -1].argmax(1)
    curve = []
    for k in range(K):
        pick = rewards[:, :, k].argmax(1)
        rho = [spearman(rewards[p, :, k], rewards[p, :, -1]) for p in range(len(metadata))]
        curve.append({"scale": k, "top1_agreement": float((pick == best_final).mean()),
                      "spearman": float(np.nanmean(rho)),
                      "pick_accuracy": float(correct[np.arange(len(metadata)), pick].mean())})
    return {"prompts": len(metadata), "n": n, "seed": seed, "mean_accuracy": float(correct.mean()),
            "chance_agreement": 1.0 / n, "curve": curve}


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [c["scale"] for c in report["curve"]]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(ks, [c["top1_agreement"] for c in report["curve"]], "o-", label="top-1 agreement with final")
    ax.plot(ks, [c["spearman"] for c in report["curve"]], "s-", label="Spearman ρ with final")
    ax.axhline(report["chance_agreement"], color="gray", ls=":", label="chance (1/N)")
    ax.set_xlabel("scale (0-based)")
    rho = [c["spearman"] for c in report["curve"]]
    ax.set_ylim(min([-0.1, *(r - 0.05 for r in rho if np.isfinite(r))]), 1.05)  # ρ may be negative: every point shown
    ax.set_ylabel("agreement / rank correlation")
    ax.set_title(f"reward consistency, N={report['n']}, {report['prompts']} prompts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shapeworld-var")
    ap.add_argument("--weights", default=None, help="generator weights directory (default: shipped)")
    ap.add_argument("--reward-weights", default=None, help="ShapeWorld reward weights directory (default: shipped)")
    ap.add_argument("--per-tag", type=int, default=20)
    ap.add_argument("--suite-seed", type=int, default=777, help="prompt draw seed (not the public suite's)")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args()
    if args.per_tag < 1 or args.n < 2:
        ap.error("--per-tag must be >= 1 and --n >= 2 (the curve compares each prompt's rows)")
    torch.set_num_threads(1)
    generator = load_generator(args.model, **({"weights": args.weights} if args.weights else {}))
    if not hasattr(generator, "num_scales"):
        ap.error(f"--model {args.model} is not a next-scale model: the curve scores each scale's partial decode")
    scorer = load_scorer("shapeworld-reward", **({"weights": args.reward_weights} if args.reward_weights else {}))
    report = run(generator, scorer, sw.build_suite(args.per_tag, args.suite_seed), args.n, args.seed)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    if args.plot:
        plot(report, args.plot)


if __name__ == "__main__":
    from arscale.errors import one_line_errors

    one_line_errors(main, "reward_consistency")
