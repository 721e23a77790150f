"""The exact ShapeWorld evaluator: a palette detector plus GenEval's judgement rules.

Detection (SHAPEWORLD.md, "Evaluator" 1-4):

1. every pixel takes the nearest palette entry (background ``(240, 240, 240)`` included) by Euclidean
   distance in sRGB; a pixel farther than 80 from every entry is background (a distance of exactly 80
   still counts as near);
2. for each object colour, 4-connected components of its pixels (run-length labelling with a small
   union-find, pure numpy/python); components with fewer than 12 pixels are dropped;
3. each component's class: every class is rasterised (`render.rasterize`, the renderer's exact
   formulas and pixel-centre convention) in an ``s x s`` box, ``s = max(w, h)`` of the component's
   bounding box, centred on the bounding box: top-left ``(x0 + (w - s) / 2, y0 + (h - s) / 2)``, which
   is half-integer when ``s - w`` (or ``s - h``) is odd. IoU with the component's mask is computed over
   all pixels (the raster may leave the bounding box). The best class wins if its IoU is >= 0.5
   (ties: the first in `CLASSES`), otherwise the component is ignored;
4. within a class, detections are ordered by area, largest first (ties: top-most, then left-most).

A `Detection`'s ``box`` is ``(x0, y0, x1, y1)`` in pixel-edge coordinates with **exclusive** ends
(``x1 = x0 + width``), like mmdet's boxes, so box centres are geometric centres. Judgement follows
GenEval's ``evaluate_images.py`` rules and reason strings (see `judge`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from arscale.errors import ArscaleError
from arscale.shapeworld.grammar import (
    BACKGROUND,
    CLASSES,
    COLOR_NAMES,
    COLORS,
    check_metadata,
    metadata_from_prompt,
)
from arscale.shapeworld.render import rasterize

COLOR_THRESHOLD = 80.0
MIN_AREA = 12
MIN_IOU = 0.5
POSITION_THRESHOLD = 0.1

# GenEval's colour list; reasons list the found colours in this order.
GENEVAL_COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")

_PALETTE = np.array([BACKGROUND, *COLORS.values()], dtype=np.int32)  # index 0 = background
_PALETTE_SQ32 = (_PALETTE.astype(np.float32) ** 2).sum(axis=1)
_PALETTE_M2T = np.ascontiguousarray(-2.0 * _PALETTE.astype(np.float32).T)


@dataclass(frozen=True)
class Detection:
    """One detected object. ``box = (x0, y0, x1, y1)`` with exclusive ends; ``area`` in pixels; ``iou``
    is the IoU of the winning class raster (the detector's "confidence")."""

    cls: str
    color: str
    box: tuple[int, int, int, int]
    area: int
    iou: float


@dataclass(frozen=True)
class Verdict:
    correct: bool
    reason: str
    detections: list[Detection] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# detection


def _as_rgb(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        try:
            image = np.asarray(image.convert("RGB"))
        except AttributeError:
            raise ArscaleError(f"expected an RGB image array, got {type(image).__name__}") from None
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ArscaleError(f"expected an image of shape [H, W, 3] (or RGBA), got shape {tuple(image.shape)}")
    if image.dtype != np.uint8:
        raise ArscaleError(f"expected a uint8 image, got dtype {image.dtype}")
    return image[..., :3]


def color_map(image) -> np.ndarray:
    """``int8 [H, W]``: 0 for background, ``1 + i`` for the i-th colour of `COLORS`."""
    img = _as_rgb(image)
    h, w = img.shape[:2]
    flat = img.reshape(-1, 3).astype(np.float32)
    # ||p - c||^2 = ||c||^2 - 2 p.c + ||p||^2. Every term is an integer below 2^24, so float32 (and the
    # BLAS matmul) is exact and the argmin (first minimum on ties) equals the integer computation.
    e = flat @ _PALETTE_M2T
    e += _PALETTE_SQ32
    nearest = e.argmin(axis=1)
    d2 = np.take_along_axis(e, nearest[:, None], axis=1)[:, 0] + np.einsum("ij,ij->i", flat, flat)
    nearest[d2 > COLOR_THRESHOLD**2] = 0
    return nearest.astype(np.int8).reshape(h, w)


def label_components(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-connected components of equal non-zero labels.

    Returns ``(comp, colour)``: ``comp`` is ``int32 [H, W]`` with -1 on background and component ids
    ``0..K-1`` (numbered in raster order of their first pixel); ``colour[k]`` is component k's label.
    """
    h, w = labels.shape
    fg = labels > 0
    start = fg.copy()
    start[:, 1:] &= labels[:, 1:] != labels[:, :-1]
    runid = np.cumsum(start.ravel(), dtype=np.int32).reshape(h, w)  # 1-based on foreground pixels
    nruns = int(runid[-1, -1]) if h and w else 0
    comp = np.full((h, w), -1, dtype=np.int32)
    if nruns == 0:
        return comp, np.zeros(0, dtype=np.int8)
    link = fg[:-1] & (labels[:-1] == labels[1:])
    a = runid[:-1][link]
    b = runid[1:][link]
    parent = list(range(nruns + 1))
    if a.size:
        keys = np.unique(a.astype(np.int64) * (nruns + 1) + b)
        for ra, rb in zip((keys // (nruns + 1)).tolist(), (keys % (nruns + 1)).tolist(), strict=True):
            # find with path halving
            while parent[ra] != ra:
                parent[ra] = parent[parent[ra]]
                ra = parent[ra]
            while parent[rb] != rb:
                parent[rb] = parent[parent[rb]]
                rb = parent[rb]
            if ra != rb:
                if ra < rb:
                    parent[rb] = ra
                else:
                    parent[ra] = rb
    # Resolve roots; runs are numbered in raster order and roots are minimal ids, so a root always
    # precedes the runs it owns and a single forward pass suffices.
    compact = [-1] * (nruns + 1)
    nxt = 0
    for r in range(1, nruns + 1):
        p = parent[r]
        if p == r:
            compact[r] = nxt
            nxt += 1
        else:
            root = p
            while parent[root] != root:
                root = parent[root]
            parent[r] = root
            compact[r] = compact[root]
    compact_arr = np.asarray(compact, dtype=np.int32)
    comp[fg] = compact_arr[runid[fg]]
    first = np.flatnonzero(start.ravel())  # first pixel of each run, runs in order 1..nruns
    colour = np.zeros(nxt, dtype=np.int8)
    colour[compact_arr[1:]] = labels.ravel()[first]
    return comp, colour


@lru_cache(maxsize=4096)
def _class_rasters(s: int, fx: float, fy: float) -> np.ndarray:
    """``bool [4, hh, ww]``: the four classes of size ``s`` with box origin ``(fx, fy)`` in a window of
    ``ceil(f + s)`` pixels per axis (``f`` is 0 or 0.5)."""
    ww, hh = math.ceil(fx + s), math.ceil(fy + s)
    r = np.stack([rasterize(c, s, fx, fy, hh, ww) for c in CLASSES])
    r.setflags(write=False)
    return r


@lru_cache(maxsize=4096)
def _class_areas(s: int, fx: float, fy: float) -> np.ndarray:
    return np.count_nonzero(_class_rasters(s, fx, fy), axis=(1, 2))


def classify(mask: np.ndarray, x0: int, y0: int) -> tuple[str | None, float]:
    """Classify a component given its boolean mask cropped to its bounding box at ``(x0, y0)``.

    Returns ``(class or None, best IoU)``. Coordinates are only used through the box shape; the result
    does not depend on where the box is.
    """
    h, w = mask.shape
    s = max(w, h)
    # Box origin relative to the bounding box: (w - s) / 2, (h - s) / 2 (<= 0, integer or half-integer).
    ox, oy = (w - s) / 2.0, (h - s) / 2.0
    wx0, wy0 = math.floor(ox), math.floor(oy)
    fx, fy = ox - wx0, oy - wy0
    rasters = _class_rasters(s, fx, fy)
    hh, ww = rasters.shape[1:]
    window = np.zeros((hh, ww), dtype=bool)
    window[-wy0 : -wy0 + h, -wx0 : -wx0 + w] = mask
    inter = np.count_nonzero(rasters & window, axis=(1, 2))
    union = _class_areas(s, fx, fy) + np.count_nonzero(mask) - inter
    iou = inter / np.maximum(union, 1)
    best = int(np.argmax(iou))
    if iou[best] >= MIN_IOU:
        return CLASSES[best], float(iou[best])
    return None, float(iou[best])


def detect(image) -> list[Detection]:
    """Detect ShapeWorld objects in an RGB ``uint8 [H, W, 3]`` image (any size; RGBA's alpha is ignored).

    Returns detections grouped by class in `CLASSES` order, each class sorted by area (largest first,
    then top-most, then left-most). Boxes are ``(x0, y0, x1, y1)`` with exclusive ends.
    """
    labels = color_map(image)
    comp, colour = label_components(labels)
    k = colour.shape[0]
    if k == 0:
        return []
    ids = comp.ravel()
    fgi = np.flatnonzero(ids >= 0)
    cid = ids[fgi]
    area = np.bincount(cid, minlength=k)
    w_img = comp.shape[1]
    ys, xs = np.divmod(fgi, w_img)
    x0 = np.full(k, np.iinfo(np.int64).max, dtype=np.int64)
    y0 = x0.copy()
    x1 = np.full(k, -1, dtype=np.int64)
    y1 = x1.copy()
    np.minimum.at(x0, cid, xs)
    np.minimum.at(y0, cid, ys)
    np.maximum.at(x1, cid, xs)
    np.maximum.at(y1, cid, ys)
    found: dict[str, list[Detection]] = {}
    for c in np.flatnonzero(area >= MIN_AREA).tolist():
        bx0, by0, bx1, by1 = int(x0[c]), int(y0[c]), int(x1[c]) + 1, int(y1[c]) + 1
        mask = comp[by0:by1, bx0:bx1] == c
        cls, iou = classify(mask, bx0, by0)
        if cls is None:
            continue
        det = Detection(cls, COLOR_NAMES[int(colour[c]) - 1], (bx0, by0, bx1, by1), int(area[c]), iou)
        found.setdefault(cls, []).append(det)
    out: list[Detection] = []
    for cls in CLASSES:
        dets = found.get(cls, [])
        dets.sort(key=lambda d: (-d.area, d.box[1], d.box[0]))
        out.extend(dets)
    return out


# --------------------------------------------------------------------------------------------------
# judgement


def relative_position(box_a, box_b, threshold: float = POSITION_THRESHOLD) -> tuple[str, ...]:
    """Relations of box A to box B by GenEval's rule (threshold 0.1), in `RELATIONS` order.

    Boxes are ``(x0, y0, x1, y1)``; centre = corner mean, size = ``(x1 - x0, y1 - y0)``;
    ``offset = ca - cb``; ``rev = max(|offset| - threshold * (da + db), 0) * sign(offset)``; no relation
    if both components of ``rev`` are below 1e-3; else ``(dx, dy) = rev / |offset|`` and left of /
    right of / above / below for ``dx < -0.5`` / ``dx > 0.5`` / ``dy < -0.5`` / ``dy > 0.5``.
    """
    ax0, ay0, ax1, ay1 = (float(v) for v in box_a[:4])
    bx0, by0, bx1, by1 = (float(v) for v in box_b[:4])
    ox = (ax0 + ax1) / 2 - (bx0 + bx1) / 2
    oy = (ay0 + ay1) / 2 - (by0 + by1) / 2
    rx = max(abs(ox) - threshold * (abs(ax1 - ax0) + abs(bx1 - bx0)), 0.0) * float(np.sign(ox))
    ry = max(abs(oy) - threshold * (abs(ay1 - ay0) + abs(by1 - by0)), 0.0) * float(np.sign(oy))
    if abs(rx) < 1e-3 and abs(ry) < 1e-3:
        return ()
    norm = math.sqrt(ox * ox + oy * oy)
    dx, dy = rx / norm, ry / norm
    rels = []
    if dx < -0.5:
        rels.append("left of")
    if dx > 0.5:
        rels.append("right of")
    if dy < -0.5:
        rels.append("above")
    if dy > 0.5:
        rels.append("below")
    return tuple(rels)


def judge(objects: dict[str, list[Detection]], metadata: dict) -> tuple[bool, str]:
    """GenEval's judgement on detections grouped by class, each list in the order GenEval takes by
    confidence (here `detect`'s: largest area first).

    Includes are ANDed, excludes ORed. Each include group takes the first ``count`` objects of its
    class; colour and position are checked on those only. Reasons use GenEval's wording, joined by
    newlines (relations found are listed in `RELATIONS` order).
    """
    correct = True
    reason: list[str] = []
    matched_groups: list[list[Detection] | None] = []
    for req in metadata.get("include", []):
        cls = req["class"]
        count = req["count"]
        matched = True
        found = objects.get(cls, [])[:count]
        if len(found) < count:
            correct = matched = False
            reason.append(f"expected {cls}>={count}, found {len(found)}")
        else:
            if "color" in req:
                colors = [d.color for d in found]
                want = req["color"]
                if colors.count(want) < count:
                    correct = matched = False
                    reason.append(
                        f"expected {want} {cls}>={count}, found {colors.count(want)} {want}; and "
                        + ", ".join(f"{colors.count(c)} {c}" for c in GENEVAL_COLORS if c in colors)
                    )
            if "position" in req and matched:
                rel, target = req["position"]
                if matched_groups[target] is None:
                    correct = matched = False
                    reason.append(f"no target for {cls} to be {rel}")
                else:
                    for obj in found:
                        for tgt in matched_groups[target]:
                            true_rels = relative_position(obj.box, tgt.box)
                            if rel not in true_rels:
                                correct = matched = False
                                reason.append(
                                    f"expected {cls} {rel} target, found {' and '.join(true_rels)} target"
                                )
                                break
                        if not matched:
                            break
        matched_groups.append(found if matched else None)
    for req in metadata.get("exclude", []):
        cls = req["class"]
        n = len(objects.get(cls, []))
        if n >= req["count"]:
            correct = False
            reason.append(f"expected {cls}<{req['count']}, found {n}")
    return correct, "\n".join(reason)


def group_by_class(detections: list[Detection]) -> dict[str, list[Detection]]:
    out: dict[str, list[Detection]] = {}
    for d in detections:
        out.setdefault(d.cls, []).append(d)
    for dets in out.values():
        dets.sort(key=lambda d: (-d.area, d.box[1], d.box[0]))
    return out


def evaluate(image, metadata: dict | str, detections: list[Detection] | None = None) -> Verdict:
    """Judge one image against one GenEval/ShapeWorld metadata record, or against a prompt of the ShapeWorld
    grammar (parsed with `metadata_from_prompt`).

    ``detections`` may be passed to skip detection (e.g. when judging one image for several records).
    Raises `ArscaleError` for an image that is neither a PIL image nor ``uint8 [H, W, 3]`` (RGBA ``[H, W, 4]``
    passes, its alpha ignored), metadata naming unknown classes, colours or relations, or a prompt outside the
    grammar.
    """
    if isinstance(metadata, str):
        metadata = metadata_from_prompt(metadata)
    check_metadata(metadata)
    if detections is None:
        detections = detect(image)
    correct, reason = judge(group_by_class(detections), metadata)
    return Verdict(correct, reason, detections)


def details(detections: list[Detection]) -> dict[str, list[list[float]]]:
    """GenEval's ``details`` column: per class, ``[x0, y0, x1, y1, confidence]`` of every detection."""
    out: dict[str, list[list[float]]] = {}
    for d in detections:
        out.setdefault(d.cls, []).append([*map(float, d.box), round(d.iou, 6)])
    return out
