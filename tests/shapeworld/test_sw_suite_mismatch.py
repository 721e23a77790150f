"""load_suite: "Every record is checked against the grammar; errors name the file and line" (suite.py)."""
import json

import pytest

from arscale.errors import ArscaleError
from arscale.shapeworld.grammar import metadata_from_prompt
from arscale.shapeworld.suite import load_suite


def test_a_record_whose_metadata_disagrees_with_its_prompt_is_rejected(tmp_path):
    good = metadata_from_prompt("a photo of a circle")
    bad = dict(metadata_from_prompt("a photo of a square"), prompt="a photo of a circle")  # valid both ways, unequal
    path = tmp_path / "suite.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ArscaleError, match=r"suite\.jsonl, line 2: .*'a photo of a circle'"):
        load_suite(path)
    path.write_text(json.dumps(good) + "\n")
    assert load_suite(path) == [good]
