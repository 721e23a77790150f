"""A next-scale model whose guidance is 1 at every scale (cfg 1; VAR's linear ramp at cfg 0) runs only the
conditional half for the strategies that never read the unconditional logits: the same images, half the
transformer FLOPs, a KV cache that still follows `select`."""

import pytest
import torch
from tiny_families import BrightnessScorer, fake_t5, tiny_infinity, tiny_var
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.errors import ArscaleError
from arscale.generators.next_scale.generator import NextScaleLoop
from arscale.generators.sampling import cfg_mix
from arscale.search.base import make_strategy

PROMPTS = {"shapeworld-var": ["a photo of a red circle", "a photo of a blue square left of a circle"],
           "var": [3, 7], "infinity": ["a red cube", "two green balls on a table"]}


def _unguided(family: str):
    """The tiny model of `family` with default sampling whose guidance is 1 at every scale."""
    if family == "shapeworld-var":
        return build_tiny_var(*tiny_var_configs((1, 2, 3, 4, 5, 6), image_size=24, sampling={"cfg": 1.0}))
    if family == "var":
        gen = tiny_var()
        gen.sampling.cfg = 0.0  # the ramp 1 + cfg·si/(K-1)
        return gen
    gen = tiny_infinity()
    gen.cfg_list = [1.0] * gen.num_scales
    return gen


