"""Importance sampling (sequential Monte Carlo) baseline: a constant batch of N rows per prompt,
multinomial resampling ∝ exp(λ·potential) at configured points, best final reward at the end.

Next-scale generators resample after the scales in `resample_at` (default: TTS-VAR's resampling
scales mapped onto the model, see `schedule.py`). Next-token generators resample after the token
counts `checkpoints` (fractions of the raster; default 0.5 and 0.75), scoring `generator.preview`,
the decode of the raster prefix.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from arscale.errors import ArscaleError
from arscale.search.base import StrategyConfig, strategy_repr
from arscale.search.potentials import POTENTIALS, log_weights, potential, resample
from arscale.search.result import SearchResult
from arscale.search.rollout import Search, check_n, make_search
from arscale.search.schedule import map_operation_scales


@dataclass
class ImportanceConfig(StrategyConfig):
    resample_at: list[int] | None = None  # next-scale: 0-based scales; None = mapped paper scales
    checkpoints: list[float] = field(default_factory=lambda: [0.5, 0.75])  # next-token: raster fractions
    potential: str = "value"
    lam: float = 10.0
    reward: str = "shapeworld-reward"

    symbols: ClassVar[dict[str, str]] = {"λ": "lam", "lambda": "lam"}  # the paper's symbols, for error hints

    def __post_init__(self):
        if self.potential not in POTENTIALS:
            raise ArscaleError(f"unknown potential {self.potential!r}; choose from {', '.join(POTENTIALS)}")
        if not 0 <= self.lam < math.inf:  # a negative one would favour the lowest rewards; NaN none
            raise ArscaleError(f"lam (λ) must be a finite number ≥ 0, got {self.lam}")
        bad = [c for c in self.checkpoints if not 0.0 < c < 1.0]
        if bad:
            raise ArscaleError(f"checkpoints must be fractions in (0, 1) of the raster, got {bad}")
        if self.resample_at is not None and len(set(self.resample_at)) != len(self.resample_at):
            # as tts-var's: one scale listed twice would resample twice there
            raise ArscaleError(f"resample_at lists a scale twice: {list(self.resample_at)}")


def _default(name: str) -> Any:
    f = {f.name: f for f in dataclasses.fields(ImportanceConfig)}[name]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def resample_per_prompt(search: Search, traj, column: int, kind: str, lam: float, keep: int | None = None,
                        purpose: int = 0) -> tuple[list[int], dict]:
    """Score-driven multinomial draw within each prompt; returns the new row order and a trace."""
    history = traj.history["reward"]
    phi = potential(history, column, kind)
    chosen: list[int] = []
    for p, rows in search.groups(traj):
        count = len(rows) if keep is None else keep
        draw = resample(phi[rows], lam, count, search.rng(p, purpose))
        chosen += sorted(rows[draw].tolist())
    # the potential each row was drawn by and its probability within its prompt, so a run shows what each
    # potential kind and λ did (VALUE's potential is the reward itself)
    weights = log_weights(phi, lam, traj.prompt_index).exp()
    trace = {"position": column, "op": "resample", "nodes": traj.node.tolist(), "prompt": traj.prompt_index.tolist(),
             "reward": history[:, column].tolist(), "potential": phi.tolist(), "weight": weights.tolist(),
             "kept": chosen}
    return chosen, trace


class Importance:
    """Importance sampling: N rows per prompt resampled ∝ exp(λ·potential) at set points, the best final reward
    chosen (settings: `ImportanceConfig`, docs/strategies.md)."""

    name = "importance"
    Config = ImportanceConfig

    def __init__(self, config: ImportanceConfig | None = None):
        self.config = config or ImportanceConfig()

    __repr__ = strategy_repr

    def check_kind(self, kind: str) -> None:
        """Refuse a field set away from its default that the generator's kind would ignore."""
        c = self.config
        if kind == "scale" and list(c.checkpoints) != _default("checkpoints"):
            raise ArscaleError(f"importance: checkpoints {list(c.checkpoints)} (raster fractions) apply to next-token "
                               "generators; this one is next-scale: set resample_at (0-based scales) instead")
        if kind == "token" and c.resample_at is not None:
            raise ArscaleError(f"importance: resample_at {list(c.resample_at)} (scales) applies to next-scale "
                               "generators; this one is next-token: set checkpoints (raster fractions) instead")

    def points(self, search: Search) -> list[int]:
        """Positions (scales or tokens generated so far) after which to resample."""
        self.check_kind(search.kind)
        if search.kind == "scale":
            k = search.length
            scales = self.config.resample_at
            if scales is None:  # one scale: no scale before the last to resample after
                scales = list(map_operation_scales(k)[1]) if k >= 5 else [k - 2] if k >= 2 else []
            bad = [s for s in scales if not 0 <= s <= k - 2]
            if bad:
                raise ArscaleError(f"resample_at {bad} out of range 0..{k - 2} for a model with {k} scales")
            return sorted(s + 1 for s in scales)
        t = search.length
        bad = [c for c in self.config.checkpoints if not 0.0 < c < 1.0]
        if bad:
            raise ArscaleError(f"checkpoints must be fractions in (0, 1) of the {t} tokens, got {bad}")
        # the nearest token (Python's round: a tie goes to the even one), kept inside 1..t-1 (empty for one token)
        return sorted({max(1, min(t - 1, round(c * t))) for c in self.config.checkpoints}) if t > 1 else []

    def run(self, generator: Any, prompts: Sequence[str], n: int, *, seed: int = 0, prompt_offset: int = 0,
            scorer: Any = None) -> SearchResult:
        """Run `n` particles per prompt (rows generated side by side from the start), resampled within each
        prompt after each of `points()` (never at N = 1). `scorer` (an object or a registered name) replaces the
        config's `reward`. The `SearchResult` holds each prompt's `n` final particles as candidates with their
        final rewards, the best one chosen (`result.chosen(p)`), the search tree, the cost record, and
        `telemetry["operations"]`: one record per resampling (the rows' rewards and the rows kept)."""
        n = check_n(n)
        self.config.check()
        c = self.config
        search = make_search(generator, seed=seed, prompt_offset=prompt_offset, scorer=scorer, reward_name=c.reward)
        traj = search.start(prompts, n, unconditional=False)
        trace = search.telemetry.setdefault("operations", [])
        points = self.points(search)  # checked at any N
        if n > 1 and points and not callable(getattr(generator, "preview", None)):  # optional on next-token models
            raise ArscaleError(f"importance: {type(generator).__name__} has no preview(traj, size), the partial "
                               "decode scored at each resampling point; give it one, or use best-of-n")
        for point in points if n > 1 else []:  # one particle per prompt: resampling cannot change anything
            search.run_to(traj, point)
            search.score_now(traj, point - 1)
            with search.cost.timer("selection"):
                rows, record = resample_per_prompt(search, traj, point - 1, c.potential, c.lam, purpose=point)
                traj.select(torch.tensor(rows), "resample")
                record["kept_nodes"] = traj.node.tolist()  # as TTS-VAR's: a row drawn twice becomes a new node
                trace.append(record)
        search.run_to(traj, search.length)
        images = search.finish(traj)
        rewards = search.final_rewards(traj, images)
        return search.result(traj, images, rewards, self.name, c.to_dict())
