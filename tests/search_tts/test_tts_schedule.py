import pytest

from arscale.errors import ArscaleError
from arscale.search.schedule import build_schedule, map_operation_scales, validate


def test_paper_default_on_13_scales_is_the_official_run():
    s = build_schedule(13, 1)
    assert s.batch == (8, 8, 8, 6, 6, 6, 4, 2, 2, 2, 1, 1, 1)
    assert s.cluster_at == (2, 5) and s.resample_at == (6, 9)


@pytest.mark.parametrize("k", range(5, 20))
def test_mapping_keeps_order_and_room(k):
    cluster, resample = map_operation_scales(k)
    ops = list(cluster) + list(resample)
    assert ops == sorted(set(ops)) and len(ops) == 4
    assert 0 <= ops[0] and ops[-1] <= k - 2
    s = build_schedule(k, 2)
    assert s.batch[0] == 16 and s.batch[-1] == 2


def test_seven_scales_mapping():
    s = build_schedule(7, 1)
    assert s.cluster_at == (1, 3) and s.resample_at == (4, 5)
    assert s.batch == (8, 8, 6, 6, 4, 2, 1)


def test_n_multiplies_and_overrides_work():
    s = build_schedule(7, 4, batch=[2, 2, 2, 2, 2, 1, 1], cluster_at=[], resample_at=[4])
    assert s.batch == (8, 8, 8, 8, 8, 4, 4)


def test_derived_batch_for_fewer_operations():
    s = build_schedule(7, 1, cluster_at=[], resample_at=[3, 5])
    assert s.batch == (8, 8, 8, 8, 2, 2, 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"batch": [8, 8, 6, 6, 4, 2]}, "entries but the model has 7"),
    ({"batch": [8, 6, 6, 4, 4, 4, 4], "cluster_at": [0], "resample_at": []}, "no clustering or resampling"),
    ({"batch": [8, 8, 9, 6, 6, 6, 6], "cluster_at": [2], "resample_at": []}, "non-increasing"),
    ({"batch": [8, 8, 8, 8, 8, 8, 8], "cluster_at": [1], "resample_at": []}, "must shrink"),
    ({"cluster_at": [6], "resample_at": []}, "out of range"),
    ({"cluster_at": [2], "resample_at": [2]}, "both clustering and resampling"),
    ({"batch": [8, 8, 0, 0, 0, 0, 0], "cluster_at": [1], "resample_at": []}, "at least 1"),
])
def test_invalid_schedules_name_the_problem(kwargs, message):
    with pytest.raises(ArscaleError, match=message):
        build_schedule(7, 1, **kwargs)


def test_resampling_may_keep_the_count():
    validate(4, (4, 4, 4, 4), (), (1,))


def test_too_few_scales_for_the_default():
    with pytest.raises(ArscaleError, match="at least 5 scales"):
        build_schedule(4, 1)
