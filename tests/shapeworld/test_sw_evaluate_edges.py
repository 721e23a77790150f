"""The evaluator at its edges (SHAPEWORLD.md): half-pixel centring of the class rasters, an IoU of exactly 0.5,
and each axis's own box sizes in the relation threshold."""
import numpy as np

from arscale.shapeworld import detect, relative_position
from arscale.shapeworld.evaluate import classify
from arscale.shapeworld.grammar import BACKGROUND, CLASSES, COLORS
from arscale.shapeworld.render import rasterize


def _spec_classify(mask):
    """SHAPEWORLD.md Evaluator 3 (l.74-77): rasterise every class with s = max(w, h), centred on the
    bounding box (top-left (w - s)/2, (h - s)/2, possibly half-integer); IoU over all pixels; >= 0.5."""
    h, w = mask.shape
    s, pad = max(w, h), max(w, h) + 2
    H, W = h + 2 * pad, w + 2 * pad
    big = np.zeros((H, W), bool)
    big[pad:pad + h, pad:pad + w] = mask
    ious = [((r := rasterize(c, s, pad + (w - s) / 2, pad + (h - s) / 2, H, W)) & big).sum() / (r | big).sum()
            for c in CLASSES]
    b = int(np.argmax(ious))
    return (CLASSES[b] if ious[b] >= 0.5 else None), float(ious[b])


def test_classify_centres_the_class_raster_on_the_box_half_pixel_included():
    # spec SHAPEWORLD.md l.74-76 ("centred on the box"); evaluate.py docstring: half-integer origin
    assert classify(np.ones((4, 3), bool), 0, 0) == ("circle", 1.0)  # 3x4 box: origin x = -0.5
    for w in range(3, 21):
        for h in range(3, 21):
            got_cls, got_iou = classify(np.ones((h, w), bool), 0, 0)
            want_cls, want_iou = _spec_classify(np.ones((h, w), bool))
            assert got_cls == want_cls and abs(got_iou - want_iou) < 1e-12, (w, h)


def test_iou_of_exactly_half_is_accepted():
    # spec SHAPEWORLD.md l.76: "the class is the best-IoU one if that IoU is >= 0.5"
    # an 18x5 bar inside an 18-px cross (t = 6): inter 90, union 180 -> IoU exactly 0.5
    img = np.empty((64, 64, 3), np.uint8)
    img[...] = BACKGROUND
    img[20:25, 10:28] = COLORS["orange"]
    dets = detect(img)
    assert [(d.cls, d.color, d.box, d.area, d.iou) for d in dets] == [
        ("cross", "orange", (10, 20, 28, 25), 90, 0.5)
    ]


def test_relation_threshold_uses_each_axis_own_sizes():
    # spec SHAPEWORLD.md l.85-88: da, db are (width, height); rev = max(|offset| - 0.1(da + db), 0)
    # per axis. Tall thin boxes: x threshold 0.1*(2+2)=0.4 < |ox|=3 -> dx=-2.6/3 -> "left of".
    assert relative_position((0, 0, 2, 20), (3, 0, 5, 20)) == ("left of",)
    # wide flat boxes: y threshold 0.1*(1+1)=0.2 < |oy|=2 -> "above"
    assert relative_position((0, 0, 20, 1), (0, 2, 20, 3)) == ("above",)
