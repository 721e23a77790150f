"""Third-party strategies and scorers: registration, plugins, config errors, scorer contracts, provenance."""

from __future__ import annotations

import json
import textwrap
from importlib import metadata

import numpy as np
import pytest
from PIL import Image
from search_fakes import FakeNextScale, FakeNextToken, FakeScorer

from arscale import plugins
from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.scorers.base import SCORERS, load_scorer, register_scorer
from arscale.search.base import STRATEGIES, make_strategy, register_strategy, strategy_extras
from arscale.search.best_of_n import BestOfN
from arscale.search.importance import ImportanceConfig
from arscale.search.scaling_ar import ScalingAR, ScalingARConfig
from arscale.search.tts_var import TTSVAR, TTSVARConfig

PLUGIN = textwrap.dedent('''
    """A plugin as a user would write it: a strategy that keeps the brightest of N, and a brightness scorer."""
    from dataclasses import dataclass

    from arscale.scorers.base import register_scorer
    from arscale.search.base import StrategyConfig, register_strategy
    from arscale.search.rollout import check_n, make_search


    class Brightness:
        name = "brightness"
        input_size = 32

        def reward(self, images, prompts):
            return images.mean((1, 2, 3))


    def load_brightness(device="cpu"):
        return Brightness()


    @dataclass
    class BrightestConfig(StrategyConfig):
        reward: str = "brightness"


    class Brightest:
        name = "brightest"
        Config = BrightestConfig

        def __init__(self, config=None):
            self.config = config or BrightestConfig()

        def run(self, generator, prompts, n, *, seed=0, prompt_offset=0, scorer=None):
            search = make_search(generator, seed=seed, prompt_offset=prompt_offset, scorer=scorer,
                                 reward_name=self.config.reward)
            traj = search.start(prompts, check_n(n))
            search.run_to(traj, search.length)
            images = search.finish(traj)
            return search.result(traj, images, search.final_rewards(traj, images), self.name, self.config.to_dict())


    def register():
        register_strategy("brightest", Brightest)
        register_scorer("brightness", load_brightness)
''')


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    name = f"user_plugin_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(PLUGIN + "\nregister()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


class Pick:
    """Keeps candidate 0 (a strategy needs only `name`, `Config`, `__init__(config)` and `run`)."""

    name = "pick-first"
    Config = ImportanceConfig  # any StrategyConfig dataclass

    def __init__(self, config):
        self.config = config

    def run(self, generator, prompts, n, *, seed=0, prompt_offset=0, scorer=None):
        raise NotImplementedError


def test_register_strategy_and_scorer(registries):
    register_strategy("pick-first", Pick)
    strategy = make_strategy("pick-first", {"lam": 2.0})
    assert isinstance(strategy, Pick) and strategy.config.lam == 2.0
    register_strategy("pick-first", Pick)  # the same target again is harmless
    with pytest.raises(ArscaleError, match="'pick-first' is already registered"):
        register_strategy("pick-first", BestOfN)
    register_strategy("pick-first", BestOfN, replace=True)
    assert isinstance(make_strategy("pick-first"), BestOfN)
    register_strategy("by-path", "arscale.search.raw:Raw")
    assert make_strategy("by-path").name == "raw"
    for bad in ("", "two words", "a,b", "rerank@v2"):
        with pytest.raises(ArscaleError, match="non-empty string without spaces, commas or @"):
            register_strategy(bad, Pick)
    with pytest.raises(ArscaleError, match="'module:attribute'"):
        register_strategy("no-colon", "arscale.search.raw.Raw")
    register_strategy("missing", "arscale.search.raw:Nope")
    with pytest.raises(ArscaleError, match="strategy 'missing'.*cannot be imported"):
        make_strategy("missing")
    register_strategy("no-config", object)
    with pytest.raises(ArscaleError, match="needs a `Config` dataclass"):
        make_strategy("no-config")

    register_scorer("fake", lambda device="cpu": FakeScorer())
    assert load_scorer("fake", device="cpu").name == "fake-reward"
    register_scorer("not-a-scorer", lambda device="cpu": object())
    with pytest.raises(ArscaleError, match="'not-a-scorer' returned object, which is not a Scorer"):
        load_scorer("not-a-scorer", device="cpu")


