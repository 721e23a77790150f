"""Audit (mutation testing of src/arscale/train): the two tokenizer trainers - their loss terms (edges, outline
weights, the codebook loss), dead-code re-seeding, the learning rate of a decoder-only phase, what they record
and ship, and an exact resume."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from tiny_shapeworld_ar import TINY_VQ
from tiny_shapeworld_var import write_tiny_training_configs

from arscale.cli import main as cli
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer, MultiScaleTokenizerConfig
from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer
from arscale.train import common, tokenizer_multiscale, tokenizer_vq
from arscale.train.lr_schedule import cosine_lr


def _lr(state_dir):
    with safe_open(str(state_dir / "optimizer.safetensors"), framework="pt") as f:
        return [g["lr"] for g in json.loads(f.metadata()["param_groups"])]


@pytest.mark.parametrize("edge_loss", [tokenizer_vq.edge_loss, tokenizer_multiscale.edge_loss])
def test_the_edge_loss_sees_outlines_in_both_directions(edge_loss):
    ramp = torch.arange(6.0).expand(1, 3, 6, 6)  # grows along the width: horizontal gradients of 1
    flat = torch.zeros_like(ramp)
    assert edge_loss(flat, ramp).item() == pytest.approx(1.0)
    assert edge_loss(flat, ramp.transpose(-1, -2)).item() == pytest.approx(1.0)
    assert edge_loss(ramp, ramp + 3).item() == 0.0  # a shifted copy has the same outlines


def test_outline_weights_cover_a_band_around_each_object_and_nothing_else():
    image = torch.full((1, 3, 20, 20), 240 / 255)
    image[..., 6:14, 6:14] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)  # a red square
    w = tokenizer_multiscale.boundary_weights(image, 4.0)[0, 0]
    assert w[0, 0] == 1 and w[10, 10] == 1  # far background, and deep inside the square
    assert w[6, 10] == 5 and w[5, 10] == 5 and w[4, 10] == 5  # on the outline and just outside it
    assert w[2, 10] == 1


def test_dead_codes_are_reseeded_from_current_latents_and_live_ones_kept():
    torch.manual_seed(0)
    model = VQTokenizer(VQConfig(**TINY_VQ))
    before = model.codebook.weight.detach().clone()
    latents = torch.nn.functional.normalize(torch.randn(2, 4, 3, 3), dim=1)
    usage = torch.ones(16)
    usage[[2, 5]] = 0.0
    assert tokenizer_vq.reseed_dead_codes(model, usage, latents) == 2
    pool = latents.permute(0, 2, 3, 1).reshape(-1, 4)
    after = model.codebook.weight.detach()
    assert torch.cdist(after[[2, 5]], pool).min(1).values.max() < 0.1  # near a latent now
    live = [i for i in range(16) if i not in (2, 5)]
    assert torch.equal(after[live], before[live]) and usage.eq(1).all()


def test_dead_multiscale_codes_are_reseeded_from_the_last_residuals():
    torch.manual_seed(0)
    config = MultiScaleTokenizerConfig.from_dict({"patch_nums": [1, 2], "vocab_size": 8, "code_dim": 4, "ch": 4,
                                                  "ch_mult": [1, 2], "image_size": 4})
    model = MultiScaleTokenizer(config)
    model(torch.rand(2, 3, 4, 4))
    before = model.quantizer.embedding.weight.detach().clone()
    usage = torch.ones(8)
    usage[3] = 0.0
    assert tokenizer_multiscale.reseed_dead_codes(model, usage) == 1
    after = model.quantizer.embedding.weight.detach()
    assert torch.cdist(after[[3]], model.quantizer.last_residuals).min() < 0.1
    assert torch.equal(after[[0, 1, 2, 4, 5, 6, 7]], before[[0, 1, 2, 4, 5, 6, 7]]) and usage[3] == 1


@pytest.fixture
def quick(monkeypatch):
    """Stub the exact-evaluator reconstruction checks (60 renders each); record every step's loss."""
    losses = []
    diverged = common.stop_if_diverged

    def recording(loss, step, args, rate="lr"):
        losses.append(loss)
        return diverged(loss, step, args, rate)

    monkeypatch.setattr(common, "stop_if_diverged", recording)
    monkeypatch.setattr(tokenizer_vq, "reconstruction_accuracy", lambda model: {"overall": 0.5})
    monkeypatch.setattr(tokenizer_multiscale, "reconstruction_accuracy", lambda model: {"overall": 0.5})
    return losses


def _vq(tmp_path, out, *extra):
    (tmp_path / "vq.json").write_text(json.dumps(TINY_VQ))
    assert cli(["train", "shapeworld-ar-tokenizer", "--config", str(tmp_path / "vq.json"), "--batch-size", "2",
                "--eval-every", "0", "--out", str(tmp_path / out), *extra]) == 0
    return tmp_path / out / "train_state" / "shapeworld-ar-tokenizer"


