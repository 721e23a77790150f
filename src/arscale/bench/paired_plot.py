"""`arscale compare --plot`: the paired differences as a forest plot, one row per tag and one for `overall`.

Each compared run is a marker at its difference in points, with a bar of ±1.96 paired SE (about 95 %), so a
bar that crosses zero is a change the prompts cannot tell from none. Runs keep the colours of the bench
figures (`plots.style_for`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from arscale.bench.plots import _pyplot, style_for

OVERALL = "overall"
Z95 = 1.96


def figure_comparison(rows: Sequence[dict], name_a: str = "A", name_b: str = "B"):
    """The figure of `paired.compare_folders`'s rows (those with judged prompts), or None if there are none."""
    rows = [r for r in rows if r.get("prompts")]
    if not rows:
        return None
    plt = _pyplot()
    tags = sorted({tag for r in rows for tag in r.get("tags", {})}) + [OVERALL]
    height = 1.2 + 0.42 * len(tags) * max(1.0, len(rows) ** 0.5)
    fig, ax = plt.subplots(figsize=(7.5, height))
    spread = 0.7 / len(rows)  # several runs share a tag's row, side by side
    for j, r in enumerate(rows):
        offset = (j - (len(rows) - 1) / 2) * spread
        ys, xs, errs = [], [], []
        for i, tag in enumerate(tags):
            cell = r if tag == OVERALL else r.get("tags", {}).get(tag)
            if cell:
                ys.append(i + offset)
                xs.append(100 * cell["diff"])
                errs.append(100 * Z95 * cell["diff_se"])
        style = style_for(r["label"])
        ax.errorbar(xs, ys, xerr=errs, fmt=style["marker"], color=style["color"], capsize=3, markersize=6,
                    label=f"{r['label']} N={r['n']} (against {r['against']}, {r['prompts']} prompts)")
    ax.axvline(0.0, color="0.5", linewidth=1)
    ax.axhline(len(tags) - 1.5, color="0.85", linewidth=0.8)  # overall below the tags
    ax.set_yticks(range(len(tags)), tags)
    ax.set_ylim(len(tags) - 0.5, -0.5)
    ax.set_xlabel(f"{name_b} − {name_a}, accuracy points (bars: ±{Z95} paired SE)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(0.0, -0.12 - 0.5 / height), borderaxespad=0.0)
    ax.set_title("paired differences on the prompts both runs judged", fontsize=10)
    fig.tight_layout()
    return fig


def plot_comparison(rows: Sequence[dict], path: str | Path, name_a: str = "A", name_b: str = "B") -> Path | None:
    """Write the figure to `path` (PNG, or whatever its suffix names); None when no row has judged prompts."""
    fig = figure_comparison(rows, name_a, name_b)
    if fig is None:
        return None
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return path
