"""A second ShapeWorld v1 evaluator and prompt parser, written from SHAPEWORLD.md alone.

Nothing here imports arscale: it is the contract read once more, by someone else, so that the shipped
evaluator can be compared with it on many messy images. Where the contract leaves a choice open (ties
between palette entries, pixel centres exactly on a shape's edge, equal IoUs, equal areas) the reference
reports the case as ``ambiguous`` instead of deciding it.
"""

from __future__ import annotations

import itertools
import re
from collections import deque

import numpy as np

SIZE = 64
BACKGROUND = (240, 240, 240)
PALETTE = {
    "red": (220, 40, 40),
    "orange": (245, 145, 30),
    "yellow": (235, 215, 40),
    "green": (40, 160, 70),
    "blue": (40, 90, 215),
    "purple": (145, 65, 180),
}
COLOR_NAMES = list(PALETTE)
CLASSES = ("circle", "square", "triangle", "cross")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "cross": "crosses"}
NUMBERS = {"two": 2, "three": 3, "four": 4}
RELATIONS = ("left of", "right of", "above", "below")
TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
FAR = 80.0
MIN_AREA = 12
MIN_IOU = 0.5
THRESHOLD = 0.1


# ---------------------------------------------------------------------------------------------- 1. colour map

def color_map(image: np.ndarray):
    """Per pixel: -1 background, else the index of the nearest object colour; and a mask of pixels whose
    nearest entry is tied (the contract does not say which wins)."""
    img = np.asarray(image, dtype=np.int64)[..., :3]
    entries = np.array([BACKGROUND] + [PALETTE[c] for c in COLOR_NAMES], dtype=np.int64)  # 0 = background
    d2 = ((img[:, :, None, :] - entries[None, None, :, :]) ** 2).sum(-1)  # exact integers
    best = d2.min(-1)
    nearest = d2.argmin(-1)
    tied = (d2 == best[..., None]).sum(-1) > 1
    far = best > FAR * FAR
    labels = np.where(far | (nearest == 0), -1, nearest - 1)
    tied &= ~far  # a far pixel is background whichever entry is nearest
    return labels, tied


# ---------------------------------------------------------------------------------------------- 2. components

def components(labels: np.ndarray):
    """4-connected components of each object colour, area >= 12: (colour index, mask, box, area) with
    box = (x0, y0, x1, y1), exclusive ends."""
    h, w = labels.shape
    seen = np.zeros((h, w), dtype=bool)
    out = []
    for y in range(h):
        for x in range(w):
            c = labels[y, x]
            if c < 0 or seen[y, x]:
                continue
            pixels = []
            queue = deque([(y, x)])
            seen[y, x] = True
            while queue:
                py, px = queue.popleft()
                pixels.append((py, px))
                for ny, nx in ((py - 1, px), (py + 1, px), (py, px - 1), (py, px + 1)):
                    if 0 <= ny < h and 0 <= nx < w and not seen[ny, nx] and labels[ny, nx] == c:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
            if len(pixels) < MIN_AREA:
                continue
            ys = np.array([p[0] for p in pixels])
            xs = np.array([p[1] for p in pixels])
            mask = np.zeros((h, w), dtype=bool)
            mask[ys, xs] = True
            out.append((int(c), mask, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                        len(pixels)))
    return out


# ---------------------------------------------------------------------------------------------- 3. shapes

