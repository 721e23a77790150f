"""The shipped ShapeWorld-VAR at budgets outside the usual 1, 2, 4, 8: TTS-VAR's schedule as run and every
strategy's accounting."""

import pytest

from arscale.generators.registry import load_generator
from arscale.scorers.base import load_scorer
from arscale.search.base import make_strategy

PROMPTS = ["a photo of a red circle", "a photo of two squares"]


@pytest.fixture(scope="module")
def var():
    return load_generator("shapeworld-var")


@pytest.fixture(scope="module")
def reward():
    return load_scorer("shapeworld-reward")


@pytest.mark.parametrize("n, batch", [(5, [5, 5, 4, 4, 3, 1, 1]), (9, [9, 9, 7, 7, 5, 2, 1])])
def test_tts_var_runs_the_schedule_its_telemetry_states_at_odd_n(var, reward, n, batch):
    """TTS-VAR at N = 5 and 9 on ShapeWorld-VAR: each operation sees and keeps the rows its schedule says."""
    result = make_strategy("tts-var", {"record_previews": False}).run(var, PROMPTS, n, seed=0, scorer=reward)
    plan = result.telemetry["schedule"]
    assert plan["batch"] == batch
    ops = result.telemetry["operations"]
    assert [o["scale"] for o in ops] == sorted(plan["cluster_at"] + plan["resample_at"])
    for o in ops:
        k = o["scale"]
        assert len(o["nodes"]) == batch[k] * len(PROMPTS) and len(o["kept_nodes"]) == batch[k + 1] * len(PROMPTS)
    tokens = [h * w for h, w in result.telemetry["token_maps"]]
    assert result.cost.generated_tokens == len(PROMPTS) * sum(b * t for b, t in zip(batch, tokens))
    assert all(len(c) == batch[-1] and sum(x.chosen for x in c) == 1 for c in result.candidates)


def test_baseline_costs_at_n_3_on_shapeworld_var(var, reward):
    """N = 3: raw one image's tokens, best-of-n 3×, importance 3× with 3·(2 points + 1) decodes per prompt."""
    one = make_strategy("raw").run(var, PROMPTS, 3, seed=4).cost.generated_tokens
    best = make_strategy("best-of-n").run(var, PROMPTS, 3, seed=4, scorer=reward)
    imp = make_strategy("importance").run(var, PROMPTS, 3, seed=4, scorer=reward)
    assert one == 155 * len(PROMPTS)
    assert best.cost.generated_tokens == imp.cost.generated_tokens == 3 * one
    assert best.cost.decode_count == best.cost.scorer_calls == 3 * len(PROMPTS)
    assert imp.cost.decode_count == imp.cost.scorer_calls == 3 * 3 * len(PROMPTS)
