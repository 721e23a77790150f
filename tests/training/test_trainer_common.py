"""Audit (mutation testing of src/arscale/train): the shared trainer machinery in `arscale.train.common` -
--fresh, resuming without optimizer moments, legacy optimizer files, weights of the wrong shape, and the
timer's elapsed time and checkpoint cadence; a folder judged by the files its latest save wrote."""

import warnings

import pytest
import torch

from arscale.cli import build_parser
from arscale.errors import ArscaleError
from arscale.train import common, run_control


def _parsed(*argv):
    return build_parser().parse_args(["train", *argv])


def _model_and_opt(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).square().sum().backward()
    opt.step()
    return model, opt


def test_fresh_starts_over_instead_of_resuming(tmp_path, capsys):
    out = tmp_path / "out"
    args = _parsed("shapeworld-reward", "--out", str(out), "--steps", "5")
    common.check_arguments(args)
    model, opt = _model_and_opt()
    common.TrainState(args.state_dir).save(model, opt, step=2, config={}, elapsed=1.0)
    assert common.begin(_parsed("shapeworld-reward", "--out", str(out), "--steps", "5"))[2] is True
    resume = common.begin(_parsed("shapeworld-reward", "--out", str(out), "--steps", "5", "--fresh"))[2]
    assert resume is False
    assert "--fresh: starting over" in capsys.readouterr().out


def test_a_resume_without_optimizer_moments_rewarms_from_its_step(tmp_path):
    model, opt = _model_and_opt()
    state = common.TrainState(tmp_path / "s")
    state.save(model, opt, step=7, config={}, elapsed=3.0, metrics={"m": 1})
    run = common.restore(state, *_model_and_opt(1))
    assert (run.step, run.elapsed, run.metrics, run.rewarm_from) == (7, 3.0, {"m": 1}, None)  # moments restored
    (tmp_path / "s" / "optimizer.safetensors").unlink()
    fresh_model, fresh_opt = _model_and_opt(2)
    run = common.restore(state, fresh_model, fresh_opt)
    assert run.step == 7 and run.rewarm_from == 7  # fresh Adam moments: the learning rate ramps up again
    assert torch.equal(fresh_model.weight, model.weight)
    assert common.restore(state, torch.nn.Linear(3, 2), None).rewarm_from is None  # no optimizer, nothing to warm


def test_a_legacy_optimizer_pt_is_still_restored(tmp_path):
    _, opt = _model_and_opt()
    torch.save(opt.state_dict(), tmp_path / "optimizer.pt")
    _, fresh = _model_and_opt(1)
    assert common.load_optimizer(fresh, tmp_path)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_weights_of_the_wrong_shape_are_named_not_a_torch_traceback():
    model = torch.nn.Linear(3, 2)
    state = {"weight": torch.zeros(2, 4), "bias": torch.zeros(2)}
    with pytest.raises(ArscaleError, match=r"do not fit the model: missing \[\], leftover \[\], wrong shape \['weight'\]"):
        common.load_strict(model, state, "somewhere")


def test_the_timer_counts_earlier_runs_and_saves_every_interval_since_the_last_save(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(run_control.time, "monotonic", lambda: clock[0])
    timer = common.Timer(already=120.0, checkpoint_minutes=5.0)
    try:
        clock[0] += 30
        assert timer.elapsed == pytest.approx(150.0)  # the resumed state's time plus this run's
        saves = []
        for t in (200, 300, 400, 550, 600, 899, 900):
            clock[0] = 1000.0 + t
            saves.append(timer.should_save())
        assert saves == [False, True, False, False, True, False, True]
    finally:
        timer.close()


def test_a_checkpoint_interval_of_zero_minutes_is_refused(tmp_path):
    with pytest.raises(ArscaleError, match="--checkpoint-minutes must be positive, got 0.0"):
        common.check_arguments(_parsed("shapeworld-reward", "--checkpoint-minutes", "0", "--out", str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()


def test_a_save_cut_short_by_a_crash_is_named_when_resuming(tmp_path):
    """Each checkpoint file is replaced atomically, the set of them is not: a machine that goes down between the
    writes of one save leaves a newer model beside an older state.json. Resuming says so (and goes on); a whole
    save says nothing, and the step stamp stays out of what a trainer reads back as its own metadata."""
    import shutil
    import warnings

    from arscale.errors import ArscaleWarning

    model, opt = _model_and_opt()
    older, newer = common.TrainState(tmp_path / "older"), common.TrainState(tmp_path / "newer")
    older.save(model, opt, step=3, config={}, elapsed=1.0, extra={"x": torch.ones(2)}, extra_metadata={"k": "v"})
    newer.save(model, opt, step=5, config={}, elapsed=2.0, extra={"x": torch.ones(2)}, extra_metadata={"k": "v"})
    assert older.torn() == [] and older.extra()[1] == {"k": "v"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert older.load(*_model_and_opt(1))["step"] == 3
    shutil.copy(newer.dir / "trainer.safetensors", older.dir / "trainer.safetensors")
    shutil.copy(newer.dir / "model.safetensors", older.dir / "model.safetensors")  # the crash: before state.json
    assert older.torn() == ["model.safetensors is from step 5", "trainer.safetensors is from step 5"]
    fresh = _model_and_opt(1)[0]
    with pytest.warns(ArscaleWarning, match=r"model.safetensors is from step 5.*state.json from step 3"):
        assert older.load(fresh)["step"] == 3
    assert torch.equal(fresh.weight, model.weight)  # it goes on with the newer weights


# -- a folder judged by the files its latest save wrote (state.json lists them) ----------------------------------

def test_a_file_an_earlier_save_left_behind_is_not_called_torn(tmp_path):
    model, opt = _model_and_opt()
    state = common.TrainState(tmp_path)
    state.save(model, opt, step=3, config={}, elapsed=1.0, extra={"x": torch.ones(2)}, extra_metadata={"k": "v"})
    state.save(model, None, step=5, config={}, elapsed=2.0)  # a whole save without trainer extras or optimizer
    assert state.torn() == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = state.load(*_model_and_opt(1))
    assert info["step"] == 5
    assert not info["optimizer_restored"]  # step 3's moments are not this save's
    assert state.extra() == ({}, {})  # nor are step 3's extras


def test_a_cut_short_save_over_a_whole_one_is_still_named(tmp_path):
    """The rule for files the latest save wrote: any of them from another step is torn (a state.json from before
    the files were listed counts all three)."""
    import json
    import shutil

    model, opt = _model_and_opt()
    older, newer = common.TrainState(tmp_path / "older"), common.TrainState(tmp_path / "newer")
    older.save(model, opt, step=3, config={}, elapsed=1.0, extra={"x": torch.ones(2)})
    newer.save(model, opt, step=5, config={}, elapsed=2.0, extra={"x": torch.ones(2)})
    shutil.copy(newer.dir / "trainer.safetensors", older.dir / "trainer.safetensors")  # the crash: after one file
    assert older.torn() == ["trainer.safetensors is from step 5"]
    info = json.loads((older.dir / "state.json").read_text())
    info.pop("files", None)  # as an older arscale wrote it
    (older.dir / "state.json").write_text(json.dumps(info))
    assert older.torn() == ["trainer.safetensors is from step 5"]
