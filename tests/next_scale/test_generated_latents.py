"""Decoder fine-tuning on the generator's own latents: continued latents, start scales, the CLI path."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs, write_tiny_training_configs

from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer, MultiScaleTokenizerConfig
from arscale.train import common
from arscale.train.generated_latents import check_same_codes, continued_latents, draw_start_scales

PROMPTS = ["a photo of a red circle", "a photo of two blue squares", "a photo of a green cross"]


@pytest.fixture(scope="module")
def tiny():
    tok_cfg, model_cfg = tiny_var_configs()
    gen = build_tiny_var(tok_cfg, model_cfg)
    images = torch.rand(len(PROMPTS), 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return gen, images


def test_rows_keep_true_codes_before_their_start_and_sample_like_the_generator_after(tiny):
    gen, images = tiny
    K = gen.num_scales
    clean = gen.tokenizer.quantizer.indices_to_fhat(gen.tokenizer.encode(images))
    traj = gen.start(PROMPTS, 1, seed=5)
    for _ in range(K):
        gen.step(traj)
    free = gen.latent(traj)
    mixed = continued_latents(gen, gen.tokenizer, images, PROMPTS, torch.tensor([K, 0, K - 1]), seed=5)
    torch.testing.assert_close(mixed[0], clean[0], rtol=0, atol=1e-6)  # never sampled
    torch.testing.assert_close(mixed[1], free[1], rtol=0, atol=1e-6)  # sampled throughout = plain generation
    # sampled only at the last scale: the true codes fed as the generator's own up to there, then one step
    true = gen.tokenizer.encode(images)
    forced = gen.start(PROMPTS, 1, seed=5)
    for si in range(K - 1):
        gen.forward_scale(forced)
        gen.commit(forced, true[si].flatten(1))
    gen.step(forced)
    torch.testing.assert_close(mixed[2], gen.latent(forced)[2], rtol=0, atol=1e-6)
    assert not torch.allclose(mixed[2], clean[2])


def test_continued_latents_are_seeded(tiny):
    gen, images = tiny
    starts = torch.tensor([0, 1, 2])
    a = continued_latents(gen, gen.tokenizer, images, PROMPTS, starts, seed=3)
    b = continued_latents(gen, gen.tokenizer, images, PROMPTS, starts, seed=3)
    c = continued_latents(gen, gen.tokenizer, images, PROMPTS, starts, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_start_scales_follow_the_fraction_and_range_and_reject_bad_values():
    g = torch.Generator().manual_seed(0)
    assert torch.equal(draw_start_scales(50, 7, 0.0, 4, g), torch.full((50,), 7))
    every = draw_start_scales(400, 7, 1.0, 4, g)
    assert set(every.tolist()) == {4, 5, 6}
    some = draw_start_scales(2000, 7, 0.75, 2, g)
    assert 0.7 < (some < 7).float().mean() < 0.8 and some.min() == 2
    with pytest.raises(ArscaleError, match="fraction"):
        draw_start_scales(4, 7, 1.5, 4, g)
    with pytest.raises(ArscaleError, match="earliest"):
        draw_start_scales(4, 7, 0.5, 7, g)


def test_a_tokenizer_with_other_codes_is_refused(tiny):
    gen, _ = tiny
    same = MultiScaleTokenizer(gen.tokenizer.config)
    same.load_state_dict(gen.tokenizer.state_dict())
    # the decoder may differ: it is what gets trained
    torch.nn.init.normal_(same.decoder.net[0].weight, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(same.decoder.net[0].weight, gen.tokenizer.decoder.net[0].weight)
    check_same_codes(same, gen)
    torch.manual_seed(9)
    other = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(gen.tokenizer.config.to_dict()))
    with pytest.raises(ArscaleError, match="differs"):
        check_same_codes(other, gen)


def test_cli_fine_tunes_only_the_decoder_on_generated_latents(tmp_path, capsys):
    write_tiny_training_configs(tmp_path)
    w = tmp_path / "w"
    tok = ["train", "shapeworld-tokenizer", "--batch-size", "4", "--eval-every", "1000", "--out", str(w),
           "--state-dir", str(tmp_path / "s"), "--config", str(tmp_path / "tok.json")]
    assert cli([*tok, "--steps", "2"]) == 0
    assert cli(["train", "shapeworld-var", "--steps", "1", "--batch-size", "4", "--eval-every", "1000",
                "--config", str(tmp_path / "var.json"), "--tokenizer", str(w), "--out", str(w),
                "--state-dir", str(tmp_path / "v")]) == 0
    before = load_file(str(w / "tokenizer.safetensors"))
    capsys.readouterr()
    assert cli([*tok, "--steps", "4", "--generator", str(w)]) == 2  # codes would move: refused
    assert "add --decoder-only" in capsys.readouterr().err
    assert cli([*tok, "--steps", "4", "--decoder-only", "--generator", str(w), "--generated-fraction", "2"]) == 2
    assert "generated fraction must be in [0, 1], got 2" in capsys.readouterr().err
    assert cli([*tok, "--steps", "4", "--decoder-only", "--generator", str(w), "--earliest-sampled-scale", "99"]) == 2
    assert "earliest sampled scale must be in [0, " in capsys.readouterr().err
    assert cli([*tok, "--steps", "4", "--decoder-only", "--generator", str(w), "--generated-fraction", "1",
                "--earliest-sampled-scale", "0"]) == 0
    after = load_file(str(w / "tokenizer.safetensors"))
    frozen = [k for k in before if not k.startswith(("decoder.", "post_quant_conv."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    assert common.TrainState(tmp_path / "s").info()["metrics"]["phase"] == "decoder-generated"
    assert cli([*tok, "--steps", "6", "--decoder-only", "--generator", str(w)]) == 0  # default: the last scale only
    assert common.TrainState(tmp_path / "s").info()["step"] == 6
