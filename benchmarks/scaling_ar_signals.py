"""Do ScalingAR's confidence signals rank ShapeWorld-AR candidates by correctness?

    OMP_NUM_THREADS=1 python benchmarks/scaling_ar_signals.py --per-tag 40 --seed 99 --n 8

Runs ScalingAR without termination and without the guidance scheduler (all N candidates complete at
the base CFG), then, per prompt, picks the candidate with the highest (and, for contrast, the lowest)
value of each signal — final C_T, the mean after warm-up of C, I, D, s_tok, B (block stability)
and K (raw KL), and the sum over all tokens (and over the warm-up only) of the sampled tokens'
log p_cond − log p_uncond, the model's implicit classifier log p(prompt | image) − log p(prompt) —
and scores the pick with the exact evaluator. Also reports the mean accuracy of a
random candidate and the oracle (any candidate correct), and, per signal, its rank correlation within a
prompt with how much the candidate draws (foreground pixels, objects detected) and with correctness, also
among candidates that draw the same number of objects: on ShapeWorld a signal can rank candidates by how
much they draw rather than by correctness. Fresh prompts only (not the public suite).

`--plot FILE.png` draws it: where within its prompt each candidate's final confidence C_T ranks, against how
many objects it draws beyond those the prompt asks for, and per tag the accuracy of the highest-C_T pick beside a
random candidate and the oracle.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (Spearman's convention)."""
    order = np.argsort(values, kind="stable")
    r = np.empty(len(values))
    r[order] = np.arange(len(values), dtype=float)
    for v in np.unique(values):
        tied = values == v
        r[tied] = r[tied].mean()
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Rank correlation; None where either side is constant (nothing to rank)."""
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    from arscale import shapeworld
    from arscale.generators.next_token.shapeworld import load_shapeworld_ar
    from arscale.search.scaling_ar import ScalingAR, ScalingARConfig
    from arscale.shapeworld.evaluate import color_map, detect

    p = argparse.ArgumentParser()
    p.add_argument("--per-tag", type=int, default=40)
    p.add_argument("--seed", type=int, default=99)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--weights", default=None, help="a ShapeWorld-AR weights folder (default: the shipped one)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="draw C_T's rank against the objects drawn")
    args = p.parse_args()
    if args.seed == shapeworld.suite.PUBLIC_SUITE_SEED:
        raise SystemExit(f"--seed {args.seed} draws the public suite's prompts; use any other seed (fresh prompts)")
    if args.plot and args.n < 2:
        raise SystemExit("--plot draws where C_T ranks among a prompt's candidates: it needs --n 2 or more")
    torch.set_num_threads(1)
    records = shapeworld.build_suite(args.per_tag, args.seed)
    gen = load_shapeworld_ar(weights=args.weights)
    config = ScalingARConfig(terminate=False, schedule_guidance=False, prompt_batch=40)
    prompts = [r["prompt"] for r in records]
    candidates, traces_by_prompt = [], []
    # one run per block of prompt_batch prompts (the blocks run() would make, same seeds) for a progress bar
    for start in tqdm(range(0, len(prompts), config.prompt_batch), desc="scaling-ar signals", unit="block"):
        block = ScalingAR(config).run(gen, prompts[start:start + config.prompt_batch], args.n, seed=0,
                                      prompt_offset=start)
        candidates += block.candidates
        traces_by_prompt += block.telemetry["prompts"]
        warmup = block.telemetry["warmup_steps"]
    picks: dict[str, list[float]] = {}
    with_area: dict[str, list[float]] = {}
    with_objects: dict[str, list[float]] = {}
    with_correct: dict[str, list[float]] = {}
    with_correct_same_count: dict[str, list[float]] = {}
    per_candidate = []  # (tag, objects drawn - objects asked, C_T's rank within the prompt in [0, 1], correct)
    for cands, traces, rec in zip(candidates, traces_by_prompt, records):
        detections = [detect(c.image) for c in cands]  # detected once: judged and counted
        ok = np.array([shapeworld.evaluate(c.image, rec, d).correct for c, d in zip(cands, detections)], dtype=float)
        objects = np.array([len(d) for d in detections], dtype=float)
        area = np.array([float((color_map(c.image) != 0).mean()) for c in cands])
        signals = {k: np.array([np.mean(t[k][warmup:]) for t in traces]) for k in ("C", "I", "D", "s_tok", "B", "K")}
        signals["C_final"] = np.array([t["C"][-1] for t in traces])
        signals["pmi_sum"] = np.array([np.sum(t["pmi"]) for t in traces])
        signals["pmi_sum_warmup"] = np.array([np.sum(t["pmi"][:warmup]) for t in traces])
        asked = sum(item["count"] for item in rec["include"])
        c_rank = ranks(signals["C_final"]) / max(1, len(cands) - 1)  # 0 = lowest, 1 = highest
        per_candidate += [(rec["tag"], int(o - asked), float(r), bool(c)) for o, r, c in zip(objects, c_rank, ok)]
        picks.setdefault("random candidate (mean)", []).append(ok.mean())
        picks.setdefault("oracle (any correct)", []).append(ok.max())
        for name, v in signals.items():
            picks.setdefault(f"max {name}", []).append(ok[int(np.argmax(v))])
            picks.setdefault(f"min {name}", []).append(ok[int(np.argmin(v))])
        for name, v in {**signals, "correct": ok}.items():
            for target, into in ((area, with_area), (objects, with_objects)):
                rho = spearman(v, target)
                if rho is not None:
                    into.setdefault(name, []).append(rho)
        for name, v in signals.items():
            strata = [np.ones(len(ok), dtype=bool)] + [objects == k for k in np.unique(objects)]
            for i, members in enumerate(strata):
                rho = spearman(v[members], ok[members]) if members.sum() >= 2 else None
                if rho is not None:
                    (with_correct if i == 0 else with_correct_same_count).setdefault(name, []).append(rho)
    out = {k: round(float(np.mean(v)), 3) for k, v in picks.items()}

    def mean(values: dict[str, list[float]], name: str) -> float | None:
        return round(float(np.mean(values[name])), 3) if name in values else None

    rank_corr = {name: {"foreground area": mean(with_area, name), "objects detected": mean(with_objects, name),
                        "correct": mean(with_correct, name),
                        "correct, same number of objects": mean(with_correct_same_count, name)}
                 for name in with_area}
    print(json.dumps({"prompts": len(records), "n": args.n, **out,
                      "mean rank correlation within a prompt": rank_corr}, indent=1))
    if args.plot:
        plot(per_candidate, args)


def pick_accuracy(per_candidate: list[tuple[str, int, float, bool]], n: int) -> dict[str, tuple[float, float, float]]:
    """Per tag: the accuracy of a random candidate, of the highest-C_T one and of the oracle; `per_candidate` holds
    each prompt's n candidates one after another (tag, extra objects, C_T rank, correct)."""
    by_tag: dict[str, list[tuple[float, float, float]]] = {}
    for j in range(0, len(per_candidate), n):
        prompt = per_candidate[j:j + n]
        rank = np.array([r for _, _, r, _ in prompt])
        ok = np.array([c for _, _, _, c in prompt], dtype=float)
        by_tag.setdefault(prompt[0][0], []).append((ok.mean(), ok[rank.argmax()], ok.max()))
    return {tag: tuple(float(x) for x in np.mean(rows, axis=0)) for tag, rows in by_tag.items()}


