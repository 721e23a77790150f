"""Importance sampling on a next-token generator whose optional `preview` is absent."""

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.trajectories import Trajectories
from arscale.search.importance import Importance


class _NoPreviewTokens:
    """A next-token generator with only the required members (protocol.py: `preview` is optional)."""

    name, num_tokens, image_size, device = "no-preview", 8, 16, "cpu"

    def __init__(self):
        self.advances = 0

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0):
        traj = Trajectories.for_prompts(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)
        traj.rows["tokens"] = torch.zeros(len(traj), self.num_tokens, dtype=torch.long)
        return traj

    def next_logits(self, traj):
        logits = torch.zeros(len(traj), 4)
        return logits, logits

    def advance(self, traj, tokens, guidance=None):
        traj.rows["tokens"][:, traj.step] = tokens
        traj.step += 1
        self.advances += 1
        return traj

    def finish(self, traj):
        return traj.rows["tokens"].float().mean(1).view(-1, 1, 1, 1).expand(-1, 3, 16, 16) / 4


class _MeanScorer:
    name, input_size = "mean", 16

    def reward(self, images, prompts):
        return images.mean((1, 2, 3))


def test_importance_refuses_a_next_token_generator_without_preview_in_one_line_before_generating():
    """Importance at N > 1 on a generator lacking `preview` fails with an ArscaleError before any token."""
    gen = _NoPreviewTokens()
    with pytest.raises(ArscaleError, match="preview"):
        Importance().run(gen, ["a red circle"], 2, seed=0, scorer=_MeanScorer())
    assert gen.advances == 0


def test_importance_at_n_1_needs_no_preview():
    """At N = 1 importance never resamples, so a generator without `preview` runs (raw sampling plus one score)."""
    res = Importance().run(_NoPreviewTokens(), ["a red circle"], 1, seed=0, scorer=_MeanScorer())
    assert res.cost.scorer_calls == 1 and res.cost.decode_count == 1
