"""Prompt suites: parsing cases a mutation audit found untested."""

from __future__ import annotations

import json

import pytest

from arscale.bench.suites import load_compbench, load_prompts, load_tiif
from arscale.errors import ArscaleError
from arscale.shapeworld.suite import build_suite


def test_a_bare_jsonl_of_shapeworld_prompts_is_a_shapeworld_suite(tmp_path):
    sw = tmp_path / "sw.jsonl"
    sw.write_text("".join(json.dumps(r) + "\n" for r in build_suite(1, 3)))
    kind, prompts = load_prompts(str(sw))
    assert kind == "shapeworld" and len(prompts) == len(build_suite(1, 3))
    other = tmp_path / "ge.jsonl"
    other.write_text(json.dumps({"prompt": "a photo of a dog", "tag": "single_object", "include": []}) + "\n")
    assert load_prompts(str(other))[0] == "geneval"


def test_a_plain_txt_suite_skips_blank_lines(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("a red circle\n\n   \na blue square\n")
    kind, prompts = load_prompts(str(f))
    assert kind == "plain" and [(p.index, p.prompt) for p in prompts] == [(0, "a red circle"), (1, "a blue square")]


def test_a_kind_name_without_a_path_is_not_read_as_kind_colon_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for spec in ("geneval", "tiif", "compbench"):
        with pytest.raises(ArscaleError, match=f"prompt file not found: {spec}"):
            load_prompts(spec)


def test_compbench_category_index_counts_prompts_not_lines(tmp_path):
    f = tmp_path / "color_val.txt"
    f.write_text("a red apple\n\na green bench\n")
    prompts = load_compbench(f)
    assert [p.metadata["line"] for p in prompts] == [0, 2]
    assert [p.metadata["category_index"] for p in prompts] == [0, 1]


def test_tiif_dimension_is_the_rows_type_when_it_has_one(tmp_path):
    f = tmp_path / "mixed_prompts.jsonl"
    rows = [{"type": "2d_spatial_relation", "short_description": "s0", "long_description": "l0"},
            {"short_description": "s1", "long_description": "l1"}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompts = load_tiif(f)
    assert [p.metadata["dimension"] for p in prompts] == ["2d_spatial_relation"] * 2 + ["mixed"] * 2
    assert [p.index for p in prompts] == [0, 1, 2, 3]


def test_blank_lines_in_a_geneval_file_are_skipped(tmp_path):
    f = tmp_path / "meta.jsonl"
    row = {"prompt": "a photo of a cat", "tag": "single_object", "include": []}
    f.write_text("\n" + json.dumps(row) + "\n\n" + json.dumps(row) + "\n\n")
    kind, prompts = load_prompts(f"geneval:{f}")
    assert kind == "geneval" and [p.index for p in prompts] == [0, 1]
