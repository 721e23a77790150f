"""The code in docs/extending.md runs as written, and what it registers works end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from arscale.scorers.base import SCORERS
from arscale.search.base import STRATEGIES

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


@pytest.fixture
def clean_registries():
    saved = dict(STRATEGIES), dict(SCORERS)
    yield
    for registry, before in zip((STRATEGIES, SCORERS), saved):
        registry.clear()
        registry.update(before)


def test_the_worked_example_runs(clean_registries):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 3
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - the documentation's own code
    result = namespace["result"]
    assert "rerank" in STRATEGIES and "brightness" in SCORERS
    assert result.config == {"at": 0.5, "keep": 2, "reward": "brightness"}
    # the rerank kept the 2 best partial candidates and copied them back up to 4: 4 final candidates, the
    # brightest chosen, and the cost record saw 4 partial and 4 final rewards
    (candidates,) = result.candidates
    assert len(candidates) == 4
    scores = [c.score for c in candidates]
    assert [c.chosen for c in candidates].index(True) == scores.index(max(scores))
    assert result.cost.scorer_calls == 8 and result.cost.decode_count == 8
    tree = result.tree.to_dict()
    assert tree["reason"].count("rerank") == 2 and tree["parent"].count(-1) == 4  # 2 dropped, 2 copies born
