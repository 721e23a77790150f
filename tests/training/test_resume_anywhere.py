"""A training run stopped by Ctrl-C at any step and resumed with the same command ends
exactly as the uninterrupted run - the weights, the optimizer moments and the loss it ships - for the trainers
whose per-step randomness or running state a resume used to lose."""

import json
import random
import signal

import pytest
import torch
from safetensors.torch import load_file
from tiny_shapeworld_ar import write_tiny_vq_folder
from tiny_shapeworld_var import write_tiny_var_training_folder

from arscale.cli import main as cli
from arscale.train import common, tokenizer_multiscale, var


@pytest.fixture
def ctrl_c(monkeypatch):
    """`stops`: the steps at which a Ctrl-C arrives inside the step (the trainer finishes it, saves and stops);
    the exact evaluations are stubbed."""
    stops: set[int] = set()
    diverged = common.stop_if_diverged

    def checking(loss, step, args, rate="lr"):
        if step in stops:
            stops.discard(step)
            signal.raise_signal(signal.SIGINT)
        return diverged(loss, step, args, rate)

    monkeypatch.setattr(common, "stop_if_diverged", checking)
    monkeypatch.setattr(var, "sample_accuracy", lambda gen: {"overall": 0.25})
    monkeypatch.setattr(tokenizer_multiscale, "reconstruction_accuracy", lambda model: {"overall": 0.5})
    return stops


def _stopped_and_resumed(argv, stops, at):
    """The same command run until each Ctrl-C in `at`, then once more to the end."""
    for k in sorted(at):
        stops.add(k)
        assert cli(argv) == 130  # saved, not finished
        assert not stops  # the Ctrl-C came
    assert cli(argv) == 0


