"""Bench metrics: per-run summaries (GenEval scores with standard errors, mean reward, cost per prompt).

Everything is recomputed from the per-prompt records, never accumulated during a run, so a
resumed or sharded run summarises exactly like an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from arscale.bench.geneval_layout import compute_summary

COST_KEYS = ("transformer_flops", "decode_flops", "decode_count", "scorer_calls", "scorer_flops", "generated_tokens",
             "total_wall", "overhead")
PHASES = ("model", "decode", "features", "reward", "selection")


def binomial_se(accuracy: float, total: int) -> float:
    """Standard error of an accuracy over `total` images, Agresti-Coull: p~ = (x + 2) / (n + 4) in place of
    x / n. Wald's p(1 - p) / n says 0 for a tag that is all right or all wrong, which a handful of prompts
    per tag often is; with hundreds of images and accuracies away from 0 and 1 the two agree closely."""
    n = max(int(total), 0)
    p = (accuracy * n + 2) / (n + 4)
    return math.sqrt(p * (1 - p) / (n + 4))


def standard_error_of_overall(tags: dict[str, dict]) -> float:
    """SE of the unweighted mean of per-tag accuracies (`binomial_se` per tag)."""
    if not tags:
        return 0.0
    return math.sqrt(sum(binomial_se(v["accuracy"], v["total"]) ** 2 for v in tags.values())) / len(tags)


def _mean_se(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    a = np.asarray(values, dtype=float)
    se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")  # one value: no spread known
    return float(a.mean()), se


def summarize(records: Iterable[dict], result_rows: Iterable[dict]) -> dict:
    """Summary of one (strategy, N) run from its per-prompt records and GenEval result rows."""
    records = list(records)
    rows = list(result_rows)
    summary = compute_summary(rows) if rows else {"overall": None, "tags": {}, "images": 0}
    if rows:
        summary["overall_se"] = standard_error_of_overall(summary["tags"])
        for v in summary["tags"].values():
            v["se"] = binomial_se(v["accuracy"], v["total"])
    rewards = [r["reward"] for r in records if r.get("reward") is not None]
    summary["mean_reward"], summary["mean_reward_se"] = _mean_se(rewards)
    cost: dict[str, float] = {}
    for key in COST_KEYS:
        vals = [float(r["cost"].get(key, 0.0)) for r in records]
        cost[key] = float(np.mean(vals)) if vals else 0.0
    for phase in PHASES:
        vals = [float(r["cost"].get("wall", {}).get(phase, 0.0)) for r in records]
        cost[f"wall_{phase}"] = float(np.mean(vals)) if vals else 0.0
    # everything a method spends to pick its image: raw sampling and ScalingAR spend nothing on scorers
    cost["flops"] = cost["transformer_flops"] + cost["decode_flops"] + cost["scorer_flops"]
    cost["overhead_fraction"] = cost["overhead"] / cost["total_wall"] if cost["total_wall"] > 0 else 0.0
    summary["cost_per_prompt"] = cost
    summary["prompts_done"] = len(records)
    return summary
