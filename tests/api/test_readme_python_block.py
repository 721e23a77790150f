"""The README's "From Python" block runs as written (extracted from README.md at test time), and the objects it
names have the shapes its comments say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.skipif(not README.exists(), reason="an installed copy: no README beside the tests")


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_readme_python_block_runs_as_written():
    (code,) = readme_python_blocks()
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    result = namespace["result"]
    # "chosen image per prompt (uint8 HWC)"
    assert len(result.images) == 2
    assert all(img.dtype == np.uint8 and img.shape == (64, 64, 3) for img in result.images)
    # TTS-VAR's default schedule ends with one row per prompt: one candidate, the chosen one
    assert [len(c) for c in result.candidates] == [1, 1]
    pick = result.chosen(0)
    assert pick.chosen and np.array_equal(pick.image, result.images[0]) and isinstance(pick.score, float)
    assert {"operations", "schedule"} <= set(result.telemetry)
    cost = result.cost.to_dict()
    assert cost["transformer_flops"] > 0 and cost["decode_count"] > 0 and cost["scorer_calls"] > 0
    json.dumps(result.to_dict())  # "all of it as plain JSON data (images left out)"
    # the last lines score the picks' uint8 images: one reward each, near the scores the search picked by (their
    # float decodes; README "Large runs": they may differ in the last digits)
    scorer, images_for = namespace["scorer"], namespace["images_for"]
    images = images_for(scorer, result.images)
    assert images.shape == (2, 3, 64, 64) and images.dtype == torch.float32
    again = scorer.reward(images, ["a photo of a red circle", "a photo of two squares"])
    assert again.shape == (2,)
    assert all(abs(float(again[p]) - result.chosen(p).score) < 0.05 for p in range(2))
