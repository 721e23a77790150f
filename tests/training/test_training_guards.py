"""What the trainers refuse or guard before and while they train: bad numbers, the shipped models, another
model's folder, and a Ctrl-C, which saves."""

import gc
import signal
from pathlib import Path

import pytest

from arscale.cli import main
from arscale.errors import ArscaleError
from arscale.generators.loading import shapeworld_folder_holds
from arscale.train.common import Timer

WEIGHTS = Path(__file__).resolve().parents[2] / "src" / "arscale" / "weights"


@pytest.mark.parametrize("option, value, message", [
    ("--steps", "0", "--steps must be at least 1"), ("--batch-size", "-1", "--batch-size must be at least 1"),
    ("--lr", "-1", "--lr must be >= 0"), ("--steps", "-3", "--steps must be at least 1"), ("--time-limit", "-2", "--time-limit must be >= 0"),
    ("--lr", "inf", "--lr must be >= 0 and finite, got inf"), ("--seed", "-1", "--seed must be in [0, 2**32)"),
])
def test_bad_numbers_are_refused_before_anything_is_written(option, value, message, tmp_path, capsys):
    assert main(["train", "shapeworld-reward", "--out", str(tmp_path / "r"), option, value]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("trainer", ["shapeworld-reward", "shapeworld-ar-tokenizer", "shapeworld-tokenizer"])
def test_no_trainer_writes_among_the_shipped_models(trainer, capsys):
    before = {p: p.stat().st_mtime_ns for p in WEIGHTS.rglob("*") if p.is_file()}
    assert main(["train", trainer, "--out", str(WEIGHTS / "shapeworld-var"), "--steps", "1"]) == 2
    assert "shipped in the package" in capsys.readouterr().err  # its own, or another trainer's
    assert {p: p.stat().st_mtime_ns for p in WEIGHTS.rglob("*") if p.is_file()} == before


def test_another_models_folder_is_named_not_a_traceback(capsys):
    assert shapeworld_folder_holds(WEIGHTS / "shapeworld-var") == "a ShapeWorld-VAR model"
    assert shapeworld_folder_holds(WEIGHTS / "shapeworld-ar") == "a ShapeWorld-AR model"
    assert shapeworld_folder_holds(WEIGHTS / "shapeworld-reward") == "a ShapeWorld reward"
    from arscale.generators.next_token.shapeworld import load_shapeworld_ar
    from arscale.scorers.shapeworld import load_model

    with pytest.raises(ArscaleError, match="shapeworld-var holds a ShapeWorld-VAR model, not a ShapeWorld-AR model$"):
        load_shapeworld_ar(weights=WEIGHTS / "shapeworld-var")  # and no KeyError after it: the kind says it all
    with pytest.raises(ArscaleError, match="shapeworld-ar holds a ShapeWorld-AR model, not a ShapeWorld reward"):
        load_model(WEIGHTS / "shapeworld-ar")
    assert main(["train", "shapeworld-var", "--tokenizer", str(WEIGHTS / "shapeworld-ar"), "--steps", "1",
                 "--out", "unused"]) == 2
    assert "holds a ShapeWorld-AR model, not a ShapeWorld-VAR tokenizer" in capsys.readouterr().err


def test_a_ctrl_c_stops_the_run_at_the_step_and_only_while_training():
    outer = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever earlier tests left
    before = signal.default_int_handler
    timer = Timer(checkpoint_minutes=60)
    assert not timer.out_of_time()
    signal.raise_signal(signal.SIGINT)  # handled: the trainer finishes its step, then saves
    assert timer.out_of_time() and timer.interrupted
    assert signal.getsignal(signal.SIGINT) is before  # a second Ctrl-C stops at once
    timer = Timer(checkpoint_minutes=60)
    timer.close()  # the loop is over
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):  # after training, Ctrl-C is what it was
        signal.raise_signal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = Timer(checkpoint_minutes=60)  # a trainer that raised: `arscale train` releases what it left
    from arscale.train.common import release_trainer

    release_trainer()
    assert signal.getsignal(signal.SIGINT) is before and timer.closed
    timer = Timer(checkpoint_minutes=60)  # a run that ended without closing: once it is gone, so is its hold
    del timer
    gc.collect()
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    signal.signal(signal.SIGINT, outer)


