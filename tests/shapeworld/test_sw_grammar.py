"""ShapeWorld grammar: round trips, sampling, vocabulary and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from importlib import resources

import numpy as np
import pytest

from arscale.errors import ArscaleError
from arscale.shapeworld import (
    CLASSES,
    COLORS,
    IMAGE_SIZE,
    PUBLIC_SUITE,
    RELATIONS,
    TAGS,
    VOCABULARY,
    GrammarError,
    build_suite,
    load_suite,
    metadata_from_prompt,
    prompt_from_metadata,
    random_metadata,
)
from arscale.shapeworld.suite import PUBLIC_SUITE_SEED, dumps_record


def test_constants_follow_the_contract():
    assert list(COLORS) == ["red", "orange", "yellow", "green", "blue", "purple"]
    assert COLORS["red"] == (220, 40, 40) and COLORS["purple"] == (145, 65, 180)
    assert CLASSES == ("circle", "square", "triangle", "cross")
    assert TAGS == ("single_object", "two_object", "counting", "colors", "position", "color_attr")
    assert RELATIONS == ("left of", "right of", "above", "below")
    assert IMAGE_SIZE == 64
    assert list(VOCABULARY) == sorted(set(VOCABULARY))


def test_import_does_not_pull_torch():
    code = "import sys, arscale.shapeworld, arscale.bench.geneval_layout; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_suite_is_the_documented_build():
    suite = load_suite(PUBLIC_SUITE)
    assert len(suite) == 600
    assert Counter(r["tag"] for r in suite) == {t: 100 for t in TAGS}
    assert suite == build_suite(100, PUBLIC_SUITE_SEED)
    # byte-exact file, GenEval key order
    text = resources.files("arscale.shapeworld").joinpath("data", f"{PUBLIC_SUITE}.jsonl").read_text()
    assert text == "".join(dumps_record(r) + "\n" for r in suite)
    first = json.loads(text.splitlines()[0])
    assert list(first) == ["tag", "include", "prompt"]


def test_round_trip_over_the_suite_and_vocabulary():
    suite = load_suite(PUBLIC_SUITE) + build_suite(50, 7)
    words = set()
    for record in suite:
        prompt = prompt_from_metadata(record)
        assert prompt == record["prompt"]
        assert metadata_from_prompt(prompt) == record
        words.update(prompt.split())
    assert words <= set(VOCABULARY)


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a photo of a circle", {"tag": "single_object", "include": [{"class": "circle", "count": 1}]}),
        (
            "a photo of a square and a cross",
            {
                "tag": "two_object",
                "include": [{"class": "square", "count": 1}, {"class": "cross", "count": 1}],
            },
        ),
        (
            "a photo of three crosses",
            {
                "tag": "counting",
                "include": [{"class": "cross", "count": 3}],
                "exclude": [{"class": "cross", "count": 4}],
            },
        ),
        (
            "a photo of an orange square",
            {"tag": "colors", "include": [{"class": "square", "count": 1, "color": "orange"}]},
        ),
        (
            "a photo of a triangle right of a circle",
            {
                "tag": "position",
                "include": [
                    {"class": "circle", "count": 1},
                    {"class": "triangle", "count": 1, "position": ["right of", 0]},
                ],
            },
        ),
        (
            "a photo of a circle above a cross",
            {
                "tag": "position",
                "include": [
                    {"class": "cross", "count": 1},
                    {"class": "circle", "count": 1, "position": ["above", 0]},
                ],
            },
        ),
        (
            "a photo of a red circle and an orange triangle",
            {
                "tag": "color_attr",
                "include": [
                    {"class": "circle", "count": 1, "color": "red"},
                    {"class": "triangle", "count": 1, "color": "orange"},
                ],
            },
        ),
    ],
)
def test_each_form(prompt, expected):
    md = metadata_from_prompt(prompt)
    assert md == {**expected, "prompt": prompt}
    assert list(md) == ["tag", "include", *(["exclude"] if "exclude" in md else []), "prompt"]
    assert prompt_from_metadata(md) == prompt
    # whitespace and case are normalised
    assert metadata_from_prompt("  " + prompt.upper().replace(" ", "   ") + " ") == md


def test_random_metadata_is_uniform_over_each_tag():
    rng = np.random.default_rng(0)
    sizes = {
        "single_object": 4,
        "two_object": 12,
        "counting": 12,
        "colors": 24,
        "position": 48,
        "color_attr": 360,
    }
    for tag, n in sizes.items():
        draws = [random_metadata(rng, tag)["prompt"] for _ in range(60 * n if n < 100 else 7200)]
        counts = Counter(draws)
        assert len(counts) == n, tag
        expected = len(draws) / n
        assert max(abs(c - expected) for c in counts.values()) < 6 * np.sqrt(expected), tag
    tags = Counter(random_metadata(rng)["tag"] for _ in range(3000))
    assert set(tags) == set(TAGS) and min(tags.values()) > 400
    with pytest.raises(GrammarError, match="unknown tag 'nope'"):
        random_metadata(rng, "nope")


def test_build_suite_is_seeded_and_prefix_stable():
    assert build_suite(5, 3) == build_suite(5, 3)
    assert build_suite(5, 3) != build_suite(5, 4)
    small, big = build_suite(3, 9), build_suite(6, 9)
    for ti in range(len(TAGS)):
        assert small[3 * ti : 3 * ti + 3] == big[6 * ti : 6 * ti + 3]
    with pytest.raises(ArscaleError, match="per_tag must be a positive integer, got 0"):
        build_suite(0, 1)


@pytest.mark.parametrize(
    "prompt, fragments",
    [
        ("", ["empty prompt", "a photo of"]),
        ("   ", ["empty prompt"]),
        ("a photo of a dog", ["unknown word 'dog'", "word 5", "a colour (red,", "a class (circle,"]),
        ("a picture of a circle", ["unknown word 'picture'", "'photo'"]),
        ("a photo of a circle next to a square", ["unknown word 'next'", "'and', a relation (left of,"]),
        ("a photo of a circle and a circle", ["repeated class 'circle'", "word 8", "other than 'circle'"]),
        ("a photo of a circle left of a circle", ["repeated class 'circle'", "other than 'circle'"]),
        ("a photo of a red circle and a red square", ["repeated colour 'red'", "other than 'red'"]),
        ("a photo of a red circle and a blue circle", ["repeated class 'circle'"]),
        ("a photo of a circle and", ["ends after 'and'", "an article"]),
        ("a photo of", ["ends after 'of'", "a number word (two, three, four)"]),
        ("a photo of two circle", ["unexpected word 'circle'", "word 5", "a plural class (circles,"]),
        ("a photo of a circles", ["unexpected word 'circles'", "a class (circle,"]),
        ("a photo of a orange square", ["wrong article 'a' before 'orange'", "expected 'an'"]),
        ("a photo of an circle", ["wrong article 'an' before 'circle'", "expected 'a'"]),
        ("a photo of a circle and a red square", ["unexpected word 'red'", "a class (circle,"]),
        ("a photo of a red circle and a square", ["unexpected word 'square'", "a colour (red,"]),
        ("a photo of a red circle left of a square", ["unexpected word 'left'", "'and' or the end"]),
        ("a photo of a circle left a square", ["unexpected word 'a'", "'of'"]),
        ("a photo of a circle above of a square", ["unexpected word 'of'", "an article"]),
        ("a photo of a circle circle", ["unexpected word 'circle'", "word 6", "a relation"]),
        ("a photo of two circles and a square", ["unexpected word 'and'", "the end of the prompt"]),
        ("photo of a circle", ["unexpected word 'photo'", "word 1", "'a'"]),
        ("a photo of one circle", ["unknown word 'one'", "a number word"]),
    ],
)
def test_grammar_errors_name_the_word_and_the_expectation(prompt, fragments):
    with pytest.raises(GrammarError) as info:
        metadata_from_prompt(prompt)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, (frag, msg)
    assert isinstance(info.value, ArscaleError)


@pytest.mark.parametrize(
    "metadata, fragment",
    [
        ({"tag": "colors", "include": [{"class": "circle", "count": 1}]}, "missing key 'color'"),
        ({"tag": "single_object", "include": [{"class": "dog", "count": 1}]}, "unknown class 'dog'"),
        (
            {"tag": "single_object", "include": [{"class": "circle", "count": 2}]},
            "not a valid ShapeWorld record",
        ),
        (
            {
                "tag": "counting",
                "include": [{"class": "circle", "count": 2}],
                "exclude": [{"class": "circle", "count": 4}],
            },
            "not a valid ShapeWorld record",
        ),
        ({"tag": "counting", "include": [{"class": "circle", "count": 5}]}, "count 5 is not 2, 3 or 4"),
        (
            {
                "tag": "two_object",
                "include": [{"class": "circle", "count": 1}, {"class": "circle", "count": 1}],
            },
            "repeated class 'circle'",
        ),
        ({"tag": "photo", "include": []}, "unknown tag 'photo'"),
        (
            {"tag": "colors", "include": [{"class": "circle", "count": 1, "color": "pink"}]},
            "unknown colour 'pink'",
        ),
        ({"tag": "two_object", "include": [{"class": "circle", "count": 1}]}, "bad shape"),
        ({"tag": "single_object"}, "'include' must be a list"),
        ("a photo of a circle", "must be a JSON object"),
    ],
)
def test_prompt_from_metadata_rejects_records_outside_the_grammar(metadata, fragment):
    with pytest.raises(GrammarError) as info:
        prompt_from_metadata(metadata)
    assert fragment in str(info.value)


@pytest.mark.parametrize("prompt, hint", [
    ("a photo of two crosss", "did you mean 'crosses'?"),
    ("A photo of a red circle.", "write 'circle' (prompts are words without punctuation)"),
])
def test_an_unknown_word_comes_with_what_was_probably_meant(prompt, hint):
    with pytest.raises(GrammarError, match="unknown word") as caught:
        metadata_from_prompt(prompt)
    assert str(caught.value).endswith(hint)


def test_a_word_far_from_the_vocabulary_gets_no_guess():
    with pytest.raises(GrammarError) as caught:
        metadata_from_prompt("a photo of a zebra")
    assert "did you mean" not in str(caught.value) and "write" not in str(caught.value)
