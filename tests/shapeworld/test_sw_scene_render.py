"""ShapeWorld scenes (placement rules, determinism) and the renderer's pixel geometry."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from arscale.shapeworld import (
    CLASSES,
    COLORS,
    IMAGE_SIZE,
    PUBLIC_SUITE,
    GrammarError,
    Scene,
    SceneObject,
    build_suite,
    load_suite,
    metadata_from_prompt,
    random_metadata,
    render,
    render_batch,
    sample_scene,
)
from arscale.shapeworld.evaluate import relative_position
from arscale.shapeworld.grammar import BACKGROUND
from arscale.shapeworld.render import cross_thickness, shape_mask
from arscale.shapeworld.scene import placement_ok


def _centre(o: SceneObject) -> tuple[float, float]:
    return o.x + o.size / 2, o.y + o.size / 2


def _check_scene(md: dict, scene: Scene) -> None:
    objs = scene.objects
    want = Counter()
    for g in md["include"]:
        want[(g["class"], g.get("color"))] += g["count"]
    got = Counter()
    for o in objs:
        key = (o.cls, o.color) if (o.cls, o.color) in want else (o.cls, None)
        got[key] += 1
    assert got == want
    assert len(objs) == sum(g["count"] for g in md["include"])
    for i, a in enumerate(objs):
        assert 12 <= a.size <= 20 and a.color in COLORS
        assert a.x >= 2 and a.y >= 2 and a.x + a.size <= IMAGE_SIZE - 2 and a.y + a.size <= IMAGE_SIZE - 2
        for b in objs[:i]:
            gap_x = max(b.x - (a.x + a.size), a.x - (b.x + b.size))
            gap_y = max(b.y - (a.y + a.size), a.y - (b.y + b.size))
            assert max(gap_x, gap_y) >= 3
    if md["tag"] == "position":
        rel = md["include"][1]["position"][0]
        target, mover = objs[0], objs[1]
        assert (target.cls, mover.cls) == (md["include"][0]["class"], md["include"][1]["class"])
        (ax, ay), (bx, by) = _centre(mover), _centre(target)
        ox, oy = ax - bx, ay - by
        along, other = {"left of": (-ox, oy), "right of": (ox, oy), "above": (-oy, ox), "below": (oy, ox)}[
            rel
        ]
        assert along >= 12 and along > abs(other)
        assert rel in relative_position(mover.visible_box, target.visible_box)


def test_scenes_follow_the_placement_rules():
    records = load_suite(PUBLIC_SUITE) + build_suite(30, 99)
    for i, md in enumerate(records):
        scene = sample_scene(md, np.random.default_rng([5, i]))
        _check_scene(md, scene)
        assert placement_ok(scene.objects)


def test_sampling_is_deterministic_and_varied():
    md = metadata_from_prompt("a photo of four triangles")
    a = sample_scene(md, np.random.default_rng(1))
    b = sample_scene(md, np.random.default_rng(1))
    c = sample_scene(md, np.random.default_rng(2))
    assert a == b and a != c
    assert Scene.from_dict(a.to_dict()) == a


def test_uncoloured_objects_get_uniform_colours_and_sizes():
    md = metadata_from_prompt("a photo of four crosses")
    rng = np.random.default_rng(3)
    colours, sizes = Counter(), Counter()
    for _ in range(400):
        for o in sample_scene(md, rng).objects:
            colours[o.color] += 1
            sizes[o.size] += 1
    assert set(colours) == set(COLORS) and min(colours.values()) > 200
    assert set(sizes) == set(range(12, 21))


def test_sample_scene_rejects_bad_metadata():
    rng = np.random.default_rng(0)
    with pytest.raises(GrammarError, match="class must be one of"):
        sample_scene({"tag": "x", "include": [{"class": "dog", "count": 1}]}, rng)
    with pytest.raises(GrammarError, match="earlier group"):
        sample_scene(
            {"tag": "x", "include": [{"class": "circle", "count": 1, "position": ["above", 0]}]}, rng
        )


def test_every_random_prompt_can_be_sampled_quickly():
    rng = np.random.default_rng(11)
    for _ in range(300):
        md = random_metadata(rng)
        _check_scene(md, sample_scene(md, rng))


def test_shape_masks():
    for s in range(12, 21):
        sq = shape_mask("square", s)
        assert sq.all()
        circ = shape_mask("circle", s)
        assert circ[s // 2, :].all() and circ[:, s // 2].all() and not circ[0, 0]
        assert circ.sum() == pytest.approx(np.pi * s * s / 4, rel=0.08)
        assert (circ == circ[::-1]).all() and (circ == circ[:, ::-1]).all()
        tri = shape_mask("triangle", s)
        assert tri[-1].all()  # base = bottom edge
        assert (tri == tri[:, ::-1]).all()  # isosceles
        top = np.flatnonzero(tri.any(axis=1))[0]
        assert top == (0 if s % 2 else 1)  # apex at the top centre
        assert tri[top].sum() == (1 if s % 2 else 2)
        assert list(tri.sum(axis=1)) == sorted(tri.sum(axis=1))
        cross = shape_mask("cross", s)
        t = cross_thickness(s)
        assert t == round(s / 3) == int(np.round(s / 3))
        assert cross.sum() == 2 * t * s - t * t
        assert cross[:, 0].sum() == t and cross[0, :].sum() == t  # bars of thickness t, length s
        rows = np.flatnonzero(cross[:, 0])
        assert abs((rows[0] + rows[-1] + 1) / 2 - s / 2) <= 0.5  # centred (within the half-open rule)
    assert [cross_thickness(s) for s in range(12, 21)] == [4, 4, 5, 5, 5, 6, 6, 6, 7]


def test_render_and_render_batch():
    scene = Scene([SceneObject("square", "red", 12, 2, 2), SceneObject("circle", "blue", 20, 40, 40)])
    img = render(scene)
    assert img.dtype == np.uint8 and img.shape == (64, 64, 3)
    assert (img[2:14, 2:14] == COLORS["red"]).all()
    assert (img[0, :] == BACKGROUND).all() and (img[:, 1] == BACKGROUND).all()
    assert (img[50, 50] == COLORS["blue"]).all()
    assert set(map(tuple, img.reshape(-1, 3))) == {BACKGROUND, COLORS["red"], COLORS["blue"]}
    scenes = [
        sample_scene(random_metadata(np.random.default_rng(i)), np.random.default_rng(i)) for i in range(8)
    ]
    batch = render_batch(scenes)
    assert batch.shape == (8, 64, 64, 3)
    for b, s in zip(batch, scenes, strict=True):
        assert (b == render(s)).all()
    # objects are clipped at the canvas edge rather than raising
    edge = render(Scene([SceneObject("cross", "green", 20, 54, -5)]))
    assert (edge[0:10, 54:64] != BACKGROUND).any()


@pytest.mark.parametrize("cls", CLASSES)
def test_visible_box_is_the_bbox_of_drawn_pixels(cls):
    for s in range(12, 21):
        obj = SceneObject(cls, "purple", s, 10, 7)
        img = render(Scene([obj]))
        ys, xs = np.nonzero((img != BACKGROUND).any(axis=2))
        assert obj.visible_box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
