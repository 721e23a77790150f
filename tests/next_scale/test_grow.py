"""Deepening a trained scale-wise transformer (train/grow.py): same output at the start, and it trains."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs, write_tiny_training_configs

from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.train import common
from arscale.train.grow import block_sources, deepen_state


def test_block_sources_spread_the_copies_and_keep_the_order():
    assert block_sources(4, 6) == [0, 0, 1, 2, 2, 3]
    assert block_sources(2, 2) == [0, 1]
    assert block_sources(1, 3) == [0, 0, 0]
    with pytest.raises(ArscaleError, match="deepen"):
        block_sources(4, 3)


def _logits(gen, prompts, x):
    cond = gen.conditioner(prompts)
    return gen.transformer(cond.pooled, x, cond.context, cond.context_mask)


def test_deepened_stack_computes_the_same_logits_and_its_new_blocks_learn():
    tok, model = tiny_var_configs(depth=2)
    small = build_tiny_var(tok, model, seed=1)
    deep_model = json.loads(json.dumps(model))
    deep_model["transformer"]["depth"] = 5
    deep = build_tiny_var(tok, deep_model, seed=2)
    deep.load_state_dict(deepen_state(small.state_dict(), 2, 5))
    prompts = ["a red circle", "two blue squares"]
    x = torch.randn(2, small.transformer.seq_len - 1, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(_logits(deep, prompts, x), _logits(small, prompts, x), rtol=0, atol=1e-5)
    # a silent copy is not a dead one: its zeroed output projections get gradients
    deep.train()
    _logits(deep, prompts, x).logsumexp(-1).sum().backward()
    silent = deep.transformer.blocks[1]  # the second copy of block 0
    assert torch.count_nonzero(silent.attn.proj.weight) == 0
    assert silent.attn.proj.weight.grad.abs().sum() > 0 and silent.ffn.fc2.weight.grad.abs().sum() > 0


def test_deepen_state_rejects_a_state_with_other_blocks():
    tok, model = tiny_var_configs(depth=2)
    state = build_tiny_var(tok, model).state_dict()
    with pytest.raises(ArscaleError, match="blocks 0..2"):
        deepen_state(state, 3, 4)


def test_train_init_from_deepens_trained_weights(tmp_path, capsys):
    write_tiny_training_configs(tmp_path)
    out, deeper = tmp_path / "weights", tmp_path / "deeper"
    args = ["--batch-size", "4", "--eval-every", "1000"]
    assert cli(["train", "shapeworld-tokenizer", "--steps", "1", "--config", str(tmp_path / "tok.json"),
                "--state-dir", str(tmp_path / "tok_state"), "--out", str(out), *args]) == 0
    assert cli(["train", "shapeworld-var", "--steps", "1", "--config", str(tmp_path / "var.json"),
                "--tokenizer", str(out), "--state-dir", str(tmp_path / "var_state"), "--out", str(out), *args]) == 0
    (tmp_path / "depth3.json").write_text(json.dumps({"transformer": {"depth": 3}}))
    grow = ["train", "shapeworld-var", "--tokenizer", str(out), "--state-dir", str(tmp_path / "deep_state"),
            "--out", str(deeper), *args]
    assert cli([*grow, "--steps", "0", "--init-from", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: expected model.safetensors and config.json" in capsys.readouterr().err
    assert cli([*grow, "--steps", "0", "--init-from", str(out), "--config", str(tmp_path / "depth3.json")]) == 0
    shipped = json.loads((deeper / "config.json").read_text())
    assert shipped["transformer"]["depth"] == 3
    assert shipped["text_encoder"] == json.loads((out / "config.json").read_text())["text_encoder"]
    from arscale.generators.next_scale.shapeworld import load_shapeworld_var

    # zero steps: the deepened model draws exactly the images of the one it grew from
    a = load_shapeworld_var(weights=out).generate(["a red circle"], 2, seed=3)
    b = load_shapeworld_var(weights=deeper).generate(["a red circle"], 2, seed=3)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
    assert common.TrainState(tmp_path / "deep_state").info()["step"] == 0
    # an existing state resumes; --init-from only seeds new runs, and says so
    capsys.readouterr()
    assert cli([*grow, "--steps", "0", "--init-from", str(out)]) == 0
    assert "is ignored" in capsys.readouterr().out
    assert json.loads((deeper / "config.json").read_text())["transformer"]["depth"] == 3
