"""`arscale bench`'s results.jsonl carries GenEval's `details` (per class, the detected boxes), as `arscale eval
shapeworld` writes them for the same images."""

from __future__ import annotations

import json

from arscale.cli import main


def test_bench_results_hold_the_detections_eval_finds_in_the_same_images(tmp_path):
    out = tmp_path / "bench"
    assert main(["bench", "--model", "shapeworld-var", "--prompts", "draw:1:5", "--n", "1", "--strategies", "raw",
             "--threads", "1", "--quiet", "--scorer", "", "--out", str(out)]) == 0
    results = out / "raw" / "n1" / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 6
    found = [json.loads(r["details"]) for r in rows]
    assert any(found), "a shipped model's samples hold at least one detection"
    assert main(["eval", "shapeworld", str(out / "raw" / "n1"), "--no-progress"]) == 0
    again = [json.loads(line) for line in results.read_text().splitlines()]
    assert {r["filename"].rsplit("/", 3)[-3]: json.loads(r["details"]) for r in again} == {
        r["filename"].rsplit("/", 3)[-3]: d for r, d in zip(rows, found, strict=True)}
