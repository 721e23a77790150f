"""Generators at the edges of their inputs: sampling settings, guidance scales, the greedy switch, and
`Trajectories.select` over random row choices on the tiny families."""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_families import fake_t5, randomised, tiny_infinity, tiny_llamagen, tiny_llamagen_vq, tiny_var

from arscale.errors import ArscaleError
from arscale.generators.next_scale.generator import SamplingConfig
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.registry import load_generator
from arscale.generators.sampling import filter_logits, sample_per_row

SW_PROMPTS = ["a photo of a red circle", "a photo of a blue square left of a circle", "a photo of two crosses"]


def test_an_unknown_cfg_schedule_is_refused_at_load():
    """cfg_schedule is 'constant' or 'linear'; 'Linear' must not quietly run VAR without its guidance ramp."""
    with pytest.raises(ArscaleError, match="cfg_schedule"):
        load_generator("shapeworld-var", cfg_schedule="Linear")


@pytest.mark.parametrize("option", [{"temperature": 0.0}, {"temperature": math.nan}, {"top_k": 16.0}])
def test_next_scale_sampling_values_no_draw_can_use_are_refused_at_once(option):
    """SamplingConfig refuses a bad coarse_temperature / coarse_top_k at once; the same for temperature and top_k."""
    with pytest.raises(ArscaleError):
        SamplingConfig(cfg=2.0, **option)


@pytest.mark.parametrize("option", [{"temperature": 0.0}, {"temperature": math.nan}, {"top_k": 16.0}])
def test_next_token_sampling_values_no_draw_can_use_are_refused_at_once(option):
    """A ShapeWorld-AR generator refuses a temperature ≤ 0 or NaN and a fractional top-k when it is built."""
    with pytest.raises(ArscaleError):
        random_shapeworld_ar(0, grid=2, **option)


def test_llamagen_greedy_switch_holds_for_the_sampler_strategies_use():
    """docs/models.md: greedy sampling (sample_logits=False); `sample`, which generate and every strategy call,
    must then take the most probable token, as `sample_upstream` does."""
    gen = tiny_llamagen()
    gen.sample_logits = False
    traj = gen.start([2, 7, 0, 6], 1, seed=0)
    want = gen.probs_upstream(gen.guided_logits(traj)).argmax(-1)
    assert torch.equal(gen.sample(traj), want)


@pytest.mark.parametrize("family, cfg", [("shapeworld-ar", math.nan), ("shapeworld-ar", math.inf),
                                         ("llamagen", math.nan), ("llamagen", math.inf), ("var", math.inf)])
def test_start_refuses_a_guidance_scale_that_is_not_finite(family, cfg):
    """next-scale start refuses cfg NaN in one line; NaN and ±inf must fail so on every engine, not in multinomial."""
    gen, prompts = {"shapeworld-ar": (lambda: random_shapeworld_ar(0, grid=2), SW_PROMPTS[:1]),
                    "llamagen": (tiny_llamagen, [3]), "var": (tiny_var, [3])}[family]
    with pytest.raises(ArscaleError, match="guidance scale"):
        gen().start(prompts, 1, seed=0, cfg=cfg)


# -- properties that hold (regression guards for the edges) ----------------------------------------------------
@settings(max_examples=150, deadline=None, derandomize=True)
@given(row=st.lists(st.one_of(st.floats(-30, 30, width=32), st.just(-math.inf), st.sampled_from([0.0, 2.0])),
                    min_size=1, max_size=9),
       top_k=st.integers(-1, 11), top_p=st.one_of(st.floats(0, 1), st.sampled_from([1e-9, 0.5, 1.0])),
       temperature=st.sampled_from([0.01, 1.0, 3.0]),
       dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]), key=st.integers(0, 2**63 - 1))
def test_a_draw_is_always_a_finite_token_the_filter_keeps(row, top_k, top_p, temperature, dtype, key):
    """Any top-k / top-p / temperature, ties, -inf and low-precision logits: the drawn token survives the filter,
    is finite, and a filter always keeps a largest logit."""
    logits = torch.tensor([row], dtype=dtype)
    if not torch.isfinite(logits).any():
        return
    kept = torch.isfinite(filter_logits(logits.float() / temperature, top_k, top_p))[0]
    token = int(sample_per_row(logits, [key], 3, temperature=temperature, top_k=top_k, top_p=top_p)[0])
    assert kept[token] and math.isfinite(float(logits[0, token]))
    assert float(logits[0, kept].float().max()) == float(logits.float().max())


