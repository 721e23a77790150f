"""benchmarks/where_shapes_break.py: single-object accuracy when the model samples from scale k on."""

import json

import pytest
import torch

from arscale import shapeworld
from arscale.generators.next_scale.shapeworld import load_shapeworld_var


def test_last_column_is_the_reconstruction_and_bad_names_fail_in_one_line(tmp_path, benchmark_script):
    m = benchmark_script("where_shapes_break")
    out = tmp_path / "where.json"
    assert m.main(["--per-class", "6", "--classes", "square", "cross", "--colors", "yellow", "--starts", "7", "0",
                   "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["class"], r["color"]) for r in rows] == [("square", "yellow"), ("cross", "yellow")]
    # k = K keeps every true code: exactly the tokenizer's reconstruction of the same renders
    gen = load_shapeworld_var()
    for ci, r in enumerate(rows):
        images = m.clean_objects(r["class"], "yellow", 6, 4711 + ci)
        with torch.no_grad():
            recon = gen.tokenizer.decode_indices(gen.tokenizer.encode(images))
        pixels = (recon * 255).round().byte().permute(0, 2, 3, 1).numpy()
        judge = {"tag": "single_object", "include": [{"class": r["class"], "count": 1}], "prompt": ""}
        expected = sum(shapeworld.evaluate(px, judge).correct for px in pixels) / 6
        assert r["accuracy"]["7"] == pytest.approx(expected)
        assert 0 <= r["accuracy"]["0"] <= 1
    with pytest.raises(SystemExit, match="unknown class or colour 'teal'"):
        m.main(["--per-class", "2", "--colors", "teal"])
    with pytest.raises(SystemExit, match=r"start scales must be in \[0, 7\]"):
        m.main(["--per-class", "2", "--starts", "9"])
