"""Training utilities and both ShapeWorld-VAR trainers, end to end on tiny configs (a few steps)."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from tiny_shapeworld_var import write_tiny_training_configs

from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.train import common, lr_schedule, scene_stream
from arscale.train.var import SCALE_WEIGHTINGS, scale_loss_weights


def test_stream_is_seeded_by_seed_and_step_and_covers_all_tags():
    a = scene_stream.ShapeWorldStream(4, seed=3, start_step=10).sample(64)
    b = scene_stream.ShapeWorldStream(4, seed=3, start_step=10).sample(64)
    c = scene_stream.ShapeWorldStream(4, seed=3, start_step=11).sample(64)
    assert torch.equal(a.images, b.images) and a.prompts == b.prompts
    assert a.prompts != c.prompts
    assert a.images.shape == (64, 3, 64, 64) and 0 <= a.images.min() and a.images.max() <= 1
    assert {m["tag"] for m in a.metadata} == {"single_object", "two_object", "counting", "colors", "position",
                                              "color_attr"}


def test_stream_resumed_at_a_step_continues_with_the_uninterrupted_runs_batches():
    whole = scene_stream.ShapeWorldStream(4, seed=5, start_step=20)
    first, second = whole.sample(8), whole.sample(8)
    resumed = scene_stream.ShapeWorldStream(4, seed=5, start_step=21).sample(8)
    assert torch.equal(second.images, resumed.images) and second.prompts == resumed.prompts
    assert first.prompts != second.prompts


def test_stream_with_worker_processes_gives_the_same_batches_in_order():
    sizes = [6, 6, 6, 3, 6, 6]  # a change of batch size drops what the workers made ahead
    alone = scene_stream.ShapeWorldStream(6, seed=9, start_step=4)
    expected = [alone.sample(n) for n in sizes]
    with scene_stream.ShapeWorldStream(6, seed=9, start_step=4, workers=2) as parallel:
        got = [parallel.sample(n) for n in sizes]
        assert [index for index, _, _ in parallel.pending] == list(range(10, 14))  # made ahead: 2 per worker
    assert parallel.pool is None
    for e, g in zip(expected, got):
        assert torch.equal(e.images, g.images) and e.prompts == g.prompts and e.metadata == g.metadata


def test_stream_rejects_a_negative_worker_count():
    with pytest.raises(ArscaleError, match="--data-workers"):
        scene_stream.ShapeWorldStream(4, seed=0, workers=-1)


def test_scale_weightings_share_the_loss_by_tokens_side_or_scale():
    patch_nums = [1, 2, 4]
    shares = {}
    for mode in SCALE_WEIGHTINGS:
        w = scale_loss_weights(patch_nums, mode)
        assert w.shape == (21,) and abs(float(w.mean()) - 1) < 1e-6
        shares[mode] = [float(w[:1].sum()), float(w[1:5].sum()), float(w[5:].sum())]
    assert torch.allclose(scale_loss_weights(patch_nums, "tokens"), torch.ones(21))
    assert torch.allclose(torch.tensor(shares["side"]) / 21, torch.tensor([1, 2, 4]) / 7)
    assert torch.allclose(torch.tensor(shares["scales"]), torch.full((3,), 7.0))
    with pytest.raises(ArscaleError, match="unknown scale weighting 'pixels'"):
        scale_loss_weights(patch_nums, "pixels")


def test_fitted_steps_shrink_the_plan_to_the_time_left_and_keep_the_cooldown_share():
    # 50 steps took 5 s; 300 s left, 5 % of it kept for saving: 2850 more steps fit
    assert lr_schedule.fitted_steps(8000, 1500, 55, 50, 5.0, 300.0) == (2905, 545)
    assert lr_schedule.fitted_steps(8000, 1500, 55, 50, 5.0, 1e6) == (8000, 1500)  # never more than planned
    assert lr_schedule.fitted_steps(8000, 1500, 55, 50, 5.0, 0.0) == (56, 10)  # at least one more step


def test_step_fitter_times_the_probe_after_the_start_up_steps_and_fits_once(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(lr_schedule.time, "monotonic", lambda: clock[0])
    args = argparse.Namespace(fit_time_limit=True, steps=1000, cooldown=200)
    fitter = lr_schedule.StepFitter(args, common.Timer(0.0, 5.0, limit_minutes=1.0), first_step=0)
    messages = {}
    for step in range(1, 80):
        clock[0] += 0.5 + (10.0 if step == 1 else 0.0)  # the first step pays for start-up
        if message := fitter.after_step(step):
            messages[step] = message
    # timed from step 5 (12.5 s) to 55 (37.5 s): 0.5 s/step; 22.5 s left, 95 % of it: 42 steps more
    assert list(messages) == [55] and (args.steps, args.cooldown) == (97, 19)
    assert "0.500 s/step" in messages[55] and "97 steps" in messages[55]
    args.fit_time_limit = False
    assert lr_schedule.StepFitter(args, common.Timer(0.0, 5.0, 1.0), 0).after_step(55) is None


def test_fit_time_limit_needs_a_time_limit(tmp_path, capsys):
    assert cli(["train", "shapeworld-var", "--fit-time-limit", "--state-dir", str(tmp_path / "s"),
                "--out", str(tmp_path / "w")]) == 2
    assert "--fit-time-limit needs a --time-limit" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_train_state_round_trip_restores_weights_and_optimizer(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1.0)
    lr_schedule.set_lr(opt, lr_schedule.cosine_lr(5, 100, 1e-3, 10))
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


def test_both_trainers_run_resume_and_ship_loadable_weights(tmp_path, capsys):
    write_tiny_training_configs(tmp_path)
    out = tmp_path / "weights"
    common_args = ["--batch-size", "4", "--out", str(out), "--eval-every", "1000"]
    assert cli(["train", "shapeworld-tokenizer", "--steps", "2", "--config", str(tmp_path / "tok.json"),
                "--state-dir", str(tmp_path / "tok_state"), *common_args]) == 0
    assert cli(["train", "shapeworld-var", "--steps", "2", "--config", str(tmp_path / "var.json"),
                "--tokenizer", str(out), "--state-dir", str(tmp_path / "var_state"), "--data-workers", "1",
                "--fit-time-limit", "--time-limit", "60", *common_args]) == 0
    # resuming continues from the saved step (here as a one-step cooldown; a longer one than --steps is refused)
    resume = ["train", "shapeworld-var", "--tokenizer", str(out), "--state-dir", str(tmp_path / "var_state"),
              *common_args]
    capsys.readouterr()
    assert cli([*resume, "--steps", "3", "--cooldown", "4"]) == 2
    assert "--cooldown must be between 0 and --steps (3), got 4" in capsys.readouterr().err
    assert cli([*resume, "--steps", "3", "--cooldown", "1", "--scale-weighting", "side"]) == 0
    assert common.TrainState(tmp_path / "var_state").info()["step"] == 3
    training = json.loads((out / "config.json").read_text())["training"]
    assert training["cooldown"] == 1 and training["scale_weighting"] == "side"
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
