"""Extending arscale through its Python API as a user would, and misusing it: each misuse is a one-line error where
it happens (a strategy's malformed result, a boolean mask for `select`, a SearchResult of mismatched lengths, a
scorer re-registered under its name, images outside [0, 1], a CUDA device on a machine without one, a factory as
a model entry)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.generators.registry import MODELS, load_generator
from arscale.generators.trajectories import SearchTree, Trajectories
from arscale.scorers.base import load_scorer, register_scorer
from arscale.search.base import StrategyConfig, make_strategy, register_strategy
from arscale.search.result import Candidate, CostRecord, SearchResult

PROMPT = "a photo of a red circle"


@dataclass
class _BadConfig(StrategyConfig):
    mode: str = "none"


class _Bad:
    """A plugin strategy whose `run` returns what a hurried author might: None, or a result without a pick."""

    name = "bad-result"
    Config = _BadConfig
    uses_reward = False

    def __init__(self, config=None):
        self.config = config or _BadConfig()

    def run(self, generator, prompts, n, *, seed=0, prompt_offset=0, scorer=None):
        if self.config.mode == "none":
            return None
        image = np.zeros((8, 8, 3), np.uint8)
        return SearchResult(list(prompts), [[Candidate(i, 0, image, 1.0, False)] for i in range(len(prompts))],
                            SearchTree(), CostRecord(), self.name, {})


def test_generate_says_in_one_line_that_a_strategy_returned_no_search_result(registries, tmp_path, capsys):
    """A plugin strategy whose run() returns None is one line naming it, not an AttributeError traceback."""
    register_strategy("bad-result", _Bad)
    code = cli(["generate", PROMPT, "--strategy", "bad-result", "--config", '{"mode": "none"}', "--n", "2",
                "--out", str(tmp_path / "g")])
    assert code == 2 and "'bad-result': run() must return a SearchResult" in capsys.readouterr().err


def test_generate_refuses_a_result_without_a_chosen_candidate(registries, tmp_path, capsys):
    """A result whose prompt has no chosen candidate stops generate in one line instead of being written."""
    register_strategy("bad-result", _Bad)
    code = cli(["generate", PROMPT, "--strategy", "bad-result", "--config", '{"mode": "unchosen"}', "--n", "2",
                "--out", str(tmp_path / "g")])
    assert code == 2 and "0 chosen candidate(s)" in capsys.readouterr().err


def test_bench_refuses_a_result_without_a_chosen_candidate_in_one_line(registries, tmp_path, capsys):
    """bench checks what a strategy returned before it writes anything of it."""
    register_strategy("bad-result", _Bad)
    code = cli(["bench", "--strategies", "bad-result", "--config", 'bad-result={"mode": "unchosen"}', "--n", "1",
                "--limit", "1", "--quiet", "--out", str(tmp_path / "b")])
    assert code == 2 and "0 chosen candidate(s)" in capsys.readouterr().err


def test_a_search_result_with_fewer_candidate_lists_than_prompts_is_refused():
    """SearchResult refuses two prompts with one list of candidates when it is built, not at .images."""
    one = [[Candidate(0, 0, np.zeros((8, 8, 3), np.uint8), 1.0, True)]]
    with pytest.raises(ArscaleError, match="one list of candidates per prompt"):
        SearchResult(["a", "b"], one, SearchTree(), CostRecord(), "x", {})


def test_select_refuses_a_boolean_mask():
    """traj.select(mask) with a bool mask fails at once instead of keeping rows 1 and 0 over and over."""
    traj = Trajectories.for_prompts(["a", "b"], 3, seed=0)
    with pytest.raises(TypeError, match="row indices"):
        traj.select(torch.tensor([True, False, True, False, True, False]))
    assert len(traj) == 6 and traj.prompt_index.tolist() == [0, 0, 0, 1, 1, 1]


def test_a_scorer_registered_anew_under_its_name_is_the_one_a_strategy_uses(registries):
    """replace=True with a factory whose repr equals the old one's still loads the new scorer by name."""

    def make(offset):
        class Mine:  # the same repr for both: <class '...make.<locals>.Mine'>
            name = "mine"
            input_size = 8

            def __init__(self, device="cpu"):
                pass

            def reward(self, images, prompts):
                return images.mean((1, 2, 3)) + offset

        return Mine

    generator = load_generator("shapeworld-var")
    register_scorer("mine-api", make(0.0))
    best = make_strategy("best-of-n", {"reward": "mine-api"})
    first = best.run(generator, [PROMPT], 1, seed=0).chosen(0).score
    register_scorer("mine-api", make(100.0), replace=True)
    again = best.run(generator, [PROMPT], 1, seed=0).chosen(0).score
    assert again == pytest.approx(first + 100.0, abs=1e-3)


@pytest.mark.parametrize("scale, fill", [(255.0, None), (1.0, float("nan"))])
def test_a_scorer_refuses_images_outside_zero_one(scale, fill):
    """The shipped scorers refuse 0..255 floats (a forgotten /255) and NaN, as the contract [0, 1] says."""
    torch.manual_seed(0)
    images = torch.rand(2, 3, 64, 64) * scale
    if fill is not None:
        images[0, 0, 0, 0] = fill
    with pytest.raises(ArscaleError, match=r"in \[0, 1\], got values"):
        load_scorer("shapeworld-reward").reward(images, PROMPT)


def test_one_unbatched_image_with_one_prompt_is_told_its_shape():
    """reward(image [3, H, W], [prompt]) names the [B, 3, H, W] layout, not '3 images but 1 prompts'."""
    with pytest.raises(ArscaleError, match=r"\[B, 3, H, W\]"):
        load_scorer("shapeworld-reward").reward(torch.rand(3, 64, 64), [PROMPT])


def test_a_cuda_device_without_cuda_is_one_line_before_anything_is_built(registries, monkeypatch):
    """load_generator / load_scorer check the device first, as the commands do, and build nothing."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    built = []
    register_scorer("api-device", lambda device="cpu": built.append(device))
    with pytest.raises(ArscaleError, match="CUDA is not available"):
        load_generator("shapeworld-var", device="cuda")
    with pytest.raises(ArscaleError, match="CUDA is not available"):
        load_scorer("api-device", device="cuda")
    assert built == []


def test_a_model_entry_may_be_the_factory_itself(monkeypatch):
    """MODELS takes a factory as the scorer and strategy registries do, not only 'module:factory'."""
    from arscale.generators.next_scale.shapeworld import load_shapeworld_var

    monkeypatch.setitem(MODELS, "api-wrapped-var", lambda **options: load_shapeworld_var(**options))
    assert load_generator("api-wrapped-var").num_scales == 7
