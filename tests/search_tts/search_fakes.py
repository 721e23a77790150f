"""Tiny honest stand-ins: a next-scale and a next-token generator over Trajectories, and a scorer.

The generators draw from each row's own random stream (key, step), keep per-row, CFG-paired and
KV-cache state that `select` must move consistently, and report analytic FLOPs.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from arscale.generators.kv_cache import KVCache
from arscale.generators.seeding import generator_for, mix
from arscale.generators.trajectories import Trajectories


def _prompt_bias(prompt: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(mix(*[ord(ch) for ch in prompt]))
    return torch.randn(3, 1, 1, generator=g)


class FakeNextScale:
    name = "fake-var"
    patch_nums = (1, 2, 3, 4, 5, 6, 8)
    num_scales = len(patch_nums)
    scales = tuple((pn, pn) for pn in patch_nums)  # (h, w) of each token map, as ScaleGenerator says
    image_size = 16
    device = "cpu"

    def __init__(self):
        self.preview_calls: list[tuple[int, int]] = []

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0, cfg=None):
        traj = Trajectories.for_prompts(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)
        R = len(traj)
        traj.rows["latent"] = torch.zeros(R, 3, 8, 8)
        traj.rows["bias"] = torch.stack([_prompt_bias(prompts[int(p)]) for p in traj.prompt_index])
        # paired row r (cond) and r + R (uncond) must always describe the same row
        traj.paired["row_id"] = torch.cat([torch.arange(R), torch.arange(R)]).float()
        traj.cache = KVCache(1, capacity=sum(p * p for p in self.patch_nums))
        return traj

    def step(self, traj):
        k = traj.step
        s = self.patch_nums[k]
        noise = torch.stack([torch.randn(3, s, s, generator=generator_for(key, k)) for key in traj.seed_key])
        traj.rows["latent"] = traj.rows["latent"] + F.interpolate(noise, size=(8, 8), mode="nearest") / (k + 1)
        traj.rows["latent"] = traj.rows["latent"] + 0.2 * traj.rows["bias"]
        summary = traj.rows["latent"].mean((1, 2, 3)).view(-1, 1, 1, 1).expand(-1, 1, s * s, 2)
        traj.cache.append(0, torch.cat([summary, summary]), torch.cat([summary, summary]))
        traj.step += 1
        return traj

    def latent(self, traj):
        return traj.rows["latent"]

    def preview(self, traj, size=None):
        size = size or self.image_size
        self.preview_calls.append((len(traj), size))
        return F.interpolate(torch.sigmoid(traj.rows["latent"]), size=(size, size), mode="bilinear",
                             align_corners=False)

    def finish(self, traj):
        return F.interpolate(torch.sigmoid(traj.rows["latent"]), size=(self.image_size, self.image_size),
                             mode="bilinear", align_corners=False)

    def flops_per_scale(self, rows):
        return [float(2 * rows * 1000 * p * p) for p in self.patch_nums]

    def decode_flops(self, rows, size):
        return float(rows * size * size * 10)


class FakeNextToken:
    name = "fake-ar"
    num_tokens = 16
    vocab = 6
    image_size = 16
    device = "cpu"
    cfg = 2.0
    temperature = 1.0
    top_k = 0
    top_p = 0.0

    def __init__(self):
        g = torch.Generator().manual_seed(3)
        self.table = torch.randn(self.num_tokens, self.vocab, generator=g)
        self.palette = torch.rand(self.vocab, 3, generator=g)

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0):
        traj = Trajectories.for_prompts(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)
        traj.rows["tokens"] = torch.zeros(len(traj), self.num_tokens, dtype=torch.long)
        traj.rows["bias"] = torch.stack([_prompt_bias(prompts[int(p)]).flatten()[0] for p in traj.prompt_index])
        traj.extra["transformer_flops"] = self.flops_per_token(len(traj), 0)  # as the real one: the prefill
        return traj

    def next_logits(self, traj):
        t = traj.step
        base = self.table[t].expand(len(traj), -1).clone()
        prev = traj.rows["tokens"][:, t - 1] if t > 0 else torch.zeros(len(traj), dtype=torch.long)
        cond = base + F.one_hot(prev, self.vocab) + traj.rows["bias"].view(-1, 1)
        return cond, base

    def advance(self, traj, tokens, guidance=None):
        traj.rows["tokens"][:, traj.step] = tokens
        traj.step += 1
        if traj.step < self.num_tokens:  # feeding the token for the next logits
            traj.extra["transformer_flops"] += self.flops_per_token(len(traj), traj.step)
        return traj

    def preview(self, traj, size=None):
        size = size or self.image_size
        colors = self.palette[traj.rows["tokens"]]  # [R,16,3]; unfilled tokens show token 0
        grid = colors.view(len(traj), 4, 4, 3).permute(0, 3, 1, 2)
        return F.interpolate(grid, size=(size, size), mode="nearest")

    def finish(self, traj):
        return self.preview(traj, self.image_size)

    def flops_per_token(self, rows, position):
        return float(2 * rows * 500 * (position + 1))


class FakeScorer:
    """Reward = mean red minus mean blue (plus a per-prompt offset); features = the image itself."""

    name = "fake-reward"
    input_size = 16

    def __init__(self):
        self.calls: list[int] = []

    def reward(self, images, prompts):
        assert images.shape[-1] == self.input_size
        self.calls.append(len(images))
        offset = torch.tensor([float(len(p) % 3) for p in prompts])
        return images[:, 0].mean((1, 2)) - images[:, 2].mean((1, 2)) + offset

    def features(self, images):
        assert images.shape[-1] == self.input_size
        return images


def _row_in_prompt(traj, rows_per_prompt) -> torch.Tensor:
    """Each row's candidate index within its prompt (`Trajectories.for_prompts` lays rows out prompt by prompt)."""
    assert isinstance(rows_per_prompt, int)
    return torch.arange(len(traj)) % rows_per_prompt


