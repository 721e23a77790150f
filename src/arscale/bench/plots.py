"""`score_vs_n.png` (the paper's Fig. 3) and `score_vs_compute.png` (Fig. 8) from run summaries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def _by_label(summaries: Sequence[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in summaries:
        if s.get("overall") is not None:
            out.setdefault(s["label"], []).append(s)
    return {k: sorted(v, key=lambda s: s["n"]) for k, v in out.items()}


_MARKERS = "osD^vPX*"


def _styles(labels: Sequence[str]) -> dict[str, dict]:
    """A distinct colour + marker per run: ten colours, then the next marker, so that ablation tables
    with more than ten rows stay readable."""
    return {label: {"color": f"C{i % 10}", "marker": _MARKERS[(i // 10) % len(_MARKERS)]}
            for i, label in enumerate(labels)}


def _legend(ax, count: int) -> None:
    # many runs: beside the plot, where it hides no point
    if count > 6:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    else:
        ax.legend(fontsize=8)


def plot_all(summaries: Sequence[dict], out_dir: str | Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    groups = _by_label(summaries)
    if not groups:
        return []
    style = _styles(list(groups))
    wide = len(groups) > 6
    out = Path(out_dir)
    paths = []

    fig, ax = plt.subplots(figsize=(7.5 if wide else 5.5, 4))
    for label, runs in groups.items():
        ax.errorbar([s["n"] for s in runs], [s["overall"] for s in runs],
                    yerr=[s.get("overall_se", 0.0) for s in runs], capsize=3, label=label, **style[label])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (candidate budget per prompt)")
    ax.set_ylabel("overall (ShapeWorld GenEval)")
    ax.set_title("score vs N")
    ax.grid(alpha=0.3)
    _legend(ax, len(groups))
    fig.tight_layout()
    paths.append(out / "score_vs_n.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12 if wide else 10, 4))
    spans: list[list[float]] = [[], []]  # the x values of each panel
    for label, runs in groups.items():
        flops = [max(s["cost_per_prompt"]["flops"], 1.0) for s in runs]
        wall = [max(s["cost_per_prompt"]["total_wall"], 1e-6) for s in runs]
        score = [s["overall"] for s in runs]
        se = [s.get("overall_se", 0.0) for s in runs]
        axes[0].errorbar(flops, score, yerr=se, capsize=3, label=label, **style[label])
        axes[1].errorbar(wall, score, yerr=se, capsize=3, label=label, **style[label])
        spans[0] += flops
        spans[1] += wall
        for s, x in zip(runs, flops):
            axes[0].annotate(f"N={s['n']}", (x, s["overall"]), fontsize=6, xytext=(2, 2), textcoords="offset points")
    axes[0].set_xlabel("FLOPs per prompt (transformer + decode + scorer)")
    axes[1].set_xlabel("wall seconds per prompt")
    for ax, xs in zip(axes, spans):
        if max(xs) < 3 * min(xs):  # a narrow range (one strategy's N, or equal costs): a log axis has no 1-2-5
            ax.xaxis.set_major_locator(ticker.MaxNLocator(4))  # tick inside it and crowds its minor labels
        else:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
        ax.set_ylabel("overall")
        ax.grid(alpha=0.3)
    _legend(axes[1], len(groups))
    fig.suptitle("score vs compute")
    fig.tight_layout()
    paths.append(out / "score_vs_compute.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths
