"""TTS-VAR's schedule, potentials, clustering and strategy at the places mutants of them showed the suite left
open, each held to a value worked out by hand from the spec (schedule.py's docstring, TTSVAR.md, the paper's
potentials, scikit-learn's k-means++ / Lloyd as TTSVAR.md §2 describes them)."""

import math

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.search.schedule import build_schedule

NAN = float("nan")


# -- schedule.py -------------------------------------------------------------------------------------------------


def test_only_one_operation_list_given_takes_the_other_from_the_mapped_default():
    # build_schedule: "Any of the three may be given; missing ones come from the mapped paper default". On 13 scales
    # the default is clustering after 2, 5 and resampling after 6, 9.
    s = build_schedule(13, 8, cluster_at=[2, 5])
    assert (s.cluster_at, s.resample_at) == ((2, 5), (6, 9))
    assert s.batch == (8, 8, 8, 6, 6, 6, 4, 2, 2, 2, 1, 1, 1)
    s = build_schedule(13, 8, resample_at=[9])  # clustering from the default: 8 -> 4 -> 2 -> 1 (three operations)
    assert (s.cluster_at, s.resample_at) == ((2, 5), (9,))
    assert s.batch == (8, 8, 8, 4, 4, 4, 2, 2, 2, 2, 1, 1, 1)


def test_rows_after_the_last_scale_are_the_last_scales_rows():
    # Schedule.after(scale) = batch[scale + 1], clamped to the last scale (nothing follows it): 1 row at the end of
    # the official run, not an IndexError
    s = build_schedule(13, 8)
    assert [s.after(k) for k in range(13)] == [8, 8, 6, 6, 6, 4, 2, 2, 2, 1, 1, 1, 1]


# -- potentials.py -----------------------------------------------------------------------------------------------


def test_diff_max_sum_with_exactly_one_earlier_column():
    from arscale.search.potentials import potential

    # one earlier scale recorded (column 0), the current reward at column 1: DIFF = r1 - r0, MAX = max, SUM = r0 + r1
    h = torch.tensor([[2.0, 5.0], [4.0, 1.0]])
    assert potential(h, 1, "diff").tolist() == [3.0, -3.0]
    assert potential(h, 1, "max").tolist() == [5.0, 4.0]
    assert potential(h, 1, "sum").tolist() == [7.0, 5.0]
    # the one earlier column not recorded: every potential is VALUE
    h = torch.tensor([[NAN, 5.0], [NAN, 1.0]])
    for kind in ("diff", "max", "sum"):
        assert potential(h, 1, kind).tolist() == [5.0, 1.0], kind


def test_a_column_just_past_the_history_is_refused_in_one_line():
    from arscale.search.potentials import potential

    with pytest.raises(ArscaleError, match=r"reward history of shape \(2, 3\) has no column 3"):
        potential(torch.zeros(2, 3), 3, "value")
    with pytest.raises(ArscaleError, match=r"has no column 0"):
        potential(torch.zeros(2), 0, "value")  # one reward per row, not a [rows, scales] history


def test_non_finite_rewards_name_at_most_eight_rows():
    from arscale.search.potentials import check_finite

    with pytest.raises(ArscaleError) as err:
        check_finite(torch.full((10,), NAN), "reward")
    assert "row(s) [0, 1, 2, 3, 4, 5, 6, 7] (values [nan, nan, nan, nan, nan, nan, nan, nan])" in str(err.value)


def test_log_weights_with_lambda_below_one_survive_a_potential_span_past_the_double_range():
    # exp(λφ)/Σ exp(λφ) with φ = ±1e308 and λ = 0.5: the upper row takes all the weight. φ_i − max φ is −inf or 0
    # (weight 0 or 1); φ_i − min φ would be +inf, and inf − logsumexp = NaN.
    from arscale.search.potentials import log_weights

    w = log_weights(torch.tensor([-1e308, 1e308], dtype=torch.float64), 0.5, torch.zeros(2, dtype=torch.long)).exp()
    assert w.tolist() == [0.0, 1.0]


# -- clustering.py -----------------------------------------------------------------------------------------------