class TwinsNextScale(FakeNextScale):
    """Candidates 2i and 2i+1 of a prompt are exact twins: at every scale their latent (so every decode and every
    feature of it) is a fixed random pattern of the pair i, whatever their seeds. Clustering 8 such rows into 4 must
    keep one row of each pair; keeping the first four would keep both twins of pairs 0 and 1."""

    name = "fake-var-twins"

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0, cfg=None):
        traj = super().start(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset, cfg=cfg)
        traj.rows["pair"] = _row_in_prompt(traj, rows_per_prompt) // 2
        traj.rows["latent"] = self._patterns(traj)
        return traj

    def step(self, traj):
        super().step(traj)  # the cache and step bookkeeping of the plain fake
        traj.rows["latent"] = self._patterns(traj)
        return traj

    @staticmethod
    def _patterns(traj) -> torch.Tensor:
        return torch.stack([2 * torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(100 + int(i)))
                            for i in traj.rows["pair"]])


class CodedNextScale(FakeNextScale):
    """Decodes to flat images that spell out which row and scale they show, for `TableScorer`: channel 0 is
    (candidate index within the prompt + 0.5) / 10, channel 1 (scale just generated + 0.5) / 10, channel 2 zero.
    A resampled copy keeps its ancestor's candidate index."""

    name = "fake-var-coded"

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0, cfg=None):
        traj = super().start(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset, cfg=cfg)
        traj.rows["candidate"] = _row_in_prompt(traj, rows_per_prompt)
        return traj

    def preview(self, traj, size=None):
        size = size or self.image_size
        self.preview_calls.append((len(traj), size))
        images = torch.zeros(len(traj), 3, size, size)
        images[:, 0] = ((traj.rows["candidate"].float() + 0.5) / 10).view(-1, 1, 1)
        images[:, 1] = (traj.step - 1 + 0.5) / 10
        return images

    def finish(self, traj):
        return self.preview(traj, self.image_size)


class TableScorer(FakeScorer):
    """Reward = table[scale][candidate] for `CodedNextScale` images (0 where the table has no entry)."""

    name = "table-reward"

    def __init__(self, table: dict[int, list[float]]):
        super().__init__()
        self.table = table

    def reward(self, images, prompts):
        assert images.shape[-1] == self.input_size
        self.calls.append(len(images))
        candidate = (images[:, 0].mean((1, 2)) * 10).floor().long().tolist()
        scale = (images[:, 1].mean((1, 2)) * 10).floor().long().tolist()
        return torch.tensor([self.table[s][c] if s in self.table else 0.0 for c, s in zip(candidate, scale)])
