"""Scenes and the seeded scene sampler.

A scene for a prompt contains exactly the objects its metadata names (for counting, exactly ``k``).
Uncoloured objects get uniformly random colours; every object a uniform integer size in [12, 20] and
a random position. Placement rules (SHAPEWORLD.md):

- every box lies inside the canvas with a margin of at least 2 px: ``2 <= x`` and ``x + s <= 62``;
- any two boxes are at least 3 px apart: there are at least 3 background columns between them or at
  least 3 background rows between them (one box grown by 3 px on every side does not intersect the
  other); objects therefore never overlap or touch;
- an object of a ``position [R, g]`` group stands in relation ``R`` to every object of group ``g``
  *with margin*: using the centres of the ``s x s`` boxes, the offset along the axis ``R`` names is at
  least 12 px in the right direction and larger in magnitude than the offset on the other axis; in
  addition the evaluator's relation rule (GenEval's, on the boxes of the drawn pixels) yields ``R``,
  so clean renders always pass (the margin alone does not guarantee that for large objects).

Sampling is rejection sampling with bounded work: each object tries a few batches of random
positions; if none fits, the positions are drawn again, and after every `_PLACEMENTS_PER_DRAW` failed
placements the sizes and colours too (redrawing sizes at every failure would favour small objects,
which are easier to place); after `MAX_RESTARTS` failed scenes a RuntimeError is raised (this does
not happen for the v1 grammar).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arscale.shapeworld.grammar import (
    COLOR_NAMES,
    IMAGE_SIZE,
    GrammarError,
    check_metadata,
)

MIN_SIZE = 12
MAX_SIZE = 20
MARGIN = 2
MIN_GAP = 3
MIN_RELATION_OFFSET = 12.0
MAX_RESTARTS = 2000
MAX_OBJECTS = 8  # beyond the v1 grammar's 4, for extra-object scenes; 9 boxes of 20 px cannot fit
_BATCH = 64
_BATCHES_PER_OBJECT = 3
_PLACEMENTS_PER_DRAW = 20  # placement attempts per draw of sizes and colours


@dataclass(frozen=True)
class SceneObject:
    """One object: class, colour name, size ``s`` and the top-left corner ``(x, y)`` of its ``s x s`` box."""

    cls: str
    color: str
    size: int
    x: int
    y: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The ``s x s`` box as ``(x0, y0, x1, y1)`` with exclusive ends."""
        return self.x, self.y, self.x + self.size, self.y + self.size

    @property
    def visible_box(self) -> tuple[int, int, int, int]:
        """Bounding box ``(x0, y0, x1, y1)`` (exclusive ends) of the pixels this object draws; what
        `detect` reports for it on a clean render."""
        from arscale.shapeworld.render import visible_offsets

        dx0, dy0, dx1, dy1 = visible_offsets(self.cls, self.size)
        return self.x + dx0, self.y + dy0, self.x + dx1, self.y + dy1

    def to_dict(self) -> dict:
        return {"cls": self.cls, "color": self.color, "size": self.size, "x": self.x, "y": self.y}


@dataclass
class Scene:
    objects: list[SceneObject] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"objects": [o.to_dict() for o in self.objects]}

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls([SceneObject(**o) for o in d["objects"]])


def _validate_groups(metadata: dict) -> list[dict]:
    check_metadata(metadata)
    if not isinstance(metadata.get("include"), list):
        raise GrammarError(f"metadata must be an object with an 'include' list, got {metadata!r}")
    groups = metadata["include"]
    total = sum(g["count"] for g in groups)
    if total > MAX_OBJECTS:
        raise GrammarError(f"a scene holds at most {MAX_OBJECTS} objects, the metadata asks for {total}")
    return groups


