"""The strategy interface, config serialisation and the registry.

A strategy is a small loop over a generator: it decides which rows live and never touches model
internals. Its config is a dataclass that round-trips to JSON.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from arscale.errors import ArscaleError
from arscale.search.result import SearchResult


class StrategyConfig:
    """Mixin for config dataclasses: JSON round trip with unknown keys rejected."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[arg-type]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ArscaleError(f"unknown {cls.__name__} field(s) {unknown}; known fields: {sorted(names)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))


@runtime_checkable
class Strategy(Protocol):
    name: str
    config: StrategyConfig

    def run(self, generator: Any, prompts: Sequence[str], n: int, *, seed: int = 0, prompt_offset: int = 0,
            scorer: Any = None) -> SearchResult:
        """Spend a budget of `n` candidates per prompt; return one chosen image per prompt."""
        ...


# name -> "module:Class"; modules are imported on first use so the registry costs nothing.
STRATEGIES: dict[str, str] = {
    "raw": "arscale.search.raw:Raw",
    "best-of-n": "arscale.search.best_of_n:BestOfN",
    "importance": "arscale.search.importance:Importance",
    "tts-var": "arscale.search.tts_var:TTSVAR",
    "scaling-ar": "arscale.search.scaling_ar:ScalingAR",
}


def make_strategy(name: str, config: dict[str, Any] | None = None) -> Strategy:
    if name not in STRATEGIES:
        raise ArscaleError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    module, cls = STRATEGIES[name].split(":")
    strategy_cls = getattr(importlib.import_module(module), cls)
    return strategy_cls(strategy_cls.Config.from_dict(config or {}))
