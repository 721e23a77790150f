"""Figures arscale draws (bench plots, the search pictures), each on a figure of its own."""

from __future__ import annotations

from typing import Any


def new_figure(**kwargs: Any):
    """A figure outside pyplot (`matplotlib.figure.Figure(**kwargs)`): drawing and saving it neither switches the
    matplotlib backend of a program that uses arscale (a notebook, a desktop window) nor adds to pyplot's open
    figures. `savefig` picks the writer from the file's suffix, whatever the backend."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)
