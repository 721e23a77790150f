"""ScalingAR telemetry as a user reads it: a result's plain-JSON form must be JSON that strict readers
accept, as `arscale generate`'s result.json already is."""

import json

from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.search.scaling_ar import ScalingAR, ScalingARConfig


def test_a_scaling_ar_result_dict_is_strict_json_with_null_for_steps_without_a_threshold():
    """`result.to_dict()` of a ScalingAR run dumps with allow_nan=False; steps without a threshold are null."""
    gen = random_shapeworld_ar(1, grid=8, vocab_size=32, cfg=2.0)
    res = ScalingAR(ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1)).run(
        gen, ["a photo of a red circle"], 3, seed=0)
    data = json.loads(json.dumps(res.to_dict(), allow_nan=False))  # what JavaScript or jq reads back
    theta = data["telemetry"]["threshold"][0]
    warmup = res.telemetry["warmup_steps"]
    assert theta[0] is None and theta[-1] is None  # before the warm-up, and no decision at the last token
    assert all(isinstance(v, float) for v in theta[warmup:-1])
    assert data["telemetry"] == res.telemetry_dict()  # the telemetry alone is the same JSON data


def test_a_nan_held_as_a_numpy_or_torch_scalar_is_null_too():
    """NaN and infinity kept as numpy or torch scalars (not only Python floats) come out of to_dict as None."""
    import numpy as np
    import torch

    from arscale.generators.trajectories import SearchTree
    from arscale.search.result import CostRecord, SearchResult

    telemetry = {"t": [np.float64("nan"), torch.tensor(float("-inf")), np.float32(0.5), torch.tensor(2)]}
    data = SearchResult(["a"], [[]], SearchTree(), CostRecord(), "raw", {}, telemetry).to_dict()
    assert json.loads(json.dumps(data, allow_nan=False))["telemetry"] == {"t": [None, None, 0.5, 2]}
