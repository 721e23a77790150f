"""The ShapeWorld evaluator and renderer at the edges an automated mutation audit found unpinned: strict relation
bounds, the 1e-3 "no relation" bound, component numbering, non-square and degenerate images, edge ties and clipping.
Every expected value is worked out by hand from SHAPEWORLD.md (or the module docs where it is silent), in comments."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from arscale.errors import ArscaleError
from arscale.shapeworld import Detection, Scene, SceneObject, detect, relative_position, render
from arscale.shapeworld.evaluate import Verdict, classify, group_by_class, label_components
from arscale.shapeworld.grammar import BACKGROUND, COLORS
from arscale.shapeworld.render import rasterize, shape_mask


def _canvas(h: int = 64, w: int = 64) -> np.ndarray:
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[...] = BACKGROUND
    return img


# --------------------------------------------------------------------------------------------------
# Evaluator 6: the relation rule's strict bounds


def test_a_direction_of_exactly_half_is_no_relation():
    """"left of if dx < -0.5" (strict, and so on). Two 5x5 boxes, centres 6 apart on x and 8 on y: the thresholds are
    0.1 * (5 + 5) = 1 on both axes, so rev = (5, 7) in size and |offset| = 10: one axis gives exactly 0.5 (no
    relation), the other 0.7 (a relation). All these numbers are exact in binary floating point."""
    a, b = (0, 0, 5, 5), (6, 8, 11, 13)  # offset a - b = (-6, -8): dx = -0.5, dy = -0.7
    assert relative_position(a, b) == ("above",)
    assert relative_position(b, a) == ("below",)  # dx = 0.5, dy = 0.7
    a, b = (0, 0, 5, 5), (8, 6, 13, 11)  # offset (-8, -6): dx = -0.7, dy = -0.5
    assert relative_position(a, b) == ("left of",)
    assert relative_position(b, a) == ("right of",)


def test_a_revised_offset_of_exactly_one_thousandth_is_a_relation():
    """"no relation if both components of rev are below 1e-3" (strict). Zero-size boxes leave no threshold: a point
    0.001 to the right of (below) another has rev = (0.001, 0) (resp. (0, 0.001)), not below 1e-3, and then
    (dx, dy) = rev / |offset| = (1, 0) (resp. (0, 1))."""
    assert relative_position((0.001, 0, 0.001, 0), (0, 0, 0, 0)) == ("right of",)
    assert relative_position((0, 0.001, 0, 0.001), (0, 0, 0, 0)) == ("below",)
    assert relative_position((0.0005, 0, 0.0005, 0), (0, 0, 0, 0)) == ()  # 0.0005 < 1e-3 on both axes


def test_an_offset_within_the_threshold_is_clipped_to_zero_on_each_axis():
    """rev = max(|offset| - 0.1 (da + db), 0) sign(offset): 10-px boxes 1 px apart have |offset| 1 < 0.1 * 20 = 2 on
    the axis they are shifted along and 0 on the other, so rev = (0, 0) and there is no relation (not "above")."""
    assert relative_position((0, 0, 10, 10), (0, 1, 10, 11)) == ()
    assert relative_position((0, 0, 10, 10), (1, 0, 11, 10)) == ()


# --------------------------------------------------------------------------------------------------
# Evaluator 2: components, numbered as label_components documents


def test_components_are_numbered_from_zero_in_raster_order_with_minus_one_on_background():
    """label_components: ids 0..K-1 in raster order of their first pixel, -1 on background, colour[k] = label."""
    labels = np.array(
        [
            [0, 3, 3, 0, 1],
            [2, 0, 3, 0, 1],
            [2, 2, 0, 1, 1],
        ],
        dtype=np.int8,
    )
    comp, colour = label_components(labels)
    # first pixels in raster order: the 3 at (0, 1) -> 0, the 1 at (0, 4) -> 1, the 2 at (1, 0) -> 2
    assert comp.tolist() == [
        [-1, 0, 0, -1, 1],
        [2, -1, 0, -1, 1],
        [2, 2, -1, 1, 1],
    ]
    assert colour.tolist() == [3, 1, 2]


def test_a_single_run_is_one_component_and_a_run_at_the_last_pixel_counts():
    # one run of label 1 (red): one component, id 0
    comp, colour = label_components(np.array([[0, 1, 1, 0]], dtype=np.int8))
    assert comp.tolist() == [[-1, 0, 0, -1]] and colour.tolist() == [1]
    # two one-pixel components, the second on the map's very last pixel (its own run): ids 0 and 1
    comp, colour = label_components(np.array([[1, 0, 0], [0, 0, 0], [0, 0, 2]], dtype=np.int8))
    assert comp.tolist() == [[0, -1, -1], [-1, -1, -1], [-1, -1, 1]] and colour.tolist() == [1, 2]


def test_maps_without_foreground_have_no_components():
    for labels in (np.zeros((0, 4), np.int8), np.zeros((4, 0), np.int8), np.zeros((3, 4), np.int8)):
        comp, colour = label_components(labels)
        assert comp.shape == labels.shape and (comp == -1).all() and colour.shape == (0,)


# --------------------------------------------------------------------------------------------------
# Evaluator 1-4 on images that are not 64 x 64 ("any size", detect's docstring)


def test_detect_on_a_non_square_image():
    """A 14-px red square at x = 30..43, y = 5..18 of a 24-row, 50-column image: one detection with that box
    (exclusive ends) and area 196; pixel indices must be split by the image's width, not its height."""
    img = _canvas(24, 50)
    img[5:19, 30:44] = COLORS["red"]
    assert [(d.cls, d.color, d.box, d.area) for d in detect(img)] == [("square", "red", (30, 5, 44, 19), 196)]
    img = _canvas(50, 24)  # and the transposed image
    img[30:44, 5:19] = COLORS["red"]
    assert [(d.cls, d.color, d.box, d.area) for d in detect(img)] == [("square", "red", (5, 30, 19, 44), 196)]