def test_plugin_from_the_environment_drives_the_cli(registries, plugin_module, monkeypatch, tmp_path):
    monkeypatch.setenv(plugins.ENV_VAR, f" {plugin_module} ,")
    out = tmp_path / "gen"
    assert cli(["generate", "a photo of a red circle", "--strategy", "brightest", "--n", "3", "--seed", "2",
                "--out", str(out)]) == 0
    assert plugins.load_plugins() == []  # each plugin is imported once
    result = json.loads((out / "result.json").read_text())
    assert result["config"] == {"reward": "brightness"}
    # the scores are the plugin scorer's (brightness, on the images resized to 32 px: the mean barely moves)
    # and the pick is the highest
    scores = result["scores"]
    pixels = [np.asarray(Image.open(out / f"shapeworld-var_brightest_{i:02d}.png"), dtype=float) / 255
              for i in range(3)]
    assert scores == pytest.approx([p.mean() for p in pixels], abs=5e-3)
    assert result["chosen"] == [int(np.argmax(scores))]


def test_a_plugin_that_fails_to_import_is_one_line(registries, monkeypatch, capsys):
    monkeypatch.setenv(plugins.ENV_VAR, "no_such_plugin_module_xyz")
    assert cli(["generate", "a photo of a red circle"]) == 2
    err = capsys.readouterr().err
    assert "plugin 'no_such_plugin_module_xyz' from $ARSCALE_PLUGINS failed: ModuleNotFoundError" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("body, match", [
    ("raise RuntimeError('boom')", "failed: RuntimeError: boom"),
    ("undefined_name + 1", "failed: NameError"),
    ("from arscale.search.base import register_strategy\nregister_strategy('raw', object)",
     "'raw' is already registered"),
])
def test_a_plugin_that_fails_in_any_way_is_one_line_naming_it(registries, tmp_path, monkeypatch, capsys, body, match):
    name = f"broken_plugin_{abs(hash(body))}"
    (tmp_path / f"{name}.py").write_text(body + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV_VAR, name)
    assert cli(["--version"]) == 2
    err = capsys.readouterr().err
    assert f"plugin '{name}' from $ARSCALE_PLUGINS" in err and match in err and "Traceback" not in err


def test_an_entry_point_to_a_missing_function_is_one_line(registries, plugin_module, monkeypatch):
    ep = metadata.EntryPoint("bad", f"{plugin_module}:no_such_register", plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [ep])
    with pytest.raises(ArscaleError, match="plugin entry point 'bad=.*' .* failed: AttributeError"):
        plugins.load_plugins()


def test_entry_point_plugins_call_their_registration_function(registries, plugin_module, monkeypatch):
    (ep,) = metadata.EntryPoints([metadata.EntryPoint("mine", f"{plugin_module}:register", plugins.ENTRY_POINT_GROUP)])
    STRATEGIES.pop("brightest", None)  # importing the module registered it; the entry point must do it again
    SCORERS.pop("brightness", None)
    monkeypatch.setattr(plugins.metadata, "entry_points",
                        lambda group: [ep] if group == plugins.ENTRY_POINT_GROUP else [])
    assert plugins.load_plugins() == [f"mine={plugin_module}:register"]
    assert "brightest" in STRATEGIES and "brightness" in SCORERS


@pytest.mark.parametrize("cls, data, match", [
    (ScalingARConfig, {"delta_rec": "0.1"}, r"ScalingARConfig.delta_rec must be a number, got '0.1' \(str\)"),
    (ScalingARConfig, {"block": 4.5}, "block must be an integer"),
    (ScalingARConfig, {"scale_steps": 1}, "scale_steps must be true or false"),
    (ScalingARConfig, {"prune_quantil": 0.3}, "did you mean 'prune_quantile'"),
    (ScalingARConfig, {"p": 0.3}, "the paper's p is 'prune_quantile'"),
    (TTSVARConfig, {"batch": [8, "x"]}, "batch must be a list of integers or null"),
    (TTSVARConfig, {"λ": 3}, "the paper's λ is 'lam'"),
    (ImportanceConfig, {"checkpoints": 0.5}, "checkpoints must be a list of numbers"),
    (ImportanceConfig, [1, 2], "a JSON object of field: value"),
])
def test_config_values_of_the_wrong_kind_are_one_line_errors(cls, data, match):
    with pytest.raises(ArscaleError, match=match):
        cls.from_dict(data)


def test_fixed_length_tuples_are_checked_per_position():
    from dataclasses import dataclass

    from arscale.search.base import StrategyConfig

    @dataclass
    class Pair(StrategyConfig):
        pair: tuple[int, str] = (1, "a")

    assert Pair.from_dict({"pair": [2, "b"]}).pair == [2, "b"]
    for bad in ([2, 3], [2, "b", "c"]):
        with pytest.raises(ArscaleError, match=r"Pair.pair must be a list \[an integer, a string\]"):
            Pair.from_dict({"pair": bad})


