"""ScalingAR, like every other strategy, stops a generator that does not advance `traj.step` (a plugin's)."""

from __future__ import annotations

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.trajectories import Trajectories
from arscale.search.base import make_strategy


class _TinyAR:
    """A next-token toy (a 4x4 grid, vocab 8, no model); `moves_step=False` keeps its position in `extra` only."""

    name, num_tokens, image_size, vocab, cfg = "tiny-ar-j", 16, 8, 8, 1.5

    def __init__(self, moves_step: bool = True):
        g = torch.Generator().manual_seed(0)
        self.moves_step = moves_step
        self.table = torch.randn(self.num_tokens, self.vocab, generator=g)
        self.palette = torch.rand(self.vocab, 3, generator=g)

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0):
        traj = Trajectories.for_prompts(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)
        traj.rows["tokens"] = torch.full((len(traj), self.num_tokens), -1, dtype=torch.long)
        traj.extra["k"] = 0
        return traj

    def next_logits(self, traj):
        cond = self.table[traj.extra["k"]].expand(len(traj), -1) + 0.3 * traj.rows["tokens"].clamp(min=0).sum(1, True)
        return cond, 0.5 * cond

    def advance(self, traj, tokens, guidance=None):
        traj.rows["tokens"][:, traj.extra["k"]] = tokens
        traj.extra["k"] += 1
        if self.moves_step:
            traj.step += 1
        return traj

    def decode_prefix(self, tokens, size=None):
        rgb = torch.full((len(tokens), self.num_tokens, 3), 0.5)
        rgb[tokens >= 0] = self.palette[tokens[tokens >= 0]]
        return rgb.reshape(-1, 4, 4, 3).permute(0, 3, 1, 2)

    def preview(self, traj, size=None):
        return self.decode_prefix(traj.rows["tokens"], size)

    def finish(self, traj):
        return self.preview(traj)


def test_scaling_ar_refuses_a_generator_that_leaves_traj_step_alone():
    """docs/extending.md: a generator that does not advance traj.step is stopped in one line, by ScalingAR too."""
    good = make_strategy("scaling-ar", {}).run(_TinyAR(), ["a photo of a red circle"], 3, seed=0)
    assert max(good.tree.ended) == _TinyAR.num_tokens  # the toy itself is sound when it moves traj.step
    with pytest.raises(ArscaleError, match="traj.step"):
        make_strategy("scaling-ar", {}).run(_TinyAR(moves_step=False), ["a photo of a red circle"], 3, seed=0)
