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
    from arscale.generators.registry import load_generator

    assert summary["cfg"] == load_generator("shapeworld-var").sampling.cfg  # the model's own, recorded


@pytest.mark.parametrize("argv, message", [
    (["generate", "a photo of a dog"], "unknown word 'dog'"),
    (["generate", ""], "empty prompt"),
    (["generate", "a photo of a circle", "--n", "0"], "--n must be at least 1"),
    (["generate", "a photo of a circle", "--batch", "0"], "--batch must be at least 1"),
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
    captured = capsys.readouterr()
    assert "outside the ShapeWorld grammar" in captured.err
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["config"]["reward"] == "shapeworld-reward" and len(summary["search_tree"]["parent"]) >= 2
    frame = (np.asarray(Image.open(tmp_path / "grid.png")) == (0, 170, 0)).all(-1)  # the pick, framed in green
    assert frame.sum() > 0 and len(summary["chosen"]) == 1
    assert f"chosen: shapeworld-var_best-of-n_{summary['chosen'][0]:02d}.png" in captured.out
    assert cli(["generate", "a photo of two circles", "--n", "1", "--out", str(tmp_path)]) == 0
    assert "outside" not in capsys.readouterr().err


def test_raw_images_do_not_depend_on_the_batch(tmp_path):
    # raw `--n 5 --batch 2` runs three batches (copies 0-1, 2-3, 4) and joins them: the images, the tree and
    # the cost are those of one batch of five, but for the empty text (guidance's) encoded once per batch
    runs = {}
    for batch in ("2", "5"):
        out = tmp_path / batch
        assert cli(["generate", "a photo of a red circle", "--n", "5", "--batch", batch, "--out", str(out)]) == 0
        images = [np.asarray(Image.open(out / f"shapeworld-var_raw_{i:02d}.png")) for i in range(5)]
        runs[batch] = images, json.loads((out / "result.json").read_text())
    (small, joined), (big, whole) = runs["2"], runs["5"]
    assert all((a == b).all() for a, b in zip(small, big))
    assert len({a.tobytes() for a in small}) == 5  # five different samples, not one repeated
    assert joined["search_tree"] == whole["search_tree"] and joined["search_tree"]["prompt"] == [0, 1, 2, 3, 4]
    assert joined["cost"]["generated_tokens"] == whole["cost"]["generated_tokens"] > 0
    empty_text = load_shapeworld_var().conditioner.encoder.forward_flops(1)
    assert joined["cost"]["transformer_flops"] == pytest.approx(whole["cost"]["transformer_flops"] + 2 * empty_text)
    assert joined["chosen"] == whole["chosen"] == [0, 1, 2, 3, 4]


def test_the_grid_of_many_images_stays_a_picture():
    from arscale.commands.generate import GRID_PIXELS, grid

    tile = np.zeros((64, 64, 3), dtype=np.uint8)
    assert grid([tile] * 4).shape == (4 + 2 * 260, 4 + 2 * 260, 3)  # few images: ×4, 4 px apart
    many = grid([tile] * 1000)  # 32 columns: ×4 would be 8258 px wide
    assert GRID_PIXELS >= many.shape[1] >= 32 * 64
    large = grid([np.full((384, 384, 3), 7, dtype=np.uint8)] * 100)  # 10 columns: even ×1 would be 3862 px
    assert large.shape[1] <= GRID_PIXELS and (large == 7).any(-1).sum() > 0.8 * large.shape[0] * large.shape[1]


def test_the_grid_frames_a_pick_only_among_others():
    from arscale.commands.generate import CHOSEN_FRAME, grid

    tiles = [np.full((8, 8, 3), 9, dtype=np.uint8)] * 4
    green = (grid(tiles, chosen=[2]) == CHOSEN_FRAME).all(-1)
    assert green.sum() == (32 + 8) ** 2 - 32 ** 2  # one frame, four pixels wide, around one ×4 tile
    assert not (grid(tiles, chosen=[0, 1, 2, 3]) == CHOSEN_FRAME).all(-1).any()  # raw: each is its own pick


def test_grid_tiles_say_their_file_score_pick_and_copies():
    from types import SimpleNamespace

    from arscale.commands.generate import CAPTION_HEIGHT, CHOSEN_FRAME, grid, tile_captions

    a, b = np.full((16, 16, 3), 40, dtype=np.uint8), np.full((16, 16, 3), 90, dtype=np.uint8)
    candidates = [SimpleNamespace(score=0.5, chosen=False), SimpleNamespace(score=0.25, chosen=True),
                  SimpleNamespace(score=0.5, chosen=False)]
    captions = tile_captions(candidates, [a, b, a.copy()], 2, "reward")
    assert captions == ["00 · reward 0.5", "01 · reward 0.25 · chosen", "02 · reward 0.5 · = 00"]
    raw = [SimpleNamespace(score=None, chosen=True)] * 2  # each image its own pick: no "chosen", no score
    assert tile_captions(raw, [a, b], 2, "reward") == ["00", "01"]
    plain, captioned = grid([a, b, a], chosen=[1]), grid([a, b, a], chosen=[1], captions=captions)
    assert captioned.shape[0] == plain.shape[0] + 2 * CAPTION_HEIGHT  # a strip under each of two rows
    assert captioned.shape[1] == plain.shape[1]
    strip = captioned[4 + 64: 4 + 64 + CAPTION_HEIGHT]  # the first row's captions, under its ×4 tiles
    assert (strip < 128).all(-1).any()  # black text
    r, g, b_ = (strip.astype(int)[..., k] for k in range(3))
    green = (g > r + 60) & (g > b_ + 60)
    assert green[:, 4 + 68: 4 + 68 + 64].sum() > 20 and not green[:, :4 + 64].any()  # the pick's caption alone
    assert CHOSEN_FRAME[1] > CHOSEN_FRAME[0] + 60
    assert grid([a] * 3, scale=1, captions=["x"] * 3).shape == grid([a] * 3, scale=1).shape  # too narrow to write


def test_batch_is_noted_for_strategies_that_search_together(tmp_path, capsys):
    assert cli(["generate", "a photo of a red circle", "--strategy", "best-of-n", "--scorer", "shapeworld-reward",
                "--n", "2", "--batch", "1", "--out", str(tmp_path)]) == 0
    assert "note: --batch is for raw sampling; best-of-n searches its 2 candidates together" in capsys.readouterr().err


def test_resuming_the_committed_state_keeps_the_shipped_sampler():
    # `--replace-shipped` resumes train_state/shapeworld-var and exports the state's config: its sampler must be
    # the one the shipped model card reports, coarse-scale settings included
    from pathlib import Path

    state = Path(__file__).resolve().parents[2] / "train_state" / "shapeworld-var" / "state.json"
    shipped = json.loads((WEIGHTS_DIR / "config.json").read_text())["sampling"]
    assert json.loads(state.read_text())["config"]["sampling"] == shipped
    assert shipped["coarse_scales"] >= 1
