"""Figures arscale draws (bench plots, the search pictures), each on a figure of its own."""

from __future__ import annotations

from typing import Any


def new_figure(**kwargs: Any):
    """A figure outside pyplot (`matplotlib.figure.Figure(**kwargs)`): drawing and saving it neither switches the
    matplotlib backend of a program that uses arscale (a notebook, a desktop window) nor adds to pyplot's open
    figures. `savefig` picks the writer from the file's suffix, whatever the backend."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def clip_text(text: str, width: int) -> str:
    """`text` cut to `width` characters, with "…" where it was cut (a long prompt in a title would otherwise widen
    the picture, or be cut without a sign)."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