def _tiny_t2i() -> LlamaGenGenerator:
    gpt = LlamaGenGPT(LlamaGenConfig("t2i", dim=32, n_layer=2, n_head=2, vocab_size=32, block_size=16, caption_dim=16))
    return LlamaGenGenerator(randomised(gpt, 7), tiny_llamagen_vq(), cfg=2.0, top_k=16, text_encoder=fake_t5(16))


TOKEN_FAMILIES = {"shapeworld-ar": (lambda: random_shapeworld_ar(0, grid=3, vocab_size=32, cfg=2.0), SW_PROMPTS),
                  "llamagen-c2i": (tiny_llamagen, [0, 9, 3]), "llamagen-t2i": (_tiny_t2i, ["a", "bb", "a cat on a hat"])}
SCALE_FAMILIES = {"var": (tiny_var, [0, 9, 4]), "infinity": (tiny_infinity, ["a cat", "two red dogs on a mat", "x"])}
_BUILT: dict = {}


def _family(table, name):
    if name not in _BUILT:
        make, prompts = table[name]
        _BUILT[name] = make(), prompts
    return _BUILT[name]


SELECTIONS = st.lists(st.tuples(st.integers(0, 2), st.lists(st.integers(0, 50), min_size=1, max_size=6)),
                      min_size=1, max_size=3)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(family=st.sampled_from(sorted(TOKEN_FAMILIES)), rows=st.lists(st.integers(1, 2), min_size=3, max_size=3),
       selections=SELECTIONS, one_half=st.booleans())
def test_next_token_select_then_continue_equals_a_fresh_run_of_the_rows(family, rows, selections, one_half):
    """Any chain of select calls (repeats, reorderings, one row, pruning, one CFG half or two, left-padded text):
    the next logits equal those of a fresh start of the selected rows' prompts fed the same tokens."""
    gen, prompts = _family(TOKEN_FAMILIES, family)
    cfg = 1.0 if one_half else None
    traj = gen.start(prompts, rows, seed=1, cfg=cfg, unconditional=not one_half)
    for advances, picks in selections:
        for _ in range(advances):
            if traj.step < gen.num_tokens - 1:
                gen.advance(traj, gen.sample(traj))
        traj.select([p % len(traj) for p in picks])
    gen.advance(traj, gen.sample(traj))
    fresh = gen.start([prompts[int(p)] for p in traj.prompt_index], 1, seed=0, cfg=cfg, unconditional=not one_half)
    for t in range(traj.step):
        gen.advance(fresh, traj.rows["tokens"][:, t])
    for got, want in zip(gen.next_logits(traj), gen.next_logits(fresh)):
        assert torch.allclose(got, want, atol=1e-4)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(family=st.sampled_from(sorted(SCALE_FAMILIES)), rows=st.lists(st.integers(1, 2), min_size=3, max_size=3),
       selections=SELECTIONS)
def test_next_scale_select_then_continue_equals_a_fresh_run_of_the_rows(family, rows, selections):
    """Any chain of select calls between scales: the next scale's logits (both halves) and the accumulated latent
    equal those of a fresh start of the selected rows' prompts fed the same tokens."""
    gen, prompts = _family(SCALE_FAMILIES, family)
    traj = gen.start(prompts, rows, seed=1)
    for advances, picks in selections:
        for _ in range(advances):
            if traj.step < gen.num_scales - 1:
                gen.step(traj)
        traj.select([p % len(traj) for p in picks])
    fresh = gen.start([prompts[int(p)] for p in traj.prompt_index], 1, seed=0)
    for si in range(traj.step):
        gen.forward_scale(fresh)
        gen.commit(fresh, gen.scale_tokens(traj, si))
    assert torch.allclose(traj.rows["f_hat"], fresh.rows["f_hat"], atol=1e-5)
    assert torch.allclose(gen.forward_scale(traj), gen.forward_scale(fresh), atol=1e-4)
