"""The ShapeWorld world against SHAPEWORLD.md on random and malformed inputs: uniform sizes where placement is
hard, and metadata of the wrong JSON type refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arscale.errors import ArscaleError
from arscale.shapeworld import (
    CLASSES,
    COLORS,
    RELATIONS,
    TAGS,
    detect,
    evaluate,
    load_suite,
    metadata_from_prompt,
    prompt_from_metadata,
    random_metadata,
    render,
    sample_scene,
)
from arscale.shapeworld.grammar import check_metadata
from arscale.shapeworld.scene import MAX_SIZE, MIN_SIZE

# --------------------------------------------------------------------------------------------------
# scene sampling: "uncolored objects given uniformly random colors, sizes and positions"


def test_position_scenes_draw_uniform_sizes():
    """The placed object of a position prompt has a uniform size in [12, 20] (chi-square, p = 0.001)."""
    rng = np.random.default_rng(29)
    sizes = [sample_scene(random_metadata(rng, "position"), rng).objects[1].size for _ in range(4000)]
    counts = np.bincount(sizes, minlength=MAX_SIZE + 1)[MIN_SIZE:]
    expected = len(sizes) / counts.size
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 26.12, (counts.tolist(), chi2)  # 26.12: the 0.999 quantile of chi-square with 8 dof


# --------------------------------------------------------------------------------------------------
# metadata of the wrong JSON type: a one-line GrammarError / ArscaleError, never a raw TypeError

_RECORD = {"tag": "colors", "include": [{"class": "circle", "count": 1, "color": ["red"]}],
           "prompt": "a photo of a red circle"}
_COUNTING = {"tag": "counting", "include": [{"class": "circle", "count": [2]}],
             "exclude": [{"class": "circle", "count": 3}], "prompt": "a photo of two circles"}


@pytest.mark.parametrize("what", ["check_metadata", "evaluate", "prompt_from_metadata", "counting", "load_suite"])
def test_unhashable_colour_or_count_is_a_grammar_error(what, tmp_path):
    """A list where a colour or a count belongs is refused as bad metadata (ArscaleError), not a TypeError."""
    image = render(sample_scene(metadata_from_prompt("a photo of a red circle"), np.random.default_rng(0)))
    with pytest.raises(ArscaleError):
        if what == "check_metadata":
            check_metadata(_RECORD)
        elif what == "evaluate":
            evaluate(image, _RECORD)
        elif what == "prompt_from_metadata":
            prompt_from_metadata(_RECORD)
        elif what == "counting":
            prompt_from_metadata(_COUNTING)
        else:
            path = tmp_path / "suite.jsonl"
            path.write_text(json.dumps(_RECORD) + "\n")
            load_suite(path)


_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2, 5), st.floats(allow_nan=True),
                  st.sampled_from([*CLASSES, *COLORS, *RELATIONS, *TAGS, "dog"]))
_JSON = st.recursive(_LEAF, lambda c: st.one_of(st.lists(c, max_size=2), st.dictionaries(st.text(max_size=2), c,
                                                                                         max_size=2)),
                     max_leaves=4)
_GROUP = st.fixed_dictionaries(
    {"class": st.one_of(st.sampled_from(CLASSES), _JSON), "count": st.one_of(st.integers(1, 4), _JSON)},
    optional={"color": st.one_of(st.sampled_from(list(COLORS)), _JSON),
              "position": st.one_of(st.sampled_from(RELATIONS).map(lambda r: [r, 0]), _JSON)},
)
_METADATA = st.fixed_dictionaries({"tag": st.sampled_from(TAGS), "include": st.lists(_GROUP, max_size=3)},
                                  optional={"exclude": st.lists(_GROUP, max_size=2)})
_IMAGE = render(sample_scene(metadata_from_prompt("a photo of a red circle and a blue square"),
                             np.random.default_rng(1)))
_DETECTIONS = detect(_IMAGE)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(_METADATA)
@example(_RECORD)
@example(_COUNTING)
def test_any_json_metadata_is_judged_or_refused_in_one_line(metadata):
    """For any JSON-shaped record, evaluate / prompt_from_metadata / sample_scene return or raise ArscaleError."""
    for call in (lambda: evaluate(_IMAGE, metadata, detections=_DETECTIONS), lambda: prompt_from_metadata(metadata),
                 lambda: sample_scene(metadata, np.random.default_rng(0))):
        try:
            call()
        except ArscaleError as exc:
            assert "\n" not in str(exc)


# --------------------------------------------------------------------------------------------------
# `arscale eval shapeworld`: a metadata.jsonl whose tag is not a string


@pytest.mark.parametrize("tag", [None, ["colors"]], ids=["null", "list"])
def test_eval_refuses_a_non_string_tag_in_one_line(tag, tmp_path, capsys):
    """`arscale eval shapeworld` on a metadata.jsonl whose 'tag' is not a string: one error line naming the file."""
    from arscale.bench.geneval_layout import write_prompt
    from arscale.cli import main

    record = {"tag": tag, "include": [{"class": "circle", "count": 1}], "prompt": "a photo of a circle"}
    write_prompt(tmp_path, 0, record, [_IMAGE])
    assert main(["eval", "shapeworld", str(tmp_path), "--no-progress"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "00000/metadata.jsonl: malformed metadata" in err[0], err
