"""The GenEval layout as djghosh13/geneval's evaluate_images.py reads it, and its summary_scores.py numbers."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from arscale.bench import geneval_layout as layout

RECORDS = [
    {"tag": "single_object", "include": [{"class": "circle", "count": 1}], "prompt": "a photo of a circle"},
    {"tag": "single_object", "include": [{"class": "circle", "count": 1}], "prompt": "a photo of a circle"},
    {"tag": "counting", "include": [{"class": "cross", "count": 2}], "exclude": [{"class": "cross", "count": 3}],
     "prompt": "a photo of two crosses"},
]


def _geneval_walk(root) -> list[tuple[str, dict]]:
    """What GenEval's evaluator reads: numeric folders, one JSON object in metadata.jsonl, and the files in
    samples/ whose names start with digits followed by ".png" (its regex is anchored at the start only)."""
    pattern = re.compile(r"\d+\.png")
    found = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name.isdigit()):
        record = json.loads((folder / "metadata.jsonl").read_text())
        found += [(str(f), record) for f in sorted((folder / "samples").iterdir())
                  if f.is_file() and pattern.match(f.name)]
    return found


def test_official_walk_reads_every_sample_and_the_records_verbatim(tmp_path):
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    for i, md in enumerate(RECORDS):
        layout.write_prompt(tmp_path, i, md, [img, img])
    (tmp_path / "00000" / "record.json").write_text("{}")  # bench extras must not confuse the walk
    layout.write_summary(tmp_path / "summary.json", {})
    found = _geneval_walk(tmp_path)
    assert len(found) == 6
    for path, md in found:
        i = int(os.path.basename(os.path.dirname(os.path.dirname(path))))
        assert md == RECORDS[i] and list(md) == list(RECORDS[i])


def test_summary_matches_summary_scores_including_its_prompt_grouping():
    rows = [layout.result_row(f"out/{i:05d}/samples/00000.png", md, c, "")
            for i, (md, c) in enumerate(zip(RECORDS, [True, False, False]))]
    s = layout.compute_summary(rows)
    # summary_scores.py: per-tag mean, unweighted mean of tags, groupby('metadata')['correct'].any()
    assert s["overall"] == pytest.approx(np.mean([0.5, 0.0]))
    assert s["images"] == 3 and s["image_accuracy"] == pytest.approx(1 / 3)
    assert s["prompts"] == 3 and s["prompt_accuracy"] == pytest.approx(1 / 3)  # per folder
    assert s["geneval_prompts"] == 2 and s["geneval_prompt_accuracy"] == pytest.approx(0.5)  # per record
