"""Invariances the other tests leave uncovered on the shipped models.
A bench prompt's pick does not depend on the order of --strategies / --n, and `arscale generate` of the same
prompt and seed gives the bench's image (README: seeds derive from the global prompt index, not the run)."""

import hashlib
import json

import numpy as np
from PIL import Image

from arscale.cli import main as cli

BENCH = ["bench", "--model", "shapeworld-var", "--prompts", "draw:1:5", "--limit", "2", "--batch-prompts", "1",
         "--seed", "3", "--quiet"]


def _picks(out):
    """Image bytes and candidate scores of every finished prompt, by run folder."""
    picks = {}
    for rec in sorted(out.glob("*/n*/*/record.json")):
        record = json.loads(rec.read_text())
        image = hashlib.sha256((rec.parent / "samples" / "00000.png").read_bytes()).hexdigest()
        picks[rec.parent.relative_to(out).as_posix()] = (image, record["candidate_scores"], record["reward"])
    return picks


def test_bench_picks_ignore_the_order_of_strategies_and_budgets_and_match_generate(tmp_path, capsys):
    """--strategies/--n order changes no pick, and `generate` with the bench's prompt and seed draws its image."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli([*BENCH, "--strategies", "best-of-n,tts-var", "--n", "1,4", "--out", str(one)]) == 0
    assert cli([*BENCH, "--strategies", "tts-var,best-of-n", "--n", "4,1", "--out", str(two)]) == 0
    first = _picks(one)
    assert len(first) == 8 and first == _picks(two)
    assert first["best-of-n/n4/00001"][0] != first["best-of-n/n4/00000"][0]  # prompts differ: equality proves something
    gen = tmp_path / "gen"  # generate's one prompt is global index 0: the bench's first prompt
    record0 = json.loads((one / "tts-var" / "n4" / "00000" / "record.json").read_text())
    assert cli(["generate", record0["prompt"], "--strategy", "tts-var", "--n", "4", "--seed", "3", "--threads", "1",
                "--out", str(gen)]) == 0
    capsys.readouterr()
    made = np.asarray(Image.open(gen / "shapeworld-var_tts-var_00.png").convert("RGB"))
    benched = np.asarray(Image.open(one / "tts-var" / "n4" / "00000" / "samples" / "00000.png").convert("RGB"))
    assert np.array_equal(made, benched)
    assert json.loads((gen / "result.json").read_text())["scores"] == record0["candidate_scores"]