def relation_with_margin(a: SceneObject, b: SceneObject, relation: str) -> bool:
    """Whether ``a`` stands in ``relation`` to ``b`` with the sampler's margin (see the module docs)."""
    from arscale.shapeworld.evaluate import relative_position

    ox = (a.x + a.size / 2) - (b.x + b.size / 2)
    oy = (a.y + a.size / 2) - (b.y + b.size / 2)
    if relation == "left of":
        ok = ox <= -MIN_RELATION_OFFSET and abs(ox) > abs(oy)
    elif relation == "right of":
        ok = ox >= MIN_RELATION_OFFSET and abs(ox) > abs(oy)
    elif relation == "above":
        ok = oy <= -MIN_RELATION_OFFSET and abs(oy) > abs(ox)
    elif relation == "below":
        ok = oy >= MIN_RELATION_OFFSET and abs(oy) > abs(ox)
    else:
        raise ValueError(f"unknown relation {relation!r}")
    return ok and relation in relative_position(a.visible_box, b.visible_box)


def placement_ok(objects: list[SceneObject]) -> bool:
    """Whether every box is inside the canvas margin and every pair is at least `MIN_GAP` px apart."""
    for i, a in enumerate(objects):
        if not (MIN_SIZE <= a.size <= MAX_SIZE):
            return False
        if (
            a.x < MARGIN
            or a.y < MARGIN
            or a.x + a.size > IMAGE_SIZE - MARGIN
            or a.y + a.size > IMAGE_SIZE - MARGIN
        ):
            return False
        for b in objects[:i]:
            if not (
                b.x >= a.x + a.size + MIN_GAP
                or a.x >= b.x + b.size + MIN_GAP
                or b.y >= a.y + a.size + MIN_GAP
                or a.y >= b.y + b.size + MIN_GAP
            ):
                return False
    return True


def _try_scene(specs, rng: np.random.Generator) -> list[SceneObject] | None:
    placed: list[SceneObject] = []
    group_of: list[int] = []
    for gi, cls, color, size, position in specs:
        hi = IMAGE_SIZE - MARGIN - size  # inclusive upper bound of x and y
        if placed:
            px = np.array([o.x for o in placed])
            py = np.array([o.y for o in placed])
            ps = np.array([o.size for o in placed])
        chosen = None
        for _ in range(_BATCHES_PER_OBJECT):
            xy = rng.integers(MARGIN, hi + 1, size=(_BATCH, 2))
            if placed:
                x, y = xy[:, :1], xy[:, 1:]
                apart = (
                    (px >= x + size + MIN_GAP)
                    | (x >= px + ps + MIN_GAP)
                    | (py >= y + size + MIN_GAP)
                    | (y >= py + ps + MIN_GAP)
                ).all(axis=1)
                candidates = np.flatnonzero(apart)
            else:
                candidates = range(_BATCH)
            for c in candidates:
                obj = SceneObject(cls, color, size, int(xy[c, 0]), int(xy[c, 1]))
                if position is not None:
                    rel, target = position
                    targets = [o for o, g in zip(placed, group_of, strict=True) if g == target]
                    if not all(relation_with_margin(obj, t, rel) for t in targets):
                        continue
                chosen = obj
                break
            if chosen is not None:
                break
        if chosen is None:
            return None
        placed.append(chosen)
        group_of.append(gi)
    return placed


def sample_scene(metadata: dict, rng: np.random.Generator) -> Scene:
    """A random scene containing exactly the objects ``metadata`` names (see the module docs)."""
    groups = _validate_groups(metadata)
    for attempt in range(MAX_RESTARTS):
        if attempt % _PLACEMENTS_PER_DRAW == 0:  # keep sizes while only the positions failed: sizes stay uniform
            specs = []
            for gi, g in enumerate(groups):
                for _k in range(g["count"]):
                    color = g.get("color")
                    if color is None:
                        color = COLOR_NAMES[int(rng.integers(len(COLOR_NAMES)))]
                    size = int(rng.integers(MIN_SIZE, MAX_SIZE + 1))
                    specs.append((gi, g["class"], color, size, g.get("position")))
        objects = _try_scene(specs, rng)
        if objects is not None:
            return Scene(objects)
    raise RuntimeError(
        f"could not place the objects of {metadata.get('prompt', metadata)!r} after {MAX_RESTARTS} attempts"
    )
