"""Importance sampling's resampling points (token checkpoints, next-scale positions) where mutants of them outlived
the suite, each worked out by hand from docs/strategies.md."""

import pytest

from arscale.errors import ArscaleError


def _points(length, kind, **config):
    from types import SimpleNamespace

    from arscale.search.importance import Importance, ImportanceConfig

    return Importance(ImportanceConfig(**config)).points(SimpleNamespace(kind=kind, length=length))


def test_importance_token_points_round_each_fraction_to_even_and_stay_inside_one_to_t_minus_one():
    # docs/strategies.md: c of T tokens resamples after round(c·T) (ties to even), kept in 1..T−1, none for T = 1
    assert _points(10, "token") == [5, 8]  # 0.5·10 = 5, 0.75·10 = 7.5 -> 8 (even)
    assert _points(2, "token") == [1]  # 1 and round(1.5) = 2, pulled back to T − 1 = 1: one point
    assert _points(1, "token") == []
    assert _points(4, "token", checkpoints=[0.1, 0.9]) == [1, 3]  # round(0.4) = 0 -> 1; round(3.6) = 4 -> 3
    assert _points(4, "token", checkpoints=[0.625]) == [2]  # round(2.5) = 2 (even)
    assert _points(4, "token", checkpoints=[0.875]) == [3]  # round(3.5) = 4 (even) -> T − 1 = 3
    assert _points(200, "token", checkpoints=[0.3]) == [60]


def test_importance_scale_points_follow_the_mapped_schedule_or_the_second_to_last_scale():
    # resample after scale s means at position s + 1. Defaults: TTS-VAR's scales 6 and 9 of 13 mapped onto K scales
    # (K = 7: round-half-up of 6·6/12 = 3 and 9·6/12 = 4.5 -> 3 and 5, pushed past the clusterings 1 and 3 -> 4, 5;
    # K = 5: 2 and 3 once the four operations are pulled back inside 0..3), K − 2 for 2 ≤ K < 5, none for K = 1
    assert _points(7, "scale") == [5, 6]
    assert _points(5, "scale") == [3, 4]
    assert _points(4, "scale") == [3]
    assert _points(2, "scale") == [1]
    assert _points(1, "scale") == []
    # given scales: 0..K−2, both ends allowed
    assert _points(7, "scale", resample_at=[5, 0]) == [1, 6]
    for bad in ([6], [-1]):
        with pytest.raises(ArscaleError, match="out of range 0..5 for a model with 7 scales"):
            _points(7, "scale", resample_at=bad)


def test_importance_refuses_the_other_kinds_setting():
    with pytest.raises(ArscaleError, match="checkpoints"):
        _points(7, "scale", checkpoints=[0.5])
    with pytest.raises(ArscaleError, match="resample_at"):
        _points(10, "token", resample_at=[1])
    assert _points(7, "scale", checkpoints=[0.5, 0.75]) == [5, 6]  # the default, given explicitly, is no change
