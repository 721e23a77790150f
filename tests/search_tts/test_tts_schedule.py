import pytest

from arscale.errors import ArscaleError
from arscale.search.schedule import build_schedule, map_operation_scales, validate


def test_paper_default_on_13_scales_is_the_official_run():
    s = build_schedule(13, 8)
    assert s.batch == (8, 8, 8, 6, 6, 6, 4, 2, 2, 2, 1, 1, 1)
    assert s.cluster_at == (2, 5) and s.resample_at == (6, 9)
    assert build_schedule(13, 1, n_counts="final") == s  # the paper's text at N=1 is the same run


def test_n_counts_the_rows_at_the_start():
    assert build_schedule(7, 1).batch == (1,) * 7  # N=1 is raw sampling: nothing to choose
    assert build_schedule(7, 1).cluster_at == () and build_schedule(7, 1).resample_at == ()
    four = build_schedule(7, 4)
    assert four.batch == (4, 4, 3, 3, 2, 1, 1)
    assert four.cluster_at == (1, 3) and four.resample_at == (4,)  # resampling one row is dropped
    two = build_schedule(13, 2)  # 2·6/8 rounds to 2, but a clustering must shrink
    assert two.batch == (2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1) and two.cluster_at == (2,)
    assert build_schedule(7, 16).batch == (16, 16, 12, 12, 8, 4, 2)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 11, 24])
@pytest.mark.parametrize("k", [5, 7, 10, 13])
def test_initial_reading_always_gives_a_valid_schedule(n, k):
    s = build_schedule(k, n)
    assert s.batch[0] == n and s.batch[-1] >= 1
    assert list(s.batch) == sorted(s.batch, reverse=True)
    for c in s.cluster_at:
        assert s.batch[c + 1] < s.batch[c]
    for r in s.resample_at:
        assert s.batch[r] > 1


def test_unknown_n_reading_is_rejected():
    with pytest.raises(ArscaleError, match="n_counts"):
        build_schedule(7, 8, n_counts="middle")


@pytest.mark.parametrize("k", range(5, 20))
def test_mapping_keeps_order_and_room(k):
    cluster, resample = map_operation_scales(k)
    ops = list(cluster) + list(resample)
    assert ops == sorted(set(ops)) and len(ops) == 4
    assert 0 <= ops[0] and ops[-1] <= k - 2
    s = build_schedule(k, 2, n_counts="final")
    assert s.batch[0] == 16 and s.batch[-1] == 2


def test_seven_scales_mapping():
    s = build_schedule(7, 8)
    assert s.cluster_at == (1, 3) and s.resample_at == (4, 5)
    assert s.batch == (8, 8, 6, 6, 4, 2, 1)


def test_n_multiplies_and_overrides_work():
    s = build_schedule(7, 4, batch=[2, 2, 2, 2, 2, 1, 1], cluster_at=[], resample_at=[4], n_counts="final")
    assert s.batch == (8, 8, 8, 8, 8, 4, 4)
    s = build_schedule(7, 4, batch=[2, 2, 2, 2, 2, 1, 1], cluster_at=[], resample_at=[4])
    assert s.batch == (4, 4, 4, 4, 4, 2, 2)  # the pattern's proportions, starting from N rows


def test_derived_batch_for_fewer_operations():
    s = build_schedule(7, 8, cluster_at=[], resample_at=[3, 5])
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
    validate(4, (4, 4, 4, 4), (), (1,))  # accepted: no error
    # a resampling that keeps its 4 rows stays in the schedule, which the "initial" reading scales by N / 4
    s = build_schedule(4, 4, batch=[4, 4, 4, 4], cluster_at=[], resample_at=[1])
    assert (s.batch, s.cluster_at, s.resample_at) == ((4, 4, 4, 4), (), (1,))
    assert s.operation(1) == "resample" and s.after(1) == 4
    doubled = build_schedule(4, 8, batch=[4, 4, 4, 4], cluster_at=[], resample_at=[1])
    assert (doubled.batch, doubled.resample_at) == ((8, 8, 8, 8), (1,))
    # a clustering may not keep its count: 4 rows -> 4 representatives is refused
    with pytest.raises(ArscaleError, match="must shrink"):
        build_schedule(4, 4, batch=[4, 4, 4, 4], cluster_at=[1], resample_at=[])


def test_too_few_scales_for_the_default():
    with pytest.raises(ArscaleError, match="at least 5 scales"):
        build_schedule(4, 1)


def test_resampling_after_a_forced_shrink_keeps_the_smaller_count():
    # N=4 on the pattern 8, 7, 7, 7: clustering after scale 0 would keep round(7·4/8) = 4 = all rows, so it keeps
    # 3; the resampling after scale 1 (pattern 7 -> 7) then keeps those 3 rows, it cannot make a fourth
    s = build_schedule(4, 4, batch=[8, 7, 7, 7], cluster_at=[0], resample_at=[1])
    assert (s.batch, s.cluster_at, s.resample_at) == ((4, 3, 3, 3), (0,), (1,))
    assert s.after(1) == 3
