"""The checks and names added with the generators moving, the results comparing and the trainers split take what
they should: narrow integer tokens, numpy NaN scalars, a dtype given by name (refused in one line), every name
`arscale.train.common` offered before."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.generators.trajectories import SearchTree
from arscale.search.result import CostRecord, SearchResult

PROMPT = ["a photo of a red circle"]


def _first_scale(gen):
    traj = gen.start(PROMPT, 2, seed=0)
    tokens = gen.sample(traj, gen.guide(traj, gen.forward_scale(traj)))
    return traj, tokens


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16])
def test_a_next_scale_commit_takes_narrow_integer_tokens_as_long_ones(dtype):
    gen = build_tiny_var(*tiny_var_configs())
    expected, tokens = _first_scale(gen)
    gen.commit(expected, tokens)
    traj, same = _first_scale(gen)
    assert torch.equal(same, tokens)
    gen.commit(traj, tokens.to(dtype))  # integers inside the codebook (24 codes): what `_checked_tokens` admits
    assert traj.step == 1 and torch.equal(traj.rows["f_hat"], expected.rows["f_hat"])
    assert torch.equal(traj.rows["tokens"], expected.rows["tokens"])
    gen.step(traj)  # and it goes on
    assert traj.step == 2


def test_a_result_with_a_numpy_nan_scalar_in_its_telemetry_equals_its_copy():
    telemetry = {"threshold": [np.float32("nan"), np.float32(0.5)], "mean": np.float16("nan")}
    result = SearchResult(PROMPT, [[]], SearchTree(), CostRecord(), "plugin", {}, telemetry)
    assert result == copy.deepcopy(result)
    other = copy.deepcopy(result)
    other.telemetry["threshold"][1] = np.float32(0.25)
    assert result != other  # a different value still differs


def test_a_next_token_generator_refuses_a_dtype_name_in_one_line():
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar

    gen = random_shapeworld_ar(0, grid=4, vocab_size=32)
    with pytest.raises(TypeError, match=r"floating torch dtype \(e\.g\. torch\.bfloat16\), got 'bfloat16'"):
        gen.to(dtype="bfloat16")
    assert {p.dtype for p in gen.transformer.parameters()} == {torch.float32}  # nothing was cast


def test_train_common_still_offers_every_public_name_it_had_before_the_split():
    from arscale.train import checkpoint, common, options, shipping

    for name, home in [("cast_floats", shipping), ("check_training_args", options),
                       ("refuse_another_model", options), ("NOTHING_KNOWN", options), ("SAVED_AT_STEP", checkpoint)]:
        assert getattr(common, name, None) is getattr(home, name), name
