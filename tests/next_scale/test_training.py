"""Training utilities and both ShapeWorld-VAR trainers, end to end on tiny configs (a few steps)."""

from __future__ import annotations

import json

import torch
from tiny_shapeworld_var import write_tiny_training_configs

from arscale.cli import main as cli
from arscale.train import common


def test_stream_is_seeded_by_seed_and_step_and_covers_all_tags():
    a = common.ShapeWorldStream(4, seed=3, start_step=10).sample(64)
    b = common.ShapeWorldStream(4, seed=3, start_step=10).sample(64)
    c = common.ShapeWorldStream(4, seed=3, start_step=11).sample(64)
    assert torch.equal(a.images, b.images) and a.prompts == b.prompts
    assert a.prompts != c.prompts
    assert a.images.shape == (64, 3, 64, 64) and 0 <= a.images.min() and a.images.max() <= 1
    assert {m["tag"] for m in a.metadata} == {"single_object", "two_object", "counting", "colors", "position",
                                              "color_attr"}


def test_train_state_round_trip_restores_weights_and_optimizer(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1.0)
    common.set_lr(opt, common.cosine_lr(5, 100, 1e-3, 10))
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    state = common.TrainState(tmp_path / "state")
    state.save(model, opt, step=7, config={"a": 1}, elapsed=12.5, metrics={"m": 0.5})
    fresh = torch.nn.Linear(4, 3)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1.0)
    info = state.load(fresh, fresh_opt)
    assert info["step"] == 7 and info["config"] == {"a": 1} and info["elapsed_seconds"] == 12.5
    assert torch.equal(fresh.weight, model.weight)
    assert fresh_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_both_trainers_run_resume_and_ship_loadable_weights(tmp_path):
    write_tiny_training_configs(tmp_path)
    out = tmp_path / "weights"
    common_args = ["--batch-size", "4", "--out", str(out), "--eval-every", "1000"]
    assert cli(["train", "shapeworld-tokenizer", "--steps", "2", "--config", str(tmp_path / "tok.json"),
                "--state-dir", str(tmp_path / "tok_state"), *common_args]) == 0
    assert cli(["train", "shapeworld-var", "--steps", "2", "--config", str(tmp_path / "var.json"),
                "--tokenizer", str(out), "--state-dir", str(tmp_path / "var_state"), *common_args]) == 0
    # resuming continues from the saved step (here as a one-step cooldown; a longer one than --steps is refused)
    resume = ["train", "shapeworld-var", "--tokenizer", str(out), "--state-dir", str(tmp_path / "var_state"),
              *common_args]
    assert cli([*resume, "--steps", "3", "--cooldown", "4"]) == 2
    assert cli([*resume, "--steps", "3", "--cooldown", "1"]) == 0
    assert common.TrainState(tmp_path / "var_state").info()["step"] == 3
    assert json.loads((out / "config.json").read_text())["training"]["cooldown"] == 1
    from arscale.generators.next_scale.shapeworld import load_shapeworld_var

    gen = load_shapeworld_var(weights=out)
    assert gen.patch_nums == (1, 2, 4)
    images = gen.generate(["a photo of a red circle"], 2, seed=0)
    assert images.shape == (2, 3, 64, 64)


def test_decoder_only_fine_tuning_keeps_the_codes(tmp_path):
    from safetensors.torch import load_file

    write_tiny_training_configs(tmp_path)
    args = ["train", "shapeworld-tokenizer", "--batch-size", "4", "--eval-every", "1000", "--out",
            str(tmp_path / "w"), "--state-dir", str(tmp_path / "s"), "--config", str(tmp_path / "tok.json")]
    assert cli([*args, "--steps", "2"]) == 0
    before = load_file(str(tmp_path / "w" / "tokenizer.safetensors"))
    assert cli([*args, "--steps", "4", "--decoder-only"]) == 0
    after = load_file(str(tmp_path / "w" / "tokenizer.safetensors"))
    frozen = [k for k in before if not k.startswith(("decoder.", "post_quant_conv."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    info = common.TrainState(tmp_path / "s").info()
    assert info["step"] == 4 and info["metrics"]["phase"] == "decoder" and info["metrics"]["phase_start"] == 2
