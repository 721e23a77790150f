"""GenEval layout round trip, results/summary, and the `arscale shapeworld` / `arscale eval` commands."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from arscale.bench import geneval_layout as gl
from arscale.cli import main
from arscale.errors import ArscaleError
from arscale.shapeworld import build_suite, metadata_from_prompt, render, sample_scene
from arscale.shapeworld.suite import write_suite


def _img(seed: int, prompt: str = "a photo of a red circle") -> np.ndarray:
    return render(sample_scene(metadata_from_prompt(prompt), np.random.default_rng(seed)))


def test_layout_round_trip(tmp_path):
    records = build_suite(2, 5)
    for i, md in enumerate(records):
        paths = gl.write_prompt(tmp_path, i, md, [_img(10 * i + k, md["prompt"]) for k in range(3)])
        assert [p.name for p in paths] == ["00000.png", "00001.png", "00002.png"]
    # exactly what GenEval's evaluator walks: all-digit folders, json.load-able metadata, \d+\.png samples
    for name in os.listdir(tmp_path):
        assert name.isdigit() and len(name) == 5
        with open(tmp_path / name / "metadata.jsonl") as fp:
            assert json.load(fp) == records[int(name)]
        assert all(re.match(r"\d+\.png", f) for f in os.listdir(tmp_path / name / "samples"))
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]  # atomic writes leave nothing behind
    folders = gl.read_prompts(tmp_path)
    assert [f.index for f in folders] == list(range(len(records)))
    assert [f.metadata for f in folders] == records
    assert (gl.read_image(folders[3].samples[1]) == _img(31, records[3]["prompt"])).all()
    # stray files are ignored like GenEval does
    (tmp_path / "notes").mkdir()
    (tmp_path / "00000" / "samples" / "grid.png").write_bytes(b"x")
    (tmp_path / "00000" / "samples" / "7.png~").write_bytes(b"x")
    (tmp_path / "00000" / "grid.png").write_bytes(b"x")
    assert [len(f.samples) for f in gl.read_prompts(tmp_path)] == [3] * len(records)


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(ArscaleError, match="not found"):
        gl.read_prompts(tmp_path / "missing")
    with pytest.raises(ArscaleError, match="no prompt folders"):
        gl.read_prompts(tmp_path)
    gl.write_prompt(tmp_path, 0, metadata_from_prompt("a photo of a square"), [_img(0)])
    meta = tmp_path / "00000" / "metadata.jsonl"
    meta.write_text('{"tag": "single_object", ')
    with pytest.raises(ArscaleError, match=re.escape(str(meta)) + ": malformed metadata"):
        gl.read_prompts(tmp_path)
    meta.write_text('["a list"]')
    with pytest.raises(ArscaleError, match="malformed metadata"):
        gl.read_prompts(tmp_path)
    meta.unlink()
    with pytest.raises(ArscaleError, match=re.escape(str(meta)) + ": missing"):
        gl.read_prompts(tmp_path)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ArscaleError, match=re.escape(str(bad)) + ": unreadable image"):
        gl.read_image(bad)


def test_summary_is_recomputed_from_rows():
    def row(folder, sample, tag, correct):
        md = {"tag": tag, "include": [], "prompt": f"p{folder}"}
        return gl.result_row(f"out/{folder:05d}/samples/{sample:05d}.png", md, correct, "")

    rows = [
        row(0, 0, "counting", True),
        row(0, 1, "counting", False),
        row(1, 0, "counting", False),
        row(1, 1, "counting", False),
        row(2, 0, "colors", True),
        row(3, 0, "single_object", True),
    ]
    s = gl.compute_summary(rows)
    assert list(s["tags"]) == ["single_object", "counting", "colors"]
    assert s["tags"]["counting"] == {"accuracy": 0.25, "correct": 1, "total": 4}
    assert s["overall"] == pytest.approx((1 + 0.25 + 1) / 3)  # unweighted over tags
    assert s["images"] == 6 and s["image_accuracy"] == pytest.approx(0.5)
    assert s["prompts"] == 4 and s["prompt_accuracy"] == pytest.approx(0.75)
    table = gl.format_summary(s)
    assert "counting" in table and "25.00%" in table and "75.00%" in table
    assert isinstance(json.loads(rows[0]["metadata"]), dict)  # GenEval stores metadata as a JSON string


def test_results_round_trip(tmp_path):
    rows = [
        gl.result_row("d/00000/samples/00000.png", metadata_from_prompt("a photo of a cross"), False, "why")
    ]
    gl.write_results(tmp_path / "r.jsonl", rows)
    assert gl.read_results(tmp_path / "r.jsonl") == rows
    (tmp_path / "bad.jsonl").write_text('{"filename": "x"}\n')
    with pytest.raises(ArscaleError, match="line 1: missing tag, correct"):
        gl.read_results(tmp_path / "bad.jsonl")


def test_cli_suite_render_eval(tmp_path, capsys):
    suite_file = tmp_path / "suite.jsonl"
    assert main(["shapeworld", "suite", "--per-tag", "2", "--seed", "3", "--out", str(suite_file)]) == 0
    assert [json.loads(line) for line in suite_file.read_text().splitlines()] == build_suite(2, 3)
    out = tmp_path / "gt"
    args = [
        "shapeworld",
        "render",
        "--prompts",
        str(suite_file),
        "--out",
        str(out),
        "--per-prompt",
        "2",
        "--seed",
        "4",
        "--no-progress",
    ]
    assert main(args) == 0
    assert len(list(out.glob("*/samples/*.png"))) == 24
    first = gl.read_image(out / "00000" / "samples" / "00001.png")
    md = build_suite(2, 3)[0]
    assert (first == render(sample_scene(md, np.random.default_rng([4, 0, 1])))).all()
    capsys.readouterr()
    assert main(["eval", "shapeworld", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "overall" in printed and "100.00%" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"] == 1.0 and summary["images"] == 24 and len(summary["tags"]) == 6
    rows = gl.read_results(out / "results.jsonl")
    assert rows[0]["filename"] == os.path.join(str(out), "00000", "samples", "00000.png")
    assert set(rows[0]) == {"filename", "tag", "prompt", "correct", "reason", "metadata", "details"}
    assert gl.compute_summary(rows) == summary
    # an `arscale bench` folder keeps its own fields when evaluated again
    (out / "summary.json").write_text(json.dumps({**summary, "label": "raw", "overall": 0.0, "overall_se": 9.0}))
    assert main(["eval", "shapeworld", str(out), "--no-progress"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["label"] == "raw" and again["overall"] == 1.0
    # its error bars follow the new verdicts: 4 of 4 right per tag (Agresti-Coull), not the stale 9.0
    from arscale.bench.metrics import binomial_se

    assert again["overall_se"] == pytest.approx(binomial_se(1.0, 4) / 6 ** 0.5)
    assert all(t["se"] == pytest.approx(binomial_se(1.0, 4)) for t in again["tags"].values())


def test_cli_render_accepts_the_public_suite_name(tmp_path, monkeypatch):
    import arscale.shapeworld.suite as suite_mod

    small, calls = build_suite(1, 0), []
    monkeypatch.setattr(suite_mod, "load_suite", lambda name: calls.append(name) or small)
    assert (
        main(
            [
                "shapeworld",
                "render",
                "--prompts",
                "shapeworld-v1-eval",
                "--out",
                str(tmp_path / "o"),
                "--per-prompt",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert calls == ["shapeworld-v1-eval"]
    assert len(list((tmp_path / "o").glob("*/metadata.jsonl"))) == 6


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("arscale: error: "), err
    return lines[0]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["eval", "shapeworld", str(tmp_path / "nope")]) == 2
    assert "not found" in _error_line(capsys)

    assert main(["eval", "shapeworld", str(tmp_path)]) == 2
    assert "no prompt folders" in _error_line(capsys)

    d = tmp_path / "d"
    gl.write_prompt(d, 0, metadata_from_prompt("a photo of a circle"), [_img(0)])
    (d / "00000" / "metadata.jsonl").write_text("{oops")
    assert main(["eval", "shapeworld", str(d), "--no-progress"]) == 2
    assert "00000/metadata.jsonl: malformed metadata" in _error_line(capsys)

    gl.write_metadata(
        d, 0, {"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "x"}
    )
    assert main(["eval", "shapeworld", str(d), "--no-progress"]) == 2
    assert "unknown class 'dog'" in _error_line(capsys)

    gl.write_metadata(d, 0, metadata_from_prompt("a photo of a circle"))
    (d / "00000" / "samples" / "00000.png").write_bytes(b"garbage")
    assert main(["eval", "shapeworld", str(d), "--no-progress"]) == 2
    assert "00000.png: unreadable image" in _error_line(capsys)

    (d / "00000" / "samples" / "00000.png").unlink()
    assert main(["eval", "shapeworld", str(d), "--no-progress"]) == 2
    assert "no samples found" in _error_line(capsys)

    assert main(["shapeworld", "render", "--prompts", str(tmp_path / "x.jsonl"), "--out", str(tmp_path)]) == 2
    assert "x.jsonl not found" in _error_line(capsys)

    bad = tmp_path / "bad.jsonl"
    write_suite(build_suite(1, 0), bad)
    bad.write_text(
        bad.read_text() + '{"tag": "single_object", "include": [], "prompt": "a photo of a dog"}\n'
    )
    assert main(["shapeworld", "render", "--prompts", str(bad), "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert "bad.jsonl, line 7" in line and "'dog'" in line

    bad.write_text("not json\n")
    assert main(["shapeworld", "render", "--prompts", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "line 1: not valid JSON" in _error_line(capsys)

    good = tmp_path / "good.jsonl"
    write_suite(build_suite(1, 0), good)
    assert (
        main(
            [
                "shapeworld",
                "render",
                "--prompts",
                str(good),
                "--out",
                str(tmp_path / "o"),
                "--per-prompt",
                "0",
            ]
        )
        == 2
    )
    assert "--per-prompt must be at least 1" in _error_line(capsys)

    assert main(["shapeworld", "suite", "--per-tag", "0", "--out", str(tmp_path / "s.jsonl")]) == 2
    assert "--per-tag must be at least 1" in _error_line(capsys)

    assert main(["shapeworld", "suite", "--out", str(tmp_path)]) == 2
    assert "is a folder" in _error_line(capsys)

    assert main(["shapeworld", "suite", "--out", str(tmp_path / "no" / "s.jsonl")]) == 2
    assert "does not exist" in _error_line(capsys)


def test_suite_says_when_its_seed_draws_the_public_prompts(tmp_path, capsys):
    assert main(["shapeworld", "suite", "--per-tag", "1", "--out", str(tmp_path / "public.jsonl")]) == 0
    assert "draws the public suite's prompts" in capsys.readouterr().err
    assert main(["shapeworld", "suite", "--per-tag", "1", "--seed", "8", "--out", str(tmp_path / "fresh.jsonl")]) == 0
    assert "public" not in capsys.readouterr().err
