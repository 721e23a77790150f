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
    # the last line scores the pick's uint8 image: one reward, near the score the search picked by (its float
    # decode; README "Large runs": they may differ in the last digits)
    images = namespace["images"]
    assert images.shape == (1, 3, 64, 64) and images.dtype == torch.float32
    again = namespace["load_scorer"]("shapeworld-reward").reward(images, ["a photo of a red circle"])
    assert again.shape == (1,) and abs(float(again[0]) - pick.score) < 0.05
