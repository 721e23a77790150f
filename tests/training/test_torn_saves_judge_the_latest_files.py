"""`TrainState` judges a folder by the files its latest save wrote (state.json lists them): a file an earlier save
left beside them is neither torn nor read back."""

from __future__ import annotations

import warnings

import torch

from arscale.train import common


def _model_and_opt(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).square().sum().backward()
    opt.step()
    return model, opt


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
