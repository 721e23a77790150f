"""`arscale compare --pooled`: one paired difference over several benches of independent prompt draws.

One draw of a few hundred prompts measures a strategy's gain over raw sampling with an SE of several points;
a gain of a few points needs many draws (`--prompts draw:PER_TAG:SEED`, a new SEED each). Each folder is
compared within itself, every run against the baseline label (`paired.compare_folders`), and the draws'
differences are pooled, each weighted by its prompts:

    diff = Σ w_i·diff_i,   SE = sqrt(Σ w_i²·SE_i²),   w_i = prompts_i / Σ prompts

with the baseline's accuracy pooled the same way, the gain relative to it (SE / baseline accuracy, which
leaves the baseline's own uncertainty out), and the spread of the draws' differences: its SE, the SD times
sqrt(Σ w_i²) (SD / √draws for draws of one size), should agree with the paired one when the draws are
independent and alike.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from arscale.bench.paired import compare_folders, load_records
from arscale.bench.table import label_order, percent, points
from arscale.errors import ArscaleError


def draw_names(folders: Sequence[str | Path]) -> list[str]:
    """Each folder's name, or its path where two names coincide."""
    names = [Path(f).name or str(f) for f in folders]
    return [name if names.count(name) == 1 else str(f) for name, f in zip(names, folders)]


def pool_draws(folders: Sequence[str | Path], baseline: str = "raw",
               skipped: list[Path] | None = None) -> tuple[list[dict], list[dict]]:
    """(each draw's rows, each with its `draw` name; the pooled rows, one per (label, N) of any draw).

    A pooled row has `compare_folders`' fields (accuracies, `diff`, `diff_se`, fixed / broken, mean rewards
    over the draws that recorded one, `tags`: here one entry per draw) and `draws`, `rel`, `rel_se`,
    `spread_sd`, `spread_se` (NaN with fewer than two draws).
    """
    if len(folders) < 2:
        raise ArscaleError("--pooled needs at least two bench folders (independent prompt draws)")
    resolved = [Path(f).resolve() for f in folders]
    twice = sorted({str(f) for f, r in zip(folders, resolved) if resolved.count(r) > 1})
    if twice:
        raise ArscaleError(f"{twice[0]} is given twice: pooling counts each draw once")
    per_draw: list[dict] = []
    for name, folder in zip(draw_names(folders), folders):
        per_draw += [{"draw": name, **row} for row in compare_folders(folder, baseline=baseline, skipped=skipped)]
    keys = sorted({(r["label"], r["n"]) for r in per_draw}, key=lambda k: (label_order(k[0]), k[1]))  # table.md's
    pooled = [_pool([r for r in per_draw if (r["label"], r["n"]) == key and r["prompts"]], *key) for key in keys]
    return per_draw, pooled


def _pool(rows: list[dict], label: str, n: int) -> dict:
    total = sum(r["prompts"] for r in rows)
    if not total:
        return {"label": label, "n": n, "against": "", "draws": 0, "prompts": 0}
    w = [r["prompts"] / total for r in rows]
    acc_a = sum(wi * r["acc_a"] for wi, r in zip(w, rows))
    diff = sum(wi * r["diff"] for wi, r in zip(w, rows))
    se = math.sqrt(sum((wi * r["diff_se"]) ** 2 for wi, r in zip(w, rows)))
    diffs = [r["diff"] for r in rows]
    sd = statistics.stdev(diffs) if len(rows) > 1 else math.nan
    against = sorted({r["against"] for r in rows})
    return {"label": label, "n": n, "against": " / ".join(against), "draws": len(rows), "prompts": total,
            "acc_a": acc_a, "acc_b": sum(wi * r["acc_b"] for wi, r in zip(w, rows)), "diff": diff, "diff_se": se,
            "rel": diff / acc_a if acc_a else math.nan, "rel_se": se / acc_a if acc_a else math.nan,
            "spread_sd": sd, "spread_se": sd * math.sqrt(sum(wi ** 2 for wi in w)),
            "b_fixed": sum(r["b_fixed"] for r in rows), "b_broke": sum(r["b_broke"] for r in rows),
            "reward_a": _weighted_reward(rows, "reward_a"), "reward_b": _weighted_reward(rows, "reward_b"),
            "tags": {r["draw"]: {k: r[k] for k in ("prompts", "diff", "diff_se")} | {"fixed": r["b_fixed"],
                                                                                  "broke": r["b_broke"]}
                     for r in rows}}