def test_config_types_accept_what_json_gives():
    assert ScalingARConfig.from_dict({"cfg_base": 3, "top_k": None, "terminate": False}).cfg_base == 3
    assert TTSVARConfig.from_dict({"batch": [8, 4, 2]}).batch == [8, 4, 2]
    assert ImportanceConfig.from_dict({"checkpoints": [0.25, 1 / 3]}).checkpoints == [0.25, 1 / 3]


class Returns(FakeScorer):
    def __init__(self, make):
        super().__init__()
        self.make = make

    def reward(self, images, prompts):
        return self.make(super().reward(images, prompts))


def test_scorer_outputs_are_checked_and_converted():
    gen, prompts = FakeNextScale(), ["a", "bb"]
    as_numpy = BestOfN().run(gen, prompts, 3, seed=1, scorer=Returns(lambda r: r.numpy()))
    as_tensor = BestOfN().run(gen, prompts, 3, seed=1, scorer=FakeScorer())
    assert [c.score for c in as_numpy.candidates[1]] == pytest.approx([c.score for c in as_tensor.candidates[1]])
    for make, match in [(lambda r: r[:1], r"returned shape \[1\] for 6 images; it must be \[6\]"),
                        (lambda r: r.view(2, 3), r"returned shape \[2, 3\]"),
                        (lambda r: ["x"] * len(r), "must return a tensor, got list")]:
        with pytest.raises(ArscaleError, match=f"scorer 'fake-reward': reward\\(\\) {match}"):
            BestOfN().run(gen, prompts, 3, seed=1, scorer=Returns(make))


def test_a_scorer_without_the_method_a_strategy_needs_is_named():
    class RewardOnly:
        name, input_size = "reward-only", 16

        def reward(self, images, prompts):
            return images.mean((1, 2, 3))

    strategy = TTSVAR(TTSVARConfig(), feature_scorer=RewardOnly())
    with pytest.raises(ArscaleError, match=r"scorer 'reward-only' has no features\(\)"):
        strategy.run(FakeNextScale(), ["a"], 4, seed=0, scorer=RewardOnly())


def test_results_name_the_scorer_that_was_used():
    result = BestOfN().run(FakeNextScale(), ["a"], 2, seed=0, scorer=FakeScorer())
    assert result.config["reward"] == "fake-reward"  # not the config's default, which run() was told to skip
    assert BestOfN().config.reward == "shapeworld-reward"


class CountedDecodes(FakeNextToken):
    def __init__(self):
        super().__init__()
        self.decode_calls = []

    def decode_flops(self, rows, size):
        self.decode_calls.append((rows, size))
        return float(rows * size)


def test_scaling_ar_counts_decodes_as_the_shared_loop_does():
    gen = CountedDecodes()
    sar = ScalingAR(ScalingARConfig(terminate=False)).run(gen, ["a"], 3, seed=0)
    bon = BestOfN().run(gen, ["a"], 3, seed=0, scorer=FakeScorer())
    assert gen.decode_calls == [(3, gen.image_size), (3, gen.image_size)]
    assert sar.cost.decode_flops == bon.cost.decode_flops == 3 * gen.image_size
    assert sar.cost.decode_count == bon.cost.decode_count == 3


def test_strategy_extras_and_unused_scorer_note(capsys, tmp_path):
    assert strategy_extras(ScalingAR()) is not None and strategy_extras(BestOfN()) is None
    assert cli(["generate", "a photo of a red circle", "--model", "shapeworld-ar", "--n", "1", "--scorer",
                "shapeworld-reward", "--out", str(tmp_path)]) == 0
    assert "raw uses no scorer; --scorer shapeworld-reward is ignored" in capsys.readouterr().err


def test_bench_manifest_records_the_run_scorer():
    from arscale.bench.manifest import differences
    from arscale.bench.runner import manifest_strategies, parse_runs

    specs = parse_runs("raw,best-of-n")
    with_clip = manifest_strategies(specs, "clip")
    assert with_clip["best-of-n"]["reward_used"] == "clip" and "reward_used" not in with_clip["raw"]
    assert with_clip["best-of-n"]["resolved"]["reward"] == "shapeworld-reward"  # the config as resolved
    assert manifest_strategies(specs)["best-of-n"]["reward_used"] == "shapeworld-reward"
    # a manifest written before `reward_used` existed still resumes; another reward or config does not
    before = {"strategies": {k: {kk: vv for kk, vv in v.items() if kk != "reward_used"} for k, v in with_clip.items()}}
    assert differences(before, {"strategies": with_clip}) == []
    other = manifest_strategies(parse_runs("raw,best-of-n", ['best-of-n={"reward": "clip"}']), "clip")
    assert differences({"strategies": with_clip}, {"strategies": other})
