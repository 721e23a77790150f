"""Error paths of the ShapeWorld world that users reach with malformed input: each names what is wrong."""

import json

import numpy as np
import pytest

from arscale.errors import ArscaleError
from arscale.shapeworld import (
    GrammarError,
    Scene,
    evaluate,
    load_suite,
    metadata_from_prompt,
    prompt_from_metadata,
    render,
    sample_scene,
)
from arscale.shapeworld import scene as scene_module


def test_the_evaluator_names_an_object_that_is_not_an_image():
    with pytest.raises(ArscaleError, match=r"^expected an RGB image array, got list$"):
        evaluate([[0, 0, 0]], "a photo of a circle")


def test_a_suite_line_whose_prompt_is_not_a_string_is_named(tmp_path):
    path = tmp_path / "suite.jsonl"
    path.write_text(json.dumps(metadata_from_prompt("a photo of a circle")) + "\n" + json.dumps({"prompt": 5}) + "\n")
    with pytest.raises(ArscaleError, match=r"suite.jsonl, line 2: prompt must be a string, got int$"):
        load_suite(path)


def test_metadata_that_is_not_an_object_and_an_exclude_that_is_not_one_are_named():
    image = np.full((64, 64, 3), 240, np.uint8)
    with pytest.raises(GrammarError, match=r"^metadata must be a JSON object, got list$"):
        evaluate(image, [{"class": "circle", "count": 1}])
    record = {**metadata_from_prompt("a photo of two circles"), "exclude": [5]}
    with pytest.raises(GrammarError, match=r"^metadata exclude\[0\] must be an object, got 5$"):
        prompt_from_metadata(record)


def test_a_scene_with_a_class_outside_the_world_is_refused_when_drawn():
    scene = Scene.from_dict({"objects": [{"cls": "hexagon", "color": "red", "size": 12, "x": 2, "y": 2}]})
    with pytest.raises(ValueError, match=r"unknown class 'hexagon': expected one of circle, square, triangle, cross"):
        render(scene)


def test_a_scene_needs_metadata_with_an_include_list():
    with pytest.raises(GrammarError, match=r"an 'include' list, got \{'tag': 'single_object'\}"):
        sample_scene({"tag": "single_object"}, np.random.default_rng(0))


def test_a_scene_that_cannot_be_placed_says_after_how_many_attempts(monkeypatch):
    monkeypatch.setattr(scene_module, "MAX_RESTARTS", 3)
    crowded = {"tag": "x", "prompt": "seven squares left of a circle",
               "include": [{"class": "circle", "count": 1}, {"class": "square", "count": 7, "position": ["left of", 0]}]}
    with pytest.raises(RuntimeError, match=r"^could not place the objects of 'seven squares left of a circle' after 3"):
        sample_scene(crowded, np.random.default_rng(0))


