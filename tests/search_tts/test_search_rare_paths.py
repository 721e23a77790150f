"""What a plugin strategy, the search toolkit, the results and each method's config meet on rarely run paths,
each held to a specific message or value."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from search_fakes import FakeNextScale, FakeNextToken, FakeScorer

from arscale.errors import ArscaleError
from arscale.generators.trajectories import SearchTree, Trajectories
from arscale.search.base import StrategyConfig, check_result, read_config, strategy_extras
from arscale.search.result import Candidate, CostRecord, SearchResult
from arscale.search.rollout import make_search


def _result(score: Any = 1.0, image: Any = None, prompts: int = 1) -> SearchResult:
    image = np.zeros((4, 4, 3), np.uint8) if image is None else image
    return SearchResult(["a"] * prompts, [[Candidate(0, 0, image, score, chosen=True)]] * prompts, SearchTree(),
                        CostRecord(), "x", {})


# -- each failed before its fix ---------------------------------------------------------------------------------------
def test_a_search_without_a_reward_scorer_says_so_in_one_line():
    """A plugin strategy (docs/extending.md's toolkit) that names no reward gets the one-line error `rewards` has."""
    search = make_search(FakeNextScale(), seed=0, prompt_offset=0)
    traj = search.start(["a red circle"], 2)
    search.run_to(traj, 2)
    with pytest.raises(ArscaleError, match="this strategy needs a reward scorer"):
        search.score_now(traj, 1)
    search.run_to(traj, search.length)
    images = search.finish(traj)
    with pytest.raises(ArscaleError, match="this strategy needs a reward scorer"):
        search.final_rewards(traj, images)


def test_a_numpy_complex_score_is_refused_like_a_python_or_torch_one():
    for score in (1 + 2j, torch.tensor(1 + 2j)):
        with pytest.raises(ArscaleError, match="a candidate's score must be a number or None"):
            check_result(_result(score), "plugin", 1)
    for score in (np.complex128(1 + 2j), np.array(1 + 2j)):
        with pytest.raises(ArscaleError, match="a candidate's score must be a number or None"):
            check_result(_result(score), "plugin", 1)


# -- search/base.py: what a plugin's strategy or config meets ------------------------------------------------------
def test_check_result_names_a_wrong_prompt_count_and_a_float_image():
    with pytest.raises(ArscaleError, match=r"returned candidates for 2 prompt\(s\) of 3"):
        check_result(_result(prompts=2), "plugin", 3)
    with pytest.raises(ArscaleError, match=r"must be a uint8 \[H, W, 3\] array, got ndarray float32 \(4, 4, 3\)"):
        check_result(_result(image=np.zeros((4, 4, 3), np.float32)), "plugin", 1)
    assert check_result(_result(np.float32(2.5)), "plugin", 1).candidates[0][0].score == 2.5  # numpy scalar: a float
    assert type(check_result(_result(torch.tensor(0.5)), "plugin", 1).candidates[0][0].score) is float


def test_read_config_names_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"lam": 1, "note": "\xe9"}')  # latin-1
    with pytest.raises(ArscaleError, match=r"^--config: cannot read .*config\.json: 'utf-8' codec"):
        read_config(str(path))


def test_a_config_whose_annotations_do_not_resolve_is_taken_unchecked():
    """A plugin's config annotated with a name only imported for type checkers (`from __future__ import annotations`)
    is still built, its values unchecked; a field typed Any takes anything."""

    @dataclasses.dataclass
    class Loose(StrategyConfig):
        x: NotImportedHere = 1  # noqa: F821

    @dataclasses.dataclass
    class Anything(StrategyConfig):
        x: Any = 1
        n: int = 0

    assert Loose.from_dict({"x": "text"}).x == "text"
    assert Anything.from_dict({"x": [1, "a"]}).x == [1, "a"]
    with pytest.raises(ArscaleError, match="Anything.n must be an integer"):
        Anything.from_dict({"n": 1.5})


def test_strategy_extras_prefers_the_strategy_own_method():
    class WithMethod:
        def write_extras(self, result, out_dir):
            return ["from the method"]

    strategy = WithMethod()
    fn = strategy_extras(strategy)
    assert fn is not None and fn.__self__ is strategy and fn(None, None) == ["from the method"]


# -- search/rollout.py: the toolkit's less travelled members --------------------------------------------------------
def test_make_search_loads_named_feature_scorers_and_run_to_calls_the_hook():
    gen = FakeNextScale()
    by_value = make_search(gen, seed=0, prompt_offset=0, features="shapeworld-features")
    by_name = make_search(gen, seed=0, prompt_offset=0, feature_name="shapeworld-features")
    assert by_value.feature_scorer.name == by_name.feature_scorer.name == "shapeworld-features"
    assert by_value.reward_scorer is None
    seen: list[int] = []
    traj = by_name.start(["a red circle"], 2)
    by_name.run_to(traj, 3, hook=seen.append)
    assert seen == [1, 2, 3] and traj.step == 3


