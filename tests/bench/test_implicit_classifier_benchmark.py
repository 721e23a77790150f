"""benchmarks/ar_implicit_classifier.py (one-word prompt edits, a tiny run on the shipped ShapeWorld-AR) and
benchmarks/scaling_ar_token_floor.py."""

import sys

import numpy as np
import pytest

from arscale import shapeworld
from arscale.shapeworld.grammar import metadata_from_prompt


def test_each_edit_changes_exactly_what_its_tag_tests(benchmark_script):
    m = benchmark_script("ar_implicit_classifier")
    rng = np.random.default_rng(0)
    for rec in shapeworld.build_suite(6, 12):
        wrong = m.edited(rec, rng)
        if wrong is None:  # only colour binding with two equal colours has no edit
            assert rec["tag"] == "color_attr" and rec["include"][0]["color"] == rec["include"][1]["color"]
            continue
        new = metadata_from_prompt(wrong)  # still in the grammar, articles mended
        assert new["tag"] == rec["tag"] and wrong != rec["prompt"]
        old_g, new_g = rec["include"], new["include"]
        if rec["tag"] in ("single_object", "two_object"):
            assert [g["class"] for g in new_g] != [g["class"] for g in old_g]
            assert old_g[0]["class"] == new_g[0]["class"] or rec["tag"] == "single_object"
        elif rec["tag"] == "counting":
            assert new_g[0]["class"] == old_g[0]["class"] and new_g[0]["count"] != old_g[0]["count"]
        elif rec["tag"] == "colors":
            assert new_g[0]["class"] == old_g[0]["class"] and new_g[0]["color"] != old_g[0]["color"]
        elif rec["tag"] == "position":
            swapped = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
            assert new_g[1]["position"][0] == swapped[old_g[1]["position"][0]]
            assert [g["class"] for g in new_g] == [g["class"] for g in old_g]
        elif rec["tag"] == "color_attr":
            assert [g["color"] for g in new_g] == [g["color"] for g in old_g][::-1]
            assert [g["class"] for g in new_g] == [g["class"] for g in old_g]


def test_an_edit_mends_the_article(benchmark_script):
    m = benchmark_script("ar_implicit_classifier")
    rec = metadata_from_prompt("a photo of an orange cross and a red circle")
    assert m.edited(rec, np.random.default_rng(0)) == "a photo of a red cross and an orange circle"


def test_tiny_run_prints_a_rate_per_tag(benchmark_script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ar_implicit_classifier.py", "--per-tag", "2", "--seed", "13", "--batch", "5"])
    benchmark_script("ar_implicit_classifier").main()
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    tags = {r[0].strip("| ") for r in rows[1:]}  # rows[0] is the header
    assert set(shapeworld.TAGS) - {"color_attr"} <= tags and "all" in tags
    for r in rows[1:]:
        assert 0.0 <= float(r[2].split()[0]) <= 1.0


def test_the_public_suite_seed_is_refused(benchmark_script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ar_implicit_classifier.py", "--seed", str(shapeworld.suite.PUBLIC_SUITE_SEED)])
    with pytest.raises(SystemExit):
        benchmark_script("ar_implicit_classifier").main()
    assert "draws the public suite's prompts" in capsys.readouterr().err  # not some other argparse error


def test_token_floor_table(benchmark_script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["scaling_ar_token_floor.py", "--seeds", "1", "--noise", "0.05"])
    benchmark_script("scaling_ar_token_floor").main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| 1024", "| 256"))]
    assert len(rows) == 2 * 2 * 3
    paper_rows = [r for r in rows if "2350" in r]
    assert len(paper_rows) == 2 and all("| 0.2 |" in r for r in paper_rows)
    monkeypatch.setattr(sys, "argv", ["scaling_ar_token_floor.py", "--noise", "0"])
    with pytest.raises(SystemExit):
        benchmark_script("scaling_ar_token_floor").main()
    assert "every --noise > 0" in capsys.readouterr().err


def test_all_edits_are_grammatical_one_word_changes(benchmark_script):
    m = benchmark_script("ar_implicit_classifier")
    source = "a photo of an orange cross and a red circle"
    edits = m.all_edits(source)
    assert "a photo of a red cross and an orange circle" in edits  # the colour swap, articles mended
    assert "a photo of a blue cross and a red circle" in edits and "a photo of an orange cross and a red square" in edits
    for e in edits:
        metadata_from_prompt(e)
        changed = [(a, b) for a, b in zip(e.split(), source.split(), strict=True) if a != b]
        assert 1 <= len([c for c in changed if c[0] not in ("a", "an")]) <= 2
    assert m.all_edits("a photo of two squares") == ["a photo of three squares", "a photo of four squares"]
    assert "a photo of a circle above a cross" in m.all_edits("a photo of a circle below a cross")


def test_tiny_pick_among_samples(benchmark_script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ar_implicit_classifier.py", "--per-tag", "1", "--seed", "14",
                                      "--candidates", "2"])
    benchmark_script("ar_implicit_classifier").main()
    rows = {line.split(" | ")[0].strip("| "): [float(x) for x in line.strip(" |").split(" | ")[1:]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "pick among" not in line}
    assert {"raw (first candidate)", "oracle (any correct)", "max margin over the closest edit"} <= set(rows)
    for values in rows.values():
        assert len(values) == len(shapeworld.TAGS) + 1 and all(0.0 <= v <= 1.0 for v in values)
        assert all(v <= o for v, o in zip(values, rows["oracle (any correct)"]))
