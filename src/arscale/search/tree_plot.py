"""`search_tree.png`: per scale, every candidate's partial image; which were clustered or resampled
away; the lineage of the final pick."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from arscale.search.result import SearchResult

MAX_COLUMNS = 16  # candidates shown per scale (the pick's line first); a wider row says how many it leaves out
PROMPT_CHARS = 100  # of the prompt in the title, about as wide as its second line (result.json has it whole)
COLORS = {"pick": "black", "lineage": "#1a9850", "cluster": "#4575b4", "resample": "#d73027", "alive": "#bbbbbb"}


def draw_search_tree(result: SearchResult, prompt: int, path: str | Path) -> bool:
    """Draw one prompt's search; False when the result carries no previews (nothing drawn)."""
    previews = [(e["scale"], [i for i, q in enumerate(e["prompt"]) if q == prompt], e)
                for e in result.telemetry.get("previews", [])]
    previews = [(k, idx, e) for k, idx, e in previews if idx]
    if not previews:
        return False
    from matplotlib.patches import Patch

    from arscale.figures import clip_text, new_figure

    chosen = result.chosen(prompt)
    lineage = lineage_until(result, chosen.node)
    cut: dict[tuple[int, int], str] = {}  # (scale, node) -> operation that removed it
    reward: dict[tuple[int, int], float] = {}  # (scale, node) -> the reward a resampling read
    for op in result.telemetry.get("operations", []):
        before = {n for n, q in zip(op["nodes"], op["prompt"]) if q == prompt}
        kept = set(op["kept_nodes"])
        for node in before - kept:
            cut[(op["scale"], node)] = op["op"]
        for node, value in zip(op["nodes"], op.get("reward", [])):
            reward[(op["scale"], node)] = value
    # the pick's line first in every row, so it reads down one column
    previews = [(k, sorted(idx, key=lambda i, k=k, e=e: k >= lineage.get(e["nodes"][i], -1)), e)
                for k, idx, e in previews]
    hidden = {k: max(len(idx) - MAX_COLUMNS, 0) for k, idx, _ in previews}  # wide rows show their first ones
    previews = [(k, idx[:MAX_COLUMNS], e) for k, idx, e in previews]
    width = max(len(idx) for _, idx, _ in previews)
    fig = new_figure(figsize=(1.1 * width + 1.4, 1.15 * len(previews) + 0.8))
    axes = fig.subplots(len(previews), width, squeeze=False)
    for r, (k, idx, entry) in enumerate(previews):
        for col in range(width):
            ax = axes[r][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(idx):
                ax.axis("off")
                continue
            node = entry["nodes"][idx[col]]
            ax.imshow(np.asarray(entry["images"][idx[col]]), interpolation="nearest")
            status = "lineage" if k < lineage.get(node, -1) else cut.get((k, node), "alive")
            if node == chosen.node and r == len(previews) - 1:
                status = "pick"
            for spine in ax.spines.values():
                spine.set_edgecolor(COLORS[status])
                spine.set_linewidth(3 if status != "alive" else 1)
            if node == chosen.node and r == len(previews) - 1:
                ax.set_title(f"pick, reward {chosen.score:.2f}" if chosen.score is not None else "pick", fontsize=7)
            elif (k, node) in reward:
                ax.set_xlabel(f"{reward[(k, node)]:.2f}", fontsize=7, labelpad=1)
        maps = result.telemetry.get("token_maps") or []
        size = f"\n{maps[k][0]}×{maps[k][1]} tokens" if k < len(maps) else ""
        more = f"\n(+{hidden[k]} not shown)" if hidden[k] else ""
        axes[r][0].set_ylabel(f"scale {k}{size}{more}", fontsize=8)
    legend = [Patch(edgecolor=c, facecolor="none", linewidth=2, label=label) for label, c in
              (("the pick", COLORS["pick"]), ("lineage of the pick", COLORS["lineage"]),
               ("clustered away", COLORS["cluster"]), ("resampled away", COLORS["resample"]),
               ("alive", COLORS["alive"]))]
    fig.legend(handles=legend, loc="lower center", ncol=5, fontsize=7, frameon=False)
    title = f"{result.strategy}: {clip_text(result.prompts[prompt], PROMPT_CHARS)}"
    fig.suptitle(f"{title}\npartial decodes of each scale's image so far (colours "
                 "settle at the fine scales); numbers: the reward each resampling read", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.93))
    fig.savefig(path, dpi=110, bbox_inches="tight")  # a narrow tree (N <= 4) is narrower than its title and legend
    return True


def lineage_until(result: SearchResult, node: int) -> dict[int, float]:
    """The pick's ancestors, each with the first 0-based scale that is no longer the pick's history: a copy made
    after scale b - 1 (born = b) shares scales 0..b-1 with its parent, and what the parent drew from scale b on
    is another row's, which may since have been resampled away."""
    path = result.tree.lineage(node)
    return {**{parent: result.tree.born[child] for parent, child in itertools.pairwise(path)}, node: float("inf")}
