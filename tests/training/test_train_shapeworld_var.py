"""Audit (mutation testing of src/arscale/train): what the ShapeWorld-VAR trainer optimises (the per-scale loss
weights, the null-prompt rate), the metrics it ships, and that a resumed run continues exactly."""

import json

import pytest
import torch
from safetensors.torch import load_file
from tiny_shapeworld_var import write_tiny_var_training_folder

from arscale.cli import main as cli
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer, MultiScaleTokenizerConfig
from arscale.train import common, var


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    """A random tiny multi-scale tokenizer folder and the tiny transformer --config."""
    return write_tiny_var_training_folder(tmp_path_factory.mktemp("var"))


@pytest.fixture
def recorded(monkeypatch):
    """Every step's loss and prompts; the end-of-run sampling evaluation stubbed (48 generations)."""
    seen = {"loss": [], "prompts": []}
    diverged, build = common.stop_if_diverged, var.build_shapeworld_var

    def recording_loss(loss, step, args, rate="lr"):
        seen["loss"].append(loss)
        return diverged(loss, step, args, rate)

    def building(*args, **kwargs):
        gen = build(*args, **kwargs)
        gen.conditioner.register_forward_pre_hook(lambda module, inputs: seen["prompts"].append(list(inputs[0])))
        return gen

    monkeypatch.setattr(common, "stop_if_diverged", recording_loss)
    monkeypatch.setattr(var, "build_shapeworld_var", building)
    monkeypatch.setattr(var, "sample_accuracy", lambda gen: {"overall": 0.25})
    return seen


def _train(configs, folder, *extra, steps=1):
    tok, var_json = configs
    assert cli(["train", "shapeworld-var", "--tokenizer", str(tok), "--config", str(var_json), "--batch-size", "4",
                "--eval-every", "0", "--steps", str(steps), "--out", str(folder), *extra]) == 0


def test_the_loss_is_weighted_by_the_scale_weights(configs, tmp_path, monkeypatch, recorded):
    _train(configs, tmp_path / "plain")
    weights = var.scale_loss_weights
    monkeypatch.setattr(var, "scale_loss_weights", lambda patch_nums, mode: 2 * weights(patch_nums, mode))
    _train(configs, tmp_path / "doubled")
    plain, doubled = recorded["loss"]
    assert doubled == pytest.approx(2 * plain, rel=1e-5)


def test_prompts_are_dropped_at_the_null_prob(configs, tmp_path, recorded):
    _train(configs, tmp_path / "kept", "--null-prob", "0")
    assert len(recorded["prompts"]) == 1 and None not in recorded["prompts"][0]
    _train(configs, tmp_path / "dropped", "--null-prob", "1")
    assert recorded["prompts"][1] == [None] * 4


def test_the_final_step_is_evaluated_and_its_metrics_shipped(configs, tmp_path, recorded):
    _train(configs, tmp_path / "w", steps=2)  # --eval-every 0: evaluated at the end only
    metrics = json.loads((tmp_path / "w" / "config.json").read_text())["training"]["metrics"]
    assert metrics["step"] == 2 and metrics["overall"] == 0.25 and metrics["loss"] == pytest.approx(
        0.98 * recorded["loss"][0] + 0.02 * recorded["loss"][1])


def test_a_resumed_run_continues_exactly_where_the_uninterrupted_one_would(configs, tmp_path, recorded):
    _train(configs, tmp_path / "whole", "--null-prob", "0", steps=2)
    _train(configs, tmp_path / "split", "--null-prob", "0", steps=1)
    _train(configs, tmp_path / "split", "--null-prob", "0", steps=2)
    whole, first, second = recorded["prompts"][:2], recorded["prompts"][2:3], recorded["prompts"][3:]
    assert first + second == whole  # the same batches
    a = load_file(str(tmp_path / "whole" / "train_state" / "shapeworld-var" / "model.safetensors"))
    b = load_file(str(tmp_path / "split" / "train_state" / "shapeworld-var" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same weights: optimizer moments and schedule came back


def test_decoder_tuning_on_generated_latents_samples_only_the_last_scale_by_default(configs, tmp_path, monkeypatch,
                                                                                   recorded):
    from arscale.train import tokenizer_multiscale

    tok, _ = configs
    _train(configs, tmp_path / "gen")  # a generator trained on the tokenizer's codes
    config = json.loads((tok / "tokenizer_config.json").read_text())
    model = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(config))
    common.load_strict(model, load_file(str(tok / "tokenizer.safetensors")), "tok")
    common.TrainState(tmp_path / "s").save(model, None, step=0, config=config, elapsed=0.0)  # the trained tokenizer
    earliest = []
    draw = tokenizer_multiscale.draw_start_scales

    def recording(batch, num_scales, fraction, first, generator):
        earliest.append((num_scales, first))
        return draw(batch, num_scales, fraction, first, generator)

    monkeypatch.setattr(tokenizer_multiscale, "draw_start_scales", recording)
    monkeypatch.setattr(tokenizer_multiscale, "reconstruction_accuracy", lambda model: {})
    assert cli(["train", "shapeworld-tokenizer", "--decoder-only", "--generator", str(tmp_path / "gen"), "--steps", "1",
                "--batch-size", "2", "--eval-every", "0", "--state-dir", str(tmp_path / "s"),
                "--out", str(tmp_path / "tuned")]) == 0
    assert earliest and set(earliest) == {(3, 2)}  # three scales: only the last one (index 2) is sampled
