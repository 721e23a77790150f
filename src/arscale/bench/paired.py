"""Paired comparison of bench runs on the prompts both finished.

Runs of one bench share a suite and a seed, so a prompt index draws the same candidates under every strategy
(raw sampling's image is candidate 0 of each). The per-prompt differences are paired: where two runs share
candidates their SE is far smaller than either run's own. The difference is taken per tag and averaged over
tags, as the `overall` column is, so on the same prompts it is exactly the difference of the two overall
accuracies. Its SE per tag is Agresti and Min's for paired proportions (half a prompt added to each cell of
the 2×2 table), which, like the overall column's Agresti–Coull, does not read zero for a tag of one prompt
or one where every prompt moved the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from arscale.bench.table import label_order, percent, points
from arscale.errors import ArscaleError

RunKey = tuple[str, int]  # (strategy label, N)
Runs = dict[RunKey, dict[int, dict]]  # (label, N) -> {prompt index: record}


def load_records(out: str | Path, skipped: list[Path] | None = None) -> Runs:
    """Every finished prompt's record under a bench output folder; unreadable ones (being written by another
    rank, damaged, not ours) are left out and, given a list, added to `skipped`."""
    runs: Runs = {}
    for path in sorted(Path(out).glob("*/n*/*/record.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            key, index = (str(rec["label"]), int(rec["n"])), int(rec["index"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
            if skipped is not None:
                skipped.append(path)
            continue
        runs.setdefault(key, {})[index] = rec
    return runs


def run_differences(a: str | Path, b: str | Path) -> list[str]:
    """What sets two bench folders apart, field by field from their manifests: model and weights, seed, scorer,
    cost accounting, and the config of a strategy label both ran. Empty where either folder has no manifest. Such
    runs can still be compared, but with another seed or model a prompt no longer draws the same candidates."""
    from arscale.bench.manifest import differences

    ma, mb = folder_manifest(a), folder_manifest(b)
    if ma is None or mb is None:
        return []
    return [d for d in differences(ma, mb) if not d.startswith(("suite:", "batch_prompts:", "layout:"))]


def folder_manifest(folder: str | Path) -> dict | None:
    """A bench folder's manifest (a shard's where the run was sharded and not merged); None without one."""
    from arscale.bench.manifest import MANIFEST_FILE, SHARD_MANIFEST_GLOB, read_manifest

    folder = Path(folder)
    found = [folder / MANIFEST_FILE] if (folder / MANIFEST_FILE).is_file() else sorted(folder.glob(SHARD_MANIFEST_GLOB))
    return read_manifest(found[0]) if found else None


def paired_difference(a: Mapping[int, dict], b: Mapping[int, dict]) -> dict:
    """B − A over the prompts both judged: accuracies, the difference with its paired SE (points as fractions),
    how many prompts B fixed and broke, the mean rewards (NaN where a run recorded none), and `tags`: the same
    per tag (`prompts`, `diff`, `diff_se`, `fixed`, `broke`)."""
    both = sorted(set(a) & set(b))
    for i in both:
        if a[i].get("prompt") != b[i].get("prompt"):
            raise ArscaleError(f"prompt {i} is {a[i].get('prompt')!r} in one run and {b[i].get('prompt')!r} in the "
                               "other: a paired comparison needs runs of the same suite (benches of independent "
                               "prompt draws pool with `arscale compare --pooled`)")
    common = [i for i in both if a[i].get("correct") is not None and b[i].get("correct") is not None]
    if not common:
        return {"prompts": 0}
    by_tag: dict[str, list[tuple[bool, bool]]] = {}
    for i in common:
        by_tag.setdefault(str(b[i].get("tag")), []).append((bool(a[i]["correct"]), bool(b[i]["correct"])))
    acc_a = acc_b = diff = var = 0.0
    all_fixed = all_broke = 0
    tags = {}
    for tag, pairs in sorted(by_tag.items()):
        n = len(pairs)
        fixed, broke = sum(y and not x for x, y in pairs), sum(x and not y for x, y in pairs)
        acc_a += sum(x for x, _ in pairs) / n
        acc_b += sum(y for _, y in pairs) / n
        diff += (fixed - broke) / n
        var += paired_variance(fixed, broke, n)
        all_fixed, all_broke = all_fixed + fixed, all_broke + broke
        tags[tag] = {"prompts": n, "diff": (fixed - broke) / n, "diff_se": math.sqrt(paired_variance(fixed, broke, n)),
                     "fixed": fixed, "broke": broke}
    k = len(by_tag)
    return {"prompts": len(common), "acc_a": acc_a / k, "acc_b": acc_b / k, "diff": diff / k,
            "diff_se": math.sqrt(var) / k, "b_fixed": all_fixed, "b_broke": all_broke,
            "reward_a": _mean_reward(a, common), "reward_b": _mean_reward(b, common), "tags": tags}


def paired_variance(fixed: int, broke: int, n: int) -> float:
    """Variance of a paired difference of proportions with `fixed` / `broke` discordant prompts out of `n`,
    after Agresti and Min (2005): half a prompt added to each of the four cells."""
    p01, p10, m = (fixed + 0.5) / (n + 2), (broke + 0.5) / (n + 2), n + 2
    return (p01 + p10 - (p01 - p10) ** 2) / m


def _mean_reward(runs: Mapping[int, dict], common: list[int]) -> float:
    values = [runs[i]["reward"] for i in common if runs[i].get("reward") is not None]
    return sum(values) / len(values) if values else float("nan")


def _runs_at(runs: Runs, label: str) -> dict[int, dict[int, dict]]:
    return {n: recs for (lab, n), recs in runs.items() if lab == label}


def _budget_free(by_n: dict[int, dict[int, dict]]) -> bool:
    """Raw sampling draws the same image whatever N is: its run at one N stands for every N."""
    return all(rec.get("strategy") == "raw" for recs in by_n.values() for rec in recs.values())


def _meeting(by_n: dict[int, dict[int, dict]], n: int) -> int | None:
    """The N of a reference run that meets a run at N: the same N, else raw sampling's smallest."""
    if n in by_n:
        return n
    return min(by_n) if by_n and _budget_free(by_n) else None