def test_a_tokenizer_is_not_trained_anew_under_a_model_trained_on_its_codes(tmp_path, capsys):
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.safetensors"):
        (tmp_path / name).write_bytes((WEIGHTS / "shapeworld-var" / name).read_bytes())
    assert main(["train", "shapeworld-tokenizer", "--out", str(tmp_path), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "holds a ShapeWorld-VAR model trained on its tokenizer's codes" in err and "--decoder-only" in err
    # another kind of tokenizer: its decoder is no way out, another folder is
    assert main(["train", "shapeworld-ar-tokenizer", "--out", str(tmp_path), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "holds a ShapeWorld-VAR model; a ShapeWorld-AR tokenizer shares a folder only with the model trained on " \
           "its codes: choose another --out" in err and "--decoder-only" not in err
    assert (tmp_path / "tokenizer.safetensors").read_bytes() == \
        (WEIGHTS / "shapeworld-var" / "tokenizer.safetensors").read_bytes()


def test_the_transformer_trainers_find_the_tokenizer_beside_out(tmp_path, capsys):
    import argparse

    from arscale.train.common import tokenizer_folder

    args = argparse.Namespace(tokenizer=None, out=str(tmp_path))
    assert tokenizer_folder(args, "/shipped") == "/shipped" and "no tokenizer in" in capsys.readouterr().out
    (tmp_path / "tokenizer_config.json").write_text("{}")
    assert tokenizer_folder(args, "/shipped") == str(tmp_path)
    assert tokenizer_folder(argparse.Namespace(tokenizer="/mine", out=str(tmp_path)), "/shipped") == "/mine"


def test_a_shared_folder_keeps_the_tokenizer_its_model_was_trained_on(tmp_path):
    import argparse

    from arscale.train.common import tokenizer_folder

    mine, out = tmp_path / "mine", tmp_path / "out"
    for folder, content in ((mine, b"tokenizer X"), (out, b"tokenizer Y")):
        folder.mkdir()
        (folder / "tokenizer.safetensors").write_bytes(content)
        (folder / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ArscaleError, match="already holds another tokenizer"):
        tokenizer_folder(argparse.Namespace(tokenizer=str(mine), out=str(out)), "/shipped")
    (out / "tokenizer.safetensors").write_bytes(b"tokenizer X")  # the same one, copied: fine
    assert tokenizer_folder(argparse.Namespace(tokenizer=str(mine), out=str(out)), "/shipped") == str(mine)


def test_decoder_only_without_a_training_state_is_refused(tmp_path, capsys):
    out = tmp_path / "new"
    assert main(["train", "shapeworld-tokenizer", "--steps", "2", "--batch-size", "2", "--decoder-only",
                "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--decoder-only fine-tunes a trained tokenizer" in err and "holds no training state" in err
    assert not out.exists()  # nothing written, and the folder it made is gone


def test_a_folder_of_the_right_kind_with_a_config_this_version_cannot_build(tmp_path):
    import json
    import shutil

    from arscale.generators.next_token.shapeworld import load_shapeworld_ar

    folder = tmp_path / "ar"
    shutil.copytree(WEIGHTS / "shapeworld-ar", folder)
    config = json.loads((folder / "config.json").read_text())
    config["transformer"]["future_option"] = 1
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArscaleError, match=r"holds a ShapeWorld-AR model whose config this arscale cannot build "
                                           r"\(TypeError: .*future_option"):
        load_shapeworld_ar(weights=folder)


def test_decoder_only_with_fresh_is_refused_before_anything_is_said_replaced(tmp_path, capsys):
    assert main(["train", "shapeworld-tokenizer", "--steps", "2", "--decoder-only", "--fresh",
                 "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert "drop --fresh" in err and "will be replaced" not in err