def test_features_without_a_feature_scorer_say_so_in_one_line():
    search = make_search(FakeNextScale(), seed=0, prompt_offset=0, scorer=FakeScorer())
    with pytest.raises(ArscaleError, match="^this strategy needs a feature scorer$"):
        search.features(torch.rand(2, 3, 16, 16))


def test_a_non_generator_and_an_empty_prompt_list_are_refused_in_one_line():
    with pytest.raises(ArscaleError, match="object is neither a next-scale nor a next-token generator"):
        make_search(object(), seed=0, prompt_offset=0)
    from arscale.search.best_of_n import BestOfN

    with pytest.raises(ArscaleError, match="^no prompts to run$"):
        BestOfN().run(FakeNextScale(), [], 2, scorer=FakeScorer())


def test_a_prompt_whose_rows_were_all_selected_away_is_named():
    search = make_search(FakeNextScale(), seed=0, prompt_offset=0)
    traj = search.start(["a", "b"], 2)
    search.run_to(traj, search.length)
    traj.select([0, 1], "plugin")  # prompt 1's two rows dropped
    images = search.finish(traj)
    with pytest.raises(RuntimeError, match=r"prompts \[1\] lost all their rows"):
        search.result(traj, images, None, "plugin", {})


def test_a_column_of_rewards_and_a_scalar_reward_for_one_image_are_read_as_scores():
    """A scorer may return [B, 1] (one column) or, for a batch of one, a 0-d tensor: each is one score per image."""

    class Column(FakeScorer):
        def reward(self, images, prompts):
            return torch.arange(len(images), dtype=torch.float32).view(-1, 1) / 4

    class Scalar(FakeScorer):
        def reward(self, images, prompts):
            return torch.tensor(0.25)

    from arscale.search.best_of_n import BestOfN

    result = BestOfN().run(FakeNextScale(), ["a", "b"], 3, scorer=Column())
    assert [[c.score for c in per] for per in result.candidates] == [[0.0, 0.25, 0.5], [0.75, 1.0, 1.25]]
    assert [result.chosen(p).node for p in range(2)] == [result.candidates[0][2].node, result.candidates[1][2].node]
    assert BestOfN().run(FakeNextScale(), ["a"], 1, scorer=Scalar()).chosen(0).score == 0.25


def test_a_next_scale_generator_counts_its_tokens_by_tokens_in_scale_or_is_refused():
    class NoCounts(FakeNextScale):
        patch_nums = None  # and no tokens_in_scale

        def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0, cfg=None):
            return Trajectories.for_prompts(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)

        def step(self, traj):
            traj.step += 1
            return traj

        def flops_per_scale(self, rows):
            return [0.0] * self.num_scales

    search = make_search(NoCounts(), seed=0, prompt_offset=0)
    traj = search.start(["a"], 1)
    with pytest.raises(ArscaleError, match="NoCounts says neither `patch_nums` nor `tokens_in_scale"):
        search.advance(traj)

    class Counted(NoCounts):
        def tokens_in_scale(self, k):
            return 10 * (k + 1)

    search = make_search(Counted(), seed=0, prompt_offset=0)
    traj = search.start(["a", "b"], 2)
    search.run_to(traj, 3)
    assert search.cost.generated_tokens == 4 * (10 + 20 + 30)  # four rows, scales 0..2


# -- search/result.py -----------------------------------------------------------------------------------------------
def test_results_compare_by_value_and_only_to_their_own_kind():
    first, second = _result(), _result()
    assert first == second and first.candidates[0][0] == second.candidates[0][0]
    assert first != "a result" and first.candidates[0][0] != 0
    for a, b, same in [(torch.ones(2), torch.ones(2, dtype=torch.float64), False),  # dtype differs
                       (torch.ones(2), [1.0, 1.0], False),  # a tensor is not a list
                       (torch.tensor([float("nan"), 1.0]), torch.tensor([float("nan"), 1.0]), True)]:
        first.telemetry, second.telemetry = {"t": a}, {"t": b}
        assert (first == second) is same


def test_phase_timers_wait_on_busy_gpus_only_and_on_a_mac_gpu(monkeypatch):
    synced: list[Any] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 2**20 if device == 1 else 0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    with CostRecord().timer("model"):
        assert synced == [0, 1]  # cuda:2 holds nothing of this process: not waited on
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: 4096)
    monkeypatch.setattr(torch.mps, "synchronize", lambda: synced.append("mps"))
    synced.clear()
    with CostRecord().timer("model"):
        pass
    assert synced == ["mps", "mps"]


