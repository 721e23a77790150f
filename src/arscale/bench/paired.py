"""Paired comparison of bench runs on the prompts both finished.

Runs of one bench share a suite and a seed, so a prompt index draws the same candidates under every strategy
(raw sampling's image is candidate 0 of each). The per-prompt differences are paired, and their standard
error is far smaller than either run's own. The difference is taken per tag and averaged over tags, as the
`overall` column is, so on the same prompts it is exactly the difference of the two overall accuracies.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from arscale.errors import ArscaleError

RunKey = tuple[str, int]  # (strategy label, N)
Runs = dict[RunKey, dict[int, dict]]  # (label, N) -> {prompt index: record}


def load_records(out: str | Path) -> Runs:
    """Every finished prompt's record under a bench output folder."""
    runs: Runs = {}
    for path in sorted(Path(out).glob("*/n*/*/record.json")):
        try:
            rec = json.loads(path.read_text())
        except json.JSONDecodeError:  # a record being written by another rank
            continue
        runs.setdefault((rec["label"], int(rec["n"])), {})[int(rec["index"])] = rec
    return runs


def paired_difference(a: Mapping[int, dict], b: Mapping[int, dict]) -> dict:
    """B − A over the prompts both judged: accuracies, the difference with its paired SE (points as fractions),
    how many prompts B fixed and broke, and the mean rewards (NaN where a run recorded none)."""
    both = sorted(set(a) & set(b))
    for i in both:
        if a[i].get("prompt") != b[i].get("prompt"):
            raise ArscaleError(f"prompt {i} is {a[i].get('prompt')!r} in one run and {b[i].get('prompt')!r} in the "
                               "other: a paired comparison needs runs of the same suite")
    common = [i for i in both if a[i].get("correct") is not None and b[i].get("correct") is not None]
    if not common:
        return {"prompts": 0}
    by_tag: dict[str, list[tuple[float, float]]] = {}
    for i in common:
        by_tag.setdefault(str(b[i].get("tag")), []).append((float(bool(a[i]["correct"])), float(bool(b[i]["correct"]))))
    acc_a = acc_b = diff = var = 0.0
    for pairs in by_tag.values():
        n = len(pairs)
        d = [y - x for x, y in pairs]
        mean_d = sum(d) / n
        acc_a += sum(x for x, _ in pairs) / n
        acc_b += sum(y for _, y in pairs) / n
        diff += mean_d
        var += sum((v - mean_d) ** 2 for v in d) / max(1, n - 1) / n
    k = len(by_tag)
    deltas = [float(bool(b[i]["correct"])) - float(bool(a[i]["correct"])) for i in common]
    return {"prompts": len(common), "acc_a": acc_a / k, "acc_b": acc_b / k, "diff": diff / k,
            "diff_se": math.sqrt(var) / k, "b_fixed": sum(v > 0 for v in deltas),
            "b_broke": sum(v < 0 for v in deltas), "reward_a": _mean_reward(a, common),
            "reward_b": _mean_reward(b, common)}


def _mean_reward(runs: Mapping[int, dict], common: list[int]) -> float:
    values = [runs[i]["reward"] for i in common if runs[i].get("reward") is not None]
    return sum(values) / len(values) if values else float("nan")


def match_labels(ra: Runs, rb: Runs, label_a: str, label_b: str) -> tuple[dict[RunKey, dict], dict[RunKey, dict]]:
    """`label_a`'s runs of A against `label_b`'s of B, both keyed by B's (label, N). Where A's label ran at
    one N only (raw sampling, whose image does not depend on N) that run meets every N of B."""
    rb_label = {key: recs for key, recs in rb.items() if key[0] == label_b}
    a_runs = {n: recs for (label, n), recs in ra.items() if label == label_a}
    only = next(iter(a_runs.values())) if len(a_runs) == 1 else None
    ra_label = {key: a_runs.get(key[1], only) for key in rb_label if a_runs.get(key[1], only) is not None}
    return ra_label, rb_label


def against_baseline(runs: Runs, baseline: str = "raw") -> dict[RunKey, dict]:
    """Every other run against the baseline label's run at the same N (else at its smallest N: raw sampling
    draws the same image whatever N is). Empty without a baseline run."""
    base = {n: recs for (label, n), recs in runs.items() if label == baseline}
    if not base:
        return {}
    out = {}
    for (label, n), recs in runs.items():
        if label != baseline:
            out[(label, n)] = paired_difference(base.get(n, base[min(base)]), recs)
    return out


def compare_folders(a: str | Path, b: str | Path | None = None, *, match: tuple[str, str] | None = None,
                    baseline: str = "raw") -> list[dict]:
    """Rows of B − A: each (label, N) in both folders, or `match` = (label of A, label of B); with B
    omitted, every run of A against `baseline` in A."""
    ra = load_records(a)
    if not ra:
        raise ArscaleError(f"no finished prompts under {a} (expected {a}/<label>/n<N>/<index>/record.json)")
    if b is None and match is None:
        if not any(label == baseline for label, _ in ra):
            labels = sorted({label for label, _ in ra})
            raise ArscaleError(f"no {baseline!r} run under {a} to compare against; its runs are {', '.join(labels)} "
                               "(pick one with --baseline)")
        pairs = against_baseline(ra, baseline)
        return [{"label": k[0], "n": k[1], "against": baseline, **v} for k, v in sorted(pairs.items())]
    rb = ra if b is None else load_records(b)
    if not rb:
        raise ArscaleError(f"no finished prompts under {b}")
    if match is not None:
        ra_m, rb_m = match_labels(ra, rb, *match)
        if not rb_m or not ra_m:
            raise ArscaleError(f"no runs of {match[0]!r} in {a} and {match[1]!r} in {b or a} at a common N")
        against = match[0]
    else:
        ra_m, rb_m, against = ra, rb, None
    keys = sorted(set(ra_m) & set(rb_m))
    if not keys:
        raise ArscaleError(f"no (strategy, N) runs with finished prompts in both {a} and {b}")
    return [{"label": k[0], "n": k[1], "against": against or k[0], **paired_difference(ra_m[k], rb_m[k])}
            for k in keys]


def format_comparison(rows: list[dict], name_a: str = "A", name_b: str = "B") -> str:
    head = (f"| strategy | N | against | prompts | {name_a} % | {name_b} % | {name_b} − {name_a} ± paired SE (points) "
            f"| fixed / broken | mean reward {name_a} / {name_b} |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r["prompts"]:
            lines.append(f"| {r['label']} | {r['n']} | {r['against']} | 0 | – | – | no prompt judged in both | – | – |")
            continue
        lines.append(f"| {r['label']} | {r['n']} | {r['against']} | {r['prompts']} | {100 * r['acc_a']:.1f} | "
                     f"{100 * r['acc_b']:.1f} | {100 * r['diff']:+.1f} ± {100 * r['diff_se']:.1f} | "
                     f"{r['b_fixed']} / {r['b_broke']} | {r['reward_a']:.3f} / {r['reward_b']:.3f} |")
    return "\n".join(lines) + "\n"
