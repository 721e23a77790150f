"""Trainer paths that only unusual runs reach (options, saves under Ctrl-C, threads, time limits, replay buffers,
checkpoints every step, dead codes), each held to what it should do."""

import gc
import json
import os
import signal
import threading

import numpy as np
import pytest
import torch
from cli_output import one_error_line
from safetensors.torch import load_file
from tiny_shapeworld_ar import write_tiny_vq_folder
from tiny_shapeworld_var import tiny_var_configs, write_tiny_var_training_folder

from arscale.cli import build_parser
from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.train import ar, checkpoint, common, reward, run_control, var

WEIGHTS = common.Path(var.WEIGHTS_DIR).parent


# --------------------------------------------------------------------------------------------------
# train: options, state, signals


def test_config_fields_that_may_be_zero_and_shares_are_checked_by_name(tmp_path):
    def read(config):
        path = tmp_path / "c.json"
        path.write_text(json.dumps(config))
        return common.read_config(path)

    assert read({"tokenizer": {"num_res": 0}, "sampling": {"top_p": 1}}) == {"tokenizer": {"num_res": 0},
                                                                           "sampling": {"top_p": 1}}
    with pytest.raises(ArscaleError, match=r"c.json: tokenizer.num_res must be a whole number >= 0, got -1$"):
        read({"tokenizer": {"num_res": -1}})
    with pytest.raises(ArscaleError, match=r"c.json: sampling.top_p must be in \[0, 1\], got 1.5$"):
        read({"sampling": {"top_p": 1.5}})
    with pytest.raises(ArscaleError, match=r"c.json: dropout must be in \[0, 1\], got True$"):
        read({"dropout": True})


def test_replace_shipped_takes_the_shipped_folders_and_refuses_another_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the shipped state dir is relative: nothing is written anyway
    args = build_parser().parse_args(["train", "shapeworld-reward", "--replace-shipped"])
    common.check_arguments(args)
    assert (args.out, args.state_dir) == (str(WEIGHTS / "shapeworld-reward"), "train_state/shapeworld-reward")
    assert not (tmp_path / "train_state").exists()
    args = build_parser().parse_args(["train", "shapeworld-reward", "--replace-shipped", "--out", "mine"])
    with pytest.raises(ArscaleError, match=r"--replace-shipped writes the shipped model to .*shapeworld-reward; "
                                           r"drop --out mine$"):
        common.check_arguments(args)


def _model_and_opt():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def test_loading_a_state_that_is_not_there_is_one_line(tmp_path):
    with pytest.raises(ArscaleError, match=r"^no training state in .*nothing$"):
        common.TrainState(tmp_path / "nothing").load(*_model_and_opt())