# Lloyd on the line 0, 2, 10 from the centres 2 and 0 (rows 1, 0), by hand: step 1 labels 0 -> c1, 2 -> c0,
# 10 -> c0, so the centres move to 6 and 0 (squared shift 16); step 2 labels 0, 2 -> c1 and 10 -> c0, centres 10
# and 1 (shift 17); step 3 changes nothing. scikit-learn stops once the shift is <= tol * (mean biased variance);
# the variance of 0, 2, 10 is 56/3 (biased) or 28 (unbiased).
LINE = torch.tensor([[0.0], [2.0], [10.0]], dtype=torch.float64)


def _lloyd_from_rows_1_0(monkeypatch, tol):
    from arscale.search import clustering

    monkeypatch.setattr(clustering, "kmeans_plus_plus", lambda x, k, generator: torch.tensor([1, 0]))
    return clustering.kmeans(LINE, 2, torch.Generator().manual_seed(0), tol=tol)


def test_lloyd_stops_when_the_shift_equals_the_tolerance(monkeypatch):
    var = float(LINE.var(0, unbiased=False).mean())
    tol = 16.0 / var
    while tol * var < 16.0:  # the tolerance whose threshold is exactly the first step's shift, 16
        tol = math.nextafter(tol, math.inf)
    while tol * var > 16.0:
        tol = math.nextafter(tol, -math.inf)
    assert tol * var == 16.0
    labels, centres = _lloyd_from_rows_1_0(monkeypatch, tol)
    assert centres.flatten().tolist() == [6.0, 0.0] and labels.tolist() == [1, 1, 0]
    labels, centres = _lloyd_from_rows_1_0(monkeypatch, 1e-4)  # the default tolerance: on to the fixed point
    assert centres.flatten().tolist() == [10.0, 1.0] and labels.tolist() == [1, 1, 0]


def test_lloyd_tolerance_is_relative_to_the_biased_variance(monkeypatch):
    # tol 0.7: 0.7 * 56/3 = 13.07 < 16, so Lloyd goes on past step 1 (with the unbiased 28 it would stop: 19.6 >= 16)
    labels, centres = _lloyd_from_rows_1_0(monkeypatch, 0.7)
    assert centres.flatten().tolist() == [10.0, 1.0] and labels.tolist() == [1, 1, 0]


