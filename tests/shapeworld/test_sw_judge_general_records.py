"""Judgement on GenEval records beyond the v1 grammar (colour + position, counts > 1 with a position)
and the area order of detections passed to `evaluate`."""

from __future__ import annotations

from arscale.shapeworld import Detection, evaluate, judge
from arscale.shapeworld.evaluate import group_by_class


def _d(cls, color, box):
    x0, y0, x1, y1 = box
    return Detection(cls, color, box, (x1 - x0) * (y1 - y0), 1.0)


def test_position_is_not_checked_when_the_colour_already_failed():
    square = _d("square", "red", (10, 10, 22, 22))
    circle = _d("circle", "blue", (40, 10, 52, 22))  # right of the square, wrong colour
    meta = {
        "include": [
            {"class": "square", "count": 1},
            {"class": "circle", "count": 1, "color": "red", "position": ["left of", 0]},
        ]
    }
    ok, reason = judge({"square": [square], "circle": [circle]}, meta)
    assert not ok
    assert reason == "expected red circle>=1, found 0 red; and 1 blue"


def test_every_taken_object_must_stand_in_the_relation():
    square = _d("square", "red", (26, 26, 38, 38))
    left = _d("circle", "blue", (2, 24, 18, 40))  # largest: left of the square
    right = _d("circle", "blue", (46, 26, 58, 38))  # second: right of it
    meta = {
        "include": [
            {"class": "square", "count": 1},
            {"class": "circle", "count": 2, "position": ["left of", 0]},
        ]
    }
    ok, reason = judge({"square": [square], "circle": [left, right]}, meta)
    assert not ok
    assert reason == "expected circle left of target, found right of target"
    # both left of it: correct; both right of it: one reason only (GenEval stops at the first failure)
    left2 = _d("circle", "blue", (4, 4, 16, 16))
    assert judge({"square": [square], "circle": [left, left2]}, meta) == (True, "")
    right2 = _d("circle", "blue", (46, 4, 58, 16))
    ok, reason = judge({"square": [square], "circle": [right2, right]}, meta)
    assert (ok, reason.count("\n")) == (False, 0)


def test_given_detections_are_taken_largest_first():
    small_blue = _d("circle", "blue", (40, 40, 52, 52))
    big_red = _d("circle", "red", (2, 2, 22, 22))
    grouped = group_by_class([small_blue, big_red])
    assert grouped["circle"] == [big_red, small_blue]
    v = evaluate(None, "a photo of a red circle", detections=[small_blue, big_red])
    assert v.correct and v.reason == ""
    v = evaluate(None, "a photo of a blue circle", detections=[small_blue, big_red])
    assert not v.correct
