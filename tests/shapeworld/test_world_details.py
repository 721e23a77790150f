"""Mutation audit of ShapeWorld's grammar, renderer, scene sampler and suite files: behaviours the other
tests did not pin (SHAPEWORLD.md and the module docs are the contract)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from arscale.errors import ArscaleError
from arscale.shapeworld import (
    COLORS,
    GrammarError,
    Scene,
    SceneObject,
    load_suite,
    metadata_from_prompt,
    prompt_from_metadata,
    render,
    sample_scene,
    write_suite,
)
from arscale.shapeworld.grammar import BACKGROUND, check_metadata
from arscale.shapeworld.render import rasterize, shape_mask
from arscale.shapeworld.scene import placement_ok, relation_with_margin
from arscale.shapeworld.suite import build_suite, dumps_record

# --------------------------------------------------------------------------------------------------
# palette and canvas


def test_all_six_palette_entries_and_the_background_are_the_contract_values():
    """SHAPEWORLD.md "Canvas and palette": every colour (not only the first and last) and the background."""
    assert COLORS == {
        "red": (220, 40, 40),
        "orange": (245, 145, 30),
        "yellow": (235, 215, 40),
        "green": (40, 160, 70),
        "blue": (40, 90, 215),
        "purple": (145, 65, 180),
    }
    assert BACKGROUND == (240, 240, 240)
    assert (render(Scene()) == 240).all()


# --------------------------------------------------------------------------------------------------
# grammar


@pytest.mark.parametrize(
    "prompt, fragment",
    [
        ("a photo of a red circle and a orange square", "wrong article 'a' before 'orange'"),
        ("a photo of a red circle and an blue square", "wrong article 'an' before 'blue'"),
        ("a photo of a circle and an square", "wrong article 'an' before 'square'"),
        ("a photo of a circle left of an square", "wrong article 'an' before 'square'"),
    ],
)
def test_the_article_of_the_second_object_is_checked(prompt, fragment):
    """The second object's article must fit its word too (color_attr colour; two_object / position class)."""
    with pytest.raises(GrammarError, match=fragment):
        metadata_from_prompt(prompt)


def test_prompt_from_metadata_rejects_include_groups_that_are_not_objects():
    """An ``include`` holding a non-object is a GrammarError, not a raw TypeError."""
    with pytest.raises(GrammarError, match="'include' must be a list of objects"):
        prompt_from_metadata({"tag": "single_object", "include": [1]})


@pytest.mark.parametrize("count", [True, 1.0])
def test_a_record_with_a_non_integer_count_is_not_in_the_grammar(count, tmp_path):
    """A record is in the grammar only if it is exactly what metadata_from_prompt returns: ``"count": true``
    or ``1.0`` compares equal to 1 in Python, so the grammar check (and load_suite) accepted records that
    sample_scene / evaluate then reject with "count must be a positive integer"."""
    group = {"class": "circle", "count": count}
    rec = {"tag": "single_object", "include": [group], "prompt": "a photo of a circle"}
    with pytest.raises(GrammarError):
        check_metadata(rec)  # what the sampler and the evaluator say about it
    with pytest.raises(GrammarError):
        prompt_from_metadata(rec)
    path = tmp_path / "suite.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    with pytest.raises(ArscaleError):
        load_suite(path)


@pytest.mark.parametrize(
    "metadata, fragment",
    [
        ({"include": [{"class": "circle", "count": 0}]}, "count must be a positive integer"),
        ({"include": [{"class": "circle", "count": True}]}, "count must be a positive integer"),
        ({"include": [{"class": "circle", "count": 1}], "exclude": [{"class": "dog", "count": 1}]},
         "exclude\\[0\\]: unknown class 'dog'"),
        ({"include": [{"class": "circle", "count": 1}], "exclude": None}, "must be lists"),
        ({"include": [{"class": "circle", "count": 1}], "exclude": {}}, "must be lists"),
        ({"include": [{"class": "circle", "count": 1},
                      {"class": "square", "count": 1, "position": ["near", 0]}]},
         "position must be"),
        ({"include": [{"class": "circle", "count": 1},
                      {"class": "square", "count": 1, "position": ["above", 0, 0]}]}, "position must be"),
        ({"include": [{"class": "circle", "count": 1},
                      {"class": "square", "count": 1, "position": ["above", 0.0]}]},
         "position must be"),
    ],
)
def test_check_metadata_rejects_malformed_groups(metadata, fragment):
    """check_metadata (used by sample_scene and evaluate): counts are positive ints (not bools), exclude is a
    list of known classes, a position is exactly [known relation, integer earlier-group index]."""
    with pytest.raises(GrammarError, match=fragment):
        check_metadata(metadata)