# -- importance, potentials, clustering, schedule: user input that is refused ----------------------------------------
def test_importance_refuses_an_unknown_potential_and_a_scale_past_the_model():
    from arscale.search.importance import Importance, ImportanceConfig

    with pytest.raises(ArscaleError, match="unknown potential 'best'; choose from value, diff, max, sum"):
        ImportanceConfig(potential="best")
    gen = FakeNextScale()  # 7 scales
    with pytest.raises(ArscaleError, match=r"resample_at \[6\] out of range 0\.\.5 for a model with 7 scales"):
        Importance(ImportanceConfig(resample_at=[2, 6])).run(gen, ["a"], 2, scorer=FakeScorer())


def test_a_potential_of_an_unscored_column_is_refused():
    from arscale.search.potentials import potential

    history = torch.tensor([[0.5, 1.0], [0.2, 0.3]])
    assert potential(history, 1, "diff").tolist() == pytest.approx([0.5, 0.1])
    with pytest.raises(ArscaleError, match=r"reward history of shape \(2, 2\) has no column 2"):
        potential(history, 2, "max")


def test_clustering_refuses_features_it_cannot_read_and_unknown_reductions():
    from arscale.search.clustering import kmeans, reduce_features, select_diverse

    g = torch.Generator().manual_seed(0)
    with pytest.raises(ArscaleError, match=r"features must be \[B,C\], \[B,T,C\] or \[B,C,h,w\], got shape \(4,\)"):
        select_diverse(torch.rand(4), 2, g)  # a plugin feature scorer's one number per image
    with pytest.raises(ArscaleError, match="unknown feature reduction 'mean'; choose from pca, pca-joint, pool"):
        reduce_features(torch.rand(4, 3, 2), "mean")
    with pytest.raises(ArscaleError, match="cannot form 5 clusters from 4 points"):
        kmeans(torch.rand(4, 2), 5, g)


def test_tts_var_config_and_schedule_refusals():
    from arscale.search.schedule import build_schedule
    from arscale.search.tts_var import TTSVARConfig

    with pytest.raises(ArscaleError, match="unknown feature reduction 'mean'"):
        TTSVARConfig(reduction="mean")
    with pytest.raises(ArscaleError, match="n_counts must be one of initial, final, got 'start'"):
        TTSVARConfig(n_counts="start")
    with pytest.raises(ArscaleError, match="5 operations scheduled but the derived batch has only 4 steps down"):
        build_schedule(9, 8, cluster_at=[0, 1, 2], resample_at=[3, 4])
    with pytest.raises(ArscaleError, match="N must be at least 1, got 0"):
        build_schedule(9, 0)


def test_tts_var_latent_features_need_a_latent_and_no_previews_draw_no_tree(tmp_path):
    from arscale.search.tts_var import TTSVAR, TTSVARConfig, write_extras

    class NoLatent(FakeNextScale):
        latent = None

    with pytest.raises(ArscaleError, match="features='latent' needs a generator with a `latent\\(traj\\)` method; "
                                           "fake-var has none"):
        TTSVAR(TTSVARConfig(features="latent", record_previews=False)).run(NoLatent(), ["a"], 8, scorer=FakeScorer())
    result = TTSVAR(TTSVARConfig(features="latent", record_previews=False)).run(FakeNextScale(), ["a", "b"], 8,
                                                                                scorer=FakeScorer())
    assert write_extras(result, tmp_path) == [] and list(tmp_path.iterdir()) == []
    assert TTSVAR().budget_note(FakeNextToken(), 2) is None  # a next-token model: no schedule to speak of


# -- ScalingAR -----------------------------------------------------------------------------------------------------
def test_scaling_ar_refuses_a_token_count_that_is_not_a_square():
    from arscale.search.scaling_ar import ScalingAR

    class Fifteen(FakeNextToken):
        num_tokens = 15

    with pytest.raises(ArscaleError, match="ScalingAR's blocks need a square token grid, got 15 tokens"):
        ScalingAR().run(Fifteen(), ["a"], 2)


def test_scaling_ar_plot_leaves_a_terminated_candidate_without_preview_blank(tmp_path, saved_figures):
    """With `record_previews` off a terminated candidate has no image: its thumbnail stays empty, a survivor's not."""
    from arscale.search.scaling_ar import ScalingAR, ScalingARConfig, write_extras

    cfg = ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1, record_previews=False)
    result = ScalingAR(cfg).run(FakeNextToken(), ["a red circle"], 6, seed=0)
    traces = result.telemetry["prompts"][0]
    assert any(tr["reason"] == "prune" for tr in traces) and all("preview" not in tr for tr in traces)
    (path,) = write_extras(result, tmp_path)
    assert path.is_file()
    thumbs = saved_figures[-1].axes[1:]
    assert len(thumbs) == 6
    for tr, ax in zip(traces, thumbs):
        assert len(ax.get_images()) == (0 if tr["reason"] == "prune" else 1)