def _same_files(whole, split, names=("model.safetensors", "optimizer.safetensors")):
    for name in names:
        a, b = load_file(str(whole / name)), load_file(str(split / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


@pytest.fixture(scope="module")
def var_files(tmp_path_factory):
    """A random tiny multi-scale tokenizer folder and the tiny transformer --config."""
    folder = tmp_path_factory.mktemp("var")
    return folder, *write_tiny_var_training_folder(folder)


def _var(var_files, out, *extra):
    _, tok, var_json = var_files
    return ["train", "shapeworld-var", "--tokenizer", str(tok), "--config", str(var_json), "--batch-size", "4",
            "--eval-every", "0", "--steps", "6", "--out", str(out), *extra]


def test_a_var_run_stopped_at_any_step_resumes_to_the_uninterrupted_weights(var_files, tmp_path, ctrl_c):
    """Default --null-prob and --self-correction: stopped at step k (seeded choice, and 1 and S-1), same weights."""
    extra = ("--self-correction", "0.3")
    assert cli(_var(var_files, tmp_path / "whole", *extra)) == 0
    for k in {1, 5, random.Random(29).randrange(2, 5)}:
        _stopped_and_resumed(_var(var_files, tmp_path / f"k{k}", *extra), ctrl_c, [k])
        _same_files(tmp_path / "whole" / "train_state" / "shapeworld-var",
                    tmp_path / f"k{k}" / "train_state" / "shapeworld-var")


def _ar(folder, out):
    return ["train", "shapeworld-ar", "--tokenizer", str(folder), "--config", str(folder / "ar.json"),
            "--batch-size", "4", "--replay-size", "6", "--steps", "6", "--out", str(out)]


@pytest.fixture(scope="module")
def ar_folder(tmp_path_factory):
    """A random tiny VQ tokenizer folder with the tiny decoder --config."""
    return write_tiny_vq_folder(tmp_path_factory.mktemp("vq"))


def test_an_ar_run_stopped_at_any_step_replays_and_drops_as_the_uninterrupted_one(ar_folder, tmp_path, ctrl_c):
    """Default --text-dropout, a replay buffer that wraps: stopped at steps 1, 3 and 5, same weights and decoder."""
    assert cli(_ar(ar_folder, tmp_path / "whole")) == 0
    _stopped_and_resumed(_ar(ar_folder, tmp_path / "split"), ctrl_c, [1, 3, 5])
    whole, split = (tmp_path / name / "train_state" / "shapeworld-ar" for name in ("whole", "split"))
    _same_files(whole, split)
    _same_files(whole / "tokenizer", split / "tokenizer", ("tokenizer.safetensors", "optimizer.safetensors"))


def test_the_shipped_running_loss_continues_across_a_resume(var_files, ar_folder, tmp_path, ctrl_c):
    """Stopped at S-1: config.json's training loss (VAR) and the state's loss_ema (AR) are the whole run's."""
    assert cli(_var(var_files, tmp_path / "whole", "--null-prob", "0")) == 0
    _stopped_and_resumed(_var(var_files, tmp_path / "split", "--null-prob", "0"), ctrl_c, [5])
    shipped = [json.loads((tmp_path / name / "config.json").read_text())["training"]["metrics"]["loss"]
               for name in ("whole", "split")]
    assert shipped[1] == pytest.approx(shipped[0], rel=1e-9)
    assert cli(_ar(ar_folder, tmp_path / "ar_whole")) == 0
    _stopped_and_resumed(_ar(ar_folder, tmp_path / "ar_split"), ctrl_c, [5])
    ema = [common.TrainState(tmp_path / name / "train_state" / "shapeworld-ar").info()["metrics"]["loss_ema"]
           for name in ("ar_whole", "ar_split")]
    assert ema[1] == pytest.approx(ema[0], rel=1e-9)


def test_a_tokenizer_stopped_around_a_dead_code_reseeding_resumes_to_the_same_codebook(var_files, tmp_path,
                                                                                        ctrl_c):
    """Re-seeding every 50 steps: stopped at 49 (usage) and at 51 (the re-seeding's generator), same weights."""
    folder = var_files[0]
    config = json.loads((folder / "tok.json").read_text())
    (tmp_path / "tok64.json").write_text(json.dumps({**config, "vocab_size": 64}))  # some codes go unused

    def argv(out):
        return ["train", "shapeworld-tokenizer", "--config", str(tmp_path / "tok64.json"), "--batch-size", "1",
                "--eval-every", "0", "--steps", "101", "--out", str(out)]

    assert cli(argv(tmp_path / "whole")) == 0
    _stopped_and_resumed(argv(tmp_path / "split"), ctrl_c, [49, 51])
    _same_files(*(tmp_path / name / "train_state" / "shapeworld-tokenizer" for name in ("whole", "split")))


def test_a_decoder_phase_on_generated_latents_resumes_to_the_uninterrupted_decoder(var_files, tmp_path, ctrl_c):
    """A tokenizer's --decoder-only --generator phase stopped at steps 1, 2 and 3: the same decoder."""
    folder, _, var_json = var_files
    base = ["--batch-size", "2", "--eval-every", "0"]
    assert cli(["train", "shapeworld-tokenizer", "--config", str(folder / "tok.json"), *base, "--steps", "2",
                "--out", str(tmp_path / "gen"), "--state-dir", str(tmp_path / "whole")]) == 0
    assert cli(["train", "shapeworld-var", "--config", str(var_json), *base, "--steps", "1",
                "--out", str(tmp_path / "gen")]) == 0
    (tmp_path / "split").mkdir()
    for name in ("model.safetensors", "optimizer.safetensors", "state.json"):
        (tmp_path / "split" / name).write_bytes((tmp_path / "whole" / name).read_bytes())

    def argv(state):
        return ["train", "shapeworld-tokenizer", "--decoder-only", "--generator", str(tmp_path / "gen"), *base,
                "--steps", "6", "--state-dir", str(tmp_path / state), "--out", str(tmp_path / f"{state}_out")]

    assert cli(argv("whole")) == 0
    _stopped_and_resumed(argv("split"), ctrl_c, [3, 4, 5])
    _same_files(tmp_path / "whole", tmp_path / "split")


def test_a_fitted_run_stopped_in_its_cooldown_resumes_its_fitted_plan(var_files, tmp_path, ctrl_c, monkeypatch):
    """--fit-time-limit lowers 100 steps to 70 (stubbed timing); a Ctrl-C at 60 and the same command: the whole run."""
    from arscale.train import lr_schedule

    monkeypatch.setattr(lr_schedule, "fitted_steps", lambda steps, cooldown, *timing: (70, cooldown * 70 // steps))
    _, tok, var_json = var_files

    def argv(out):
        return ["train", "shapeworld-var", "--tokenizer", str(tok), "--config", str(var_json), "--batch-size", "2",
                "--eval-every", "0", "--null-prob", "0", "--steps", "100", "--cooldown", "20", "--time-limit", "60",
                "--fit-time-limit", "--out", str(out)]

    assert cli(argv(tmp_path / "whole")) == 0
    _stopped_and_resumed(argv(tmp_path / "split"), ctrl_c, [60])
    whole, split = (tmp_path / name / "train_state" / "shapeworld-var" for name in ("whole", "split"))
    assert common.TrainState(split).info()["step"] == common.TrainState(whole).info()["step"] == 70
    _same_files(whole, split)
