"""Audit (mutation testing of src/arscale/train): what the ShapeWorld-AR trainer learns from - the next-token
targets, the replay buffer, text dropout, the decoder tuning and its learning rate - and what a resume keeps."""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from tiny_shapeworld_ar import TINY_AR, write_tiny_vq_folder

from arscale.cli import main as cli
from arscale.generators.next_token.generator import left_pad
from arscale.generators.next_token.shapeworld import ShapeWorldAR, ShapeWorldARConfig
from arscale.train import ar, common
from arscale.train.lr_schedule import cosine_lr


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A random tiny VQ tokenizer folder, as `arscale train shapeworld-ar-tokenizer` writes it."""
    return write_tiny_vq_folder(tmp_path_factory.mktemp("vq"))


def test_the_loss_is_the_next_token_likelihood_of_each_code_given_the_earlier_ones():
    torch.manual_seed(0)
    config = ShapeWorldARConfig.from_dict({**TINY_AR, "transformer": {**TINY_AR["transformer"], "grid": 2}})
    model = ShapeWorldAR(config).eval()
    prompts = ["a photo of a red circle", None]
    codes = torch.randint(16, (2, 4), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        loss = ar.training_loss(model, prompts, codes)
        # reference: one token at a time, each predicted from the prompt and the codes before it only
        features, mask = left_pad(*model.encode_condition(prompts))
        t = model.transformer
        prefix = t.embed_condition(features)
        nll = []
        for i in range(codes.shape[1]):
            x = torch.cat([prefix, t.tok_embeddings(codes[:, :i])], 1)
            logits = t(x, mask)[:, -1]
            nll.append(F.cross_entropy(logits, codes[:, i], reduction="none"))
    assert loss.item() == pytest.approx(torch.stack(nll).mean().item(), rel=1e-5)


def test_the_replay_buffer_keeps_the_latest_samples_with_their_prompts():
    buffer = ar.ReplayBuffer(3, seed=0)
    assert buffer.sample(2)[0] == []
    buffer.add(["p0"], torch.tensor([[0, 0]]))
    prompts, codes = buffer.sample(20)
    assert prompts == ["p0"] * 20 and codes.eq(0).all()  # only what was added, never an empty slot
    buffer.add([f"p{i}" for i in range(1, 6)], torch.arange(1, 6).repeat_interleave(2).view(5, 2))  # wraps twice
    assert sorted(buffer.prompts) == ["p3", "p4", "p5"]
    prompts, codes = buffer.sample(60)
    assert set(prompts) == {"p3", "p4", "p5"}
    assert all(c.tolist() == [int(p[1:])] * 2 for p, c in zip(prompts, codes))  # each prompt with its own codes


def _ar_run(tokenizer_dir, tmp_path, monkeypatch, *extra, steps=2):
    """Train the tiny decoder; every batch's prompts and codes are recorded."""
    seen = []
    loss = ar.training_loss

    def recording(model, prompts, codes):
        seen.append((list(prompts), codes.clone()))
        return loss(model, prompts, codes)

    monkeypatch.setattr(ar, "training_loss", recording)
    out = tmp_path / "out"
    argv = ["train", "shapeworld-ar", "--tokenizer", str(tokenizer_dir), "--config", str(tokenizer_dir / "ar.json"),
            "--batch-size", "4", "--fresh-fraction", "0.5", "--replay-size", "8", "--steps", str(steps),
            "--out", str(out), *extra]
    assert cli(argv) == 0
    return out, seen


def test_the_trainer_replays_real_samples_and_drops_prompts_at_the_given_rate(tokenizer_dir, tmp_path, monkeypatch):
    _, seen = _ar_run(tokenizer_dir, tmp_path, monkeypatch, "--text-dropout", "0", "--tune-decoder-every", "0",
                      steps=3)
    fresh = {}
    for prompts, codes in seen:
        assert None not in prompts  # --text-dropout 0: every prompt is kept
        for p, c in zip(prompts[:2], codes[:2]):
            fresh.setdefault(p, []).append(c)
        for p, c in zip(prompts[2:], codes[2:]):  # replayed rows: an earlier fresh sample, prompt and codes together
            assert any(torch.equal(c, f) for f in fresh[p])
    _, seen = _ar_run(tokenizer_dir, tmp_path / "all", monkeypatch, "--text-dropout", "1", "--tune-decoder-every",
                      "0", steps=1)
    assert seen[0][0] == [None] * 4  # --text-dropout 1: every prompt is the unconditional one


def test_decoder_tuning_runs_at_its_learning_rate_and_a_resume_continues_it(tokenizer_dir, tmp_path, monkeypatch):
    out, _ = _ar_run(tokenizer_dir, tmp_path, monkeypatch, "--tune-decoder-every", "1", "--lr", "1e-3")
    start, tuned = load_file(str(tokenizer_dir / "tokenizer.safetensors")), out / "train_state" / "shapeworld-ar"
    after = load_file(str(tuned / "tokenizer" / "tokenizer.safetensors"))  # fp32; --out holds its fp16 copy
    assert any(not torch.equal(start[k], after[k]) for k in start if k.startswith("decoder."))
    assert all(torch.equal(start[k], after[k]) for k in start if not k.startswith(("decoder.", "post_quant_conv.")))
    shipped = load_file(str(out / "tokenizer.safetensors"))
    assert all(torch.equal(shipped[k], after[k].half()) for k in after)

    def groups(path):
        with safe_open(str(path), framework="pt") as f:
            return json.loads(f.metadata()["param_groups"]), f.get_tensor("state.0.step")

    # the decoder's own schedule (default --decoder-lr 3e-4, no warm-up) at its last step, not the decoder model's
    dec_groups, dec_steps = groups(tuned / "tokenizer" / "optimizer.safetensors")
    assert dec_groups[0]["lr"] == pytest.approx(cosine_lr(2, 2, 3e-4, 0)) and float(dec_steps) == 2
    # the decoder model's schedule reaches every parameter group (weights with and without decay)
    model_groups, _ = groups(tuned / "optimizer.safetensors")
    assert [g["lr"] for g in model_groups] == pytest.approx([cosine_lr(1, 2, 1e-3, 300)] * 2)
    assert common.TrainState(tuned).info()["metrics"]["step"] == 2

    # a resume tunes the decoder it saved (here at lr 0, so it stays as saved) with the saved Adam moments
    saved = load_file(str(tuned / "tokenizer" / "tokenizer.safetensors"))
    _ar_run(tokenizer_dir, tmp_path, monkeypatch, "--tune-decoder-every", "1", "--decoder-lr", "0", steps=3)
    resumed = load_file(str(tuned / "tokenizer" / "tokenizer.safetensors"))
    assert all(torch.equal(saved[k], resumed[k]) for k in saved)
    assert float(groups(tuned / "tokenizer" / "optimizer.safetensors")[1]) == 3


def test_a_decoder_config_that_does_not_fit_the_tokenizer_is_one_line(tokenizer_dir, tmp_path, capsys):
    config = {**TINY_AR, "transformer": {**TINY_AR["transformer"], "vocab_size": 8}}
    (tmp_path / "bad.json").write_text(json.dumps(config))
    assert cli(["train", "shapeworld-ar", "--tokenizer", str(tokenizer_dir), "--config", str(tmp_path / "bad.json"),
                "--steps", "1", "--batch-size", "2", "--out", str(tmp_path / "out")]) == 2
    assert "the decoder config does not match the tokenizer (vocab size / grid)" in capsys.readouterr().err