# --------------------------------------------------------------------------------------------------
# rasteriser tie rules in the evaluator's half-pixel boxes, and rendering


def test_half_pixel_rasters_keep_the_documented_tie_rules():
    """render.py: the disc and triangle are closed (``<=``), the box half-open (``u < s``). Their edges pass
    through pixel centres only in the half-pixel-offset boxes the evaluator uses for non-square components."""
    circ = rasterize("circle", 13, 0.5, 0.0, 13, 14)  # row 6: v = c; cols 0 and 13: |u - c| = c exactly
    assert circ[6, 0] and circ[6, 13]
    tri = rasterize("triangle", 12, 0.0, 0.5, 13, 12)  # row 1: v = 1, cols 5, 6: |u - c| = 0.5 = v / 2
    assert not tri[0].any() and tri[1, 5] and tri[1, 6] and tri[1].sum() == 2
    sq = rasterize("square", 12, 0.5, 0.0, 12, 13)  # column 12: u = 12 = s, outside the half-open box
    assert sq[:, :12].all() and not sq[:, 12].any()


def test_later_objects_are_drawn_over_earlier_ones():
    """render's documented draw order for overlapping objects (which valid scenes never have)."""
    img = render(Scene([SceneObject("square", "red", 12, 10, 10), SceneObject("square", "blue", 12, 15, 15)]))
    assert tuple(img[16, 16]) == COLORS["blue"] and tuple(img[11, 11]) == COLORS["red"]


@pytest.mark.parametrize("x, y", [(70, 5), (5, 70), (-30, 5), (5, -30), (64, 64)])
def test_an_object_wholly_outside_the_canvas_is_cut_away(x, y):
    """"Parts outside the canvas are cut": an object with no part on the canvas draws nothing (no error)."""
    assert (render(Scene([SceneObject("square", "red", 12, x, y)])) == 240).all()


def test_cached_shape_masks_are_read_only():
    """shape_mask is cached: a caller must not be able to corrupt later renders by writing into it."""
    with pytest.raises(ValueError):
        shape_mask("circle", 15)[0, 0] = True


# --------------------------------------------------------------------------------------------------
# scenes


def _sq(x, y, s=12):
    return SceneObject("square", "red", s, x, y)


def test_placement_ok_enforces_margin_gap_and_size_at_their_boundaries():
    """placement_ok: margin >= 2 px on all four sides, boxes >= 3 px apart on one axis, sizes in [12, 20]."""
    assert placement_ok([_sq(2, 2), _sq(50, 50)])  # 50 + 12 = 62: exactly the margin
    for bad in (_sq(1, 20), _sq(20, 1), _sq(51, 20), _sq(20, 51)):
        assert not placement_ok([bad]), bad
    assert placement_ok([_sq(10, 10), _sq(25, 10)]) and placement_ok([_sq(10, 10), _sq(10, 25)])  # 3 px gap
    for a, b in ((_sq(10, 10), _sq(24, 10)), (_sq(24, 10), _sq(10, 10)),
                 (_sq(10, 10), _sq(10, 24)), (_sq(10, 24), _sq(10, 10))):  # 2 px gap
        assert not placement_ok([a, b]), (a, b)
    assert not placement_ok([_sq(10, 10), _sq(40, 40), _sq(24, 10)])  # the first pair of three
    assert placement_ok([_sq(10, 10, 20)]) and not placement_ok([_sq(10, 10, 11)]) and not placement_ok(
        [_sq(10, 10, 21)]
    )


def test_scene_object_box_is_the_s_by_s_box():
    """SceneObject.box is ``(x, y, x + s, y + s)`` with exclusive ends."""
    assert SceneObject("circle", "red", 13, 5, 7).box == (5, 7, 18, 20)


