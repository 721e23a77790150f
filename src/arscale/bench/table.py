"""`table.md`: one row per (strategy label, N) — the paper's Table 6/7 shape plus reward and cost, and each
run's paired difference from raw sampling on the same prompts (`arscale.bench.paired`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

TAG_SHORT = {"single_object": "single", "two_object": "two", "counting": "count", "colors": "colors",
             "position": "pos", "color_attr": "attr"}
BUILT_IN_ORDER = ("raw", "best-of-n", "importance", "tts-var", "scaling-ar")


def label_order(label: str) -> tuple[int, str]:
    """Raw sampling first, then the built-in strategies each followed by its variants, then the rest by name:
    the order of table.md's rows and of the figures' legends."""
    base = label.partition("@")[0]
    return (BUILT_IN_ORDER.index(base) if base in BUILT_IN_ORDER else len(BUILT_IN_ORDER), label)


def tag_order(tags) -> list[str]:
    """GenEval's tags in the table's order, any others after them by name."""
    tags = set(tags)
    return [t for t in TAG_SHORT if t in tags] + sorted(tags - set(TAG_SHORT))


def percent(x) -> str:
    """Percent with one decimal, rounded to 9 places first: an accuracy such as 117/240, averaged over tags in
    another order, is 48.7499… or 48.7500…1 and must not print 48.7 for one run and 48.8 for the other."""
    return "–" if x is None else points(x)


def points(x: float, spec: str = ".1f") -> str:
    """100·x in `spec` (e.g. "+.1f"), rounded to 9 places first for the reason `percent` gives: a paired
    difference of 1/80 summed over tags is 1.2499… or 1.2500…1 points, and prints as the exact 1.25 would."""
    return format(round(100 * x, 9), spec)


def _paired(diff: dict | None) -> str:
    if not diff or not diff.get("prompts"):
        return "–"
    return f"{points(diff['diff'], '+.1f')} ± {points(diff['diff_se'])}"


def flops_unit(largest: float) -> tuple[float, str]:
    """TFLOPs, or GFLOPs (MFLOPs) where those would be all leading zeros (small models: no 0.0003)."""
    if largest >= 1e11:
        return 1e12, "TFLOPs"
    if largest >= 1e8:
        return 1e9, "GFLOPs"
    return 1e6, "MFLOPs"


def _flops(value: float) -> str:
    """Three significant digits, without exponents (0.0123, 1.23, 123, 1234)."""
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def format_table(summaries: Sequence[dict], paired: Mapping[tuple[str, int], dict] | None = None,
                 baseline: str = "raw") -> str:
    """`paired`: (label, N) -> `paired.paired_difference` against `baseline`, shown where given."""
    tags = []
    for s in summaries:
        tags += [t for t in s.get("tags", {}) if t not in tags]
    flop_keys = ("transformer_flops", "decode_flops", "scorer_flops")
    largest = max((s.get("cost_per_prompt", {}).get(k, 0) for s in summaries for k in flop_keys), default=0)
    scale, unit = flops_unit(largest)
    head = (["strategy", "N", "prompts", "overall ± SE"] + ([f"− {baseline}, paired ± SE"] if paired else [])
            + [TAG_SHORT.get(t, t) for t in tags]
            + ["mean reward", "tokens/prompt", f"{unit}/prompt (model + decode + scorer)", "decodes", "scorer calls",
               "wall s/prompt", "selection overhead"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        c = s.get("cost_per_prompt", {})
        overall = s.get("overall")
        cells = [s.get("label", "?"), str(s.get("n", "?")), str(s.get("prompts_done", "?")),
                 "–" if overall is None else f"{percent(overall)} ± {percent(s.get('overall_se', 0.0))}"]
        if paired:
            cells.append(_paired(paired.get((s.get("label"), s.get("n")))))
        cells += [percent(s["tags"][t]["accuracy"]) if t in s.get("tags", {}) else "–" for t in tags]
        mr = s.get("mean_reward")
        cells += ["–" if mr is None or math.isnan(mr) else f"{mr:.3f}", f"{c.get('generated_tokens', 0):.0f}",
                  " + ".join(_flops(c.get(k, 0) / scale) for k in flop_keys),
                  f"{c.get('decode_count', 0):.1f}", f"{c.get('scorer_calls', 0):.1f}",
                  f"{c.get('total_wall', 0):.3f}", f"{100 * c.get('overhead_fraction', 0):.1f} %"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
