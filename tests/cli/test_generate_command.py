"""`arscale generate`: behaviour a mutation audit found untested (file names, metadata, options that must act)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from arscale.cli import main as cli
from arscale.commands import generate as generate_command
from arscale.generators.trajectories import SearchTree
from arscale.scorers.base import register_scorer
from arscale.search.base import StrategyConfig, register_strategy
from arscale.search.result import Candidate, CostRecord, SearchResult

PROMPT = "a photo of a red circle"


@dataclass
class _NoFields(StrategyConfig):
    pass


class Many:
    """A stand-in strategy that returns n tiny distinct images at once (no model work), the last one chosen."""

    name = "audit-many"
    Config = _NoFields
    uses_reward = False

    def __init__(self, config=None):
        self.config = config

    def run(self, generator, prompts, n, *, seed=0, prompt_offset=0, scorer=None):
        cands = [Candidate(0, i, np.full((4, 4, 3), i % 256, np.uint8), score=i / n, chosen=i == n - 1)
                 for i in range(n)]
        return SearchResult(list(prompts), [cands], SearchTree(), CostRecord(), self.name, {})


class _Brightness:
    name = "audit-brightness"
    input_size = 32

    def reward(self, images, prompts):
        return images.mean((1, 2, 3))


def test_file_numbers_have_as_many_digits_as_the_last_index_needs(registries, tmp_path):
    # 100 images are numbered 00..99 (two digits), not 000..099
    register_strategy("audit-many", Many)
    out = tmp_path / "g"
    assert cli(["generate", PROMPT, "--strategy", "audit-many", "--n", "100", "--out", str(out)]) == 0
    assert (out / "shapeworld-var_audit-many_99.png").is_file()
    assert (out / "shapeworld-var_audit-many_00_x4.png").is_file()
    assert not list(out.glob("*_000*.png"))


def test_captions_name_the_score_a_strategy_without_reward_picks_by(registries, tmp_path, monkeypatch):
    register_strategy("audit-many", Many)
    seen = []
    real = generate_command.tile_captions

    def spy(candidates, images, digits, score_name):
        seen.append(score_name)
        return real(candidates, images, digits, score_name)

    monkeypatch.setattr(generate_command, "tile_captions", spy)
    assert cli(["generate", PROMPT, "--strategy", "audit-many", "--n", "2", "--out", str(tmp_path)]) == 0
    assert seen == ["confidence"]  # uses_reward = False: a confidence, not a reward


def test_the_x4_copy_is_four_times_the_image_and_an_ignored_scorer_is_not_recorded(tmp_path, capsys):
    assert cli(["generate", PROMPT, "--n", "1", "--scorer", "shapeworld-reward", "--out", str(tmp_path)]) == 0
    assert "raw uses no scorer" in capsys.readouterr().err
    native = np.asarray(Image.open(tmp_path / "shapeworld-var_raw_00.png"))
    big = np.asarray(Image.open(tmp_path / "shapeworld-var_raw_00_x4.png"))
    assert big.shape == (4 * native.shape[0], 4 * native.shape[1], 3)
    assert (big == native.repeat(4, 0).repeat(4, 1)).all()
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["scorer"] is None  # the note said it was ignored: result.json must not claim it scored


def test_search_strategies_use_the_seed_and_record_it_and_their_scorer(tmp_path, capsys):
    runs = {}
    for seed in (0, 3):
        out = tmp_path / str(seed)
        assert cli(["generate", PROMPT, "--strategy", "best-of-n", "--scorer", "shapeworld-reward", "--n", "2",
                    "--seed", str(seed), "--out", str(out)]) == 0
        assert "uses no scorer" not in capsys.readouterr().err  # best-of-n does use it
        summary = json.loads((out / "result.json").read_text())
        assert summary["seed"] == seed and summary["scorer"] == "shapeworld-reward"
        runs[seed] = [np.asarray(Image.open(out / f"shapeworld-var_best-of-n_{i:02d}.png")) for i in range(2)]
    assert not all((a == b).all() for a, b in zip(runs[0], runs[3]))  # another seed, other candidates


def test_the_scorer_loads_on_the_commands_device(registries, tmp_path):
    devices = []

    def load(device="cpu"):
        devices.append(device)
        return _Brightness()

    register_scorer("audit-brightness", load)
    assert cli(["generate", PROMPT, "--strategy", "best-of-n", "--scorer", "audit-brightness", "--n", "2",
                "--device", "cpu:0", "--config", '{"reward": "audit-brightness"}', "--out", str(tmp_path)]) == 0
    assert devices and set(devices) == {"cpu:0"}


def test_device_auto_is_resolved_before_the_model_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli(["generate", PROMPT, "--n", "1", "--device", "auto", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "shapeworld-var_raw_00.png").is_file()


def test_threads_are_set_and_negative_threads_refused(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda k: calls.append(k))
    assert cli(["generate", PROMPT, "--n", "1", "--threads", "3", "--out", str(tmp_path / "a")]) == 0
    assert calls == [3]
    assert cli(["generate", PROMPT, "--n", "1", "--threads", "-1", "--out", str(tmp_path / "b")]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err and calls == [3]
    assert not (tmp_path / "b").exists()


def test_the_default_batch_runs_a_small_raw_n_in_one_batch(tmp_path):
    # default --batch 32: n = 3 is one batch, so its cost is that of --batch 3 (the empty text encoded once)
    costs = []
    for extra in ([], ["--batch", "3"]):
        out = tmp_path / str(len(extra))
        assert cli(["generate", PROMPT, "--n", "3", *extra, "--out", str(out)]) == 0
        cost = json.loads((out / "result.json").read_text())["cost"]
        costs.append((cost["transformer_flops"], cost["generated_tokens"]))
    assert costs[0] == costs[1]


def test_the_shapeworld_ar_model_also_notes_prompts_outside_its_grammar(tmp_path, capsys):
    assert cli(["generate", "a photo of two circle", "--model", "shapeworld-ar", "--n", "1",
                "--out", str(tmp_path)]) == 0
    assert "outside the ShapeWorld grammar" in capsys.readouterr().err


def test_an_earlier_runs_json_file_is_noted_too(tmp_path, capsys):
    (tmp_path / "old_result.json").write_text("{}")
    assert cli(["generate", PROMPT, "--n", "1", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "also holds 1 image or JSON file(s) of an earlier run (e.g. old_result.json)" in err


def test_the_grids_empty_cells_are_white_not_separator_grey():
    tiles = [np.zeros((8, 8, 3), dtype=np.uint8)] * 3  # 2 columns, 2 rows: the last cell is empty
    canvas = generate_command.grid(tiles)
    pad, side = 4, 32
    empty = canvas[pad + side + pad: pad + 2 * side + pad, pad + side + pad: pad + 2 * side + pad]
    assert (empty == 255).all()
