"""Relation rule thresholds (GenEval's 0.5 on the normalised revised offset) and the sampler's margin."""

from __future__ import annotations

import numpy as np

from arscale.shapeworld import SceneObject, relative_position, sample_scene
from arscale.shapeworld.scene import relation_with_margin


def test_each_direction_needs_more_than_half_of_the_normalised_offset():
    # 10x10 boxes: 0.1 * (10 + 10) = 2 is taken off each axis. offset (10, 7) -> rev (8, 5),
    # |offset| = sqrt(149): dx = 0.655 (right of), dy = 0.41 (not below: 0.41 < 0.5).
    a, b = (10, 7, 20, 17), (0, 0, 10, 10)
    assert relative_position(a, b) == ("right of",)
    assert relative_position(b, a) == ("left of",)
    # transposed: dy = 0.655 (below), dx = 0.41 (not right of)
    at, bt = (7, 10, 17, 20), (0, 0, 10, 10)
    assert relative_position(at, bt) == ("below",)
    assert relative_position(bt, at) == ("above",)


def _sq(size, x, y, cls="square"):
    return SceneObject(cls, "red", size, x, y)


def test_margin_is_12_px_along_the_named_axis():
    a = _sq(12, 10, 20)  # centre (16, 26)
    assert relation_with_margin(a, _sq(12, 22, 20), "left of")  # ox = -12: exactly the margin
    assert not relation_with_margin(a, _sq(13, 21, 20), "left of")  # ox = -11.5
    assert relation_with_margin(_sq(12, 22, 20), a, "right of")
    assert not relation_with_margin(_sq(13, 21, 20), a, "right of")
    b = _sq(12, 20, 10)  # centre (26, 16)
    assert relation_with_margin(_sq(12, 20, 22), b, "below")
    assert not relation_with_margin(_sq(13, 20, 21), b, "below")  # oy = 11.5
    assert relation_with_margin(b, _sq(12, 20, 22), "above")


def test_margin_also_requires_the_evaluator_rule():
    # Box centres 12 px apart in x and 11 in y: the margin alone holds (|ox| >= 12 and |ox| > |oy|),
    # but GenEval's rule on two 20 px boxes gives dx = -8 / sqrt(265) = -0.49: no "left of".
    a, b = _sq(20, 2, 2), _sq(20, 14, 13)
    assert "left of" not in relative_position(a.visible_box, b.visible_box)
    assert not relation_with_margin(a, b, "left of")
    assert not relation_with_margin(b, a, "right of")


def test_position_group_is_placed_relative_to_its_own_target_group():
    # The relation refers to group 1 (the circle), not to the first object placed (the square).
    meta = {
        "include": [
            {"class": "square", "count": 1},
            {"class": "circle", "count": 1},
            {"class": "triangle", "count": 1, "position": ["left of", 1]},
        ]
    }
    for seed in range(40):
        scene = sample_scene(meta, np.random.default_rng(seed))
        square, circle, triangle = scene.objects
        assert (square.cls, circle.cls, triangle.cls) == ("square", "circle", "triangle")
        assert relation_with_margin(triangle, circle, "left of"), seed
