"""Every discovered fixture case is either run by a family's parity tests or skipped as unknown."""

from __future__ import annotations

import pytest
from parity_support import FAMILIES, discover, fixtures_root, load_case

PATHS = discover()


@pytest.mark.parametrize("path", PATHS or [pytest.param(None, marks=pytest.mark.skip(
    reason=f"no parity fixtures at {fixtures_root()}"))], ids=lambda p: "none" if p is None else p.name)
def test_case_is_complete_or_an_unknown_family(path):
    case = load_case(path)
    if case.family not in FAMILIES:
        pytest.skip(f"unknown family {case.family!r} in {path}; no parity tests for it")
    for name in ("model.safetensors", "tokenizer.safetensors", "io.safetensors"):
        assert (path / name).is_file(), f"{path} lacks {name}"
    for kind in ("logits", "latents", "images_float"):
        assert "atol" in case.manifest["tolerances"][kind]
    listed = {t["name"] for t in case.manifest["io_tensors"]}
    assert listed == set(case.io), "io.safetensors and the manifest's io_tensors list disagree"