def _weighted_reward(rows: list[dict], key: str) -> float:
    """The mean reward over the draws that recorded one, each weighted by its prompts (NaN: none did)."""
    known = [(r["prompts"], r[key]) for r in rows if not math.isnan(r.get(key, math.nan))]
    return sum(n * v for n, v in known) / sum(n for n, _ in known) if known else math.nan


def _reward(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def same_prompts(folders: Sequence[str | Path]) -> list[tuple[str, str]]:
    """Pairs of draws whose records hold the very same prompts at the same indices (the same suite twice, not
    independent draws). Draws that share only some prompts are not caught."""
    suites = {}
    for name, folder in zip(draw_names(folders), folders):
        prompts = {}
        for recs in load_records(folder).values():
            prompts.update({i: rec.get("prompt") for i, rec in recs.items()})
        suites[name] = tuple(sorted(prompts.items(), key=lambda kv: kv[0]))
    names = list(suites)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if suites[a] and suites[a] == suites[b]]


def format_pooled(per_draw: list[dict], pooled: list[dict], name_a: str = "baseline", name_b: str = "run") -> str:
    """Markdown: each draw's row, then the pooled rows."""
    head = (f"| draw | strategy | N | against | prompts | {name_a} % | {name_b} % | {name_b} − {name_a} ± paired SE "
            f"(points) | fixed / broken | mean reward {name_a} / {name_b} |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in per_draw:
        if not r["prompts"]:
            lines.append(f"| {r['draw']} | {r['label']} | {r['n']} | {r['against']} | 0 | – | – | "
                         "no prompt judged in both | – | – |")
            continue
        lines.append(f"| {r['draw']} | {r['label']} | {r['n']} | {r['against']} | {r['prompts']} | "
                     f"{percent(r['acc_a'])} | {percent(r['acc_b'])} | {points(r['diff'], '+.1f')} ± "
                     f"{points(r['diff_se'])} | {r['b_fixed']} / {r['b_broke']} | "
                     f"{_reward(r['reward_a'])} / {_reward(r['reward_b'])} |")
    pooled_head = (f"| pooled: strategy | N | against | draws | prompts | {name_a} % | {name_b} % | {name_b} − {name_a} "
                   f"± SE (points) | relative ± SE | SE from the draws' spread (SD) | fixed / broken | mean reward "
                   f"{name_a} / {name_b} |")
    lines += ["", pooled_head, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in pooled:
        if not r["prompts"]:
            lines.append(f"| {r['label']} | {r['n']} | – | 0 | 0 | – | – | no prompt judged in both | – | – | – | – |")
            continue
        spread = "–" if math.isnan(r["spread_sd"]) else f"{points(r['spread_se'])} ({points(r['spread_sd'])})"
        rel = "–" if math.isnan(r["rel"]) else f"{points(r['rel'], '+.1f')} ± {points(r['rel_se'])} %"
        lines.append(f"| {r['label']} | {r['n']} | {r['against']} | {r['draws']} | {r['prompts']} | "
                     f"{percent(r['acc_a'])} | {percent(r['acc_b'])} | {points(r['diff'], '+.2f')} ± "
                     f"{points(r['diff_se'], '.2f')} | {rel} | {spread} | {r['b_fixed']} / {r['b_broke']} | "
                     f"{_reward(r['reward_a'])} / {_reward(r['reward_b'])} |")
    note = (f"relative: the difference over the pooled accuracy of {name_a}, its SE the difference's over the same "
            f"(the uncertainty of {name_a}'s accuracy left out). The spread's SE rests on one fewer degrees of "
            "freedom than there are draws: with few draws it is rough")
    lines += ["", note]
    return "\n".join(lines) + "\n"
