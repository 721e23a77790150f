"""`score_vs_n.png` (the paper's Fig. 3) and `score_vs_compute.png` (Fig. 8) from run summaries.

Scores are in percent, as in table.md; error bars are ±1 SE clipped to 0–100 %. Each label keeps its colour
in every bench (a fixed map for the built-in strategies, a crc32 of the label for variants, moved on to a free
colour where two variants of one figure would share one), so two benches' figures compare side by side. Raw
sampling draws one sample per prompt whatever N says, so its rows are repeats: it is a single dashed reference
line ("raw (1 sample)"), not a curve over N.
"""

from __future__ import annotations

import json
import math
import textwrap
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arscale.bench.table import BUILT_IN_ORDER, flops_unit, label_order
from arscale.figures import new_figure

RAW = "raw"
RAW_LEGEND = "raw (1 sample)"
BARS = "bars: ±1 SE"
# the built-in strategies, in legend order; raw is always grey
STRATEGY_STYLES: dict[str, dict[str, str]] = dict(zip(BUILT_IN_ORDER, (
    {"color": "#7f7f7f", "marker": "o"},  # raw
    {"color": "#1f77b4", "marker": "s"},  # best-of-n
    {"color": "#2ca02c", "marker": "D"},  # importance
    {"color": "#d62728", "marker": "o"},  # tts-var
    {"color": "#ff7f0e", "marker": "^"},  # scaling-ar
), strict=True))
# variants and other strategies: none of these is a built-in's colour, grey or near either
_FALLBACK_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939", "#e7ba52",
                    "#7b4173", "#000000", "#006d6d", "#c5b0d5")
MARKERS = "osD^vPX*"


