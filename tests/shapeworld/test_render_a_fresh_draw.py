"""`arscale shapeworld render --prompts draw:PER_TAG:SEED` renders the very prompts `arscale bench --prompts` draws
with that spec (the ground truth of a fresh draw), and they evaluate as correct."""

from __future__ import annotations

import json

from arscale.bench.suites import load_prompts
from arscale.cli import main


def test_a_fresh_draw_renders_benchs_prompts_and_every_render_is_correct(tmp_path, capsys):
    out = tmp_path / "gt"
    assert main(["shapeworld", "render", "--prompts", "draw:2:4242", "--out", str(out), "--per-prompt", "1",
                 "--no-progress"]) == 0
    rendered = [json.loads((folder / "metadata.jsonl").read_text()) for folder in sorted(out.iterdir())]
    assert rendered == [sp.metadata for sp in load_prompts("draw:2:4242")[1]]
    assert len(rendered) == 12
    assert main(["eval", "shapeworld", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"] == 1.0


def test_a_malformed_draw_is_refused_in_one_line(tmp_path, capsys):
    assert main(["shapeworld", "render", "--prompts", "draw:two:1", "--out", str(tmp_path / "gt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["arscale: error: draw:PER_TAG:SEED expects two integers, got 'draw:two:1'"]
