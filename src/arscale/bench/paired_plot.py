"""`arscale compare --plot`: the paired differences as a forest plot, one row per tag and one for `overall`.

Each compared run is a marker at its difference in points, with a bar of ±1.96 paired SE (about 95 %), so a
bar that crosses zero is a change the prompts cannot tell from none; bars stop at ±100 points, the most a
difference of accuracies can be. Runs keep the colours of the bench figures (`plots.styles_for`); the marker
says the N, the same for every label. Tags are in table.md's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from arscale.bench.plots import MARKERS, styles_for
from arscale.bench.table import label_order, tag_order
from arscale.errors import ArscaleError
from arscale.figures import new_figure
from arscale.folders import first_missing, remove_empty_folders

OVERALL = "overall"
Z95 = 1.96


def figure_comparison(rows: Sequence[dict], name_a: str = "A", name_b: str = "B", *, overall: str = OVERALL,
                      order: Sequence[str] | None = None, context: str = ""):
    """The figure of `paired.compare_folders`'s rows (those with judged prompts), or None if there are none.
    Pooled rows (`pooled.pool_draws`) draw one line per draw (`order`: the draws as given) and
    `overall="pooled"`. `context` (what was run: model, suite, seed) goes under the title."""
    rows = sorted((r for r in rows if r.get("prompts")), key=lambda r: (label_order(r["label"]), r["n"]))
    if not rows:
        return None
    present = {tag for r in rows for tag in r.get("tags", {})}
    tags = ([t for t in order if t in present] if order is not None else tag_order(present)) + [overall]
    # the rows, then one legend line per run below the x label (constrained layout keeps them apart)
    height = 1.4 + 0.42 * len(tags) * max(1.0, len(rows) ** 0.5) + 0.17 * len(rows) + (0.2 if context else 0.0)
    fig = new_figure(figsize=(7.5, height), layout="constrained")
    ax = fig.subplots()
    spread = 0.7 / len(rows)  # several runs share a tag's row, side by side
    styles = styles_for([r["label"] for r in rows])
    budgets = sorted({r["n"] for r in rows})
    for j, r in enumerate(rows):
        offset = (j - (len(rows) - 1) / 2) * spread
        ys, xs, low, high = [], [], [], []
        for i, tag in enumerate(tags):
            cell = r if tag == overall else r.get("tags", {}).get(tag)
            if cell:
                x, err = 100 * cell["diff"], 100 * Z95 * cell["diff_se"]
                ys.append(i + offset)
                xs.append(x)
                low.append(min(err, x + 100))
                high.append(min(err, 100 - x))
        style = styles[r["label"]]
        marker = MARKERS[budgets.index(r["n"]) % len(MARKERS)]  # one marker per N across runs: colour is the run
        ax.errorbar(xs, ys, xerr=[low, high], fmt=marker, color=style["color"], capsize=3, markersize=6,
                    label=f"{r['label']} N={r['n']} (against {r['against']}, {r['prompts']} prompts"
                          + (f" in {r['draws']} draws)" if "draws" in r else ")"))
    ax.axvline(0.0, color="0.5", linewidth=1)
    ax.axhline(len(tags) - 1.5, color="0.85", linewidth=0.8)  # overall (or pooled) below the tags (or draws)
    ax.set_yticks(range(len(tags)), tags)
    ax.set_ylim(len(tags) - 0.5, -0.5)
    ax.set_xlabel(f"{name_b} − {name_a}, accuracy points (bars: ±{Z95} paired SE)")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize=7.5, loc="outside lower left", frameon=False)
    title = ("paired differences on the prompts both runs judged" if overall == OVERALL else
             f"paired differences per draw and {overall}")
    ax.set_title(title + (f"\n{context}" if context else ""), fontsize=10)
    return fig


def plot_comparison(rows: Sequence[dict], path: str | Path, name_a: str = "A", name_b: str = "B", *,
                    overall: str = OVERALL, order: Sequence[str] | None = None, context: str = "") -> Path | None:
    """Write the figure to `path` (PNG, or whatever its suffix names; its folder is made); None when no row has
    judged prompts."""
    fig = figure_comparison(rows, name_a, name_b, overall=overall, order=order, context=context)
    if fig is None:
        return None
    path = Path(path)
    if not path.suffix:  # what savefig would write: say so
        path = path.with_suffix(".png")
    made = first_missing(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    # a file where the folder should be, a suffix matplotlib cannot write, .pgf without a TeX (RuntimeError)
    except (OSError, ValueError, RuntimeError) as exc:
        remove_empty_folders(made)  # the folders made for a plot that was not drawn
        raise ArscaleError(f"cannot write --plot {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return path
