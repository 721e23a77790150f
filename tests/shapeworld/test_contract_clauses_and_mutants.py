"""SHAPEWORLD.md clause by clause, and tests that kill the mutants of src/arscale/shapeworld the other tests
let live. Every expectation is derived from the contract (or the module docs where the contract leaves a tie open),
by hand, in the comments; none is read back from the code."""

from __future__ import annotations

import numpy as np
import pytest

from arscale.shapeworld import (
    Detection,
    Scene,
    SceneObject,
    detect,
    evaluate,
    judge,
    relative_position,
    render,
)
from arscale.shapeworld.evaluate import classify
from arscale.shapeworld.grammar import BACKGROUND, COLORS, metadata_from_prompt
from arscale.shapeworld.render import rasterize, shape_mask
from arscale.shapeworld.scene import relation_with_margin

# --------------------------------------------------------------------------------------------------
# Objects: the pixel sets, in integer arithmetic (pixel (i, j) has its centre at (j + 1/2, i + 1/2))


def _contract_mask(cls: str, s: int) -> np.ndarray:
    i, j = np.mgrid[0:s, 0:s]
    a, b = 2 * j + 1 - s, 2 * i + 1 - s  # 2 (u - s/2), 2 (v - s/2)
    if cls == "square":  # the whole box
        return np.ones((s, s), bool)
    if cls == "circle":  # disc of radius s/2 at the box centre: a^2 + b^2 <= s^2 (never equal: odd/even parity)
        return a * a + b * b <= s * s
    if cls == "triangle":  # apex (s/2, 0), base the bottom edge: |u - s/2| <= v/2  <=>  2|a| <= 2i + 1 (never equal)
        return 2 * np.abs(a) <= 2 * i + 1
    # cross: bars of thickness t = round(s/3) (4,4,5,5,5,6,6,6,7 for s = 12..20) and length s through the centre;
    # where s and t differ in parity the bar sits half a pixel to the top / left (render.py's half-open rule):
    # s/2 - t/2 <= u < s/2 + t/2  <=>  -t <= a < t
    t = {12: 4, 13: 4, 14: 5, 15: 5, 16: 5, 17: 6, 18: 6, 19: 6, 20: 7}[s]
    return ((-t <= a) & (a < t)) | ((-t <= b) & (b < t))


@pytest.mark.parametrize("cls", ["circle", "square", "triangle", "cross"])
def test_each_class_draws_exactly_the_contract_pixels(cls):
    """SHAPEWORLD.md "Objects": every size's mask, pixel for pixel (the cross's parity tie as render.py documents)."""
    for s in range(12, 21):
        assert (shape_mask(cls, s) == _contract_mask(cls, s)).all(), (cls, s)
        obj = SceneObject(cls, "green", s, 7, 11)
        drawn = (render(Scene([obj])) != BACKGROUND).any(axis=2)
        want = np.zeros((64, 64), bool)
        want[11 : 11 + s, 7 : 7 + s] = _contract_mask(cls, s)
        assert (drawn == want).all(), (cls, s)


def test_square_and_cross_keep_their_pixel_count_in_the_evaluators_half_pixel_boxes():
    """A square covers s x s pixels and a cross 2ts - t^2 wherever its box lies: the evaluator's rasters (boxes
    offset by half a pixel, in a window one pixel larger) must not grow a row or a column at the far edge."""
    for s in range(12, 21):
        t = round(s / 3)
        for fx in (0.0, 0.5):
            for fy in (0.0, 0.5):
                assert rasterize("square", s, fx, fy, s + 1, s + 1).sum() == s * s, (s, fx, fy)
                assert rasterize("cross", s, fx, fy, s + 1, s + 1).sum() == 2 * t * s - t * t, (s, fx, fy)


def test_a_wide_rectangle_is_a_square_of_its_width_centred_on_it():
    """Evaluator 3: a 12 x 11 component is compared with a 12-px square centred on it (half a pixel above and below):
    12 rows of 12, of which 11 rows are the component's: IoU 132 / 144 (not 132 / 156 with a 13th row)."""
    assert classify(np.ones((11, 12), bool), 0, 0) == ("square", pytest.approx(132 / 144))
    assert classify(np.ones((12, 11), bool), 0, 0) == ("square", pytest.approx(132 / 144))


def test_the_iou_is_taken_with_the_components_own_pixels_only():
    """Evaluator 3: "compute IoU with the component mask". A pixel of another colour inside the bounding box (the
    empty corner of a circle's box) is not part of the component: the circle still matches its raster exactly."""
    circle = SceneObject("circle", "green", 16, 20, 20)
    img = render(Scene([circle]))
    img[20, 20] = COLORS["red"]  # the box corner: (2*0+1-16)^2 * 2 = 450 > 256, outside the disc, not 4-adjacent
    dets = detect(img)
    assert [(d.cls, d.color, d.box, d.iou) for d in dets] == [("circle", "green", (20, 20, 36, 36), 1.0)]


def test_render_cuts_exactly_at_the_canvas_edge():
    """render: "parts outside the canvas are cut" and nothing more: a square ending on the last row and column."""
    img = render(Scene([SceneObject("square", "red", 12, 52, 52), SceneObject("square", "blue", 12, 58, 58)]))
    assert tuple(img[63, 57]) == COLORS["red"] and tuple(img[57, 63]) == COLORS["red"]
    assert tuple(img[63, 63]) == COLORS["blue"]


