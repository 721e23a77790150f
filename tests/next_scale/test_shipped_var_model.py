"""The shipped ShapeWorld-VAR weights load, fit the contract, and `arscale generate` runs end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from arscale.cli import main as cli
from arscale.generators.next_scale.shapeworld import WEIGHTS_DIR, load_shapeworld_var


def test_shipped_weights_fit_the_issue_limits():
    sizes = sum(f.stat().st_size for f in WEIGHTS_DIR.glob("*.safetensors"))
    assert sizes <= 8 * 2**20
    config = json.loads((WEIGHTS_DIR / "config.json").read_text())
    patch_nums = config["transformer"]["patch_nums"]
    assert len(patch_nums) >= 7 and sum(p * p for p in patch_nums) <= 700
    assert (WEIGHTS_DIR / "MODEL_CARD.md").exists()


def test_shipped_model_loads_and_is_deterministic():
    gen = load_shapeworld_var()
    assert gen.image_size == 64 and gen.num_scales >= 7
    a = gen.generate(["a photo of a red circle"], 2, seed=3)
    b = gen.generate(["a photo of a red circle"], 2, seed=3)
    assert a.shape == (2, 3, 64, 64) and (a == b).all()
    # the shipped sampler: scales 0-3 at temperature 1 without top-k, the rest sharpened (model card)
    assert gen.sampler_options(3) == {"temperature": 1.0, "top_k": 0, "top_p": 0.0}
    assert gen.sampler_options(4) == {"temperature": 0.8, "top_k": 16, "top_p": 0.0}


@pytest.mark.slow
def test_generate_command_end_to_end(tmp_path, capsys):
    code = cli(["generate", "a photo of a blue square", "--n", "3", "--seed", "1", "--out", str(tmp_path)])
    assert code == 0
    pngs = sorted(p.name for p in tmp_path.glob("shapeworld-var_raw_??.png"))
    assert len(pngs) == 3
    img = np.asarray(Image.open(tmp_path / pngs[0]))
    assert img.shape == (64, 64, 3)
    assert np.asarray(Image.open(tmp_path / "grid.png")).shape[0] > 64
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["prompt"] == "a photo of a blue square" and summary["n"] == 3


@pytest.mark.parametrize("argv, message", [
    (["generate", "a photo of a dog"], "unknown word 'dog'"),
    (["generate", ""], "empty prompt"),
    (["generate", "a photo of a circle", "--n", "0"], "--n must be at least 1"),
    (["generate", "a photo of a circle", "--cfg", "-2"], "--cfg must be a finite number ≥ 0, got -2.0"),
])
def test_generate_command_errors_are_one_line(tmp_path, capsys, argv, message):
    assert cli([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_generate_notes_prompts_outside_the_grammar_and_records_config_and_tree(tmp_path, capsys):
    assert cli(["generate", "a photo of two circle", "--n", "2", "--strategy", "best-of-n",
                "--scorer", "shapeworld-reward", "--config", '{"reward": "shapeworld-reward"}',
                "--out", str(tmp_path)]) == 0
    assert "outside the ShapeWorld grammar" in capsys.readouterr().err
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["config"]["reward"] == "shapeworld-reward" and len(summary["search_tree"]["parent"]) >= 2
    frame = (np.asarray(Image.open(tmp_path / "grid.png")) == (0, 170, 0)).all(-1)  # the pick, framed in green
    assert frame.sum() > 0 and len(summary["chosen"]) == 1
    assert cli(["generate", "a photo of two circles", "--n", "1", "--out", str(tmp_path)]) == 0
    assert "outside" not in capsys.readouterr().err


def test_resuming_the_committed_state_keeps_the_shipped_sampler():
    # `--replace-shipped` resumes train_state/shapeworld-var and exports the state's config: its sampler must be
    # the one the shipped model card reports, coarse-scale settings included
    from pathlib import Path

    state = Path(__file__).resolve().parents[2] / "train_state" / "shapeworld-var" / "state.json"
    shipped = json.loads((WEIGHTS_DIR / "config.json").read_text())["sampling"]
    assert json.loads(state.read_text())["config"]["sampling"] == shipped
    assert shipped["coarse_scales"] >= 1
