"""The objects a user keeps, sends or stores (results, trees, telemetry) compare and serialise as data."""

import copy
import json
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from tiny_families import BrightnessScorer, tiny_llamagen
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.cli import main as cli
from arscale.generators.trajectories import SearchTree
from arscale.search.base import StrategyConfig, make_strategy, register_strategy
from arscale.search.result import Candidate, CostRecord, SearchResult

PROMPT = "a photo of a red circle"


@pytest.fixture(scope="module")
def tiny_var():
    return build_tiny_var(*tiny_var_configs((1, 2, 3, 4, 5, 6), image_size=24))


def test_a_tts_var_result_equals_its_pickled_and_deep_copies(tiny_var):
    with torch.no_grad():
        result = make_strategy("tts-var", {"features": "latent"}).run(tiny_var, [PROMPT], 4, seed=1,
                                                                       scorer=BrightnessScorer())
    assert result.telemetry["previews"]  # partial images kept for the search-tree plot
    assert result == pickle.loads(pickle.dumps(result))
    assert result == copy.deepcopy(result)
    other = copy.deepcopy(result)
    other.telemetry["previews"][0]["images"][0, 0, 0, 0] ^= 1  # one pixel of one preview differs
    assert result != other


def test_a_scaling_ar_result_with_terminated_candidates_equals_its_pickled_copy():
    with torch.no_grad():
        result = make_strategy("scaling-ar").run(tiny_llamagen(), [3, 5], 4, seed=1)
    ended = [tr for per in result.telemetry["prompts"] for tr in per if tr["ended"] is not None]
    assert ended and all("preview" in tr for tr in ended)  # terminated candidates keep their partial image
    assert result == pickle.loads(pickle.dumps(result))


def _result(telemetry: dict) -> SearchResult:
    tree = SearchTree()
    tree.add([-1, -1], [0, 0], 0)
    tree.end([1], 2, "prune")
    tree.end([0], 4, "final")
    image = np.zeros((4, 4, 3), np.uint8)
    return SearchResult(["p"], [[Candidate(0, 0, image, 0.5, True)]], tree, CostRecord(), "plugin", {}, telemetry)


def test_to_dict_is_a_snapshot_not_a_view_of_the_tree():
    result = _result({})
    saved = result.to_dict()
    assert saved["tree"] == {"parent": [-1, -1], "prompt": [0, 0], "born": [0, 0], "ended": [4, 2],
                             "reason": ["final", "prune"]}
    saved["tree"]["parent"].append(0)  # e.g. a caller building a bigger record from it
    assert len(result.tree) == 2 and result.tree.parent == [-1, -1]
    result.extend(_result({}))  # the next chunk of prompts
    assert saved["tree"]["prompt"] == [0, 0]


def test_to_dict_turns_a_zero_dimensional_array_into_a_number():
    result = _result({"kl": torch.tensor(0.25).numpy(), "steps": np.asarray(3), "mean": np.float32(0.5)})
    assert json.loads(json.dumps(result.to_dict()))["telemetry"] == {"kl": 0.25, "steps": 3, "mean": 0.5}


@dataclass
class _ScoresConfig(StrategyConfig):
    score: str = "tensor"  # tensor | text


class _TensorScores:
    """A plugin strategy whose candidates' scores are what `scores[r]` of a tensor gives: 0-d tensors."""

    name = "tensor-scores"
    Config = _ScoresConfig

    def __init__(self, config=None):
        self.config = config or _ScoresConfig()

    def run(self, generator, prompts, n, *, seed=0, prompt_offset=0, scorer=None):
        image = np.zeros((8, 8, 3), np.uint8)
        scores = torch.tensor([0.25, 0.5]) if self.config.score == "tensor" else ["0.25", "0.5"]
        return SearchResult(list(prompts), [[Candidate(i, 0, image, scores[0], False),
                                             Candidate(i, 1, image, scores[1], True)] for i in range(len(prompts))],
                            SearchTree(), CostRecord(), self.name, {})


def test_scalar_tensor_scores_are_stored_as_numbers_and_text_scores_refused(registries, tmp_path, capsys):
    register_strategy("tensor-scores", _TensorScores)
    assert cli(["bench", "--strategies", "tensor-scores", "--n", "1", "--limit", "1", "--quiet",
                "--out", str(tmp_path / "b")]) == 0
    record = json.loads((tmp_path / "b" / "tensor-scores" / "n1" / "00000" / "record.json").read_text())
    assert record["candidate_scores"] == [0.25, 0.5]
    assert cli(["generate", PROMPT, "--strategy", "tensor-scores", "--n", "2", "--out", str(tmp_path / "g")]) == 0
    assert json.loads((tmp_path / "g" / "result.json").read_text())["scores"] == [0.25, 0.5]
    capsys.readouterr()
    assert cli(["generate", PROMPT, "--strategy", "tensor-scores", "--config", '{"score": "text"}', "--n", "2",
                "--out", str(tmp_path / "t")]) == 2
    assert "'tensor-scores': a candidate's score must be a number or None, got '0.25' (str)" in capsys.readouterr().err