# --------------------------------------------------------------------------------------------------
# Scene for a prompt: "offset along the named axis at least 12 px, and larger than the offset on the other axis"


def _sq(x, y, s=12, cls="square"):
    return SceneObject(cls, "red", s, x, y)


def test_a_diagonal_placement_satisfies_no_relation_with_margin():
    """Centres 20 px apart on both axes: neither axis's offset is larger than the other's, so no relation holds with
    margin, although the evaluator's rule alone sees both (rev 17.6 / 28.3 = 0.62 on each axis)."""
    a, b = _sq(2, 2), _sq(22, 22)
    assert relative_position(a.visible_box, b.visible_box) == ("left of", "above")
    for rel in ("left of", "above"):
        assert not relation_with_margin(a, b, rel), rel
    for rel in ("right of", "below"):
        assert not relation_with_margin(b, a, rel), rel
    # one pixel less on y: x is the larger offset, so "left of" / "right of" hold, "above" / "below" do not
    a = _sq(2, 3)
    assert relation_with_margin(a, b, "left of") and not relation_with_margin(a, b, "above")
    assert relation_with_margin(b, a, "right of") and not relation_with_margin(b, a, "below")


def test_the_evaluator_check_of_a_placement_uses_the_drawn_pixels():
    """A triangle of even size draws no pixel in its box's top row (pixel centres of row 0: |u - s/2| >= 1/2 > v/2),
    so its detected box is (20, 20, 38, 37) for s = 18 at (20, 19). Against a 20-px square at (30, 30): the s x s
    centres differ by (-11, -12) (the margin holds), but the drawn boxes' centres by (-11, -11.5): rev = (-7.2,
    -7.8), |offset| = 15.91, dy = -0.49: no "above". A clean render of that scene would fail its prompt, so the
    sampler must not accept it."""
    tri, sq = _sq(20, 19, 18, "triangle"), _sq(30, 30, 20)
    assert relative_position(tri.box, sq.box) == ("above",)  # what the s x s boxes alone would say
    md = metadata_from_prompt("a photo of a triangle above a square")
    assert not evaluate(render(Scene([sq, tri])), md).correct
    assert not relation_with_margin(tri, sq, "above")


# --------------------------------------------------------------------------------------------------
# Evaluator 6: the relation rule, each direction at GenEval's 0.5


@pytest.mark.parametrize(
    "offset, want",
    [
        # 20-px boxes: 0.1 * (20 + 20) = 4 comes off each axis.
        ((12, 11), ()),  # rev (8, 7) / sqrt(265) = (0.491, 0.430)
        ((12, 10), ("right of",)),  # rev (8, 6) / sqrt(244) = (0.512, 0.384)
        ((11, 12), ()),
        ((10, 12), ("below",)),
    ],
)
def test_each_direction_turns_on_just_past_half(offset, want):
    ox, oy = offset
    b = (20, 20, 40, 40)
    a = (20 + ox, 20 + oy, 40 + ox, 40 + oy)
    mirror = {"right of": "left of", "below": "above"}
    assert relative_position(a, b) == want
    assert relative_position(b, a) == tuple(mirror[r] for r in want)


def test_a_horizontal_and_a_vertical_relation_hold_together_in_every_pairing():
    """Both components past 0.5 give both relations (rev 18 / 28.28 = 0.64 on each axis), whichever the directions."""
    b = (20, 20, 30, 30)
    assert relative_position((40, 0, 50, 10), b) == ("right of", "above")
    assert relative_position((40, 40, 50, 50), b) == ("right of", "below")
    assert relative_position((0, 0, 10, 10), b) == ("left of", "above")
    assert relative_position((0, 40, 10, 50), b) == ("left of", "below")


def test_no_relation_only_when_both_revised_components_are_tiny():
    """Evaluator 6: "no relation if both components of rev are below 1e-3". 1-px boxes one pixel apart: rev =
    1 - 0.1 * 2 = 0.8 (not below 1e-3), dx = 0.8 / 1: "right of"."""
    assert relative_position((1, 0, 2, 1), (0, 0, 1, 1)) == ("right of",)
    assert relative_position((0, 1, 1, 2), (0, 0, 1, 1)) == ("below",)


# --------------------------------------------------------------------------------------------------
# Evaluator 5: "every taken object must stand in relation R to every object taken by group g"


def test_a_position_is_checked_against_every_object_of_its_target_group():
    def d(cls, box):
        x0, y0, x1, y1 = box
        return Detection(cls, "red", box, (x1 - x0) * (y1 - y0), 1.0)

    circle = d("circle", (26, 26, 38, 38))
    right = d("square", (46, 24, 60, 40))  # the larger square: the circle is left of it
    left = d("square", (2, 26, 14, 38))  # the second: the circle is right of it
    meta = {"include": [{"class": "square", "count": 2}, {"class": "circle", "count": 1, "position": ["left of", 0]}]}
    assert judge({"square": [right, left], "circle": [circle]}, meta) == (
        False,
        "expected circle left of target, found right of target",
    )
    far = d("square", (46, 2, 58, 14))
    assert judge({"square": [right, far], "circle": [circle]}, meta) == (True, "")
