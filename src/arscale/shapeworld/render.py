"""Rasterising ShapeWorld shapes (shared by the renderer and the evaluator) and rendering scenes.

Geometry (SHAPEWORLD.md, "Objects"). A shape of size ``s`` occupies the ``s x s`` box whose top-left
corner is ``(ox, oy)``; pixel ``(row i, col j)`` has its centre at ``(j + 0.5, i + 0.5)``. With
``u = j + 0.5 - ox`` and ``v = i + 0.5 - oy`` (coordinates inside the box) and ``c = s / 2``:

- ``square``:   ``0 <= u < s`` and ``0 <= v < s`` (the whole box);
- ``circle``:   ``(u - c)^2 + (v - c)^2 <= c^2`` (disc of radius ``s/2`` at the box centre);
- ``triangle``: ``0 <= v < s`` and ``|u - c| <= v / 2`` (upward isosceles: apex ``(c, 0)``, base = the
  bottom edge). For even ``s`` no pixel centre of the top row is inside, so the drawn pixels span rows
  ``1..s-1`` of the box (the detected box of an even-size triangle is one row shorter at the top);
- ``cross``:    the union of the bars ``c - t/2 <= u < c + t/2`` (vertical) and ``c - t/2 <= v < c + t/2``
  (horizontal), each also inside the box, with thickness ``t = round(s / 3)``. ``s / 3`` is never a
  half-integer for integer ``s``, so Python's ``round`` and ``numpy.round`` agree; ``t`` is 4, 4, 5, 5, 5,
  6, 6, 6, 7 for ``s`` = 12..20. The bar bounds are half-open (top-left rule), so a bar is exactly
  ``t`` pixels thick even when ``s`` and ``t`` have different parity (then it sits half a pixel towards
  the top / left of the exact centre).

For integer-aligned boxes only the cross bounds can pass exactly through pixel centres (the disc and
the triangle edges never do), so the half-open rule above is the only tie rule that matters for
rendering. The evaluator rasterises the same formulas in boxes that may be offset by half a pixel.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from arscale.shapeworld.grammar import BACKGROUND, CLASSES, COLORS, IMAGE_SIZE


def cross_thickness(s: int) -> int:
    """Bar thickness of a cross of size ``s``: ``round(s / 3)`` (never a .5 tie for integer ``s``)."""
    return round(s / 3)


def rasterize(cls: str, s: int, ox: float, oy: float, height: int, width: int) -> np.ndarray:
    """Boolean ``[height, width]`` mask of class ``cls``, size ``s``, box top-left ``(ox, oy)`` (real)."""
    u = (np.arange(width, dtype=np.float64) + 0.5 - ox)[None, :]
    v = (np.arange(height, dtype=np.float64) + 0.5 - oy)[:, None]
    c = s / 2.0
    in_u = (u >= 0) & (u < s)
    in_v = (v >= 0) & (v < s)
    if cls == "square":
        return in_v & in_u
    if cls == "circle":
        return (u - c) ** 2 + (v - c) ** 2 <= c * c
    if cls == "triangle":
        return in_v & (np.abs(u - c) <= v / 2.0)
    if cls == "cross":
        t = cross_thickness(s)
        bar_u = (u >= c - t / 2.0) & (u < c + t / 2.0)
        bar_v = (v >= c - t / 2.0) & (v < c + t / 2.0)
        return (bar_u & in_v) | (bar_v & in_u)
    raise ValueError(f"unknown class {cls!r}: expected one of {', '.join(CLASSES)}")


@cache
def shape_mask(cls: str, s: int) -> np.ndarray:
    """The ``s x s`` boolean mask of a class drawn at an integer position (read-only, cached)."""
    m = rasterize(cls, s, 0.0, 0.0, s, s)
    m.setflags(write=False)
    return m


@cache
def visible_offsets(cls: str, s: int) -> tuple[int, int, int, int]:
    """Bounding box ``(x0, y0, x1, y1)`` (exclusive ends) of the drawn pixels inside the ``s x s`` box."""
    m = shape_mask(cls, s)
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


_RGB = {name: np.array(rgb, dtype=np.uint8) for name, rgb in COLORS.items()}


def _draw(canvas: np.ndarray, obj) -> None:
    s = int(obj.size)
    m = shape_mask(obj.cls, s)
    h, w = canvas.shape[:2]
    x0, y0 = int(obj.x), int(obj.y)
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + s, w), min(y0 + s, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    sub = m[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    canvas[cy0:cy1, cx0:cx1][sub] = _RGB[obj.color]


def render(scene) -> np.ndarray:
    """Render a `Scene` to a ``uint8 [64, 64, 3]`` image (flat colours on the background; later objects
    are drawn over earlier ones, which never happens for valid scenes; parts outside the canvas are cut)."""
    canvas = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    canvas[...] = BACKGROUND
    for obj in scene.objects:
        _draw(canvas, obj)
    return canvas


def render_batch(scenes) -> np.ndarray:
    """Render a sequence of scenes to ``uint8 [B, 64, 64, 3]``."""
    scenes = list(scenes)
    out = np.empty((len(scenes), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    out[...] = BACKGROUND
    for b, scene in enumerate(scenes):
        for obj in scene.objects:
            _draw(out[b], obj)
    return out
