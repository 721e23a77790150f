"""A researcher's own model families (a next-token and a next-scale toy, random weights) through the plugin seams
that docs/extending.md ("Generators") and generators/protocol.py describe: registry entry, CLI, bench, cost."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from arscale.errors import ArscaleError
from arscale.generators.loading import record_hub_file
from arscale.generators.registry import MODELS, load_generator
from arscale.generators.seeding import generator_for
from arscale.generators.trajectories import Trajectories
from arscale.scorers.base import register_scorer
from arscale.search.base import make_strategy

D = 8


def _prompt_embedding(words: torch.Tensor, prompts) -> torch.Tensor:
    ids = [[sum(map(ord, w)) % len(words) for w in str(p).split()] or [0] for p in prompts]
    return torch.stack([words[torch.tensor(i)].mean(0) for i in ids])


class ToyAR:
    """Next-token toy: a 4x4 grid of tokens (vocab 16), a KV-free embedding + linear model, 8x8 colour patches."""

    name, num_tokens, image_size, vocab = "toy-ar", 16, 32, 16

    def __init__(self, device="cpu", cfg=1.5):
        g = torch.Generator().manual_seed(0)
        self.device, self.cfg = torch.device(device), cfg
        self.words, self.tok = torch.randn(32, D, generator=g), torch.randn(self.vocab + 1, D, generator=g)
        self.pos, self.out = torch.randn(self.num_tokens, D, generator=g), torch.randn(D, self.vocab, generator=g)
        self.palette = torch.rand(self.vocab, 3, generator=g)

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0):
        traj = Trajectories.for_prompts(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)
        pe = _prompt_embedding(self.words, traj.prompts)[traj.prompt_index]
        traj.paired["pemb"] = torch.cat([pe, torch.zeros_like(pe)])
        traj.rows["ids"] = torch.full((len(traj), self.num_tokens), -1, dtype=torch.long)
        traj.step = 0
        return traj

    def next_logits(self, traj):
        R, t = len(traj), traj.step
        prev = traj.rows["ids"][:, t - 1] if t else torch.full((R,), self.vocab, dtype=torch.long)
        logits = torch.tanh(self.tok[prev].repeat(2, 1) + self.pos[t] + traj.paired["pemb"]) @ self.out * 3
        return logits[:R], logits[R:]

    def advance(self, traj, tokens, guidance=None):
        traj.rows["ids"][:, traj.step] = tokens.long()
        traj.step += 1
        return traj

    def preview(self, traj, size=None):
        ids = traj.rows["ids"]
        rgb = torch.full((len(ids), self.num_tokens, 3), 0.5)
        rgb[ids >= 0] = self.palette[ids[ids >= 0]]
        image = rgb.reshape(-1, 4, 4, 3).permute(0, 3, 1, 2)
        return F.interpolate(image, size=(size or self.image_size,) * 2, mode="nearest")

    def finish(self, traj):
        return self.preview(traj, self.image_size)

    def flops_per_token(self, rows, position):
        return 4.0 * rows * D * self.vocab  # CFG pair included


class ToyVAR:
    """Next-scale toy: scales 1, 2, 4 of a 4-channel 4x4 latent, decoded by a fixed linear map to RGB."""

    name, patch_nums, num_scales, image_size, vocab, channels = "toy-var", (1, 2, 4), 3, 32, 8, 4

    def __init__(self, device="cpu", cfg=1.5):
        g = torch.Generator().manual_seed(1)
        self.device, self.cfg = torch.device(device), cfg
        self.words, self.read = torch.randn(32, D, generator=g), torch.randn(self.channels, D, generator=g)
        self.pos, self.out = torch.randn(21, D, generator=g), torch.randn(D, self.vocab, generator=g)
        self.codebook, self.to_rgb = torch.randn(self.vocab, self.channels, generator=g), torch.randn(4, 3, generator=g)

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0, cfg=None):
        traj = Trajectories.for_prompts(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)
        pe = _prompt_embedding(self.words, traj.prompts)[traj.prompt_index]
        traj.paired["pemb"] = torch.cat([pe, torch.zeros_like(pe)])
        traj.rows["f"] = torch.zeros(len(traj), self.channels, 4, 4)
        traj.step = 0
        return traj

    def _generate(self, traj, k):
        R, s = len(traj), self.patch_nums[k]
        first = sum(p * p for p in self.patch_nums[:k])
        seen = F.adaptive_avg_pool2d(traj.rows["f"], s).flatten(2).transpose(1, 2) @ self.read
        h = seen.repeat(2, 1, 1) + self.pos[first:first + s * s] + traj.paired["pemb"][:, None]
        logits = torch.tanh(h) @ self.out * 3
        probs = torch.softmax(logits[R:] + self.cfg * (logits[:R] - logits[R:]), -1)
        ids = torch.stack([torch.multinomial(probs[r], 1, generator=generator_for(key, k))[:, 0]
                           for r, key in enumerate(traj.seed_key)])
        codes = self.codebook[ids].transpose(1, 2).reshape(R, self.channels, s, s)
        traj.rows["f"] = traj.rows["f"] + F.interpolate(codes, size=(4, 4), mode="nearest")

    def step(self, traj):
        self._generate(traj, traj.step)
        traj.step += 1
        return traj

    def preview(self, traj, size=None):
        rgb = torch.sigmoid(torch.einsum("rchw,cd->rdhw", traj.rows["f"], self.to_rgb))
        return F.interpolate(rgb, size=(size or self.image_size,) * 2, mode="bilinear", align_corners=False)

    def finish(self, traj):
        return self.preview(traj, self.image_size)

    def flops_per_scale(self, rows):
        return [4.0 * rows * p * p * D * self.vocab for p in self.patch_nums]


class Redness:
    """Toy reward: the red channel's mean minus the other channels'."""

    name, input_size, reads_prompts = "toy-red-s30", 32, False

    def reward(self, images, prompts):
        return images[:, 0].mean((1, 2)) - images[:, 1:].mean((1, 2, 3))


LOADS: list[str] = []  # each load_toy_ar call's device


def load_toy_ar(device="cpu", weights=None, cfg=1.5):
    LOADS.append(str(device))
    record_hub_file("someone/toy-ar-s30/toy.py", __file__)  # as a loader that fetched a file from the hub does
    return ToyAR(device, cfg)


def load_toy_var(device="cpu", weights=None, cfg=1.5):
    return ToyVAR(device, cfg)


def test_bench_records_a_plugin_model_registered_as_its_factory(monkeypatch):
    """`MODELS[name] = factory` (docs/extending.md) must not crash bench's manifest entry with an AttributeError."""
    from arscale.bench.manifest import model_entry

    monkeypatch.setitem(MODELS, "toy-var-s30", load_toy_var)
    entry = model_entry("toy-var-s30", None)
    assert entry["id"] == "toy-var-s30" and entry["weights_path"] is None and entry["weights_sha256"] == {}