def style_for(label: str) -> dict[str, str]:
    """The preferred colour and marker of a label: the same in every bench and every process (crc32, not the
    salted `hash`)."""
    if label in STRATEGY_STYLES:
        return dict(STRATEGY_STYLES[label])
    h = zlib.crc32(label.encode())
    return {"color": _FALLBACK_COLORS[h % len(_FALLBACK_COLORS)],
            "marker": MARKERS[(h // len(_FALLBACK_COLORS)) % len(MARKERS)]}


def styles_for(labels: Sequence[str]) -> dict[str, dict[str, str]]:
    """The style of every label of one figure: each its preferred one (`style_for`), except that a variant whose
    colour another label already has takes the next free colour, in label order. Colours repeat only beyond
    the palette."""
    styles = {label: style_for(label) for label in labels if label in STRATEGY_STYLES}
    taken = {style["color"] for style in styles.values()}
    for label in sorted((x for x in set(labels) if x not in STRATEGY_STYLES), key=label_order):
        preferred = style_for(label)
        first = _FALLBACK_COLORS.index(preferred["color"])
        free = [c for c in _FALLBACK_COLORS[first:] + _FALLBACK_COLORS[:first] if c not in taken]
        styles[label] = {**preferred, "color": free[0] if free else preferred["color"]}
        taken.add(styles[label]["color"])
    return styles


def _is_raw(run: dict) -> bool:
    return run.get("strategy", run.get("label")) == RAW


def _by_label(summaries: Sequence[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in summaries:
        if s.get("overall") is not None:
            out.setdefault(s["label"], []).append(s)
    return {k: sorted(out[k], key=lambda s: s["n"]) for k in sorted(out, key=label_order)}


def clipped_yerr(scores: Sequence[float], ses: Sequence[float]) -> tuple[list[float], list[float]]:
    """(below, above) bar lengths of ±SE around each score, cut so a bar never leaves [0, 1]."""
    below = [min(max(se, 0.0), max(s, 0.0)) for s, se in zip(scores, ses)]
    above = [min(max(se, 0.0), max(1.0 - s, 0.0)) for s, se in zip(scores, ses)]
    return below, above


def _raw_run(runs: list[dict]) -> dict:
    """The run that stands for raw sampling: most prompts done, then the smallest N."""
    return min(runs, key=lambda s: (-s.get("prompts_done", 0), s["n"]))


def read_manifest(out_dir: str | Path) -> dict | None:
    """The bench folder's manifest (or a shard's), for the subtitle; None when there is none or it is unreadable."""
    folder = Path(out_dir)
    for path in [folder / "manifest.json", *sorted(folder.glob("manifest.shard-*.json"))]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
            continue
    return None


def subtitle(summaries: Sequence[dict], manifest: dict | None = None, width: int = 110) -> str:
    """What was run: model, prompt suite, number of prompts and the tags that 'overall' averages."""
    from arscale.bench.table import TAG_SHORT

    manifest = manifest or {}
    runs = [s for s in summaries if s.get("overall") is not None]
    parts = []
    models = sorted({str(s["model"]) for s in runs if s.get("model")})
    if not models and isinstance(manifest.get("model"), dict) and manifest["model"].get("id"):
        models = [str(manifest["model"]["id"])]
    if models:
        parts.append(" + ".join(models))
    suite = manifest.get("suite") if isinstance(manifest.get("suite"), dict) else {}
    if suite.get("spec"):
        parts.append(str(suite["spec"]))
    done = sorted({int(s["prompts_done"]) for s in runs if s.get("prompts_done") is not None})
    total = sorted({int(s["prompts_total"]) for s in runs if s.get("prompts_total") is not None})
    if done:
        count = str(done[0]) if len(done) == 1 else f"{done[0]}–{done[-1]}"
        if total and (len(total) > 1 or total[0] != done[-1]):
            count += f" of {total[-1]}"
        parts.append(f"{count} prompts")
    tags: list[str] = []
    for s in runs:
        tags += [t for t in s.get("tags", {}) if t not in tags]
    if tags:
        parts.append(f"overall = mean of {len(tags)} tag{'s' if len(tags) > 1 else ''} "
                     f"({', '.join(TAG_SHORT.get(t, t) for t in tags)})")
    lines: list[str] = []
    for part in parts:  # break between the parts, never inside one that fits a line
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines += textwrap.wrap(part, width)
    return "\n".join(lines)


def _ylabel(manifest: dict | None) -> str:
    return ("ShapeWorld GenEval" if (manifest or {}).get("kind") == "shapeworld" else "GenEval") + " overall (%)"


def _ylim(ax, lows: list[float], highs: list[float]) -> None:
    # never above 100 %; a margin to a round 5 % below and above the bars otherwise
    lo = max(0.0, 5 * math.floor((100 * min(lows) - 2) / 5))
    hi = min(100.0, 5 * math.ceil((100 * max(highs) + 2) / 5))
    ax.set_ylim(lo, hi if hi > lo else lo + 5)


def _unclip(container) -> None:
    # points at exactly 100 % sit on the top spine: draw them whole (every bar is inside the limits anyway)
    for artist in container.get_children():
        artist.set_clip_on(False)


def _legend(ax, count: int) -> None:
    # many runs: beside the plot, where it hides no point
    if count > 6:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    else:
        ax.legend(fontsize=8)


def _x_axis(ax, xs: list[float]) -> bool:
    """Log when the values span a factor of 3 or more; a narrow range has no 1-2-5 tick inside it on a log
    axis, and crowds its minor labels. Returns whether the axis is logarithmic."""
    from matplotlib import ticker

    if max(xs) < 3 * min(xs):
        ax.xaxis.set_major_locator(ticker.MaxNLocator(4))
        log = False
    else:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        log = True
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    return log


LABEL_SHIFTS = (0, 9, -9, 18, -18, 27)  # points up (or down) a label tries before it covers another


def _annotate_n(ax, points: list[tuple[float, float, int]]) -> None:
    """One 'N=…' per distinct position: points closer than about 5 % of the axes share one label."""
    ax.figure.draw_without_rendering()  # final limits, so that distances are in axes fractions
    to_axes = ax.transData + ax.transAxes.inverted()
    clusters: list[tuple[tuple[float, float], list[tuple[float, float, int]]]] = []
    for x, y, n in points:
        fx, fy = to_axes.transform((x, y))
        for (cx, cy), members in clusters:
            if abs(fx - cx) < 0.05 and abs(fy - cy) < 0.04:
                members.append((x, y, n))
                break
        else:
            clusters.append(((fx, fy), [(x, y, n)]))
    placed: list[Any] = []  # the labels' boxes so far: a label that would cover one moves up or down a line
    for (fx, fy), members in clusters:
        ns = sorted({n for *_, n in members})
        x, y, _ = members[0]
        right, top = fx > 0.85, fy > 0.9  # near the frame: the label goes inside it
        for shift in LABEL_SHIFTS:
            label = ax.annotate("N=" + ",".join(map(str, ns)), (x, y), fontsize=7.5, color="0.2",
                                textcoords="offset points", xytext=(-4 if right else 4, (-4 if top else 4) + shift),
                                ha="right" if right else "left", va="top" if top else "bottom")
            box = label.get_window_extent()
            if shift == LABEL_SHIFTS[-1] or not any(box.overlaps(other) for other in placed):
                break  # the last try stays, covered or not
            label.remove()
        placed.append(box)


def figure_score_vs_n(summaries: Sequence[dict], manifest: dict | None = None):
    from matplotlib import ticker

    groups = _by_label(summaries)
    if not groups:
        return None
    wide = len(groups) > 6
    fig = new_figure(figsize=(7.5 if wide else 5.5, 4.3))
    ax = fig.subplots()
    curves = [label for label, runs in groups.items() if not _is_raw(runs[0])]
    styles = styles_for(list(groups))
    # identical points at one N would hide each other: each curve sits a little left or right of the true N
    step = min(0.06, 0.3 / max(len(curves), 1))
    lows, highs, ns = [], [], set()
    for label, runs in groups.items():
        style = styles[label]
        ns |= {s["n"] for s in runs}
        if _is_raw(runs[0]):
            rep = _raw_run(runs)
            (below,), (above,) = clipped_yerr([rep["overall"]], [rep.get("overall_se", 0.0)])
            y = 100 * rep["overall"]
            name = RAW_LEGEND if label == RAW else f"{label} (1 sample)"
            # above the curves: a strategy no better than raw would hide it otherwise
            ax.axhline(y, color=style["color"], ls=(0, (4, 3)), lw=1.5, label=name, zorder=3)
            ax.axhspan(y - 100 * below, y + 100 * above, color=style["color"], alpha=0.1, lw=0, zorder=0)
            lows.append(rep["overall"] - below)
            highs.append(rep["overall"] + above)
            continue
        shift = 2 ** ((curves.index(label) - (len(curves) - 1) / 2) * step)
        scores = [s["overall"] for s in runs]
        below, above = clipped_yerr(scores, [s.get("overall_se", 0.0) for s in runs])
        bars = ax.errorbar([s["n"] * shift for s in runs], [100 * v for v in scores],
                           yerr=[[100 * b for b in below], [100 * a for a in above]], capsize=3, label=label,
                           color=style["color"], marker=style["marker"], zorder=2)
        _unclip(bars)
        lows += [s - b for s, b in zip(scores, below)]
        highs += [s + a for s, a in zip(scores, above)]
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(ns))  # at the true N, whatever the shifts
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    if len(ns) == 1:
        n = next(iter(ns))
        ax.set_xlim(n / 1.5, n * 1.5)
    ax.set_xlabel("N (candidate budget per prompt, log₂)")
    ax.set_ylabel(_ylabel(manifest))
    _ylim(ax, lows, highs)
    sub = subtitle(summaries, manifest, width=80 if wide else 68)
    band = "; raw's band ±1 SE" if len(curves) < len(groups) else ""
    ax.set_title(f"score vs N ({BARS}{band})" + (f"\n{sub}" if sub else ""), fontsize=9)
    ax.grid(alpha=0.3)
    _legend(ax, len(groups))
    fig.tight_layout()
    return fig


def figure_score_vs_compute(summaries: Sequence[dict], manifest: dict | None = None):
    groups = _by_label(summaries)
    if not groups:
        return None
    wide = len(groups) > 6
    fig = new_figure(figsize=(12 if wide else 10, 4.5))
    axes = fig.subplots(1, 2)
    flops_all = [max(s["cost_per_prompt"]["flops"], 1.0) for runs in groups.values() for s in runs]
    styles = styles_for(list(groups))
    scale, unit = flops_unit(max(flops_all))  # the unit table.md uses
    spans: list[list[float]] = [[], []]  # the x values of each panel
    points: list[list[tuple[float, float, int]]] = [[], []]
    lows, highs = [], []
    for i, (label, runs) in enumerate(groups.items()):
        style = styles[label]
        raw = _is_raw(runs[0])
        if raw:  # one point at its one sample's cost (wall: the mean of its repeats) and a reference line
            rep = _raw_run(runs)
            flops = [max(rep["cost_per_prompt"]["flops"], 1.0) / scale]
            wall = [max(sum(s["cost_per_prompt"]["total_wall"] for s in runs) / len(runs), 1e-6)]
            shown = [rep]
        else:
            flops = [max(s["cost_per_prompt"]["flops"], 1.0) / scale for s in runs]
            wall = [max(s["cost_per_prompt"]["total_wall"], 1e-6) for s in runs]
            shown = runs
        scores = [s["overall"] for s in shown]
        below, above = clipped_yerr(scores, [s.get("overall_se", 0.0) for s in shown])
        yerr = [[100 * b for b in below], [100 * a for a in above]]
        name = (RAW_LEGEND if label == RAW else f"{label} (1 sample)") if raw else label
        # later runs draw smaller markers, so coinciding points show as rings
        size = max(7.5 - 0.8 * i, 5.0)
        for ax, xs, span, pts in zip(axes, (flops, wall), spans, points):
            bars = ax.errorbar(xs, [100 * v for v in scores], yerr=yerr, capsize=3, label=name, color=style["color"],
                               marker=style["marker"], markersize=size, markeredgecolor="white",
                               markeredgewidth=0.6, zorder=2)
            _unclip(bars)
            if raw:
                ax.axhline(100 * scores[0], color=style["color"], ls="--", lw=1, zorder=3)
            else:
                pts += [(x, 100 * s["overall"], s["n"]) for x, s in zip(xs, shown)]
            span += xs
        lows += [s - b for s, b in zip(scores, below)]
        highs += [s + a for s, a in zip(scores, above)]
    log_flops = _x_axis(axes[0], spans[0])
    log_wall = _x_axis(axes[1], spans[1])
    axes[0].set_xlabel(f"{unit} per prompt (model + decode + scorer){', log' if log_flops else ''}")
    axes[1].set_xlabel(f"wall seconds per prompt{', log' if log_wall else ''}")
    for ax in axes:
        ax.set_ylabel(_ylabel(manifest))
        _ylim(ax, lows, highs)
        ax.grid(alpha=0.3)
    _legend(axes[1], len(groups))
    sub = subtitle(summaries, manifest)
    fig.suptitle(f"score vs compute ({BARS})" + (f"\n{sub}" if sub else ""), fontsize=10)
    fig.tight_layout()
    for ax, pts in zip(axes, points):
        if pts:
            _annotate_n(ax, pts)
    return fig


PLOT_FILES = ("score_vs_n.png", "score_vs_compute.png")


def plot_all(summaries: Sequence[dict], out_dir: str | Path, manifest: dict | None = None) -> list[Path]:
    """Both figures into `out_dir`; the subtitle reads `manifest`, else the folder's manifest.json."""
    out = Path(out_dir)
    if manifest is None:
        manifest = read_manifest(out)
    paths = []
    for name, draw in zip(PLOT_FILES, (figure_score_vs_n, figure_score_vs_compute), strict=True):
        fig: Any = draw(summaries, manifest)
        if fig is None:
            return []
        paths.append(out / name)
        fig.savefig(paths[-1], dpi=120)
    return paths
