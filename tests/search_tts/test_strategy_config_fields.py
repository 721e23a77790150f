"""Mutation audit of the strategy configs (search/base.py, search/scaling_ar_config.py): the gaps the existing tests
left open (an unknown strategy name through the Python API, booleans given for integer fields, the edges of the
ScalingAR ranges) and one bug (non-finite numbers pass the ScalingAR config checks)."""

import json
import math

import pytest

from arscale.errors import ArscaleError
from arscale.search.base import make_strategy
from arscale.search.scaling_ar import ScalingARConfig


def test_make_strategy_refuses_an_unknown_name_in_one_line():
    """`make_strategy` with a name nobody registered raises ArscaleError naming the choices, not a KeyError."""
    with pytest.raises(ArscaleError, match=r"unknown strategy 'beam'; choose from .*scaling-ar"):
        make_strategy("beam")


@pytest.mark.parametrize("bad, match", [
    ({"block": True}, "block must be an integer"),
    ({"min_survivors": False}, "min_survivors must be an integer"),
    ({"top_k": True}, "top_k must be an integer or null"),
])
def test_integer_fields_refuse_booleans(bad, match):
    """Booleans are not numbers: `true` for an integer field is refused, not read as 1."""
    with pytest.raises(ArscaleError, match=match):
        make_strategy("scaling-ar", bad)
    with pytest.raises(ArscaleError, match=match):
        ScalingARConfig.from_json(json.dumps(bad))  # `true` as JSON gives it


@pytest.mark.parametrize("bad, match", [
    ({"delta_rec": -0.01}, "delta_rec must be >= 0"),
    ({"prune_quantile": 0.0}, r"prune_quantile must be in \(0, 1\)"),
    ({"prune_quantile": 1.0}, r"prune_quantile must be in \(0, 1\)"),
])
def test_scaling_ar_range_edges_refused(bad, match):
    """A negative rebound threshold and a quantile of exactly 0 or 1 are refused."""
    with pytest.raises(ArscaleError, match=match):
        make_strategy("scaling-ar", bad)


@pytest.mark.parametrize("edge", [
    {"recovery_window": 0}, {"recovery_window_steps": 0}, {"delta_rec": 0.0}, {"warmup_fraction": 0.0},
    {"lambda_tok": 1.0, "lambda_i": 1.0, "lambda_theta": 1.0}, {"worst_q": 1.0}, {"prune_quantile": 0.99},
])
def test_scaling_ar_range_edges_accepted(edge):
    """The closed ends of the documented ranges are valid settings and survive the JSON round trip."""
    cfg = make_strategy("scaling-ar", edge).config
    for key, value in edge.items():
        assert getattr(cfg, key) == value
    assert ScalingARConfig.from_json(cfg.to_json()) == cfg


def test_scaling_ar_zero_recovery_window_keeps_its_meaning():
    """`recovery_window_steps: 0` is a window of 0 steps; `recovery_window: 0` is scaled up to `min_window`."""
    assert ScalingARConfig(recovery_window_steps=0).recovery_steps(256) == 0
    assert ScalingARConfig(recovery_window=0).recovery_steps(256) == 2
    assert ScalingARConfig(recovery_window=0, scale_steps=False).recovery_steps(256) == 0


@pytest.mark.parametrize("value", [math.inf, math.nan])
@pytest.mark.parametrize("field", ["cfg_base", "alpha_h", "clamp_over"])
def test_scaling_ar_refuses_non_finite_numbers(field, value):
    """Infinity for a number field is refused as `--cfg` and importance's `lam` are, before any decoding."""
    with pytest.raises(ArscaleError, match=field):
        make_strategy("scaling-ar", {field: value})
