"""What the trainers do with the inputs they are given: an --out holding another kind of model, numbers out of
range or not finite, options without their partner, a run that diverges, a resume with other settings, and
--config files with impossible sizes. Almost all of it is refused before any model is built."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from tiny_shapeworld_ar import TINY_VQ

from arscale.cli import build_parser
from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.train import common

WEIGHTS = Path(__file__).resolve().parents[2] / "src" / "arscale" / "weights"


def model_folder(tmp_path: Path, kind: str) -> Path:
    """A folder that reads as a shipped one (its configs; weights replaced by a few bytes, which nothing reads)."""
    folder = tmp_path / kind
    folder.mkdir()
    source = WEIGHTS / {"var": "shapeworld-var", "ar": "shapeworld-ar", "reward": "shapeworld-reward",
                        "var-tokenizer": "shapeworld-var", "ar-tokenizer": "shapeworld-ar"}[kind]
    names = ("tokenizer_config.json", "tokenizer.safetensors") if kind.endswith("tokenizer") else \
        [p.name for p in source.glob("*.json")] + ["model.safetensors", "tokenizer.safetensors"]
    for name in names:
        if (source / name).exists():
            if name.endswith(".json"):
                shutil.copyfile(source / name, folder / name)
            else:
                (folder / name).write_bytes(b"weights of " + kind.encode())
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def parsed(*argv: str):
    return build_parser().parse_args(["train", *argv])


@pytest.mark.parametrize("trainer, folder, holds", [
    ("shapeworld-reward", "var", "a ShapeWorld-VAR model"),
    ("shapeworld-reward", "var-tokenizer", "a ShapeWorld-VAR tokenizer"),
    ("shapeworld-var", "reward", "a ShapeWorld reward"),
    ("shapeworld-var", "ar", "a ShapeWorld-AR model"),
    ("shapeworld-var", "ar-tokenizer", "a ShapeWorld-AR tokenizer"),
    ("shapeworld-ar", "reward", "a ShapeWorld reward"),
    ("shapeworld-ar", "var", "a ShapeWorld-VAR model"),
    ("shapeworld-tokenizer", "reward", "a ShapeWorld reward"),
    ("shapeworld-tokenizer", "ar", "a ShapeWorld-AR model"),
    ("shapeworld-ar-tokenizer", "var", "a ShapeWorld-VAR model"),
    ("shapeworld-ar-tokenizer", "reward", "a ShapeWorld reward"),
])
def test_no_trainer_overwrites_another_kind_of_model(trainer, folder, holds, tmp_path, capsys):
    out = model_folder(tmp_path, folder)
    before = contents(out)
    assert cli(["train", trainer, "--steps", "1", "--batch-size", "1", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and f"--out {out} holds {holds};" in err and "choose another --out" in err
    assert "--decoder-only" not in err and "trained on its tokenizer's codes" not in err  # what it really holds
    assert "no tokenizer in" not in captured.out  # refused before the tokenizer is looked for
    assert contents(out) == before  # nothing written, not even a training state


@pytest.mark.parametrize("trainer, folder, extra", [
    ("shapeworld-var", "var", []),  # its own kind: goes on training
    ("shapeworld-var", "var-tokenizer", []),  # the tokenizer it is trained on
    ("shapeworld-ar", "ar", []),
    ("shapeworld-ar", "ar-tokenizer", []),
    ("shapeworld-tokenizer", "var-tokenizer", []),
    ("shapeworld-tokenizer", "var", ["--decoder-only"]),  # the model beside it: decoder only (see below)
    ("shapeworld-ar-tokenizer", "ar", []),
    ("shapeworld-reward", "reward", []),
    ("shapeworld-reward", None, []),  # a new folder
])
def test_a_trainer_keeps_its_own_folder_and_its_partners(trainer, folder, extra, tmp_path):
    out = model_folder(tmp_path, folder) if folder else tmp_path / "new"
    common.check_arguments(parsed(trainer, "--steps", "1", "--out", str(out), *extra))
    assert folder is not None or not out.exists()  # checking writes nothing


def test_a_folder_with_another_models_training_state_or_unknown_weights_is_refused(tmp_path, capsys):
    out = model_folder(tmp_path, "var-tokenizer")
    reward_state = out / "train_state" / "shapeworld-reward"
    reward_state.mkdir(parents=True)
    (reward_state / "state.json").write_text(json.dumps({"step": 3, "config": {"fusion_depth": 2}}))
    with pytest.raises(ArscaleError, match=r"holds a ShapeWorld reward \(the training state in .*shapeworld-reward\)"):
        common.check_arguments(parsed("shapeworld-var", "--out", str(out)))
    with pytest.raises(ArscaleError, match="--state-dir .* holds the training state of a ShapeWorld reward, not of "
                                           "a ShapeWorld-VAR model"):
        common.check_arguments(parsed("shapeworld-var", "--out", str(tmp_path / "new"), "--state-dir",
                                      str(reward_state)))
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "model.safetensors").write_bytes(b"someone's weights")
    assert cli(["train", "shapeworld-reward", "--steps", "1", "--out", str(unknown)]) == 2
    assert "holds model.safetensors of no ShapeWorld model arscale knows" in capsys.readouterr().err
    assert contents(unknown) == {"model.safetensors": b"someone's weights"}


def test_a_tokenizer_beside_a_model_of_its_codes_is_told_about_decoder_only(tmp_path, capsys):
    out = model_folder(tmp_path, "var")
    assert cli(["train", "shapeworld-tokenizer", "--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds a ShapeWorld-VAR model trained on its tokenizer's codes" in err and "--decoder-only" in err


@pytest.mark.parametrize("argv, message", [
    (["shapeworld-reward", "--lr", "inf"], "--lr must be >= 0 and finite, got inf"),
    (["shapeworld-reward", "--lr", "nan"], "--lr must be >= 0 and finite, got nan"),
    (["shapeworld-ar", "--decoder-lr", "inf"], "--decoder-lr must be a finite number >= 0, got inf"),
    (["shapeworld-ar", "--weight-decay", "nan"], "--weight-decay must be a finite number >= 0"),
    (["shapeworld-tokenizer", "--boundary-weight", "inf"], "--boundary-weight must be a finite number >= 0"),
    (["shapeworld-reward", "--time-limit", "nan"], "--time-limit must be >= 0 minutes"),
    (["shapeworld-reward", "--checkpoint-minutes", "inf"], "--checkpoint-minutes must be positive"),
    (["shapeworld-reward", "--seed", "-1"], "--seed must be in [0, 2**32), got -1"),
    (["shapeworld-var", "--fresh", "--null-prob", "2"], "--null-prob must be in [0, 1], got 2.0"),
    (["shapeworld-var", "--fresh", "--null-prob", "-1"], "--null-prob must be in [0, 1], got -1.0"),
    (["shapeworld-var", "--eval-every", "-1"], "--eval-every must be at least 0 (0: only at the end), got -1"),
    (["shapeworld-var", "--cooldown", "5", "--steps", "3"], "--cooldown must be between 0 and --steps (3), got 5"),
    (["shapeworld-tokenizer", "--eval-every", "-2"], "--eval-every must be at least 0"),
    (["shapeworld-ar-tokenizer", "--eval-every", "-2"], "--eval-every must be at least 0"),
    (["shapeworld-ar", "--text-dropout", "1.5"], "--text-dropout must be in [0, 1], got 1.5"),
    (["shapeworld-ar", "--fresh-fraction", "-0.1"], "--fresh-fraction must be in [0, 1]"),
    (["shapeworld-ar", "--replay-size", "0"], "--replay-size must be at least 1, got 0"),
    (["shapeworld-ar", "--tune-decoder-every", "-1"], "--tune-decoder-every must be at least 0 (0: never)"),
    (["shapeworld-ar", "--data-workers", "-1"], "--data-workers must be at least 0"),
    (["shapeworld-reward", "--partial-share", "0.5"], "--partial-share has no effect without --partial-tokenizer"),
    (["shapeworld-reward", "--partial-first-scale", "1"], "--partial-first-scale has no effect without --partial-tok"),
    (["shapeworld-reward", "--partial-tokenizer", "x", "--partial-share", "1.5"], "--partial-share must be in [0, 1]"),
    (["shapeworld-tokenizer", "--generated-fraction", "0.5"], "--generated-fraction has no effect without --generator"),
    (["shapeworld-tokenizer", "--earliest-sampled-scale", "1"], "--earliest-sampled-scale has no effect without"),
])
def test_options_out_of_range_or_without_their_partner_are_refused_first(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(["train", argv[0], "--steps", "1", "--batch-size", "1", *argv[1:], "--out", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists() and "no tokenizer in" not in captured.out


def test_options_without_effect_at_their_partners_zero_are_noted(capsys):
    from arscale.train import ar, var

    args = parsed("shapeworld-var", "--out", "unused", "--self-correction-neighbours", "3", "--sampled-prefix-from", "1")
    var.check_args(args)
    out = capsys.readouterr().out
    assert "--self-correction-neighbours has no effect without --self-correction above 0" in out
    assert "--sampled-prefix-from has no effect without --sampled-prefix above 0" in out
    args = parsed("shapeworld-var", "--out", "unused", "--self-correction", "0.3")
    var.check_args(args)
    assert capsys.readouterr().out == "" and (args.self_correction_neighbours, args.sampled_prefix_from) == (8, 2)
    ar.check_args(parsed("shapeworld-ar", "--out", "unused", "--tune-decoder-every", "0", "--decoder-lr", "1e-3"))
    assert "--decoder-lr has no effect with --tune-decoder-every 0" in capsys.readouterr().out


def test_init_from_that_does_not_exist_is_the_first_thing_said(tmp_path, capsys):
    assert cli(["train", "shapeworld-var", "--init-from", str(tmp_path / "nonexist"), "--steps", "1",
                "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "nonexist: expected model.safetensors and config.json" in captured.err
    assert "no such folder" in captured.err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("trainer, config, field", [
    ("shapeworld-tokenizer", {"ch": 0}, "ch must be a whole number >= 1, got 0"),
    ("shapeworld-tokenizer", {"ch_mult": [1, 0]}, "ch_mult must be a non-empty list of whole numbers >= 1"),
    ("shapeworld-tokenizer", {"patch_nums": []}, "patch_nums must be a non-empty list"),
    ("shapeworld-ar-tokenizer", {"ch": 0}, "ch must be a whole number >= 1, got 0"),
    ("shapeworld-ar-tokenizer", {"codebook_size": -4}, "codebook_size must be a whole number >= 1, got -4"),
    ("shapeworld-ar-tokenizer", {"z_channels": 2.5}, "z_channels must be a whole number >= 1, got 2.5"),
    ("shapeworld-var", {"transformer": {"width": 0}}, "transformer.width must be a whole number >= 1, got 0"),
    ("shapeworld-var", {"transformer": {"heads": 0}}, "transformer.heads must be a whole number >= 1, got 0"),
    ("shapeworld-var", {"transformer": {"mlp_ratio": 0}}, "transformer.mlp_ratio must be a positive number"),
    ("shapeworld-var", {"text_encoder": {"depth": -1}}, "text_encoder.depth must be a whole number >= 1"),
    ("shapeworld-var", {"sampling": {"temperature": 0}}, "sampling.temperature must be a positive number"),
    ("shapeworld-var", {"transformer": 3}, "transformer must be a section (a JSON object of its fields), got 3"),
    ("shapeworld-ar", {"transformer": {"n_head": 0}}, "transformer.n_head must be a whole number >= 1, got 0"),
    ("shapeworld-ar", {"text": {"max_len": 0}}, "text.max_len must be a whole number >= 1, got 0"),
    ("shapeworld-ar", [1, 2], "must hold a JSON object of config fields, got list"),
])
def test_config_files_with_impossible_sizes_fail_in_one_line_naming_the_field(trainer, config, field, tmp_path,
                                                                                capsys):
    (tmp_path / "c.json").write_text(json.dumps(config))
    assert cli(["train", trainer, "--steps", "1", "--batch-size", "1", "--config", str(tmp_path / "c.json"),
                "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--config {tmp_path / 'c.json'}" in err and field in err, err
    assert not (tmp_path / "out").exists()


def test_valid_config_files_pass_the_size_check():
    for config in (TINY_VQ, {"patch_nums": [1, 2, 4], "vocab_size": 16, "code_dim": 4, "ch": 4, "num_res": 0},
                   json.loads((WEIGHTS / "shapeworld-var" / "config.json").read_text()),
                   json.loads((WEIGHTS / "shapeworld-ar" / "config.json").read_text())):
        common.check_config_sizes(config, "--config x")


def test_a_diverging_run_stops_without_saving(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(["train", "shapeworld-reward", "--steps", "3", "--batch-size", "1", "--lr", "1e30",
                "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "arscale: error: the training loss became nan at step 2: stopped without saving" in err
    assert "--lr 1e+30 is probably too high" in err
    assert err.strip().splitlines()[-1].startswith("arscale: error:")  # not glued to a progress bar
    assert not out.exists()  # no weights, no state, and not the empty folder the run made
    with pytest.raises(ArscaleError, match="the training loss became inf at step 7"):
        common.stop_if_diverged(float("inf"), 7, parsed("shapeworld-reward", "--out", "x"))
    common.stop_if_diverged(0.5, 7, parsed("shapeworld-reward", "--out", "x"))


def test_non_finite_weights_are_not_saved_over_a_checkpoint(tmp_path):
    model = torch.nn.Linear(2, 2)
    state = common.TrainState(tmp_path / "s")
    state.save(model, None, step=1, config={}, elapsed=0.0)
    saved = contents(tmp_path / "s")
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(ArscaleError, match=r"weights are no longer finite at step 2 \(weight\)"):
        state.save(model, None, step=2, config={}, elapsed=0.0)
    assert contents(tmp_path / "s") == saved


def test_a_resume_records_and_notes_changed_settings_and_steps_already_done(tmp_path, capsys):
    (tmp_path / "vq.json").write_text(json.dumps(TINY_VQ))
    out = tmp_path / "out"
    run = ["train", "shapeworld-ar-tokenizer", "--eval-every", "0", "--out", str(out)]
    assert cli([*run, "--steps", "1", "--batch-size", "2", "--config", str(tmp_path / "vq.json")]) == 0
    state = common.TrainState(out / "train_state" / "shapeworld-ar-tokenizer")
    assert state.info()["hyperparameters"] == {"batch_size": 2, "lr": 1e-3, "seed": 0}
    capsys.readouterr()
    assert cli([*run, "--steps", "2", "--batch-size", "1", "--lr", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "settings it was not trained with: --batch-size 1 (was 2), --lr 0.5 (was 0.001)" in printed
    assert state.info()["hyperparameters"] == {"batch_size": 1, "lr": 0.5, "seed": 0} and state.info()["step"] == 2
    assert cli([*run, "--steps", "2", "--batch-size", "1", "--lr", "0.5"]) == 0  # the same settings: no note
    printed = capsys.readouterr().out
    assert "not trained with" not in printed
    assert "already at step 2 (--steps 2): nothing to train" in printed
    assert cli([*run, "--steps", "1", "--batch-size", "8"]) == 0
    printed = capsys.readouterr().out
    assert "already at step 2 (--steps 1): nothing to train" in printed and "not trained with" not in printed
    assert state.info()["step"] == 2 and state.info()["hyperparameters"]["batch_size"] == 1  # it trained nothing


def test_a_reward_with_nothing_to_train_does_not_claim_it_trained(tmp_path, capsys, monkeypatch):
    from arscale.train import reward

    monkeypatch.setattr(reward, "calibrate", lambda *args, **kwargs: (0.0, 1.0))  # 512 scenes: not the point here
    run = ["train", "shapeworld-reward", "--batch-size", "1", "--out", str(tmp_path / "out")]
    assert cli([*run, "--steps", "1"]) == 0
    assert "trained 1 steps," in capsys.readouterr().out
    assert cli([*run, "--steps", "1"]) == 0
    printed = capsys.readouterr().out
    assert "already at step 1 (--steps 1): nothing to train" in printed
    assert "nothing trained (the state is at step 1)" in printed and "trained 1 steps" not in printed
