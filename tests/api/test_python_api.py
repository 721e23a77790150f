"""The Python API a reviewer met: misspelt options, configs shared with the caller, fields that the
generator's kind ignores, prompt offsets and scorer arguments. Each refusal is one ArscaleError line."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent.parent / "search_tts"))
from search_fakes import FakeNextScale, FakeNextToken, FakeScorer

from arscale.errors import ArscaleError
from arscale.generators.registry import load_generator
from arscale.scorers.base import SCORERS, load_scorer
from arscale.search.base import make_strategy
from arscale.search.best_of_n import BestOfN
from arscale.search.importance import Importance, ImportanceConfig
from arscale.search.tts_var import TTSVARConfig

PROMPTS = ["a photo of a red circle", "a photo of two squares"]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)  # later tests keep the process's thread count


# -- sampling overrides -------------------------------------------------------------------------------------

@pytest.mark.parametrize("model, listed", [("shapeworld-var", "cfg_schedule"), ("shapeworld-ar", "preview_fill")])
def test_a_misspelt_sampling_option_names_itself_and_the_nearest_field(model, listed):
    # was: "holds a ShapeWorld-VAR model, not a ShapeWorld-VAR model (...)" for VAR, a raw TypeError for AR
    with pytest.raises(ArscaleError) as info:
        load_generator(model, temprature=0.5)
    message = str(info.value)
    assert "\n" not in message and "holds" not in message
    assert "unknown option 'temprature' (did you mean 'temperature'?)" in message
    assert listed in message and "weights" in message


def test_the_tiny_random_ar_model_checks_its_options_too():
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar

    with pytest.raises(ArscaleError, match="did you mean 'top_k'"):  # was a TypeError from TokenGenerator
        random_shapeworld_ar(0, topk=8)
    assert random_shapeworld_ar(0, top_k=8).top_k == 8  # a known option still applies


def test_known_sampling_overrides_still_apply():
    assert load_generator("shapeworld-var", temperature=0.5).sampling.temperature == 0.5


# -- scorer options -----------------------------------------------------------------------------------------

def test_an_unknown_scorer_option_is_one_line_naming_the_accepted_ones():
    with pytest.raises(ArscaleError) as info:  # was: TypeError: load_reward() got an unexpected keyword argument
        load_scorer("shapeworld-reward", devcie="cpu")
    assert str(info.value) == ("scorer 'shapeworld-reward' takes no option 'devcie' (did you mean 'device'?); "
                               "it takes device, weights")


def test_a_factory_taking_any_option_is_left_to_check_its_own(monkeypatch):
    seen = {}

    def factory(**options):
        seen.update(options)
        return FakeScorer()

    monkeypatch.setitem(SCORERS, "api-test-any", factory)
    load_scorer("api-test-any", device="cpu", anything=1)
    assert seen == {"device": "cpu", "anything": 1}


# -- importance's config --------------------------------------------------------------------------------------

def test_importance_refuses_a_scale_listed_twice_like_tts_var():
    with pytest.raises(ArscaleError, match=r"resample_at lists a scale twice: \[4, 4\]"):
        make_strategy("importance", {"resample_at": [4, 4]})
    with pytest.raises(ArscaleError, match="lists a scale twice"):  # the same words as tts-var's schedule
        make_strategy("tts-var", {"resample_at": [4, 4], "cluster_at": []}).schedule(7, 8)


def test_importance_refuses_checkpoints_on_a_next_scale_model():
    # was: silently ignored (next-scale models resample at resample_at)
    strategy = Importance(ImportanceConfig(checkpoints=[0.25]))
    with pytest.raises(ArscaleError, match="checkpoints .* apply to next-token generators.*resample_at"):
        strategy.run(FakeNextScale(), PROMPTS, 2, seed=0, scorer=FakeScorer())


def test_importance_refuses_resample_at_on_a_next_token_model():
    strategy = Importance(ImportanceConfig(resample_at=[2]))
    with pytest.raises(ArscaleError, match="resample_at .* applies to next-scale generators.*checkpoints"):
        strategy.run(FakeNextToken(), PROMPTS, 2, seed=0, scorer=FakeScorer())


def test_importance_defaults_run_on_both_kinds():
    for gen in (FakeNextScale(), FakeNextToken()):
        res = Importance().run(gen, PROMPTS, 2, seed=1, scorer=FakeScorer())
        assert all(len(c) == 2 for c in res.candidates)


# -- configs and make_strategy ------------------------------------------------------------------------------

def test_from_dict_does_not_share_lists_with_the_callers_dict():
    data = {"resample_at": [1, 3]}
    config = ImportanceConfig.from_dict(data)
    data["resample_at"].append(5)  # was: the strategy's config changed with it
    assert config.resample_at == [1, 3]
    strategy = make_strategy("importance", data)
    data["resample_at"].clear()
    assert strategy.config.resample_at == [1, 3, 5]


def test_make_strategy_takes_an_instance_of_its_config_class():
    config = ImportanceConfig(lam=3.0, resample_at=[2])
    strategy = make_strategy("importance", config)  # was: "a ImportanceConfig is a JSON object ..., got ..."
    assert strategy.config == config and strategy.config is not config
    config.resample_at.append(4)
    assert strategy.config.resample_at == [2]


def test_an_instance_is_checked_as_a_dict_would_be():
    config = ImportanceConfig()
    config.lam = -1.0  # set after construction, so __post_init__ never saw it
    with pytest.raises(ArscaleError, match="lam"):
        make_strategy("importance", config)
    config = ImportanceConfig()
    config.potential = 3  # a value of the wrong type
    with pytest.raises(ArscaleError, match="ImportanceConfig.potential must be a string"):
        make_strategy("importance", config)
    with pytest.raises(ArscaleError, match="'importance' takes a ImportanceConfig or a dict .* got TTSVARConfig"):
        make_strategy("importance", TTSVARConfig())


def test_the_entry_points_have_docstrings():
    # was: None for all four
    assert "docs/strategies.md" in make_strategy.__doc__ and "importance" in make_strategy.__doc__
    assert all(word in load_generator.__doc__ for word in ("shapeworld-var", "weights=", "device=", "cfg="))
    assert all(word in load_scorer.__doc__ for word in ("shapeworld-reward", "device=", "weights="))
    assert "particles" in Importance.run.__doc__


# -- prompt_offset and scorer arguments ------------------------------------------------------------------------

@pytest.mark.parametrize("offset, needle", [(-1, "prompt_offset must be ≥ 0, got -1"),
                                            (1.5, "prompt_offset must be a whole number, got 1.5"),
                                            (True, "prompt_offset must be a whole number, got True")])
@pytest.mark.parametrize("strategy", ["best-of-n", "importance", "raw"])
def test_prompt_offset_is_a_whole_number_at_least_zero(offset, needle, strategy):
    with pytest.raises(ArscaleError, match=needle):  # was: accepted silently
        make_strategy(strategy).run(FakeNextScale(), PROMPTS, 2, seed=0, prompt_offset=offset, scorer=FakeScorer())


def test_a_numpy_prompt_offset_is_the_same_offset():
    plain = BestOfN().run(FakeNextScale(), PROMPTS, 2, seed=4, prompt_offset=3, scorer=FakeScorer())
    numpy = BestOfN().run(FakeNextScale(), PROMPTS, 2, seed=4, prompt_offset=np.int64(3), scorer=FakeScorer())
    assert np.array_equal(plain.chosen(1).image, numpy.chosen(1).image)


class _Nameless:
    """A scorer without a `name` (the attribute is optional for third-party scorers)."""

    input_size = 16

    def __init__(self, value=None):
        self.value = value

    def reward(self, images, prompts):
        base = images[:, 0].mean((1, 2))
        return base if self.value is None else torch.full_like(base, self.value)


@pytest.mark.parametrize("strategy", ["best-of-n", "importance"])
def test_a_scorer_without_a_name_runs_and_is_named_by_its_class(strategy):
    # was: AttributeError: '_Nameless' object has no attribute 'name'
    res = make_strategy(strategy).run(FakeNextScale(), PROMPTS, 2, seed=0, scorer=_Nameless())
    assert res.config["reward"] == "_Nameless"


def test_a_nameless_scorers_bad_reward_is_named_by_its_class():
    with pytest.raises(ArscaleError, match="_Nameless reward"):
        BestOfN().run(FakeNextScale(), PROMPTS, 2, seed=0, scorer=_Nameless(float("nan")))


@pytest.mark.parametrize("strategy", ["best-of-n", "importance", "tts-var"])
def test_a_scorer_that_is_not_one_is_refused_in_one_line(strategy):
    with pytest.raises(ArscaleError) as info:  # was: AttributeError deep in the run
        make_strategy(strategy).run(FakeNextScale(), PROMPTS, 2, seed=0, scorer=123)
    assert str(info.value) == "scorer must be a scorer object or a registered name, got 123 (int)"


def test_scaling_ar_checks_its_prompt_offset_too():
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar
    from arscale.search.scaling_ar import ScalingAR

    gen = random_shapeworld_ar(seed=0)
    with pytest.raises(ArscaleError, match="prompt_offset"):
        ScalingAR().run(gen, ["a photo of a red circle"], 2, prompt_offset=-1)


def test_a_result_is_plain_json_without_its_images():
    import json

    from search_fakes import FakeNextScale, FakeScorer

    from arscale.search.tts_var import TTSVAR

    res = TTSVAR().run(FakeNextScale(), ["a", "b"], 8, seed=0, scorer=FakeScorer())
    assert res.telemetry["previews"] and isinstance(res.telemetry["previews"][0]["images"], (list, np.ndarray))
    data = json.loads(json.dumps(res.to_dict()))  # no array, tensor or numpy scalar left
    assert data["prompts"] == ["a", "b"] and data["strategy"] == "tts-var" and data["tree"] == res.tree.to_dict()
    assert [[c["chosen"] for c in per] for per in data["candidates"]] == [[c.chosen for c in per]
                                                                          for per in res.candidates]
    assert data["cost"]["generated_tokens"] == res.cost.generated_tokens > 0
    assert "images" not in data["telemetry"]["previews"][0] and data["telemetry"]["operations"]
    assert data["telemetry"]["operations"][0]["kept_nodes"] == res.telemetry["operations"][0]["kept_nodes"]


def test_a_scorer_object_without_an_input_size_is_one_line():
    class NoSize:
        name = "mine"

        def reward(self, images, prompts):
            return torch.zeros(len(images))

    with pytest.raises(ArscaleError, match="scorer 'mine' needs an `input_size`"):
        make_strategy("best-of-n").run(FakeNextScale(), ["a"], 2, scorer=NoSize())


def test_a_config_changed_after_construction_is_checked_when_the_strategy_runs():
    strategy = make_strategy("tts-var")
    strategy.config.lam = -5.0  # would favour the lowest rewards
    with pytest.raises(ArscaleError, match="lam"):
        strategy.run(FakeNextScale(), ["a"], 4, scorer=FakeScorer())
    strategy.config.lam = 5.0
    assert strategy.run(FakeNextScale(), ["a"], 4, scorer=FakeScorer()).chosen(0).score is not None
