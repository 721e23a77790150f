"""The picture `arscale generate --strategy scaling-ar` writes beside its images: the paper's Fig. 1 (bottom left)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from arscale.errors import ArscaleError
from arscale.search.result import SearchResult


def write_extras(result: SearchResult, out_dir: str | Path, max_prompts: int = 64) -> list[Path]:
    """Plot each prompt's confidence trajectories C_t with prune events (the paper's Fig. 1, bottom left), and
    under it every candidate: what a terminated one had drawn when it stopped, and the survivors' images.

    Writes `confidence_<prompt index>.png` into `out_dir`; returns the written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tele = result.telemetry
    if "prompts" not in tele:
        raise ArscaleError("this result has no ScalingAR telemetry to plot")
    written = []
    for p, traces in enumerate(tele["prompts"][:max_prompts]):
        chosen_node = result.chosen(p).node if result.candidates[p] else None
        final_images = {c.node: c.image for c in result.candidates[p]}
        fig = plt.figure(figsize=(max(6.0, 0.8 * len(traces)), 4.8), dpi=100)
        grid = fig.add_gridspec(2, max(1, len(traces)), height_ratios=(3.2, 1.2))
        ax = fig.add_subplot(grid[0, :])
        line_color: dict[int, Any] = {}
        for tr in traces:
            c = np.asarray(tr["C"], dtype=float)
            steps = np.arange(len(c))
            # the candidates in the colour cycle; black is the pick's alone, so no colour means two things
            style = {"lw": 2.4, "color": "black"} if tr["node"] == chosen_node else {"lw": 1.0, "alpha": 0.8}
            label = f"cand {tr['candidate']}" + (" (chosen)" if tr["node"] == chosen_node else "")
            (line,) = ax.plot(steps, c, label=label, **style)
            line_color[tr["node"]] = line.get_color()
            if tr["reason"] == "prune" and tr["ended"] is not None:  # in the line's own colour, where it stops
                ax.scatter([tr["ended"]], [c[tr["ended"]]], marker="x", color=line.get_color(), zorder=5, s=40,
                           linewidths=1.8)
        theta = np.asarray(tele["threshold"][p], dtype=float)
        ax.plot(np.arange(len(theta)), theta, ls="--", color="gray", lw=1, label="threshold θ")
        ax.axvline(tele.get("warmup_steps", 0), color="gray", lw=0.8, ls=":", label="warm-up ends")
        ax.scatter([], [], marker="x", color="gray", label="terminated")
        ax.set_xlabel("token step")
        ax.set_ylabel("confidence C")
        ax.set_title(str(result.prompts[p])[:70], fontsize=9)  # a class-conditional prompt is an index
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)  # off the curves
        for i, tr in enumerate(traces):
            thumb = fig.add_subplot(grid[1, i])
            thumb.set_xticks([])
            thumb.set_yticks([])
            image = final_images.get(tr["node"], tr.get("preview"))
            if image is not None:
                thumb.imshow(image)
            if tr["node"] == chosen_node:
                caption, color = "chosen", "black"
            elif tr["reason"] == "prune":
                caption, color = f"× step {tr['ended']}", "lightgray"
            else:
                caption, color = "survived", "gray"
            # the caption in the candidate's line colour, the frame in its fate's
            thumb.set_title(f"cand {tr['candidate']}\n{caption}", fontsize=6, color=line_color[tr["node"]])
            for spine in thumb.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(2.0 if tr["node"] == chosen_node else 0.8)
        fig.tight_layout()
        path = out / f"confidence_{p:05d}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
