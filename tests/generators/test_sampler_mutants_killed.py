"""The samplers (sampling.py) where mutants of them outlived the suite: each test kills such a mutant, its
expectation worked out by hand from the docstrings and ../shared/methods/MODELS.md."""

import math

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.sampling import (
    MAX_GUIDANCE,
    check_guidance,
    check_sampler,
    filter_logits,
    filter_logits_hf,
    greedy_where_overflowed,
    sample_batch,
    sample_per_row,
)
from arscale.generators.seeding import generator_for


# -- the settings checks --------------------------------------------------------------------------------------------
def test_check_sampler_refuses_a_zero_or_boolean_temperature_and_a_nan_or_boolean_top_p():
    # "refused ... (a NaN or zero temperature, a fractional top-k)"; a zero temperature only with zero_temperature
    check_sampler(0.5, 0)
    check_sampler(0.0, 0, zero_temperature=True)
    for temperature in (0.0, -1.0, True, math.nan):
        with pytest.raises(ArscaleError, match="temperature"):
            check_sampler(temperature, 0)
    for top_p in (math.nan, True):
        with pytest.raises(ArscaleError, match="top_p"):
            check_sampler(1.0, 0, top_p=top_p)


def test_check_guidance_takes_its_closed_range_zero_to_float32_max():
    # "a finite number ≥ 0 ... that float32 holds": both ends are allowed, just past them is not
    check_guidance(0.0)
    check_guidance(MAX_GUIDANCE)
    for cfg in (-1e-9, math.inf, math.nan, 2 * MAX_GUIDANCE):
        with pytest.raises(ArscaleError, match="guidance scale"):
            check_guidance(cfg)


# -- the filters ----------------------------------------------------------------------------------------------------
def test_filters_are_off_at_their_defaults_and_at_their_off_values():
    # filter_logits: top_k ≤ 0 or ≥ V and top_p ≤ 0 or ≥ 1 disable the filters; filter_logits_hf: top_k ≤ 0 and
    # top_p ≥ 1 (MODELS.md: "applied only if < 1"). A disabled filter returns the logits untouched, even an entry
    # whose softmax underflows to 0 in float32 (exp(-200) < 1e-45), where a cumulative mass ≤ 0 would drop it
    logits = torch.tensor([[-200.0, 1.0, 3.0, 2.0]])
    for out in (filter_logits(logits), filter_logits(logits, top_p=1.0), filter_logits(logits, top_p=0.0),
                filter_logits(logits, top_k=4), filter_logits(logits, top_k=-1), filter_logits_hf(logits),
                filter_logits_hf(logits, top_p=1.0)):
        assert torch.equal(out, logits)


def test_hf_top_p_one_keeps_tokens_past_a_cumulative_sum_that_rounds_above_one():
    # float32 cumulative sums of a softmax can end at 1.0000001 before the last (tiny) entry; top_p = 1 is off, so
    # the e^-40 entry must stay finite (a filter at top_p = 1 would drop every token after the sum passed 1)
    logits = torch.randn(64, 5, generator=torch.Generator().manual_seed(0)) * 2
    logits[:, -1] = -40.0
    assert torch.equal(filter_logits_hf(logits, top_p=1.0), logits)


def test_filters_act_on_the_last_dimension_of_a_three_dimensional_batch():
    # every [V] slice of a [2, 3, 4] batch holds log(.1 .2 .3 .4) in its own order. top-p 0.5 keeps the smallest
    # set reaching 0.5: {.4, .3} (.7; .4 alone is short); top-k 3 drops the .1 only; HF top-p 0.5 keeps .4 and the
    # entry that crosses 0.5 (.3); HF top-k 2 keeps .4 and .3
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    orders = torch.stack([torch.randperm(4, generator=torch.Generator().manual_seed(s)) for s in range(6)])
    p = probs[orders].reshape(2, 3, 4)
    logits = p.log()
    assert torch.equal(torch.isfinite(filter_logits(logits, top_p=0.5)), p >= 0.3)
    assert torch.equal(torch.isfinite(filter_logits(logits, top_k=3)), p >= 0.2)
    assert torch.equal(torch.isfinite(filter_logits_hf(logits, top_p=0.5)), p >= 0.3)
    assert torch.equal(torch.isfinite(filter_logits_hf(logits, top_k=2)), p >= 0.3)
    # top-k 1 is a real filter (the argmax alone)
    assert torch.equal(torch.isfinite(filter_logits(logits, top_k=1)), p == 0.4)
    # slices that differ after sorting: the second [3, 4] row holds .05 .15 .2 .6, whose nucleus for 0.5 is .6 alone
    # in both styles (ascending cumsum .05 .2 .4 <= .5; descending .6 already > .5, kept by the shift)
    p[1] = torch.tensor([0.05, 0.15, 0.2, 0.6], dtype=torch.float64)[orders[3:]]
    logits = p.log()
    nucleus = torch.stack([p[0] >= 0.3, p[1] == 0.6])
    assert torch.equal(torch.isfinite(filter_logits(logits, top_p=0.5)), nucleus)
    assert torch.equal(torch.isfinite(filter_logits_hf(logits, top_p=0.5)), nucleus)
    # HF's top-k clamps k to V (LlamaGen's 900 or 2000 on a small V)
    assert torch.isfinite(filter_logits_hf(logits, top_k=4)).all()
    assert torch.isfinite(filter_logits_hf(logits, top_k=900)).all()