def test_a_trainer_in_another_thread_saves_and_times_without_touching_ctrl_c(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    seen = {}

    def train_here():
        try:
            timer = common.Timer(checkpoint_minutes=1.0)
            common.TrainState(tmp_path / "s").save(*_model_and_opt(), step=4, config={}, elapsed=timer.elapsed)
            timer.close()
            seen["step"] = common.TrainState(tmp_path / "s").info()["step"]
        except Exception as exc:  # noqa: BLE001 - reported below
            seen["error"] = exc

    thread = threading.Thread(target=train_here)
    thread.start()
    thread.join()
    assert seen == {"step": 4}
    assert signal.getsignal(signal.SIGINT) is before


def _save_with_ctrl_c(tmp_path, monkeypatch, handler):
    write = checkpoint.TrainState._write

    def interrupted(self, *args):
        os.kill(os.getpid(), signal.SIGINT)  # during the save: held until the files are whole
        return write(self, *args)

    monkeypatch.setattr(checkpoint.TrainState, "_write", interrupted)
    signal.signal(signal.SIGINT, handler)
    state = common.TrainState(tmp_path / "s")
    try:
        state.save(*_model_and_opt(), step=3, config={}, elapsed=0.0)
    finally:
        after = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return state, after


def test_a_ctrl_c_during_a_save_under_the_default_handler_stops_once_the_save_is_whole(tmp_path, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        state, _ = _save_with_ctrl_c(tmp_path, monkeypatch, signal.SIG_DFL)
    state = common.TrainState(tmp_path / "s")
    assert state.info()["step"] == 3 and state.torn() == []


def test_a_ctrl_c_during_a_save_under_an_ignoring_handler_is_ignored(tmp_path, monkeypatch):
    state, after = _save_with_ctrl_c(tmp_path, monkeypatch, signal.SIG_IGN)
    assert state.info()["step"] == 3 and after == signal.SIG_IGN


@pytest.mark.parametrize("previous", [signal.default_int_handler, signal.SIG_IGN])
def test_a_timer_dropped_without_closing_hands_ctrl_c_back(previous):
    signal.signal(signal.SIGINT, previous)
    try:
        common.Timer()
        gc.collect()  # the trainer is gone; its handler is still installed
        assert signal.getsignal(signal.SIGINT) is not previous
        if previous is signal.SIG_IGN:
            os.kill(os.getpid(), signal.SIGINT)
        else:
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is previous and not run_control.stopped_by_signal()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_a_tokenizer_trainer_refuses_an_out_holding_a_model_it_does_not_know(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"not ours")
    assert cli(["train", "shapeworld-ar-tokenizer", "--out", str(out), "--steps", "1"]) != 0
    assert one_error_line(capsys).endswith(f"--out {out} holds no ShapeWorld model arscale knows, not the model "
                                           "trained on this tokenizer's codes: choose another --out")
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors"]


# --------------------------------------------------------------------------------------------------
# train: reward


def test_partial_decodes_with_a_share_of_zero_leave_every_image_as_it_was():
    from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer, MultiScaleTokenizerConfig

    torch.manual_seed(0)
    tokenizer = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(tiny_var_configs()[0]))
    partial = reward.PartialDecodes(tokenizer, share=0.0)
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out, kept = partial(images, images * 0.5, torch.Generator().manual_seed(2))
    assert torch.equal(out, images * 0.5) and kept.tolist() == [-1, -1, -1]


def test_more_negatives_than_a_prompt_has_are_drawn_again_so_every_group_is_whole():
    batch = reward.make_batch(2, np.random.default_rng(0), negatives=6)  # single_object has only 4 negatives
    assert batch.positive_first == 7 and len(batch.labels) == 4 * 7
    groups = batch.labels.view(-1, 7)
    assert groups[:, 0].eq(1).all() and groups[:, 1:].eq(0).all()
    texts = [batch.texts[t] for t in batch.text_index.tolist()]
    for i, group in enumerate(zip(*[iter(texts)] * 7)):
        assert group[0] not in group[1:]  # a negative is never the image's own prompt
        assert batch.image_index[i * 7: (i + 1) * 7].eq(i).all()


def test_a_reward_whose_logits_overflow_is_not_exported(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reward, "calibrate", lambda *args, **kwargs: (float("nan"), 1.0))
    out = tmp_path / "out"
    assert cli(["train", "shapeworld-reward", "--batch-size", "1", "--steps", "1", "--out", str(out)]) != 0
    err = capsys.readouterr().err  # after the progress bar of the step it trained
    assert "Traceback" not in err and err.splitlines()[-1].startswith(
        "arscale: error: the reward's logits are no longer finite after step 1 (calibration shift nan, scale 1.0)")
    assert not (out / "model.safetensors").exists()
    assert common.TrainState(out / "train_state" / "shapeworld-reward").info()["step"] == 1  # the state is kept


def test_a_reward_run_stopped_by_its_time_limit_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reward, "calibrate", lambda *args, **kwargs: (0.0, 1.0))
    run = ["train", "shapeworld-reward", "--batch-size", "1", "--steps", "2", "--checkpoint-minutes", "1e-9"]
    assert cli([*run, "--out", str(tmp_path / "whole")]) == 0
    assert cli([*run, "--out", str(tmp_path / "split"), "--time-limit", "1e-9"]) == 0
    assert "time limit of 1e-09 min reached" in capsys.readouterr().err
    assert common.TrainState(tmp_path / "split" / "train_state" / "shapeworld-reward").info()["step"] == 1
    assert cli([*run, "--out", str(tmp_path / "split")]) == 0
    whole, split = (load_file(tmp_path / name / "model.safetensors") for name in ("whole", "split"))
    assert whole.keys() == split.keys() and all(torch.equal(whole[k], split[k]) for k in whole)


# --------------------------------------------------------------------------------------------------
# train: AR replay buffer, VAR inputs and periodic saves