def match_labels(ra: Runs, rb: Runs, label_a: str, label_b: str) -> dict[RunKey, tuple[int, dict, dict]]:
    """`label_b`'s runs of B, keyed by (label, N), each with the N of `label_a`'s run of A that meets it (the
    same N; raw sampling's at any N) and the two runs' records."""
    a_runs = _runs_at(ra, label_a)
    out = {}
    for n, recs in _runs_at(rb, label_b).items():
        m = _meeting(a_runs, n)
        if m is not None:
            out[(label_b, n)] = (m, a_runs[m], recs)
    return out


def against_baseline(runs: Runs, baseline: str = "raw") -> dict[RunKey, dict]:
    """Every other run against the baseline label's run at the same N (raw sampling: else at its smallest N),
    each with the `baseline_n` it was compared with. Runs the baseline has no N for are left out."""
    base = _runs_at(runs, baseline)
    out = {}
    for (label, n), recs in runs.items():
        m = _meeting(base, n)
        if label != baseline and m is not None:
            out[(label, n)] = {**paired_difference(base[m], recs), "baseline_n": m}
    return out


def compare_folders(a: str | Path, b: str | Path | None = None, *, match: tuple[str, str] | None = None,
                    baseline: str = "raw", skipped: list[Path] | None = None) -> list[dict]:
    """Rows of B − A: each (label, N) in both folders, or `match` = (label of A, label of B); with neither B
    nor `match`, every run of A against `baseline` in A. Each row names what it was compared `against`.
    Unreadable records are left out (and listed in `skipped`, if given)."""
    ra = load_records(a, skipped)
    if not ra:
        raise ArscaleError(f"no finished prompts under {a} (expected {a}/<label>/n<N>/<index>/record.json)")
    labels = sorted({label for label, _ in ra})
    if b is None and match is None:
        if baseline not in labels:
            raise ArscaleError(f"no {baseline!r} run under {a} to compare against; its runs are {', '.join(labels)} "
                               "(pick one with --baseline)")
        pairs = against_baseline(ra, baseline)
        if not pairs:
            raise ArscaleError(f"nothing under {a} to compare with {baseline!r}: no other run at an N it ran at "
                               f"(its runs are {', '.join(f'{k[0]} N={k[1]}' for k in sorted(ra))})")
        return [{"label": k[0], "n": k[1], "against": f"{baseline} N={v.pop('baseline_n')}", **v}
                for k, v in sorted(pairs.items(), key=lambda kv: _run_order(kv[0]))]
    rb = ra if b is None or Path(b) == Path(a) else load_records(b, skipped)
    if not rb:
        raise ArscaleError(f"no finished prompts under {b}")
    if match is not None:
        for label, runs, folder in ((match[0], ra, a), (match[1], rb, b or a)):
            if label not in {run_label for run_label, _ in runs}:
                raise ArscaleError(f"{folder} has no label {label!r}; its labels are "
                                   f"{', '.join(sorted({run_label for run_label, _ in runs}))}")
        met = match_labels(ra, rb, *match)
        if not met:
            def runs_in(runs: Runs) -> str:
                return ", ".join(f"{label} N={n}" for label, n in sorted(runs)) or "none"

            raise ArscaleError(f"no runs of {match[0]!r} in {a} and {match[1]!r} in {b or a} at a common N (raw "
                               f"sampling, which draws the same image at any N, meets every N); {a} holds "
                               f"{runs_in(ra)}" + ("" if rb is ra else f", {b} holds {runs_in(rb)}"))
        return [{"label": k[0], "n": k[1], "against": f"{match[0]} N={m}", **paired_difference(recs_a, recs_b)}
                for k, (m, recs_a, recs_b) in sorted(met.items(), key=lambda kv: _run_order(kv[0]))]
    keys = sorted(set(ra) & set(rb), key=_run_order)
    if not keys:
        raise ArscaleError(f"no (strategy, N) runs with finished prompts in both {a} and {b}")
    return [{"label": k[0], "n": k[1], "against": f"{k[0]} N={k[1]}", **paired_difference(ra[k], rb[k])}
            for k in keys]


def _run_order(key: RunKey) -> tuple:
    return label_order(key[0]), key[1]  # table.md's order: raw first, then the built-ins with their variants


def format_comparison(rows: list[dict], name_a: str = "A", name_b: str = "B") -> str:
    head = (f"| strategy | N | against | prompts | {name_a} % | {name_b} % | {name_b} − {name_a} ± paired SE (points) "
            f"| fixed / broken | mean reward {name_a} / {name_b} |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r["prompts"]:
            lines.append(f"| {r['label']} | {r['n']} | {r['against']} | 0 | – | – | no prompt judged in both | – | – |")
            continue
        lines.append(f"| {r['label']} | {r['n']} | {r['against']} | {r['prompts']} | {percent(r['acc_a'])} | "
                     f"{percent(r['acc_b'])} | {points(r['diff'], '+.1f')} ± {points(r['diff_se'])} | "
                     f"{r['b_fixed']} / {r['b_broke']} | {_reward(r['reward_a'])} / {_reward(r['reward_b'])} |")
    return "\n".join(lines) + "\n"


def _reward(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"
