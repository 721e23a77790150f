"""Raw sampling: one sample per prompt, no search (the baseline every table starts from)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arscale.search.base import StrategyConfig, strategy_repr
from arscale.search.result import SearchResult
from arscale.search.rollout import check_n, make_search


@dataclass
class RawConfig(StrategyConfig):
    pass


class Raw:
    """Candidate 0 of each prompt (the same row Best-of-N starts from), whatever N is."""

    name = "raw"
    uses_reward = False  # `scorer` is accepted (one interface) and ignored
    Config = RawConfig

    def __init__(self, config: RawConfig | None = None):
        self.config = config or RawConfig()

    __repr__ = strategy_repr

    def run(self, generator: Any, prompts: Sequence[str], n: int = 1, *, seed: int = 0, prompt_offset: int = 0,
            scorer: Any = None) -> SearchResult:
        """One sample per prompt (candidate 0, the row every other strategy also starts from); `n` is accepted
        for the one interface and changes nothing. Candidates carry no score; `scorer` is ignored."""
        check_n(n)
        self.config.check()
        search = make_search(generator, seed=seed, prompt_offset=prompt_offset)  # `scorer` is not used
        traj = search.start(prompts, 1, unconditional=False)
        search.run_to(traj, search.length)
        images = search.finish(traj)
        return search.result(traj, images, None, self.name, self.config.to_dict())