def test_an_empty_replay_buffer_round_trips_and_a_smaller_one_starts_empty_with_the_running_loss():
    empty = ar.ReplayBuffer(4, seed=0).saved(None, {})
    assert set(empty["extra"]) == {"next"} and empty["extra_metadata"] == {"prompts": "[]"}
    restored = ar.ReplayBuffer(4, seed=0)
    assert restored.restore(empty["extra"], empty["extra_metadata"]) is None and restored.prompts == []
    full = ar.ReplayBuffer(4, seed=0)
    full.add(["a", "b", "c"], torch.arange(6).view(3, 2))
    saved = full.saved(0.5, {})
    smaller = ar.ReplayBuffer(2, seed=0)
    assert smaller.restore(saved["extra"], saved["extra_metadata"]) == 0.5
    assert smaller.prompts == [] and smaller.codes is None  # three samples do not fit in two slots
    larger = ar.ReplayBuffer(5, seed=0)
    assert larger.restore(saved["extra"], saved["extra_metadata"]) == 0.5
    assert larger.prompts == ["a", "b", "c"] and larger.next == 3 and larger.codes[:3].equal(torch.arange(6).view(3, 2))


@pytest.fixture(scope="module")
def var_inputs(tmp_path_factory):
    return write_tiny_var_training_folder(tmp_path_factory.mktemp("var"))


def test_a_tokenizer_folder_without_a_tokenizer_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(["train", "shapeworld-var", "--out", str(tmp_path / "out"), "--tokenizer", str(empty), "--steps", "1"]) != 0
    assert one_error_line(capsys).endswith(f"no tokenizer in {empty}; run `arscale train shapeworld-tokenizer` first")


def test_a_config_section_with_a_field_the_model_does_not_have_is_one_line(var_inputs, tmp_path, capsys):
    tok, _ = var_inputs
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"transformer": {"width": 16, "depth": 1, "heads": 2, "wdith": 8}}))
    out = tmp_path / "out"
    assert cli(["train", "shapeworld-var", "--tokenizer", str(tok), "--config", str(bad), "--steps", "1",
                "--out", str(out)]) != 0
    line = one_error_line(capsys)
    assert f"--config {bad} does not fit this trainer" in line and "wdith" in line
    assert not out.exists()  # the --out this run made is removed again


def test_init_from_another_models_folder_names_init_from(tmp_path, capsys):
    ar_folder = WEIGHTS / "shapeworld-ar"
    assert cli(["train", "shapeworld-var", "--init-from", str(ar_folder), "--steps", "1",
                "--out", str(tmp_path / "out")]) != 0
    assert one_error_line(capsys).endswith(f"--init-from {ar_folder} holds a ShapeWorld-AR model, not a "
                                           "ShapeWorld-VAR model")