def test_kmeans_accepts_one_cluster_and_as_many_clusters_as_points():
    from arscale.search.clustering import kmeans

    labels, centres = kmeans(LINE, 1, torch.Generator().manual_seed(0))
    assert labels.tolist() == [0, 0, 0] and centres.flatten().tolist() == [4.0]  # the mean
    labels, centres = kmeans(LINE, 3, torch.Generator().manual_seed(0))
    assert sorted(centres.flatten().tolist()) == [0.0, 2.0, 10.0]  # every point its own centre
    assert centres[labels].flatten().tolist() == [0.0, 2.0, 10.0]
    for k in (0, 4):
        with pytest.raises(ArscaleError, match=f"cannot form {k} clusters from 3 points"):
            kmeans(LINE, k, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("seed", range(6))
def test_kmeans_plus_plus_does_not_depend_on_the_points_scale(seed):
    # D^2 sampling draws with probability D^2 / sum D^2: scaling every point by 2^-12 (exact in binary) changes no
    # probability, so the same generator picks the same centres, even where sum D^2 is far below 1
    from arscale.search.clustering import kmeans_plus_plus

    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
    a = kmeans_plus_plus(x, 4, torch.Generator().manual_seed(seed))
    b = kmeans_plus_plus(x * 2.0**-12, 4, torch.Generator().manual_seed(seed))
    assert a.tolist() == b.tolist()


def _seeds_with_first_centre_at_row_0(count):
    """Seeds whose k-means++ start (a uniform draw among 3 rows) is row 0."""
    return [s for s in range(200) if int(torch.randint(3, (1,), generator=torch.Generator().manual_seed(s))) == 0][:count]


def test_kmeans_plus_plus_keeps_the_trial_it_drew_among_duplicates():
    # Points 0, 5, 5. From the first centre 0 both trials land on a 5 (rows 1 or 2, D^2 = 25 each) and lower the
    # potential to 0 alike: scikit-learn keeps the first trial, whichever of the equal rows it is. Replay the draws.
    from arscale.search.clustering import kmeans_plus_plus

    x = torch.tensor([[0.0], [5.0], [5.0]], dtype=torch.float64)
    firsts = set()
    for seed in _seeds_with_first_centre_at_row_0(12):
        g = torch.Generator().manual_seed(seed)
        torch.randint(3, (1,), generator=g)
        trial = torch.multinomial(torch.tensor([0.0, 0.5, 0.5]), 2, replacement=True, generator=g).tolist()[0]
        firsts.add(trial)
        assert kmeans_plus_plus(x, 2, torch.Generator().manual_seed(seed)).tolist() == [0, trial], seed
    assert firsts == {1, 2}  # both rows were drawn first for some seed


@pytest.mark.parametrize("rows, expected", [
    # an unused row equal to the chosen one is as good (row 1, a copy of row 0), never the chosen row again
    ([0.0, 0.0, 3.0], [0, 1]),
    # no duplicate rows: the farthest unused row (D^2 = 25), not a StopIteration
    ([0.0, 3.0, 5.0], [0, 2]),
])
def test_kmeans_plus_plus_moves_a_trial_that_lands_on_a_chosen_row(monkeypatch, rows, expected):
    # A chosen row has D^2 = 0, so only a uniform draw of exactly 0 can land a trial on it (forced here)
    from arscale.search import clustering

    x = torch.tensor(rows, dtype=torch.float64)[:, None]
    seed = _seeds_with_first_centre_at_row_0(1)[0]
    monkeypatch.setattr(clustering.torch, "multinomial",
                        lambda probs, count, replacement, generator: torch.zeros(count, dtype=torch.long))
    assert clustering.kmeans_plus_plus(x, 2, torch.Generator().manual_seed(seed)).tolist() == expected


def test_per_image_pca_of_two_tokens_is_their_half_difference_map():
    # Two tokens t0, t1 per image: centred they are -/+ (t1 - t0)/2, whose first principal direction is
    # +-(t1 - t0)/|t1 - t0|; the projection is the 2-dim map +-(-d/2, d/2), d = |t1 - t0| (sign per image arbitrary).
    # Only one token per image is its own vector.
    from arscale.search.clustering import reduce_features

    tokens = torch.tensor([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 3.0]]], dtype=torch.float64)  # d = 5, 2
    out = reduce_features(tokens, "pca")
    assert out.shape == (2, 2)
    assert torch.allclose(out.abs(), torch.tensor([[2.5, 2.5], [1.0, 1.0]], dtype=torch.float64), atol=1e-12)
    assert float(out[0, 0] * out[0, 1]) < 0 and float(out[1, 0] * out[1, 1]) < 0
    one = reduce_features(torch.tensor([[[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [3.0, 4.0]]]), "pca")
    assert one.shape == (1, 4)  # a single image of four tokens: its map, not its mean token
    assert torch.allclose(one.abs(), torch.tensor([[5.0, 0.0, 5.0, 0.0]], dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("svd_sign", [1.0, -1.0])
def test_joint_pca_sign_is_fixed_for_small_features_too(monkeypatch, svd_sign):
    # pca-joint: of the images' mean tokens, the one projected farthest from the centre lands on the positive side,
    # whichever sign the SVD returned and however small the features (here the projections are ~1e-3)
    from arscale.search import clustering

    first = clustering._first_direction
    monkeypatch.setattr(clustering, "_first_direction", lambda x: svd_sign * first(x))
    tokens = torch.tensor([[[0.0, 0.0], [2.0, 0.0]], [[-3.0, 0.0], [-1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]],
                          dtype=torch.float64) * 1e-3
    out = clustering.reduce_features(tokens, "pca-joint")
    # (in units of 1e-3) joint mean (-1/3, 0); direction +-x; image means 1, -2, 0 project to +-(4/3, -5/3, 1/3):
    # image 1 is the farthest, so it lands positive: the direction is -x
    expected = torch.tensor([[-1 / 3, -7 / 3], [8 / 3, 2 / 3], [-1 / 3, -1 / 3]], dtype=torch.float64) * 1e-3
    assert torch.allclose(out, expected, rtol=0, atol=1e-15)


def test_a_relative_distance_gap_above_the_tie_tolerance_picks_the_nearer_member(monkeypatch):
    # representatives(): distances to a centre within a relative TIE_RTOL = 1e-9 are a tie (lowest index wins);
    # a gap of 1.2e-9 is not. One cluster at 0 with members at -(1 + e) and 1: squared distances (1 + e)^2 and 1.
    from arscale.search import clustering

    assert clustering.TIE_RTOL == 1e-9
    for e, pick in ((0.6e-9, 1), (0.4e-9, 0), (1e-8, 1)):  # a gap of 2e: 1.2e-9 (no tie), 0.8e-9 (a tie), 2e-8
        x = torch.tensor([[-(1.0 + e)], [1.0]], dtype=torch.float64)
        monkeypatch.setattr(clustering, "kmeans", lambda x, k, g: (torch.zeros(2, dtype=torch.long),
                                                                  torch.zeros(1, 1, dtype=torch.float64)))
        assert clustering.representatives(x, 1, torch.Generator()).tolist() == [pick], e


def test_a_schedule_without_operations_stays_at_the_patterns_eight_rows():
    # derive_batch: "with none [no operation], it stays at 8"; the paper text's reading multiplies it by N
    from arscale.search.schedule import derive_batch

    assert derive_batch(5, (), ()) == [8] * 5
    s = build_schedule(5, 2, cluster_at=[], resample_at=[], n_counts="final")
    assert s.batch == (16,) * 5 and s.cluster_at == () and s.resample_at == ()


def test_a_validated_schedule_cannot_be_changed_afterwards():
    # Schedule is frozen: a validated schedule stays valid (and can key a dict)
    import dataclasses

    s = build_schedule(13, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.batch = (8,) * 13
    assert {s: 1}[build_schedule(13, 8)] == 1


def test_an_operation_scaled_below_half_a_row_keeps_one():
    # "initial" reading: rows = max(1, round-half-up(pattern * N / pattern[0])). Pattern 8 -> 1 at N = 3: 3/8 rounds
    # to 0 rows, so the resampling keeps one
    s = build_schedule(2, 3, batch=[8, 1], cluster_at=[], resample_at=[0])
    assert (s.batch, s.resample_at) == ((3, 1), (0,))
    s = build_schedule(3, 3, batch=[8, 8, 1], cluster_at=[1], resample_at=[])
    assert (s.batch, s.cluster_at) == ((3, 3, 1), (1,))


# -- tts_var.py --------------------------------------------------------------------------------------------------


def test_tts_var_lambda_may_be_zero_or_fractional_but_not_infinite_or_negative():
    from arscale.search.tts_var import TTSVARConfig

    for lam in (0.0, 0.5, 1e300):  # λ = 0 is uniform resampling (test_tts_potentials); any finite λ ≥ 0 is a temperature
        assert TTSVARConfig(lam=lam).lam == lam
    for lam in (-0.5, math.inf, NAN):
        with pytest.raises(ArscaleError, match=r"lam \(λ\) must be a finite number ≥ 0"):
            TTSVARConfig(lam=lam)


def test_tts_var_previews_may_be_one_pixel():
    from arscale.search.tts_var import TTSVARConfig

    assert TTSVARConfig(preview_size=1).preview_size == 1
    with pytest.raises(ArscaleError, match="preview_size"):
        TTSVARConfig(preview_size=0)


def test_search_trees_of_several_prompts_go_to_a_new_nested_folder_and_may_be_rewritten(tmp_path, monkeypatch):
    # write_extras: search_tree.png for prompt 0, search_tree_<i>.png for the others; the folder is made, parents
    # included, and writing again over an existing folder works (the drawing itself is stubbed: tested elsewhere)
    from search_tts.search_fakes import FakeNextScale, FakeScorer

    from arscale.search import tree_plot
    from arscale.search.tts_var import TTSVAR, TTSVARConfig, write_extras

    drawn = []
    monkeypatch.setattr(tree_plot, "draw_search_tree",
                        lambda result, p, path: drawn.append(p) or path.write_bytes(b"png") > 0)
    result = TTSVAR(TTSVARConfig(record_previews=False), feature_scorer=FakeScorer()).run(
        FakeNextScale(), ["a red one", "a blue two"], 4, seed=0, scorer=FakeScorer())
    out = tmp_path / "new" / "trees"
    for _ in range(2):
        assert write_extras(result, out) == [out / "search_tree.png", out / "search_tree_1.png"]
    assert sorted(p.name for p in out.iterdir()) == ["search_tree.png", "search_tree_1.png"] and drawn == [0, 1, 0, 1]


@pytest.mark.parametrize("kwargs, message", [
    ({"cluster_at": [6], "resample_at": []}, ("cluster_at scale(s) [6] out of range: an operation runs after a scale "
                                              "and before the next, so it must lie in 0..5 for a model with 7 scales")),
    ({"batch": [8, 8, 9, 6, 6, 6, 6], "cluster_at": [2], "resample_at": []},
     "batch schedule must be non-increasing, but batch[2]=9 > batch[1]=8 (rows cannot be created between scales)"),
    ({"batch": [8, 8, 8, 8, 8, 8, 8], "cluster_at": [1], "resample_at": []},
     "clustering after scale 1 keeps all 8 rows (batch[2] = batch[1]); clustering must shrink the batch"),
])
def test_schedule_errors_name_the_right_scales_and_ranges(kwargs, message):
    with pytest.raises(ArscaleError) as err:
        build_schedule(7, 1, **kwargs)
    assert message in str(err.value)


def test_history_all_decodes_a_clustering_scale_again_when_the_feature_scorer_reads_another_size():
    # history="all" scores the clustering scales too; their decode at the reward's input size (16) serves the
    # features only when the feature scorer reads the same size: here it reads 8, so the features get an 8-px decode
    from search_tts.search_fakes import FakeNextScale, FakeScorer

    from arscale.search.tts_var import TTSVAR, TTSVARConfig

    class SmallFeatures(FakeScorer):
        input_size = 8

    generator = FakeNextScale()  # 7 scales: clustering after 1 and 3 (8 -> 6 -> 4 rows), resampling after 4 and 5
    features = SmallFeatures()
    TTSVAR(TTSVARConfig(potential="max", history="all", record_previews=False), feature_scorer=features).run(
        generator, ["a"], 8, seed=0, scorer=FakeScorer())
    assert [size for _, size in generator.preview_calls] == [16, 16, 8, 16, 16, 8, 16, 16]
    # scales 0..4 at 16 for the history (and resampling 4), 8 for each clustering's features, resampling 5 at 16


def test_kmeans_defaults_are_scikit_learns_as_the_official_code_ran_them():
    # TTSVAR.md §2: KMeans(n_clusters, random_state=0), all else default: max_iter=300, tol=1e-4
    import inspect

    from arscale.search.clustering import kmeans

    params = inspect.signature(kmeans).parameters
    assert (params["max_iter"].default, params["tol"].default) == (300, 1e-4)


def test_select_diverse_refuses_to_keep_every_row():
    # clustering must shrink the batch (TTSVAR.md §1.4: target_num < len(imgs))
    from arscale.search.clustering import select_diverse

    with pytest.raises(ArscaleError, match="clustering must shrink the batch, but asked for 3 of 3 rows"):
        select_diverse(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), 3, torch.Generator())


def _greedy_kmeans_plus_plus_reference(x, k, g):
    """scikit-learn's greedy k-means++ replayed draw by draw: the first centre uniform, then per centre
    2 + floor(ln k) trials drawn with probability D^2 / sum D^2, keeping the trial that lowers sum D^2 most
    (the first of equals)."""
    n = len(x)
    chosen = [int(torch.randint(n, (1,), generator=g))]
    d2 = ((x - x[chosen[0]]) ** 2).sum(1)
    for _ in range(1, k):
        trials = torch.multinomial((d2 / d2.sum()).float(), 2 + int(math.log(k)), replacement=True, generator=g)
        pots = [float(torch.minimum(d2, ((x - x[t]) ** 2).sum(1)).sum()) for t in trials.tolist()]
        best = trials.tolist()[pots.index(min(pots))]
        chosen.append(best)
        d2 = torch.minimum(d2, ((x - x[best]) ** 2).sum(1))
    return chosen


@pytest.mark.parametrize("k", [2, 3, 8])
def test_kmeans_plus_plus_draws_two_plus_floor_ln_k_trials(k):
    # 2 trials at k = 2, 3 at k = 3, 4 at k = 8: the picks (and the generator's draws) follow the reference
    from arscale.search.clustering import kmeans_plus_plus

    for seed in range(8):
        x = torch.randn(12, 2, generator=torch.Generator().manual_seed(50 + seed), dtype=torch.float64)
        expected = _greedy_kmeans_plus_plus_reference(x, k, torch.Generator().manual_seed(seed))
        assert kmeans_plus_plus(x, k, torch.Generator().manual_seed(seed)).tolist() == expected, seed


def test_a_clustering_after_the_first_scale_starts_from_the_schedules_first_count():
    # batch[k] rows generate scale k: with batch 4, 2, ... and clustering after scale 0, four rows start and the
    # clustering keeps two of them
    from search_tts.search_fakes import FakeNextScale, FakeScorer

    from arscale.search.tts_var import TTSVAR, TTSVARConfig

    cfg = TTSVARConfig(batch=[4, 2, 2, 2, 2, 1, 1], cluster_at=[0], resample_at=[4], record_previews=False)
    result = TTSVAR(cfg, feature_scorer=FakeScorer()).run(FakeNextScale(), ["a"], 4, seed=0, scorer=FakeScorer())
    cluster, resample = result.telemetry["operations"]
    assert (cluster["scale"], len(cluster["nodes"]), len(cluster["kept"])) == (0, 4, 2)
    assert (resample["scale"], len(resample["nodes"]), len(resample["kept"])) == (4, 2, 1)


def test_tts_var_without_guidance_feeds_only_the_conditional_rows():
    # TTS-VAR reads no unconditional logits of its own: on a VAR whose guidance is off (cfg 0: no ramp) it runs only
    # the conditional half, so each scale's transformer forward gets the schedule's rows, not twice as many
    import dataclasses

    from tiny_families import BrightnessScorer, tiny_var

    from arscale.search.tts_var import TTSVAR, TTSVARConfig

    torch.manual_seed(0)
    generator = tiny_var()
    generator.sampling = dataclasses.replace(generator.sampling, cfg=0.0)
    fed, forward = [], generator.transformer.forward_scale
    generator.transformer.forward_scale = lambda si, cond, *a, **k: fed.append(int(cond.shape[0])) or forward(
        si, cond, *a, **k)
    cfg = TTSVARConfig(batch=[4, 4, 2, 2, 1], cluster_at=[1], resample_at=[3], record_previews=False)
    TTSVAR(cfg, feature_scorer=BrightnessScorer()).run(generator, [1], 4, seed=0, scorer=BrightnessScorer())
    assert fed == [4, 4, 2, 2, 1]


def test_non_finite_clustering_features_name_their_rows_and_identical_points_give_distinct_centres():
    from arscale.search.clustering import kmeans_plus_plus, select_diverse

    feats = torch.zeros(12, 2)
    feats[[1, 3, 4, 5, 6, 7, 8, 9, 10], 0] = NAN  # nine bad rows: the first eight are named
    with pytest.raises(ArscaleError, match=r"not finite for row\(s\) \[1, 3, 4, 5, 6, 7, 8, 9\];"):
        select_diverse(feats, 2, torch.Generator())
    # every point the same: after the first centre, the lowest unused rows (no row twice)
    picks = kmeans_plus_plus(torch.zeros(4, 1, dtype=torch.float64), 3, torch.Generator().manual_seed(0)).tolist()
    assert len(set(picks)) == 3 and picks[1:] == [i for i in range(4) if i != picks[0]][:2]
