"""A user training ShapeWorld models of their own: a tokenizer resumed beside the model trained on its codes,
--init-from a folder of one's own, and another model's folder given to a generator's --weights."""

import shutil
from pathlib import Path

import pytest

from arscale.cli import main
from arscale.errors import ArscaleError

WEIGHTS = Path(__file__).resolve().parents[2] / "src" / "arscale" / "weights"
QUICK = ["--batch-size", "1", "--eval-every", "0", "--threads", "1"]


def own_tokenizer(folder: Path) -> bytes:
    """Train a one-step ShapeWorld-VAR tokenizer into `folder`; its exported weights."""
    assert main(["train", "shapeworld-tokenizer", "--out", str(folder), "--steps", "1", *QUICK]) == 0
    return (folder / "tokenizer.safetensors").read_bytes()


def beside_a_model(folder: Path) -> None:
    """Put a ShapeWorld-VAR transformer beside the tokenizer in `folder` (as `train shapeworld-var` would)."""
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(WEIGHTS / "shapeworld-var" / name, folder / name)


def test_a_tokenizer_is_not_resumed_under_a_model_trained_on_its_codes(tmp_path, capsys):
    """Resuming a tokenizer's full training beside its transformer is refused, as a fresh one is."""
    out = tmp_path / "mine"
    codes = own_tokenizer(out)
    beside_a_model(out)
    capsys.readouterr()
    assert main(["train", "shapeworld-tokenizer", "--out", str(out), "--steps", "2", *QUICK]) == 2
    assert "trained on its tokenizer's codes" in capsys.readouterr().err
    assert (out / "tokenizer.safetensors").read_bytes() == codes


def test_init_from_a_folder_of_ones_own_keeps_its_tokenizer(tmp_path):
    """--init-from DIR into a new --out pairs DIR's transformer with DIR's tokenizer, not the shipped one."""
    mine = tmp_path / "mine"
    codes = own_tokenizer(mine)
    beside_a_model(mine)
    out = tmp_path / "new"
    assert main(["train", "shapeworld-var", "--init-from", str(mine), "--steps", "0", "--out", str(out), *QUICK]) == 0
    assert (out / "tokenizer.safetensors").read_bytes() == codes


@pytest.mark.parametrize("model", ["shapeworld-var", "shapeworld-ar"])
def test_a_reward_folder_given_as_generator_weights_is_named(model):
    """A reward folder given to --weights / --model-weights is named as a reward, not as incomplete weights."""
    from arscale.generators.registry import load_generator

    with pytest.raises(ArscaleError, match="holds a ShapeWorld reward, not a ShapeWorld-(VAR|AR) model"):
        load_generator(model, weights=WEIGHTS / "shapeworld-reward")