def test_the_vq_tokenizer_trains_its_codebook_and_resumes_exactly(tmp_path, quick):
    whole = _vq(tmp_path, "whole", "--steps", "2")
    split = _vq(tmp_path, "split", "--steps", "1")
    torch.manual_seed(0)
    initial = VQTokenizer(VQConfig(**TINY_VQ)).codebook.weight.detach()
    assert not torch.equal(load_file(str(split / "model.safetensors"))["codebook.weight"], initial)  # the VQ loss
    _vq(tmp_path, "split", "--steps", "2")
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(split / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert common.TrainState(split).info()["metrics"] == {"step": 2, "overall": 0.5}


def test_a_vq_resume_without_optimizer_moments_warms_the_learning_rate_up_again(tmp_path, quick):
    state = _vq(tmp_path, "w", "--steps", "1")
    (state / "optimizer.safetensors").unlink()
    _vq(tmp_path, "w", "--steps", "2")
    assert _lr(state) == pytest.approx([cosine_lr(1, 2, 1e-3, 200) / 200])  # first step of the 200-step re-warm


def test_a_run_cut_by_its_time_limit_ships_the_steps_it_trained(tmp_path, quick):
    _vq(tmp_path, "w", "--steps", "5", "--time-limit", "1e-9")
    config = json.loads((tmp_path / "w" / "tokenizer_config.json").read_text())
    assert config["trained_steps"] == 1 and common.TrainState(tmp_path / "w" / "train_state" /
                                                              "shapeworld-ar-tokenizer").info()["step"] == 1


def _multiscale(tmp_path, *extra):
    tmp_path.mkdir(exist_ok=True)
    write_tiny_training_configs(tmp_path)
    assert cli(["train", "shapeworld-tokenizer", "--config", str(tmp_path / "tok.json"), "--batch-size", "2",
                "--eval-every", "0", "--out", str(tmp_path / "w"), "--state-dir", str(tmp_path / "s"), *extra]) == 0


def test_the_outline_weight_enters_the_multiscale_loss(tmp_path, quick):
    _multiscale(tmp_path / "a", "--steps", "1", "--boundary-weight", "0")
    _multiscale(tmp_path / "b", "--steps", "1", "--boundary-weight", "4")
    assert quick[1] > quick[0]  # same data and weights: only the extra weight on the outlines differs


def test_a_decoder_only_phase_runs_its_own_schedule_and_every_phase_is_evaluated_at_its_end(tmp_path, quick):
    _multiscale(tmp_path, "--steps", "2")
    assert common.TrainState(tmp_path / "s").info()["metrics"]["overall"] == 0.5
    _multiscale(tmp_path, "--steps", "4", "--decoder-only", "--lr", "0.01")
    # phase steps 0..1 of 2, with a one-step warm-up: the cosine has not started to fall yet
    assert cosine_lr(1, 2, 0.01, 1) == pytest.approx(0.01)
    assert _lr(tmp_path / "s") == pytest.approx([0.01])
    metrics = common.TrainState(tmp_path / "s").info()["metrics"]
    assert metrics == {"step": 4, "overall": 0.5, "phase": "decoder", "phase_start": 2}


def test_decoder_only_beside_the_tokenizers_own_training_state_does_not_crash(tmp_path, quick, capsys):
    _vq(tmp_path, "out", "--steps", "1")  # the tokenizer and its state in out/, as `--out out` leaves them
    code = cli(["train", "shapeworld-ar-tokenizer", "--decoder-only", str(tmp_path / "out"), "--steps", "3",
                "--batch-size", "2", "--eval-every", "0", "--out", str(tmp_path / "out")])
    assert code == 2 and "give --decoder-only a --state-dir of its own" in capsys.readouterr().err  # told what to do


def test_a_decoder_only_state_resumes_as_such_and_full_training_refuses_it(tmp_path, quick, capsys):
    _vq(tmp_path, "tok", "--steps", "1")
    tune = ["train", "shapeworld-ar-tokenizer", "--decoder-only", str(tmp_path / "tok"), "--batch-size", "2",
            "--eval-every", "0", "--state-dir", str(tmp_path / "tune"), "--out", str(tmp_path / "tuned")]
    assert cli([*tune, "--steps", "1"]) == 0 and cli([*tune, "--steps", "2"]) == 0  # resumed, decoder only
    assert common.TrainState(tmp_path / "tune").info()["step"] == 2
    measured = common.TrainState(tmp_path / "tune").info()["metrics"]
    assert measured == {"step": 2, "overall": 0.5}
    assert cli([*tune, "--steps", "2"]) == 0  # nothing left to train: exported again, its metrics kept
    assert common.TrainState(tmp_path / "tune").info()["metrics"] == measured
    capsys.readouterr()
    assert cli(["train", "shapeworld-ar-tokenizer", "--steps", "3", "--batch-size", "2", "--eval-every", "0",
                "--state-dir", str(tmp_path / "tune"), "--out", str(tmp_path / "full")]) == 2
    assert "holds a --decoder-only run" in capsys.readouterr().err
