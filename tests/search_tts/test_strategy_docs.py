"""docs/strategies.md lists every built-in strategy's config fields with the defaults the code has."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from arscale.search.base import make_strategy

DOC = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"
BUILT_IN = ("raw", "best-of-n", "importance", "tts-var", "scaling-ar")


def documented_defaults(section: str) -> dict[str, str]:
    """field -> default cell of the section's table (the default is the first `...` cell after the name)."""
    text = DOC.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    rows = {}
    for line in text[start:end if end > 0 else None].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`\w+`", cells[0]):
            rows[cells[0].strip("`")] = next(c for c in cells[1:] if c.startswith("`")).strip("`")
    return rows


@pytest.mark.parametrize("name", [n for n in BUILT_IN if n != "raw"])
def test_every_field_is_documented_with_its_default(name):
    config = make_strategy(name).config
    expected = {f.name: json.dumps(getattr(config, f.name)) for f in dataclasses.fields(config)}
    assert documented_defaults(name) == expected


def test_the_overview_names_every_built_in_strategy():
    overview = DOC.read_text().split("\n## ")[0]
    assert {n for n in BUILT_IN if f"| `{n}` |" in overview} == set(BUILT_IN)
    assert not dataclasses.fields(make_strategy("raw").config)  # raw has no section because it has no settings