def plot(per_candidate: list[tuple[str, int, float, bool]], args) -> None:
    """Left: the mean within-prompt rank of C_T (0 lowest, 1 highest of the N) by objects drawn minus asked, with
    its standard error; right: per tag, the accuracy of the highest-C_T candidate, a random one and the oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.4]})
    extra = np.clip([e for _, e, _, _ in per_candidate], -2, 2)
    c_rank = np.array([r for _, _, r, _ in per_candidate])
    xs = [x for x in range(-2, 3) if (extra == x).any()]
    means = [c_rank[extra == x].mean() for x in xs]
    ses = [c_rank[extra == x].std(ddof=1) / np.sqrt((extra == x).sum()) if (extra == x).sum() > 1 else 0 for x in xs]
    left.errorbar(xs, means, yerr=ses, marker="o", capsize=3)
    for x, m in zip(xs, means):
        left.annotate(f"{(extra == x).sum()}", (x, m), textcoords="offset points", xytext=(6, 6), fontsize=8)
    left.axhline(0.5, color="grey", lw=0.8, ls="--")
    left.set_xticks(xs, [("≤ " if x == -2 else "≥ +" if x == 2 else "+" if x > 0 else "") + str(x) for x in xs])
    left.set_xlabel("objects drawn − objects the prompt asks for")
    left.set_ylabel("rank of final confidence C_T within its prompt\n(0 = lowest of N, 1 = highest)")
    left.set_title("which candidates the confidence prefers\n(numbers: candidates)", fontsize=10)
    accuracy = pick_accuracy(per_candidate, args.n)
    tags, width, at = list(accuracy), 0.27, np.arange(len(accuracy))
    for i, label in enumerate(["random candidate", "highest C_T (ScalingAR's pick, no pruning)",
                               "oracle (any correct)"]):
        right.bar(at + (i - 1) * width, [accuracy[tag][i] for tag in tags], width, label=label)
    right.set_xticks(at, [t.replace("_", " ") for t in tags], fontsize=8)
    right.set_ylabel("accuracy (exact evaluator)")
    right.set_ylim(0, 1.2)
    right.set_yticks(np.linspace(0, 1, 6))
    right.legend(fontsize=7, loc="upper center", ncol=3, frameon=False)
    right.set_title(f"ShapeWorld-AR, N = {args.n}, fresh prompts draw:{args.per_tag}:{args.seed}", fontsize=10)
    fig.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)  # as compare --plot: its folder is made
    fig.savefig(args.plot, dpi=120)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    from arscale.errors import one_line_errors

    one_line_errors(main, "scaling_ar_signals")