def raster(cls: str, s: int, ox: float, oy: float, shape=(SIZE, SIZE), pad: int = 0):
    """Pixels (centres at x+0.5, y+0.5) inside class `cls` drawn in the s x s box at (ox, oy).

    Returns (mask, on_edge): on_edge marks pixel centres exactly on the shape's boundary, whose membership
    the contract leaves open. The mask reads "inside" as the closed disc / triangle and the box and the
    cross's bars as half-open intervals [lo, hi) (what the renders show for the bars, the only edge case
    a clean integer render has). The grid spans [-pad, size + pad) on each axis."""
    h, w = shape
    ys = np.arange(-pad, h + pad, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(-pad, w + pad, dtype=np.float64)[None, :] + 0.5
    cx, cy = ox + s / 2.0, oy + s / 2.0
    in_box = (xs >= ox) & (xs < ox + s) & (ys >= oy) & (ys < oy + s)
    edge_box = ((xs == ox) | (xs == ox + s) | (ys == oy) | (ys == oy + s))
    if cls == "square":
        return in_box, edge_box & (xs >= ox) & (xs <= ox + s) & (ys >= oy) & (ys <= oy + s)
    if cls == "circle":
        d2 = (xs - cx) ** 2 + (ys - cy) ** 2
        r2 = (s / 2.0) ** 2
        return d2 <= r2, d2 == r2
    if cls == "triangle":
        depth = ys - oy  # 0 at the apex row, s at the base
        half = np.abs(xs - cx)
        inside = (depth >= 0) & (depth < s) & (half <= depth / 2.0)
        edge = (depth <= s) & (depth >= 0) & ((half == depth / 2.0) | ((depth == s) & (half <= depth / 2.0)))
        return inside, edge
    if cls == "cross":
        t = round(s / 3)
        horiz = (ys >= cy - t / 2.0) & (ys < cy + t / 2.0) & (xs >= ox) & (xs < ox + s)
        vert = (xs >= cx - t / 2.0) & (xs < cx + t / 2.0) & (ys >= oy) & (ys < oy + s)
        edge = ((ys == cy - t / 2.0) | (ys == cy + t / 2.0)) & (xs >= ox) & (xs <= ox + s)
        edge |= ((xs == cx - t / 2.0) | (xs == cx + t / 2.0)) & (ys >= oy) & (ys <= oy + s)
        return horiz | vert, edge
    raise ValueError(cls)


def classify(mask: np.ndarray, box, *, pad: int = 32, clip: str = "none"):
    """Best class by IoU with rasters of s = max(w, h) centred on the component's box.

    clip: which raster pixels count: "none" (all, also off the canvas), "canvas", or "box" (the component's
    bounding box only); the contract says "rasterise ... in the component's bounding box", which does not
    settle it. Returns (class or None, iou, ious, ambiguous)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    s = max(w, h)
    ox = x0 + w / 2.0 - s / 2.0
    oy = y0 + h / 2.0 - s / 2.0
    H, W = mask.shape
    big = np.zeros((H + 2 * pad, W + 2 * pad), dtype=bool)
    big[pad:pad + H, pad:pad + W] = mask
    keep = np.ones_like(big)
    if clip == "canvas":
        keep[:] = False
        keep[pad:pad + H, pad:pad + W] = True
    elif clip == "box":
        keep[:] = False
        keep[pad + y0:pad + y1, pad + x0:pad + x1] = True
    ious, edges = {}, {}
    for cls in CLASSES:
        r, e = raster(cls, s, ox, oy, (H, W), pad)
        r &= keep
        e &= keep
        inter = (r & big).sum()
        union = (r | big).sum()
        ious[cls] = inter / union
        edges[cls] = bool(e.any())
    best = max(CLASSES, key=lambda c: ious[c])
    top = ious[best]
    ambiguous = sum(1 for c in CLASSES if ious[c] == top) > 1
    # an edge pixel could move a class's IoU across the 0.5 line or past the best one
    for cls in CLASSES:
        if edges[cls]:
            r, e = raster(cls, s, ox, oy, (H, W), pad)
            r &= keep
            e &= keep
            lo_r, hi_r = r & ~e, r | e
            lo = (lo_r & big).sum() / (lo_r | big).sum()
            hi = (hi_r & big).sum() / (hi_r | big).sum()
            span = (min(lo, hi, ious[cls]), max(lo, hi, ious[cls]))
            if span[0] < MIN_IOU <= span[1] and cls == best:
                ambiguous = True
            others = [ious[c] for c in CLASSES if c != cls]
            if cls == best and span[0] <= max(others):
                ambiguous = True
            if cls != best and span[1] >= top:
                ambiguous = True
    if top < MIN_IOU:
        return None, float(top), ious, ambiguous
    return best, float(top), ious, ambiguous


def detect(image: np.ndarray, *, clip: str = "none"):
    """Detections [{cls, color, box, area, iou}] and whether any tie the contract leaves open touched them."""
    labels, tied = color_map(image)
    ambiguous = False
    dets = []
    for c, mask, box, area in components(labels):
        cls, iou, _, amb = classify(mask, box, clip=clip)
        if (tied & mask).any():
            amb = True
        # a tied pixel next to a component could join it or not
        ambiguous |= amb
        if cls is not None:
            dets.append({"cls": cls, "color": COLOR_NAMES[c], "box": box, "area": area, "iou": iou})
    # tied pixels anywhere can change components (join, split, add a class's object)
    if tied.any():
        ambiguous = True
    return dets, ambiguous


def by_class(dets):
    """class -> detections, largest area first; a tie in area (order undecided) is flagged."""
    groups, ambiguous = {}, False
    for d in dets:
        groups.setdefault(d["cls"], []).append(d)
    for g in groups.values():
        g.sort(key=lambda d: -d["area"])
        areas = [d["area"] for d in g]
        if len(set(areas)) < len(areas):
            ambiguous = True
    return groups, ambiguous


# ---------------------------------------------------------------------------------------------- 6. relations

def relation(box_a, box_b):
    """GenEval's relative position (threshold 0.1) of a to b, as a set of relation words."""
    a = np.asarray(box_a, dtype=np.float64)
    b = np.asarray(box_b, dtype=np.float64)
    ca = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
    cb = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    da = np.abs(np.array([a[2] - a[0], a[3] - a[1]]))  # GenEval takes |diff|
    db = np.abs(np.array([b[2] - b[0], b[3] - b[1]]))
    offset = ca - cb
    rev = np.maximum(np.abs(offset) - THRESHOLD * (da + db), 0) * np.sign(offset)
    if np.all(np.abs(rev) < 1e-3):
        return set()
    dx, dy = rev / np.linalg.norm(offset)
    rels = set()
    if dx < -0.5:
        rels.add("left of")
    if dx > 0.5:
        rels.add("right of")
    if dy < -0.5:
        rels.add("above")
    if dy > 0.5:
        rels.add("below")
    return rels


# ---------------------------------------------------------------------------------------------- 5. judgement

def judge(groups: dict, metadata: dict):
    """GenEval's evaluate(): (correct, list of failed-check kinds). The kinds name which rule failed:
    count / color / position / no-target / exclude."""
    correct = True
    failures = []
    matched_groups = []
    for req in metadata.get("include", []):
        cls = req["class"]
        matched = True
        found = groups.get(cls, [])[: req["count"]]
        if len(found) < req["count"]:
            correct = matched = False
            failures.append(("count", cls, req["count"], len(found)))
        else:
            if "color" in req:
                n = sum(1 for d in found if d["color"] == req["color"])
                if n < req["count"]:
                    correct = matched = False
                    failures.append(("color", cls, req["color"], n))
            if "position" in req and matched:
                rel, target = req["position"]
                if matched_groups[target] is None:
                    correct = matched = False
                    failures.append(("no-target", cls, rel))
                else:
                    for obj in found:
                        for tgt in matched_groups[target]:
                            rels = relation(obj["box"], tgt["box"])
                            if rel not in rels:
                                correct = matched = False
                                failures.append(("position", cls, rel, tuple(sorted(rels))))
                                break
                        if not matched:
                            break
        matched_groups.append(found if matched else None)
    for req in metadata.get("exclude", []) or []:
        n = len(groups.get(req["class"], []))
        if n >= req["count"]:
            correct = False
            failures.append(("exclude", req["class"], req["count"], n))
    return correct, failures


def evaluate(image: np.ndarray, metadata: dict, *, clip: str = "none"):
    """(correct, failures, detections, ambiguous)."""
    dets, amb = detect(image, clip=clip)
    groups, amb2 = by_class(dets)
    correct, failures = judge(groups, metadata)
    return correct, failures, dets, amb or amb2


# ---------------------------------------------------------------------------------------------- grammar

def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _g(cls, count=1, color=None, position=None):
    g = {"class": cls, "count": count}
    if color is not None:
        g["color"] = color
    if position is not None:
        g["position"] = list(position)
    return g


def all_prompts():
    """Every prompt the grammar allows, with the metadata the contract's table gives it."""
    out = []

    def rec(tag, include, prompt, exclude=None):
        r = {"tag": tag, "include": include}
        if exclude is not None:
            r["exclude"] = exclude
        r["prompt"] = prompt
        out.append(r)

    for c in CLASSES:
        rec("single_object", [_g(c)], f"a photo of {article(c)} {c}")
    for c1, c2 in itertools.permutations(CLASSES, 2):
        rec("two_object", [_g(c1), _g(c2)], f"a photo of {article(c1)} {c1} and {article(c2)} {c2}")
    for c in CLASSES:
        for word, k in NUMBERS.items():
            rec("counting", [_g(c, k)], f"a photo of {word} {PLURALS[c]}", exclude=[_g(c, k + 1)])
    for k in COLOR_NAMES:
        for c in CLASSES:
            rec("colors", [_g(c, 1, k)], f"a photo of {article(k)} {k} {c}")
    for c1, c2 in itertools.permutations(CLASSES, 2):
        for r in RELATIONS:
            rec("position", [_g(c2), _g(c1, 1, position=(r, 0))],
                f"a photo of {article(c1)} {c1} {r} {article(c2)} {c2}")
    for c1, c2 in itertools.permutations(CLASSES, 2):
        for k1, k2 in itertools.permutations(COLOR_NAMES, 2):
            rec("color_attr", [_g(c1, 1, k1), _g(c2, 1, k2)],
                f"a photo of {article(k1)} {k1} {c1} and {article(k2)} {k2} {c2}")
    return out


_C = "|".join(CLASSES)
_K = "|".join(COLOR_NAMES)
_R = "|".join(RELATIONS)
_FORMS = [
    ("counting", re.compile(rf"a photo of (two|three|four) ({'|'.join(PLURALS.values())})")),
    ("color_attr", re.compile(rf"a photo of (an?) ({_K}) ({_C}) and (an?) ({_K}) ({_C})")),
    ("colors", re.compile(rf"a photo of (an?) ({_K}) ({_C})")),
    ("position", re.compile(rf"a photo of (an?) ({_C}) ({_R}) (an?) ({_C})")),
    ("two_object", re.compile(rf"a photo of (an?) ({_C}) and (an?) ({_C})")),
    ("single_object", re.compile(rf"a photo of (an?) ({_C})")),
]


def parse(prompt: str):
    """prompt -> metadata by the contract's table, or None for a prompt outside the grammar."""
    for tag, rx in _FORMS:
        m = rx.fullmatch(prompt)
        if not m:
            continue
        g = m.groups()
        if tag == "counting":
            cls = {v: k for k, v in PLURALS.items()}[g[1]]
            k = NUMBERS[g[0]]
            return {"tag": tag, "include": [_g(cls, k)], "exclude": [_g(cls, k + 1)], "prompt": prompt}
        arts_words = [(g[i], g[i + 1]) for i in range(len(g)) if g[i] in ("a", "an")]
        if any(a != article(w) for a, w in arts_words):
            return None
        if tag == "single_object":
            return {"tag": tag, "include": [_g(g[1])], "prompt": prompt}
        if tag == "colors":
            return {"tag": tag, "include": [_g(g[2], 1, g[1])], "prompt": prompt}
        if tag == "two_object":
            if g[1] == g[3]:
                return None
            return {"tag": tag, "include": [_g(g[1]), _g(g[3])], "prompt": prompt}
        if tag == "position":
            if g[1] == g[4]:
                return None
            return {"tag": tag, "include": [_g(g[4]), _g(g[1], 1, position=(g[2], 0))], "prompt": prompt}
        if tag == "color_attr":
            if g[2] == g[5] or g[1] == g[4]:
                return None
            return {"tag": tag, "include": [_g(g[2], 1, g[1]), _g(g[5], 1, g[4])], "prompt": prompt}
    return None


# ---------------------------------------------------------------------------------------------- scenes

def scene_violations(objects, metadata):
    """What a scene for a prompt breaks of the contract; objects as dicts {cls, color, size, x, y}."""
    bad = []
    want = {}
    for g in metadata["include"]:
        want[g["class"]] = want.get(g["class"], 0) + g["count"]
    have = {}
    for o in objects:
        have[o["cls"]] = have.get(o["cls"], 0) + 1
    if have != want:
        bad.append(f"objects {have} != {want}")
    for o in objects:
        if not 12 <= o["size"] <= 20:
            bad.append(f"size {o['size']}")
        if o["x"] < 2 or o["y"] < 2 or o["x"] + o["size"] > SIZE - 2 or o["y"] + o["size"] > SIZE - 2:
            bad.append(f"margin {o}")
        if o["color"] not in PALETTE:
            bad.append(f"color {o['color']}")
    for a, b in itertools.combinations(objects, 2):
        ax0, ay0, ax1, ay1 = a["x"] - 3, a["y"] - 3, a["x"] + a["size"] + 3, a["y"] + a["size"] + 3
        bx0, by0, bx1, by1 = b["x"], b["y"], b["x"] + b["size"], b["y"] + b["size"]
        if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1:
            bad.append(f"too close {a} {b}")
    for g in metadata["include"]:
        if "color" in g:
            n = sum(1 for o in objects if o["cls"] == g["class"] and o["color"] == g["color"])
            if n < g["count"]:
                bad.append(f"colour {g}")
    return bad