def test_detections_are_ordered_by_area_then_top_most_then_left_most():
    """Evaluator 4: within a class, largest area first; equal areas (a tie the contract leaves open) top-most, then
    left-most, as detect's and group_by_class's docstrings say."""
    img = _canvas()
    img[5:17, 40:52] = COLORS["red"]  # a: 12 x 12 = 144 px, top row 5
    img[30:42, 5:17] = COLORS["red"]  # b: 144 px, top row 30, left column 5
    img[30:42, 25:37] = COLORS["red"]  # c: 144 px, top row 30, left column 25
    img[48:62, 5:19] = COLORS["red"]  # d: 14 x 14 = 196 px
    boxes = [d.box for d in detect(img)]
    a, b, c, d = (40, 5, 52, 17), (5, 30, 17, 42), (25, 30, 37, 42), (5, 48, 19, 62)
    assert boxes == [d, a, b, c]
    dets = {box: Detection("square", "red", box, (box[2] - box[0]) ** 2, 1.0) for box in (a, b, c, d)}
    grouped = group_by_class([dets[c], dets[b], dets[a], dets[d]])  # any input order
    assert [x.box for x in grouped["square"]] == [d, a, b, c]


def test_relative_position_takes_genevals_five_number_rows():
    """GenEval passes detections as [x0, y0, x1, y1, confidence] (the `details` rows); only the first four count.
    Boxes 10 wide, centres 20 apart on x: rev = 20 - 0.1 * 20 = 18 > 0, dx = -18 / 20 = -0.9: "left of"."""
    assert relative_position([0, 0, 10, 10, 0.9], [20, 0, 30, 10, 0.8]) == ("left of",)


def test_images_without_pixels_are_refused_and_one_row_is_an_image():
    """An image must be [H, W, 3] with pixels: zero rows or zero columns is an ArscaleError; a single row (too thin
    for any 12-px component to be a shape) is a valid image with nothing in it."""
    for shape in ((0, 64, 3), (64, 0, 3)):
        with pytest.raises(ArscaleError):
            detect(np.zeros(shape, np.uint8))
    assert detect(_canvas(1, 64)) == [] and detect(_canvas(64, 1)) == []


def test_classify_a_single_pixel():
    """classify on its own (detect never passes fewer than 12 pixels): a 1 x 1 mask is s = 1; the pixel centre is
    the box centre, inside the disc, the square and the triangle (|u - c| = 0 <= v / 2 = 1/4); the cross has
    t = round(1/3) = 0 and no pixel. IoU 1 / 1 for the first of them in CLASSES: the circle."""
    assert classify(np.ones((1, 1), bool), 0, 0) == ("circle", 1.0)


# --------------------------------------------------------------------------------------------------
# results are values: one image's detections are shared by every record judged on them


def test_detections_and_verdicts_cannot_be_changed():
    d = Detection("square", "red", (0, 0, 12, 12), 144, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.area = 1
    v = Verdict(True, "", [d])
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.correct = False


# --------------------------------------------------------------------------------------------------
# render.py: the documented tie rules in the evaluator's half-pixel boxes, clipping, the read-only cache


def test_circle_and_triangle_edges_through_a_pixel_centre_are_inside():
    """render.py: circle (u - c)^2 + (v - c)^2 <= c^2 and triangle |u - c| <= v / 2, edges included. Integer boxes
    never hit an edge, but the evaluator's half-pixel boxes do:
    - circle s = 13, box at x = 0.5: c = 6.5, u - c = j - 6.5, v - c = i - 6; (±2.5)^2 + 6^2 = 42.25 = c^2 at rows 0
      and 12, columns 4 and 9 (inside); column 3 gives 3.5^2 + 36 = 48.25 (outside);
    - triangle s = 12, box at y = 0.5 (an even triangle's detected box): v = i, u - c = j - 5.5; row 1 has
      |u - c| = 1/2 = v / 2 at columns 5 and 6 (inside), and nothing else (columns 4, 7: 3/2 > 1/2)."""
    circle = rasterize("circle", 13, 0.5, 0.0, 13, 14)
    assert circle[0, [4, 9]].all() and circle[12, [4, 9]].all()
    assert not circle[0, [3, 10]].any() and circle[0].sum() == 6  # columns 4..9
    triangle = rasterize("triangle", 12, 0.0, 0.5, 13, 12)
    assert not triangle[0].any()  # v = 0: only |u - c| = 0, which no centre u = j + 1/2 reaches
    assert np.flatnonzero(triangle[1]).tolist() == [5, 6]


def test_objects_are_cut_at_the_canvas_edges():
    """render: "parts outside the canvas are cut". A 12-px square at (-3, 0) draws columns 0..8 of rows 0..11; one
    at (70, 10) lies wholly outside and draws nothing."""
    img = render(Scene([SceneObject("square", "red", 12, -3, 0), SceneObject("square", "blue", 12, 70, 10)]))
    want = np.zeros((64, 64), bool)
    want[0:12, 0:9] = True
    assert ((img == COLORS["red"]).all(axis=2) == want).all()
    assert ((img == BACKGROUND).all(axis=2) == ~want).all()


def test_cached_shape_masks_are_read_only():
    # shape_mask: "(read-only, cached)": a caller cannot corrupt the mask every later render uses
    m = shape_mask("circle", 12)
    with pytest.raises(ValueError):
        m[0, 0] = True
