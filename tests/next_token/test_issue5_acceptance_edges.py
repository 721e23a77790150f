"""Edges found by an acceptance audit of issue 5: the next-token engine's per-row guidance, ScalingAR's sampler
override on a LlamaGen at temperature 0, and the single-scale VQ tokenizer's image size and depth."""

import json
import math

import numpy as np
import pytest
import torch
from tiny_families import randomised, tiny_llamagen_vq

from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer
from arscale.search.base import make_strategy

TINY_VQ = {"codebook_size": 16, "code_dim": 4, "z_channels": 8, "ch": 4, "ch_mult": [1, 2, 2, 2]}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, [2.0, math.nan]])
def test_advance_refuses_guidance_that_start_would_refuse(bad):
    """advance(guidance=...) refuses a scale that is not finite and >= 0, in one line, as start(cfg=...) does."""
    gen = random_shapeworld_ar(0, grid=4, vocab_size=32, cfg=2.0)
    traj = gen.start(["a photo of a red circle"], 2, seed=3)
    with pytest.raises(ArscaleError, match="guidance"):
        gen.advance(traj, gen.sample(traj), guidance=torch.tensor(bad))
    assert traj.step == 0  # refused before anything was written


def test_advance_refuses_float_tokens_rather_than_truncating_them():
    """Tokens 0.5 and 1.7 are refused (as select refuses float indices), not silently written as 0 and 1."""
    gen = random_shapeworld_ar(0, grid=4, vocab_size=32, cfg=2.0)
    traj = gen.start(["a photo of a red circle"], 2, seed=3)
    with pytest.raises(ArscaleError, match="integer"):
        gen.advance(traj, torch.tensor([0.5, 1.7]))
    assert traj.step == 0
    gen.advance(traj, np.array([3, 4]))  # integer arrays of any kind still go in
    assert traj.rows["tokens"][:, 0].tolist() == [3, 4]


def test_scaling_ar_top_k_override_runs_on_a_zero_temperature_llamagen():
    """A LlamaGen at temperature 0 (upstream: 1e-5, greedy) runs ScalingAR with a top-k override, picking as its own
    sampler does."""
    gpt = randomised(LlamaGenGPT(LlamaGenConfig("c2i", dim=64, n_layer=2, n_head=2, vocab_size=32, block_size=16,
                                                num_classes=10)), 4)
    gen = LlamaGenGenerator(gpt, tiny_llamagen_vq(), cfg=2.0, top_k=16, top_p=1.0, temperature=0.0)
    own = make_strategy("scaling-ar").run(gen, [3], 2, seed=0)
    override = make_strategy("scaling-ar", {"top_k": 8}).run(gen, [3], 2, seed=0)
    assert np.array_equal(override.chosen(0).image, own.chosen(0).image)  # both greedy


def test_vq_tokenizer_refuses_images_of_another_size():
    """A tokenizer for 32x32 images refuses 64x64 ones instead of returning a grid its decoder does not read."""
    torch.manual_seed(0)
    tok = VQTokenizer(VQConfig(image_size=32, codebook_size=16, ch=8, z_channels=16)).eval()
    assert tok.num_tokens == 16 and tok.encode(torch.rand(1, 3, 32, 32)).shape == (1, 16)
    with pytest.raises(ArscaleError, match="32×32"):
        tok.encode(torch.rand(1, 3, 64, 64))


@pytest.mark.parametrize("config, field", [({"image_size": 32}, "image_size"),
                                           ({"ch_mult": [1, 2, 2, 2, 2, 2, 2, 2]}, "ch_mult")])
def test_ar_tokenizer_config_that_cannot_tokenise_the_renders_fails_in_one_line(config, field, tmp_path, capsys):
    """A VQ tokenizer --config whose grid cannot come from ShapeWorld's 64x64 renders is refused in one line."""
    (tmp_path / "c.json").write_text(json.dumps({**TINY_VQ, **config}))
    code = cli(["train", "shapeworld-ar-tokenizer", "--steps", "1", "--batch-size", "1", "--config",
                str(tmp_path / "c.json"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and field in err, err
    assert not (tmp_path / "out").exists()