def test_relation_with_margin_rejects_an_unknown_relation():
    """An unknown relation is an error, not a silent "no"."""
    with pytest.raises(ValueError, match="unknown relation 'near'"):
        relation_with_margin(_sq(2, 2), _sq(40, 40), "near")


def test_position_constrains_only_against_its_target_group():
    """A ``position [R, 1]`` group is placed relative to group 1 only; other objects may stand anywhere."""
    meta = {
        "include": [
            {"class": "square", "count": 1},
            {"class": "circle", "count": 1},
            {"class": "triangle", "count": 1, "position": ["left of", 1]},
        ]
    }
    free = 0
    for seed in range(40):
        square, circle, triangle = sample_scene(meta, np.random.default_rng([3, seed])).objects
        assert relation_with_margin(triangle, circle, "left of")
        free += not relation_with_margin(triangle, square, "left of")
    assert free >= 5


def test_scenes_hold_up_to_eight_objects_and_no_more():
    """MAX_OBJECTS = 8: eight objects can be sampled; nine is a GrammarError up front (not a long search)."""
    eight = {"include": [{"class": "square", "count": 4}, {"class": "circle", "count": 4}]}
    scene = sample_scene(eight, np.random.default_rng(0))
    assert len(scene.objects) == 8 and placement_ok(scene.objects)
    nine = {"include": [{"class": "square", "count": 5}, {"class": "circle", "count": 4}]}
    with pytest.raises(GrammarError, match="at most 8 objects, the metadata asks for 9"):
        sample_scene(nine, np.random.default_rng(0))


# --------------------------------------------------------------------------------------------------
# suites


@pytest.mark.parametrize(
    "per_tag, seed, fragment",
    [(2.5, 1, "per_tag must be"), ("3", 1, "per_tag must be"),
     (1, -1, "seed must be a non-negative integer")],
)
def test_build_suite_rejects_bad_arguments(per_tag, seed, fragment):
    """build_suite checks its arguments (ArscaleError, not numpy's or Python's own error)."""
    with pytest.raises(ArscaleError, match=fragment):
        build_suite(per_tag, seed)


def test_dumps_record_keeps_extra_keys_after_the_geneval_ones():
    """GenEval key order first (tag, include, exclude, prompt), then any other keys, none dropped."""
    rec = {"note": "x", "prompt": "a photo of two circles", **metadata_from_prompt("a photo of two circles")}
    line = dumps_record(rec)
    assert list(json.loads(line)) == ["tag", "include", "exclude", "prompt", "note"]
    assert json.loads(line) == rec


def test_write_and_load_round_trip_leaves_only_the_file(tmp_path):
    """write_suite is atomic (no temporary file left behind) and load_suite reads back the same records."""
    records = build_suite(2, 5)
    path = tmp_path / "s.jsonl"
    write_suite(records, path)
    assert [p.name for p in tmp_path.iterdir()] == ["s.jsonl"]
    assert load_suite(path) == records


def test_load_suite_skips_blank_lines(tmp_path):
    """Blank and whitespace-only lines are not records."""
    a, b = metadata_from_prompt("a photo of a circle"), metadata_from_prompt("a photo of a red square")
    path = tmp_path / "s.jsonl"
    path.write_text("\n" + json.dumps(a) + "\n\n   \n" + json.dumps(b) + "\n\n")
    assert load_suite(path) == [a, b]


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "no prompts found"),
        (b"\n  \n", "no prompts found"),
        (b'{"tag": "single_object", "include": [{"class": "circle", "count": 1}]}\n',
         "line 1: expected a GenEval"),
        (b'"a photo of a circle prompt"\n', "line 1: expected a GenEval"),
        (b'\xff\xfe{"prompt": 1}\n', "cannot read prompt file"),
    ],
    ids=["empty", "blank", "no-prompt", "json-string", "not-utf8"],
)
def test_load_suite_errors_are_arscale_errors(tmp_path, content, fragment):
    """Empty files, records without a prompt, non-object lines and non-UTF-8 files: one ArscaleError each."""
    path = tmp_path / "s.jsonl"
    path.write_bytes(content)
    with pytest.raises(ArscaleError, match=fragment):
        load_suite(path)