class BothHalves:
    """The same generator behind a `start` without the `unconditional` keyword: it always runs both halves."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0, cfg=None):
        return self.inner.start(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset, cfg=cfg)


def _run_to_end(gen, traj, **step_options):
    while traj.step < gen.num_scales:
        gen.step(traj, **step_options)
    return traj


@pytest.mark.parametrize("family", ["shapeworld-var", "var", "infinity"])
def test_conditional_half_alone_draws_the_same_images(family):
    gen, prompts = _unguided(family), PROMPTS[family]
    both = _run_to_end(gen, gen.start(prompts, 3, seed=2))
    alone = gen.start(prompts, 3, seed=2, unconditional=False)
    assert (both.halves, alone.halves) == (2, 1)
    assert alone.paired["cond"].shape[0] == len(alone)
    cond, uncond = gen.scale_logits(alone)
    assert cond is uncond  # the conditional logits stand in for both halves
    gen.commit(alone, gen.sample(alone, gen.guide(alone, torch.cat([cond]))))
    _run_to_end(gen, alone)
    assert alone.cache.keys[0].shape[0] == len(alone)  # one cache row per image, not two
    assert torch.equal(alone.rows["tokens"], both.rows["tokens"])
    assert torch.equal(gen.finish(alone), gen.finish(both))


@pytest.mark.parametrize("schedule, cfg", [("linear", 0.0), ("constant", 1.0)])
def test_var_upstream_order_takes_one_half_too(schedule, cfg):
    gen = tiny_var()
    gen.sampling.cfg_schedule, gen.sampling.cfg = schedule, cfg
    both = _run_to_end(gen, gen.start([3, 7], 2, seed=0), generator=torch.Generator().manual_seed(5))
    alone = _run_to_end(gen, gen.start([3, 7], 2, seed=0, unconditional=False),
                        generator=torch.Generator().manual_seed(5))
    assert alone.halves == 1 and torch.equal(alone.rows["tokens"], both.rows["tokens"])


def test_guidance_is_the_conditional_exactly_at_one_and_the_mix_elsewhere():
    gen = tiny_var()  # the linear ramp at cfg 1.5: guidance 1 at scale 0, above 1 after
    traj = gen.start([3, 7], 2, seed=0)
    for si in range(gen.num_scales):
        logits = gen.forward_scale(traj)
        cond, uncond = logits.chunk(2)
        expected = cond if si == 0 else cfg_mix(cond, uncond, gen.guidance(traj, si))
        guided = gen.guide(traj, logits)
        assert torch.equal(guided, expected) and (si == 0 or not torch.equal(guided, cond))
        gen.commit(traj, gen.sample(traj, guided))


@pytest.mark.parametrize("family", ["shapeworld-var", "infinity"])
def test_guidance_set_after_a_one_half_start_is_refused(family):
    gen = _unguided(family)
    traj = gen.start(PROMPTS[family], 2, seed=0, unconditional=False)
    if family == "infinity":
        traj.extra["cfg"] = [3.0] * gen.num_scales
    else:
        traj.rows["cfg"][:] = 4.0
    with pytest.raises(ArscaleError, match="started without its unconditional half"):
        gen.step(traj)


def test_a_family_that_does_not_say_runs_both_halves():
    gen = _unguided("shapeworld-var")
    gen.needs_unconditional = NextScaleLoop.needs_unconditional.__get__(gen)  # a family without its own answer
    traj = gen.start(PROMPTS["shapeworld-var"], 2, seed=0, unconditional=False)
    assert traj.halves == 2 and traj.paired["cond"].shape[0] == 2 * len(traj)


def test_infinity_keeps_both_halves_where_any_scale_mixes_and_takes_one_from_features():
    gen = _unguided("infinity")
    prompts = PROMPTS["infinity"]
    features = fake_t5(128)(prompts)
    assert gen.start_from_features(features, prompts, 2, seed=0, unconditional=False).halves == 1
    gen.cfg_list = [1.0] * (gen.num_scales - 1) + [3.0]
    assert gen.needs_unconditional(None)
    assert gen.start_from_features(features, prompts, 2, seed=0, unconditional=False).halves == 2


def test_generate_runs_one_half_at_guidance_one():
    gen = _unguided("var")
    rows, inner = [], gen.transformer_scale
    gen.transformer_scale = lambda si, x, traj: (rows.append(traj.paired["cond"].shape[0]), inner(si, x, traj))[1]
    gen.generate([3, 7], 2, seed=0)
    assert set(rows) == {4}


@pytest.mark.parametrize("family, cfg", [("shapeworld-var", 2.0), ("var", 1.0), ("infinity", None)])
def test_guidance_that_mixes_keeps_both_halves(family, cfg):
    gen = _unguided(family)
    if family == "infinity":
        gen = tiny_infinity()  # its released per-scale profile (3.0 here)
    assert gen.needs_unconditional(cfg)
    assert gen.start(PROMPTS[family], 1, seed=0, cfg=cfg, unconditional=False).halves == 2
    # asked for at start, the same model runs one half where that cfg leaves every scale at 1
    one = {"shapeworld-var": 1.0, "var": 0.0, "infinity": 1.0}[family]
    assert not gen.needs_unconditional(one)
    assert gen.start(PROMPTS[family], 1, seed=0, cfg=one, unconditional=False).halves == 1


@pytest.mark.parametrize("family", ["shapeworld-var", "var", "infinity"])
@pytest.mark.parametrize("strategy", ["raw", "best-of-n", "importance", "tts-var"])
def test_strategies_pay_half_for_the_same_images(family, strategy):
    gen, prompts = _unguided(family), PROMPTS[family]
    results = []
    for g in (BothHalves(gen), gen):
        s = make_strategy(strategy, {"record_previews": False} if strategy == "tts-var" else {})
        s.feature_scorer = BrightnessScorer()
        results.append(s.run(g, prompts, 8, seed=4, scorer=BrightnessScorer()))
    both, alone = results
    for p in range(len(prompts)):
        assert [c.image.tobytes() for c in alone.candidates[p]] == [c.image.tobytes() for c in both.candidates[p]]
        assert alone.chosen(p).score == both.chosen(p).score
    text = gen.start(prompts, 1, seed=0).extra["text_flops"]  # the text encoder's: the same either way
    assert alone.cost.transformer_flops - text == pytest.approx((both.cost.transformer_flops - text) / 2, rel=1e-9)
    assert alone.cost.generated_tokens == both.cost.generated_tokens
