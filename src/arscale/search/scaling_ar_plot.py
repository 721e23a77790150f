"""The picture `arscale generate --strategy scaling-ar` writes beside its images: the paper's Fig. 1 (bottom left)."""

from __future__ import annotations

import math
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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tele = result.telemetry
    if "prompts" not in tele:
        raise ArscaleError("this result has no ScalingAR telemetry to plot")
    written = []
    for p, traces in enumerate(tele["prompts"][:max_prompts]):
        path = out / f"confidence_{p:05d}.png"
        _plot_prompt(result, p, traces, path)
        written.append(path)
    return written


PER_CANDIDATE_COLOURS = 10  # beyond the colour cycle, lines are coloured by fate and named only on thumbnails
THUMBS_PER_ROW = 12


def _plot_prompt(result: SearchResult, p: int, traces: list[dict], path: Path) -> None:
    import matplotlib

    from arscale.figures import clip_text, new_figure

    tele = result.telemetry
    chosen_node = result.chosen(p).node if result.candidates[p] else None
    final_images = {c.node: c.image for c in result.candidates[p]}
    # where `generate` writes each final candidate: the candidates of every prompt, numbered in order
    first = sum(len(per) for per in result.candidates[:p])
    file_index = {c.node: first + j for j, c in enumerate(result.candidates[p])}
    by_fate = len(traces) > PER_CANDIDATE_COLOURS
    cols = max(1, min(len(traces), THUMBS_PER_ROW))
    thumb_rows = -(-len(traces) // cols)
    fig = new_figure(figsize=(max(7.0, 0.75 * cols + 2.4), 3.4 + 1.15 * thumb_rows), dpi=110)
    grid = fig.add_gridspec(1 + thumb_rows, cols, height_ratios=(3.0, *[1.15] * thumb_rows))
    ax = fig.add_subplot(grid[0, :])
    line_color: dict[int, Any] = {}
    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, tr in enumerate(traces):
        c = np.asarray(tr["C"], dtype=float)
        chosen = tr["node"] == chosen_node
        pruned = tr["reason"] == "prune"
        if chosen:  # black is the pick's alone
            style = {"lw": 2.0, "color": "black", "zorder": 4}
        elif by_fate:
            style = {"lw": 0.8, "color": "#bbbbbb" if pruned else "#2c7bb6", "alpha": 0.9}
        else:
            style = {"lw": 1.0, "color": cycle[i % len(cycle)], "alpha": 0.85}
        label = None if by_fate else f"cand {tr['candidate']}" + (" (chosen)" if chosen else "")
        (line,) = ax.plot(np.arange(len(c)), c, label=label, **style)
        line_color[tr["node"]] = line.get_color()
        if pruned and tr["ended"] is not None:  # in the line's own colour, where it stops
            ax.scatter([tr["ended"]], [c[tr["ended"]]], marker="x", color=line.get_color(), zorder=5, s=36,
                       linewidths=1.6)
    if by_fate:
        ax.plot([], [], color="black", lw=2.0, label="chosen")
        if any(tr["reason"] != "prune" and tr["node"] != chosen_node for tr in traces):
            ax.plot([], [], color="#2c7bb6", lw=1.0, label="survived")
        ax.plot([], [], color="#bbbbbb", lw=1.0, label="terminated")
    theta = np.asarray(tele["threshold"][p], dtype=float)
    if np.isfinite(theta).any():  # without termination (terminate: false) there is no threshold to draw or name
        ax.plot(np.arange(len(theta)), theta, ls="--", color="dimgray", lw=1.1, label="threshold θ")
    ax.axvline(tele.get("warmup_steps", 0), color="dimgray", lw=1.1, ls=":", label="warm-up ends")
    if any(tr["reason"] == "prune" for tr in traces):  # the legend names only marks the plot has
        ax.scatter([], [], marker="x", color="dimgray", label="terminated here")
    ax.set_xlabel("token step")
    ax.set_ylabel("confidence C")
    ax.set_title(f"ScalingAR confidence, {len(traces)} candidates: {clip_text(result.prompts[p], 70)}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)  # off the curves
    for i, tr in enumerate(traces):
        thumb = fig.add_subplot(grid[1 + i // cols, i % cols])
        thumb.set_xticks([])
        thumb.set_yticks([])
        image = final_images.get(tr["node"], tr.get("preview"))
        if image is not None:
            thumb.imshow(image, interpolation="nearest")
            if tr["node"] not in final_images and tr["ended"] is not None:
                _shade_undrawn(thumb, image, int(tr["ended"]), int(tele.get("num_tokens", 0)))
        if tr["node"] == chosen_node:
            caption, frame = f"chosen (image {file_index[chosen_node]})", "black"
        elif tr["reason"] == "prune":
            caption, frame = f"× step {tr['ended']}", "lightgray"
        else:
            caption, frame = "survived", "gray"
        # the caption in the candidate's line colour (dark for a pale line), the frame in its fate's
        colour = "dimgray" if line_color[tr["node"]] == "#bbbbbb" else line_color[tr["node"]]
        thumb.set_title(f"cand {tr['candidate']}\n{caption}", fontsize=7, color=colour)
        for spine in thumb.spines.values():
            spine.set_edgecolor(frame)
            spine.set_linewidth(2.4 if tr["node"] == chosen_node else 0.8)
    fig.tight_layout()
    fig.savefig(path)


UNDRAWN = (0.35, 0.35, 0.35, 0.55)  # over the tokens a terminated candidate never generated


def _shade_undrawn(ax: Any, image: np.ndarray, ended: int, num_tokens: int) -> None:
    """Grey over the part of a raster-order preview after its last generated token, so what was never drawn
    does not pass for background. Only for a square token grid that tiles the image evenly."""
    side = math.isqrt(max(num_tokens, 0))
    height, width = image.shape[:2]
    if side * side != num_tokens or height % side or width % side or ended >= num_tokens:
        return
    cell_h, cell_w = height // side, width // side
    overlay = np.zeros((height, width, 4))
    row, col = divmod(ended, side)
    overlay[row * cell_h: (row + 1) * cell_h, col * cell_w:] = UNDRAWN  # the rest of the row it stopped in
    overlay[(row + 1) * cell_h:] = UNDRAWN  # every row below
    ax.imshow(overlay, interpolation="nearest")
