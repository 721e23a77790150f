"""The three scripts in examples/ run as a user would run them (in-process, tiny N, into tmp_path), and what they
print and write says what their READMEs promise."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.skipif(not EXAMPLES.exists(), reason="an installed copy: no examples beside the tests")


def run_example(name: str, monkeypatch, capsys, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", [name, *args, "--threads", "1"])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_compare_methods_prints_one_row_per_method_and_saves_the_picks(tmp_path, monkeypatch, capsys):
    out = run_example("compare_methods.py", monkeypatch, capsys, "--out", str(tmp_path), "--n", "4")
    rows = {m.group(1): [float(v) for v in m.groups()[1:]] for m in re.finditer(
        r"(?m)^(raw|best-of-n|importance|tts-var)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", out)}
    assert list(rows) == ["raw", "best-of-n", "importance", "tts-var"], out
    prompts = int(re.search(r"(?m)^(\d+) prompts, N = 4", out).group(1))
    for accuracy, *_ in rows.values():  # a share of the prompts, by the exact evaluator
        assert 0 <= accuracy <= 1 and abs(accuracy * prompts - round(accuracy * prompts)) < 0.03
    raw, best, importance, tts = rows["raw"], rows["best-of-n"], rows["importance"], rows["tts-var"]
    # Best-of-N's candidates include raw's image (candidate 0, the same seeds): its pick is no worse by the reward
    assert best[1] >= raw[1] - 0.01
    # equal N: Best-of-N and importance sample N full images; TTS-VAR's descending schedule fewer tokens
    assert best[2] == importance[2] == 4 * raw[2] and raw[2] < tts[2] < best[2]
    assert importance[4] > best[4] > best[3]  # partial decodes and their scoring cost more than the model alone
    assert Image.open(tmp_path / "compare_methods.png").size[0] > 400


def test_scaling_ar_confidence_reports_terminations_tokens_and_the_pick(tmp_path, monkeypatch, capsys):
    out = run_example("scaling_ar_confidence.py", monkeypatch, capsys, "--out", str(tmp_path), "--n", "4")
    tokens, warmup = map(int, re.search(r"(?m)^(\d+) tokens an image, no termination before step (\d+)", out).groups())
    blocks = out.split("\nprompt ")[1:]
    assert len(blocks) == 2
    for block in blocks:
        ended = [int(s) for s in re.findall(r"terminated at step\s+(\d+)", block)]
        survived = re.findall(r"(?m)^  cand \d+: survived.*$", block)
        assert len(ended) + len(survived) == 4 and survived and all(warmup <= t < tokens for t in ended)
        (pick_line,) = [ln for ln in block.splitlines() if ln.endswith("<- pick")]
        assert "survived" in pick_line  # ScalingAR picks among the candidates that finished
        candidate = re.match(r"  cand (\d+)", pick_line).group(1)
        assert f"pick: cand {candidate}," in block
        # a candidate terminated at step t generated t tokens: the prompt's bill is their sum
        spent = int(re.search(r"tokens: (\d+) of (\d+)", block).group(1))
        assert spent == sum(ended) + tokens * len(survived) and f"of {4 * tokens} " in block
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confidence_00000.png", "confidence_00001.png"]


def red_share(image: np.ndarray) -> float:
    r, g, b = (image[..., i].astype(float) / 255 for i in range(3))
    return float(((r > 0.6) & (g < 0.4) & (b < 0.4)).mean())


def test_custom_scorer_picks_the_reddest_candidate(tmp_path, monkeypatch, capsys):
    out = run_example("custom_scorer.py", monkeypatch, capsys, "--out", str(tmp_path), "--n", "6")
    assert "best-of-n, reward 'redness'" in out and "tts-var, reward 'redness'" in out
    for p in range(2):
        strip = np.asarray(Image.open(tmp_path / f"best_of_n_{p}.png").convert("RGB"))
        tiles = np.split(strip, 6, axis=1)
        pick = np.asarray(Image.open(tmp_path / f"best_of_n_{p}_pick.png").convert("RGB"))
        shares = [red_share(t) for t in tiles]
        assert max(shares) > 0  # the test means something: some candidate has red
        assert red_share(pick) == max(shares)  # the pick follows the custom reward
        assert any(np.array_equal(pick, t) for t in tiles)
