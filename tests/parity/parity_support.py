"""Parity fixtures: discovery, loading and comparison helpers (see shared/fixtures/README.md).

Cases are every `<root>/<family>/<case>/manifest.json`, with root = $ARSCALE_FIXTURES or
`../shared/fixtures` next to the checkout. Nothing about a case is hard-coded: shapes, seeds, settings and
tolerances come from its manifest.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

CHECKOUT = Path(__file__).resolve().parents[2]
FAMILIES = {"VAR", "Infinity", "LlamaGen"}


def fixtures_root() -> Path:
    env = os.environ.get("ARSCALE_FIXTURES")
    return Path(env) if env else (CHECKOUT.parent / "shared" / "fixtures")


def discover() -> list[Path]:
    root = fixtures_root()
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob("*/*/manifest.json"))


@dataclass
class Case:
    path: Path
    manifest: dict

    @property
    def family(self) -> str:
        return self.manifest["family"]

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    @functools.cached_property
    def model_sd(self) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file
        return load_file(str(self.path / "model.safetensors"))

    @functools.cached_property
    def tokenizer_sd(self) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file
        return load_file(str(self.path / "tokenizer.safetensors"))

    @functools.cached_property
    def io(self) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file
        return load_file(str(self.path / "io.safetensors"))

    def seq(self, prefix: str) -> list[torch.Tensor]:
        """io tensors `prefix.0`, `prefix.1`, ... in index order; none at all is an error (the stage tests loop
        over these, and an empty loop would pass without checking anything)."""
        out, i = [], 0
        while f"{prefix}.{i}" in self.io:
            out.append(self.io[f"{prefix}.{i}"])
            i += 1
        assert out, f"{self.id}: io.safetensors has no {prefix}.0, {prefix}.1, ..."
        return out

    def tol(self, kind: str) -> dict:
        t = self.manifest["tolerances"][kind]
        return {"atol": float(t["atol"]), "rtol": float(t.get("rtol", 0.0))}


def load_case(path: Path) -> Case:
    return Case(path, json.loads((path / "manifest.json").read_text()))


def cases_for(family: str) -> list:
    """pytest params for every discovered case of `family`; one skipped param when there are none."""
    paths = discover()
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no parity fixtures at {fixtures_root()}"),
                             id="no-fixtures")]
    found = [load_case(p) for p in paths]
    mine = [c for c in found if c.family == family]
    if not mine:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no {family} case under {fixtures_root()}"),
                             id=f"no-{family}")]
    return [pytest.param(c, id=c.id) for c in mine]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, what: str, atol: float, rtol: float = 0.0):
    actual = actual.detach().float().cpu().reshape(expected.shape)
    expected = expected.float()
    diff = (actual - expected).abs()
    ok = diff <= atol + rtol * expected.abs()
    if not bool(ok.all()):
        raise AssertionError(f"{what}: max |diff| {diff.max().item():.3g} over {int((~ok).sum())} of "
                             f"{ok.numel()} entries (atol {atol}, rtol {rtol})")


def assert_equal(actual: torch.Tensor, expected: torch.Tensor, *, what: str):
    actual = actual.detach().cpu().long().reshape(expected.shape)
    expected = expected.long()
    bad = actual != expected
    if bool(bad.any()):
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.numel()} entries differ")


def first_divergence(pairs) -> str | None:
    """The first (label) whose actual != expected among (label, actual, expected) triples."""
    for label, actual, expected in pairs:
        if not torch.equal(actual.detach().cpu().long().reshape(expected.shape), expected.long()):
            return label
    return None
