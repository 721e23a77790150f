import argparse
import itertools

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.train.common import TrainState, load_optimizer, save_optimizer
from arscale.train.lr_schedule import cooled, cosine_lr, rewarm


def _opt(seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW([{"params": model[0].parameters(), "weight_decay": 0.1},
                             {"params": model[1].parameters(), "weight_decay": 0.0}], lr=1e-3)
    return model, opt


def test_optimizer_state_round_trips_through_safetensors(tmp_path):
    model, opt = _opt(0)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 3)).square().sum().backward()
        opt.step()
    opt.param_groups[0]["lr"] = 0.5  # a changed group setting must come back too
    save_optimizer(opt, tmp_path / "optimizer.safetensors")
    _, fresh = _opt(1)
    assert load_optimizer(fresh, tmp_path)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in a["state"]:
        for k in a["state"][i]:
            assert torch.equal(torch.as_tensor(a["state"][i][k]), torch.as_tensor(b["state"][i][k]))
    assert not load_optimizer(fresh, tmp_path / "nothing-here")


def test_resume_without_moments_is_reported_and_rewarmed(tmp_path):
    model, opt = _opt(0)
    state = TrainState(tmp_path / "state")
    state.save(model, opt, step=7, config={}, elapsed=1.0)
    assert state.load(model, opt)["optimizer_restored"]
    (tmp_path / "state" / "optimizer.safetensors").unlink()
    info = state.load(model, opt)
    assert not info["optimizer_restored"] and info["step"] == 7
    assert rewarm(1.0, 50, None) == 1.0  # moments restored: the schedule is untouched
    ramp = [rewarm(1.0, s, 7, steps=4) for s in range(7, 13)]
    assert ramp == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cooldown_decays_linearly_to_zero_from_the_schedule_value():
    def schedule(i):
        return cosine_lr(i, 100, 1.0, 10)

    assert [cooled(schedule, i, 100, 0) for i in range(100)] == [schedule(i) for i in range(100)]
    start = schedule(80)
    assert [cooled(schedule, i, 100, 20) for i in range(80)] == [schedule(i) for i in range(80)]
    tail = [cooled(schedule, i, 100, 20) for i in range(80, 100)]
    assert tail[0] == pytest.approx(start) and tail[-1] == pytest.approx(start / 20)
    assert all(a > b for a, b in itertools.pairwise(tail))  # strictly falling, no jump where it starts
    assert cooled(schedule, 100, 100, 20) == 0.0
    for bad in (-1, 101):
        with pytest.raises(ArscaleError, match="--cooldown"):
            cooled(schedule, 0, 100, bad)


def test_trainers_never_overwrite_the_shipped_model_unless_asked(tmp_path):
    from arscale.train.common import add_training_args, resolve_output

    parser = argparse.ArgumentParser()
    shipped = tmp_path / "package" / "weights"
    add_training_args(parser, steps=1, batch_size=1, lr=1e-3, state_dir="train_state/x", out_dir=str(shipped))
    with pytest.raises(ArscaleError, match="--out DIR"):
        resolve_output(parser.parse_args([]))
    with pytest.raises(ArscaleError, match="--replace-shipped"):
        resolve_output(parser.parse_args(["--out", str(shipped)]))
    own = parser.parse_args(["--out", str(tmp_path / "mine")])
    resolve_output(own)
    assert own.state_dir == str(tmp_path / "mine" / "train_state" / "x")  # per trainer: trainers may share --out
    # a state written in the layout before per-trainer folders is resumed, not silently restarted
    (tmp_path / "old" / "train_state").mkdir(parents=True)
    (tmp_path / "old" / "train_state" / "state.json").write_text("{}")
    legacy = parser.parse_args(["--out", str(tmp_path / "old")])
    resolve_output(legacy)
    assert legacy.state_dir == str(tmp_path / "old" / "train_state")
    again = parser.parse_args(["--replace-shipped"])
    resolve_output(again)
    assert (again.out, again.state_dir) == (str(shipped), "train_state/x")


def test_trainer_config_files_fail_in_one_line(tmp_path):
    from arscale.train.common import read_config

    with pytest.raises(ArscaleError, match="no such file"):
        read_config(tmp_path / "missing.json")
    with pytest.raises(ArscaleError, match="not a regular file"):  # a folder, /dev/null: there, but no file
        read_config(tmp_path)
    (tmp_path / "bad.json").write_text("{bad")
    with pytest.raises(ArscaleError, match="not valid JSON"):
        read_config(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text('{"dept": 5}')
    with pytest.raises(ArscaleError, match="does not fit this trainer"):
        read_config(tmp_path / "odd.json", lambda d: {"depth": d["depth"]})
    assert read_config(tmp_path / "odd.json") == {"dept": 5}


def test_a_run_cut_by_its_time_limit_says_so_once(capsys):
    from arscale.train.common import Timer

    timer = Timer(limit_minutes=1e-9)
    assert timer.out_of_time() and timer.out_of_time()
    assert capsys.readouterr().err.count("time limit") == 1
    assert not Timer(limit_minutes=0).out_of_time()


def test_exported_weights_are_as_readable_as_their_config(tmp_path):
    from arscale.train.common import export_weights

    path = export_weights({"w": torch.zeros(2)}, {"k": 1}, tmp_path)
    assert path.stat().st_mode & 0o777 == (tmp_path / "config.json").stat().st_mode & 0o777