def test_checkpoints_every_step_change_nothing_a_var_run_trains(var_inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(var, "sample_accuracy", lambda gen: {"overall": 0.5})
    tok, config = var_inputs
    run = ["train", "shapeworld-var", "--tokenizer", str(tok), "--config", str(config), "--steps", "3",
           "--batch-size", "2", "--eval-every", "0"]
    assert cli([*run, "--out", str(tmp_path / "quiet")]) == 0
    saves = []
    save = common.TrainState.save
    monkeypatch.setattr(common.TrainState, "save", lambda self, *a, **k: saves.append(k["step"]) or save(self, *a, **k))
    assert cli([*run, "--out", str(tmp_path / "saving"), "--checkpoint-minutes", "1e-9"]) == 0
    assert saves == [1, 2, 3, 3]  # every step, then the final save
    quiet, saving = (load_file(tmp_path / name / "model.safetensors") for name in ("quiet", "saving"))
    assert all(torch.equal(quiet[k], saving[k]) for k in quiet)
    state = common.TrainState(tmp_path / "saving" / "train_state" / "shapeworld-var")
    assert state.info()["metrics"]["overall"] == 0.5 and "ema_loss" in state.extra()[0]


def test_checkpoints_every_step_change_nothing_an_ar_run_trains(tmp_path, monkeypatch):
    tok = write_tiny_vq_folder(tmp_path / "vq")
    run = ["train", "shapeworld-ar", "--tokenizer", str(tok), "--config", str(tok / "ar.json"), "--batch-size", "2",
           "--replay-size", "4", "--steps", "3", "--tune-decoder-every", "1"]
    assert cli([*run, "--out", str(tmp_path / "quiet")]) == 0
    assert cli([*run, "--out", str(tmp_path / "saving"), "--checkpoint-minutes", "1e-9"]) == 0
    for name in ("model.safetensors", "tokenizer.safetensors"):
        quiet, saving = (load_file(tmp_path / out / name) for out in ("quiet", "saving"))
        assert all(torch.equal(quiet[k], saving[k]) for k in quiet), name


@pytest.mark.parametrize("trainer", ["shapeworld-tokenizer", "shapeworld-ar-tokenizer", "decoder-only"])
def test_checkpoints_every_step_change_nothing_a_tokenizer_run_trains(trainer, tmp_path, monkeypatch):
    from tiny_shapeworld_ar import TINY_VQ
    from tiny_shapeworld_var import write_tiny_training_configs

    from arscale.train import tokenizer_multiscale, tokenizer_vq

    for module in (tokenizer_multiscale, tokenizer_vq):
        monkeypatch.setattr(module, "reconstruction_accuracy", lambda model: {"overall": 0.5})
    if trainer == "shapeworld-tokenizer":
        run = ["shapeworld-tokenizer", "--config", str(write_tiny_training_configs(tmp_path)[0])]
    elif trainer == "shapeworld-ar-tokenizer":
        (tmp_path / "vq.json").write_text(json.dumps(TINY_VQ))
        run = ["shapeworld-ar-tokenizer", "--config", str(tmp_path / "vq.json")]
    else:
        run = ["shapeworld-ar-tokenizer", "--decoder-only", str(write_tiny_vq_folder(tmp_path))]
    run = ["train", *run, "--batch-size", "2", "--steps", "3", "--eval-every", "0"]
    saves = []
    save = common.TrainState.save
    monkeypatch.setattr(common.TrainState, "save", lambda self, *a, **k: saves.append(k["step"]) or save(self, *a, **k))
    assert cli([*run, "--out", str(tmp_path / "quiet")]) == 0
    assert cli([*run, "--out", str(tmp_path / "saving"), "--checkpoint-minutes", "1e-9"]) == 0
    assert saves == [3, 1, 2, 3, 3]
    quiet, saving = (load_file(tmp_path / out / "tokenizer.safetensors") for out in ("quiet", "saving"))
    assert quiet.keys() == saving.keys() and all(torch.equal(quiet[k], saving[k]) for k in quiet)


def test_the_vq_trainer_reseeds_only_the_codes_it_found_dead():
    from tiny_shapeworld_ar import TINY_VQ

    from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer
    from arscale.train import tokenizer_vq

    torch.manual_seed(0)
    model = VQTokenizer(VQConfig(**TINY_VQ))
    before = model.codebook.weight.detach().clone()
    latents = torch.randn(2, before.shape[1], 4, 4, generator=torch.Generator().manual_seed(1))
    usage = torch.ones(len(before))
    assert tokenizer_vq.reseed_dead_codes(model, usage, latents) == 0 and model.codebook.weight.equal(before)
    usage[[3, 7]] = 0.0
    assert tokenizer_vq.reseed_dead_codes(model, usage, latents, generator=torch.Generator().manual_seed(2)) == 2
    changed = (model.codebook.weight != before).any(1).nonzero().flatten().tolist()
    assert changed == [3, 7] and usage[[3, 7]].tolist() == [1.0, 1.0]
    pool = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])  # each a latent vector plus 1 % noise
    assert all((pool - model.codebook.weight[i]).abs().max(1).values.min() < 0.1 for i in (3, 7))


def test_a_stream_iterates_batches_of_its_size_in_step_order():
    from arscale.train import scene_stream

    stream = iter(scene_stream.ShapeWorldStream(3, seed=9, start_step=4))
    first, second = next(stream), next(stream)
    again = scene_stream.ShapeWorldStream(3, seed=9, start_step=4)
    assert first.images.shape == (3, 3, 64, 64) and len(second.prompts) == 3
    assert torch.equal(first.images, again.sample(3).images) and torch.equal(second.images, again.sample(3).images)
    assert first.prompts != second.prompts