# -- the draws ------------------------------------------------------------------------------------------------------
def test_sample_batch_defaults_to_temperature_one_and_no_filter():
    # defaults temperature 1, top_k 0 (off), top_p 0 (off): a draw from softmax(logits) on the given generator
    logits = torch.randn(300, 8, generator=torch.Generator().manual_seed(0)) * 3
    got = sample_batch(logits, torch.Generator().manual_seed(7))
    want = torch.multinomial(logits.softmax(-1), 1, generator=torch.Generator().manual_seed(7))[:, 0]
    assert torch.equal(got, want)


def test_sample_per_row_defaults_to_temperature_one_and_no_filter():
    # row r draws from softmax(logits[r]) on generator_for(keys[r], step)
    logits = torch.randn(6, 40, 8, generator=torch.Generator().manual_seed(1)) * 3
    keys = [3, 1, 4, 1, 5, 9]
    got = sample_per_row(logits, keys, 2)
    for r, key in enumerate(keys):
        want = torch.multinomial(logits[r].softmax(-1), 1, generator=generator_for(key, 2))[:, 0]
        assert torch.equal(got[r], want)


def test_sample_per_row_names_both_counts_when_rows_and_keys_differ():
    with pytest.raises(ValueError, match="2 rows of logits but 3 keys"):
        sample_per_row(torch.zeros(2, 5), [1, 2, 3], 0)


def test_samplers_draw_over_the_last_dimension_of_a_three_dimensional_batch():
    # one finite logit per [V] slice: both samplers must return it, shaped like the batch without V
    R, L, V = 2, 3, 5
    target = torch.tensor([[0, 4, 2], [3, 1, 3]])
    logits = torch.full((R, L, V), -math.inf)
    logits.scatter_(-1, target[..., None], 0.0)
    assert torch.equal(sample_batch(logits, torch.Generator().manual_seed(0)), target)
    assert torch.equal(sample_per_row(logits, [7, 8], 0), target)
    assert torch.equal(sample_batch(logits, torch.Generator().manual_seed(0), top_k=2, top_p=0.5), target)
    assert torch.equal(sample_per_row(logits, [7, 8], 0, temperature=0.5, top_k=2, top_p=0.5), target)


def test_only_the_overflowed_rows_of_a_three_dimensional_batch_turn_greedy():
    # greedy_where_overflowed: a row whose logits / T overflowed takes the argmax (tied maxima share: 0 there, -inf
    # elsewhere); a row that did not keeps logits / T; a row with a NaN or all -inf keeps it too (refused later)
    inf, nan = math.inf, math.nan
    logits = torch.tensor([[[1.0, 3.0, 3.0, 0.0], [nan, 1.0, 2.0, 3.0], [2.0, 0.0, 5.0, 1.0]],
                           [[0.0, -1e-39, -2e-39, -1e-39], [-inf, -inf, -inf, -inf], [1.0, nan, 0.0, 0.0]]])
    scaled = logits / 1e-40  # 3e40 overflows float32; -1e-39 / 1e-40 is about -10 and does not
    out = greedy_where_overflowed(logits, scaled)
    assert out[0, 0].tolist() == [-inf, 0.0, 0.0, -inf]
    assert out[0, 2].tolist() == [-inf, -inf, 0.0, -inf]
    assert torch.equal(out[1, 0], scaled[1, 0]) and torch.equal(out[1, 1], scaled[1, 1])
    assert out[0, 1].isnan().tolist() == scaled[0, 1].isnan().tolist() == [True, False, False, False]
    assert out[1, 2].isnan().tolist() == [False, True, False, False]
    # the samplers at such a temperature: every slice draws its argmax
    x = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(sample_batch(x, torch.Generator().manual_seed(0), temperature=1e-40), x.argmax(-1))
    assert torch.equal(sample_per_row(x, [1, 2], 0, temperature=1e-40), x.argmax(-1))
