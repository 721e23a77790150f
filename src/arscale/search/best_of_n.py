"""Best-of-N: N full samples per prompt, keep the one with the best final reward."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arscale.search.base import StrategyConfig, strategy_repr
from arscale.search.result import SearchResult
from arscale.search.rollout import check_n, make_search


@dataclass
class BestOfNConfig(StrategyConfig):
    reward: str = "shapeworld-reward"  # scorer name, used when run() gets no scorer


class BestOfN:
    """N full samples per prompt, the one with the best final reward chosen (settings: `BestOfNConfig`,
    docs/strategies.md)."""

    name = "best-of-n"
    Config = BestOfNConfig

    def __init__(self, config: BestOfNConfig | None = None):
        self.config = config or BestOfNConfig()

    __repr__ = strategy_repr

    def run(self, generator: Any, prompts: Sequence[str], n: int, *, seed: int = 0, prompt_offset: int = 0,
            scorer: Any = None) -> SearchResult:
        """`n` full samples per prompt, each scored once by the reward (`scorer`, else the config's); the pick is
        the best. Every sample is a candidate, its score the reward of its float decode (a uint8 image rescored
        can differ in the last digits)."""
        n = check_n(n)
        self.config.check()
        search = make_search(generator, seed=seed, prompt_offset=prompt_offset, scorer=scorer,
                             reward_name=self.config.reward)
        traj = search.start(prompts, n, unconditional=False)
        search.run_to(traj, search.length)
        images = search.finish(traj)
        rewards = search.final_rewards(traj, images)
        return search.result(traj, images, rewards, self.name, self.config.to_dict())