def test_bench_without_strategies_runs_scaling_ar_on_a_plugin_next_token_model(tmp_path, monkeypatch, registries):
    """`bench` without --strategies runs a plugin next-token model's own method (scaling-ar), as its --help says; the
    model it loaded to learn its kind is the one it runs, and the hub files that load read are hashed."""
    import json

    from arscale.cli import main

    monkeypatch.setitem(MODELS, "toy-ar-s30", f"{__name__}:load_toy_ar")
    LOADS.clear()
    register_scorer("toy-red-s30", lambda device="cpu": Redness())
    out = tmp_path / "bench"
    assert main(["bench", "--model", "toy-ar-s30", "--scorer", "toy-red-s30", "--prompts", "draw:1:5", "--limit",
                 "1", "--n", "2", "--quiet", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["best-of-n", "importance", "raw", "scaling-ar"]
    assert LOADS == ["cpu"]  # loaded once
    assert list(json.loads((out / "manifest.json").read_text())["model_hub_sha256"]) == ["someone/toy-ar-s30/toy.py"]


def test_bench_refuses_a_foreign_out_before_loading_a_plugin_model(tmp_path, monkeypatch, capsys):
    """A plugin model (its kind known only once loaded) is not loaded when --out holds someone else's files."""
    from arscale.cli import main

    monkeypatch.setitem(MODELS, "toy-ar-s31", f"{__name__}:load_toy_ar")
    LOADS.clear()
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(["bench", "--model", "toy-ar-s31", "--scorer", "", "--prompts", "draw:1:5", "--quiet",
                 "--out", str(out)]) == 2
    assert "holds other files and no bench manifest" in capsys.readouterr().err
    assert LOADS == [] and sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_scaling_ar_bills_a_plugin_models_flops_per_token():
    """Without termination ScalingAR generates what Best-of-N does, so it must bill the same transformer FLOPs."""
    prompts = ["a photo of a red circle", "a photo of two squares"]
    sar = make_strategy("scaling-ar", {"terminate": False}).run(ToyAR(), prompts, 3, seed=4)
    bon = make_strategy("best-of-n", {}).run(ToyAR(), prompts, 3, seed=4, scorer=Redness())
    assert bon.cost.transformer_flops == 2 * 3 * 16 * 4.0 * D * 16
    assert sar.cost.transformer_flops == bon.cost.transformer_flops
    assert sum(c["transformer_flops"] for c in sar.telemetry["cost_per_prompt"]) == pytest.approx(
        sar.cost.transformer_flops)


def test_a_plugin_factory_without_an_option_is_a_one_line_error(monkeypatch):
    """A plugin factory that takes no `cfg` (e.g. `generate --cfg 2`) is refused in one line naming the model."""
    monkeypatch.setitem(MODELS, "toy-plain-s30", lambda device="cpu": ToyAR(device))
    with pytest.raises(ArscaleError, match="toy-plain-s30.*cfg"):
        load_generator("toy-plain-s30", device="cpu", cfg=2.0)


class _StepUntouched(ToyVAR):
    """Keeps its own position in `extra` and leaves `traj.step` at 0 (protocol.py: each `step` adds one to it)."""

    def step(self, traj):
        k = traj.extra.get("k", 0)
        self._generate(traj, k)
        traj.extra["k"] = k + 1
        return traj


def test_a_generator_that_leaves_traj_step_alone_is_refused():
    """Search's `ended` / `born` read `traj.step`: a generator that does not advance it is refused, not recorded."""
    good = make_strategy("importance", {}).run(ToyVAR(), ["a photo of a red circle"], 4, seed=1, scorer=Redness())
    assert max(good.tree.ended) == 3
    with pytest.raises(ArscaleError, match="traj.step"):
        make_strategy("importance", {}).run(_StepUntouched(), ["a photo of a red circle"], 4, seed=1,
                                            scorer=Redness())


class _KeepsGuidance(ToyAR):
    """The same toy, also keeping each row's guidance in rows["guidance"], as the built-in next-token engine does."""

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0):
        traj = super().start(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)
        traj.rows["guidance"] = torch.full((len(traj),), self.cfg)
        return traj

    def advance(self, traj, tokens, guidance=None):
        if guidance is not None:
            traj.rows["guidance"] = guidance.float()
        return super().advance(traj, tokens, guidance)


def test_guided_confidence_does_not_depend_on_generator_private_rows():
    """`confidence_from: guided` mixes by the scale ScalingAR set, whether or not the model keeps rows['guidance']."""
    config = {"confidence_from": "guided", "terminate": False}
    plain = make_strategy("scaling-ar", config).run(ToyAR(), ["a photo of a red circle"], 3, seed=4)
    keeps = make_strategy("scaling-ar", config).run(_KeepsGuidance(), ["a photo of a red circle"], 3, seed=4)
    assert len(set(plain.telemetry["prompts"][0][0]["guidance"])) > 1  # the schedule moved the scale
    assert [tr["C"] for tr in plain.telemetry["prompts"][0]] == [tr["C"] for tr in keeps.telemetry["prompts"][0]]
