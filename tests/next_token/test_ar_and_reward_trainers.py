"""The ShapeWorld-AR trainers and the reward trainer, end to end on tiny configs (a few steps each)."""

import json

import pytest
import torch

from arscale.cli import main as cli
from arscale.train import common


def test_ar_tokenizer_then_decoder_train_resume_and_ship(tmp_path):
    vq = {"codebook_size": 16, "code_dim": 4, "z_channels": 8, "ch": 4, "ch_mult": [1, 2, 2, 2]}
    ar = {"text": {"width": 16, "depth": 1, "heads": 2, "max_len": 12},
          "transformer": {"dim": 16, "n_layer": 1, "n_head": 2, "vocab_size": 16, "grid": 8, "cls_token_num": 12,
                          "caption_dim": 16, "multiple_of": 8}}
    (tmp_path / "vq.json").write_text(json.dumps(vq))
    (tmp_path / "ar.json").write_text(json.dumps(ar))
    out = tmp_path / "weights"
    common_args = ["--batch-size", "4", "--out", str(out)]
    # the tokenizer and the transformer share one --out: each keeps its own state under out/train_state/
    assert cli(["train", "shapeworld-ar-tokenizer", "--steps", "2", "--config", str(tmp_path / "vq.json"),
                "--eval-every", "0", *common_args]) == 0
    assert (out / "tokenizer.safetensors").is_file()
    ar_args = ["train", "shapeworld-ar", "--tokenizer", str(out), "--replay-size", "8", "--tune-decoder-every", "1",
               *common_args]
    import signal

    before = signal.getsignal(signal.SIGINT)
    assert cli([*ar_args, "--steps", "2", "--config", str(tmp_path / "ar.json")]) == 0
    assert signal.getsignal(signal.SIGINT) is before  # the trainer held Ctrl-C only while it trained
    assert cli([*ar_args, "--steps", "3"]) == 0  # resumes: config, weights and the tuned decoder come back
    assert common.TrainState(out / "train_state" / "shapeworld-ar").info()["step"] == 3
    assert common.TrainState(out / "train_state" / "shapeworld-ar-tokenizer").info()["step"] == 2
    from arscale.generators.next_token.shapeworld import load_shapeworld_ar

    gen = load_shapeworld_ar(weights=out)
    images = gen.generate(["a photo of two blue squares"], 2, seed=0)
    assert images.shape == (2, 3, 64, 64) and torch.isfinite(images).all()
    # without decoder tuning, the tokenizer the codes came from is copied beside the model: --out loads alone
    plain = tmp_path / "plain"
    assert cli(["train", "shapeworld-ar", "--tokenizer", str(out), "--tune-decoder-every", "0", "--steps", "1",
                "--batch-size", "4", "--config", str(tmp_path / "ar.json"), "--out", str(plain)]) == 0
    assert (plain / "tokenizer.safetensors").read_bytes() == (out / "tokenizer.safetensors").read_bytes()
    assert load_shapeworld_ar(weights=plain).generate(["a photo of a red circle"], 1, seed=0).shape == (1, 3, 64, 64)


def test_reward_trainer_runs_resumes_and_ships_a_calibrated_scorer(tmp_path):
    out, state = tmp_path / "reward", tmp_path / "reward_state"
    args = ["train", "shapeworld-reward", "--batch-size", "4", "--out", str(out), "--state-dir", str(state)]
    assert cli([*args, "--steps", "1"]) == 0
    assert cli([*args, "--steps", "2"]) == 0
    assert common.TrainState(state).info()["step"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["scale"] > 0 and config["shift"] == config["shift"]  # calibrated, not NaN
    from arscale.scorers.shapeworld import load_reward

    scorer = load_reward(weights=out)
    r = scorer.reward(torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0)),
                      ["a photo of a red circle"] * 3)
    assert r.shape == (3,) and torch.isfinite(r).all()


def test_weights_that_are_not_a_folder_are_named(tmp_path):
    from arscale.errors import ArscaleError
    from arscale.generators.next_scale.shapeworld import load_shapeworld_var
    from arscale.generators.next_token.shapeworld import load_shapeworld_ar

    for load, family in ((load_shapeworld_ar, "AR"), (load_shapeworld_var, "VAR")):
        with pytest.raises(ArscaleError, match=f"ShapeWorld-{family} weights: .*missing is not a folder"):
            load(weights=tmp_path / "missing")
        (tmp_path / "empty").mkdir(exist_ok=True)
        with pytest.raises(ArscaleError, match="missing config.json"):
            load(weights=tmp_path / "empty")
