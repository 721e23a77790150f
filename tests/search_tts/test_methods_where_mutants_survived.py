"""The mutants of the methods' core (search/) that no earlier test caught (a mutation audit), each killed here.

Every expected value is worked out by hand from the spec (schedule.py's docstring, TTSVAR.md, SCALINGAR.md,
scikit-learn's k-means++ and Lloyd as TTSVAR.md §2 describes them), never read off a run of the code under test.
"""

import math

import pytest
import torch
from search_fakes import FakeNextScale, FakeScorer

from arscale.search import confidence as sig
from arscale.search.clustering import kmeans_plus_plus
from arscale.search.scaling_ar_config import ScalingARConfig
from arscale.search.schedule import map_operation_scales


def test_operation_scales_map_by_k_minus_one_over_twelve():
    # schedule.py: each paper scale s (of 13, last index 12) moves to round-half-up(s * (K - 1) / 12). At K = 25 that
    # is 2s: clustering after 4 and 10, resampling after 12 and 18 (s * K / 13 would put the last one at 17).
    assert map_operation_scales(25) == ((4, 10), (12, 18))
    # K = 37: 3s -> 6, 15 / 18, 27
    assert map_operation_scales(37) == ((6, 15), (18, 27))


@pytest.mark.parametrize("seed", [1, 3, 4, 13])
def test_kmeans_plus_plus_breaks_a_tie_between_trials_towards_the_first(seed):
    # Points -1, 0, 1 on a line. When the first centre is 0, both other points lower the potential to exactly 1:
    # scikit-learn's greedy k-means++ keeps the first of its 2 + floor(ln 2) = 2 trials (np.argmin). Replay the draws
    # the procedure makes (first centre uniform, then the trials with probability D^2 / sum D^2) to know which
    # trial came first.
    x = torch.tensor([[-1.0], [0.0], [1.0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    first = int(torch.randint(3, (1,), generator=g))
    trials = torch.multinomial(torch.tensor([0.5, 0.0, 0.5]), 2, replacement=True, generator=g).tolist()
    assert first == 1 and sorted(trials) == [0, 2]  # the seeds were picked for a tie between two different trials
    assert kmeans_plus_plus(x, 2, torch.Generator().manual_seed(seed)).tolist() == [1, trials[0]]


def test_log_weights_of_a_potential_gap_beyond_the_double_range_are_a_certain_pick():
    # exp(λφ) normalised: with λ·(φ1 - φ0) = 1e310 (past the largest double) row 1 takes all the weight. Shifting by
    # the group's maximum keeps every exponent <= 0 (row 0 underflows to weight 0); a shift by the minimum would give
    # +inf - inf = NaN.
    from arscale.search.potentials import log_weights, resample

    phi = torch.tensor([0.0, 1e300], dtype=torch.float64)
    w = log_weights(phi, 1e10, torch.zeros(2, dtype=torch.long)).exp()
    assert w.tolist() == [0.0, 1.0]
    assert resample(phi, 1e10, 5, torch.Generator().manual_seed(0)).tolist() == [1] * 5


def test_each_resampling_of_each_prompt_draws_its_own_stream(monkeypatch):
    # 7 scales, N = 8: clustering after scales 1 and 3, resampling after 4 (4 -> 2 rows) and 5 (2 -> 1). Like the
    # clusterings (test_tts_var_wiring), the two resamplings of a prompt must not reuse one random stream, or their
    # draws would be the same uniforms twice.
    from arscale.search import importance
    from arscale.search.tts_var import TTSVAR, TTSVARConfig

    seen = []
    real = importance.resample

    def spy(phi, lam, count, generator):
        seen.append(generator.initial_seed())
        return real(phi, lam, count, generator)

    monkeypatch.setattr(importance, "resample", spy)
    res = TTSVAR(TTSVARConfig(record_previews=False), feature_scorer=FakeScorer()).run(
        FakeNextScale(), ["a red circle", "two blue squares"], 8, seed=3, scorer=FakeScorer())
    assert res.telemetry["schedule"]["resample_at"] == [4, 5]
    assert len(seen) == 4 and len(set(seen)) == 4  # (scale 4: p0, p1), (scale 5: p0, p1)


def test_a_prompt_down_to_its_last_survivor_is_never_flagged():
    # SCALINGAR.md §3.1 [PROPOSAL]: never prune the last active candidate; the policy gives such a row no probation,
    # so no flag (and no flag event, which would also reset its rebound minimum). Prompt 1 holds one row whose C
    # falls: theta = 0.8 * 0.9 + 0.2 * 0.1 = 0.74 > 0.1, below, but it is its prompt's last survivor.
    from arscale.search.scaling_ar_termination import TerminationPolicy

    policy = TerminationPolicy(ScalingARConfig(), num_prompts=2, window=4)
    prompt = torch.tensor([0, 0, 1])
    flagged = torch.zeros(3, dtype=torch.bool)
    flag_step = torch.full((3,), -1, dtype=torch.long)
    zero = torch.zeros(3)
    policy.step(10, torch.tensor([0.5, 0.6, 0.9]), zero, prompt, flagged, flag_step)
    events, doomed = policy.step(11, torch.tensor([0.5, 0.6, 0.1]), zero, prompt, flagged, flag_step)
    assert math.isclose(policy.theta[1], 0.74, rel_tol=1e-6)
    assert not bool(flagged[2]) and int(flag_step[2]) == -1
    assert all(row != 2 for row, _ in events) and doomed == []


def test_scaling_ar_defaults_are_the_papers_constants():
    # SCALINGAR.md §6 (App. C.2): one universal configuration
    c = ScalingARConfig()
    paper = {"alpha_h": 0.5, "alpha_m": 0.5, "lambda_tok": 0.2, "lambda_i": 0.2, "w_tok": 0.65, "w_blk": 0.35,
             "block": 4, "worst_q": 0.1, "w_i": 0.75, "w_d": 0.25, "prune_quantile": 0.2, "lambda_theta": 0.2,
             "warmup_fraction": 0.125, "recovery_window": 32, "delta_rec": 0.05, "alpha": 0.3, "beta": 0.4,
             "gamma": 0.4}
    assert {k: getattr(c, k) for k in paper} == paper
    # the signal functions' own defaults are the same constants (C = 0.75 I + 0.25 D, x_tok with 0.5 / 0.5)
    assert sig.unified_confidence(torch.tensor([1.0]), torch.tensor([0.0])).item() == 0.75
    uniform = torch.zeros(1, 4)  # H / log|V| = 1, margin 0: x_tok = 1 - (0.5 * 1 + 0.5 * 1) = 0
    peaked = torch.tensor([[0.0, -1e4, -1e4, -1e4]])  # H = 0, margin 1: x_tok = 1
    assert sig.token_confidence(uniform).item() == pytest.approx(0.0, abs=1e-6)
    assert sig.token_confidence(peaked).item() == pytest.approx(1.0, abs=1e-6)
    mixed = torch.log(torch.tensor([[0.5, 0.5, 1e-30, 1e-30]]))  # H = ln 2, H / ln 4 = 0.5, margin 0: x = 1 - 0.75
    assert sig.token_confidence(mixed).item() == pytest.approx(0.25, abs=1e-6)


def test_step_windows_round_to_the_nearest_step():
    # 32 paper steps scaled by T / 1024: T = 625 (a 25 x 25 grid) gives 19.53 -> 20 steps, not 19
    assert ScalingARConfig().recovery_steps(625) == 20
    assert ScalingARConfig().variance_steps(625) == 20
    assert ScalingARConfig().recovery_steps(256) == 8


def test_importance_after_the_first_scale_scores_that_scale():
    # resample_at = [0]: after scale 0 the rows are decoded and scored (column 0 of the reward history), and the
    # draw reads those rewards
    from arscale.search.importance import Importance, ImportanceConfig

    scorer = FakeScorer()
    res = Importance(ImportanceConfig(resample_at=[0])).run(FakeNextScale(), ["a red circle"], 4, seed=0, scorer=scorer)
    op = res.telemetry["operations"][0]
    assert op["position"] == 0 and len(op["reward"]) == 4
    assert all(math.isfinite(r) for r in op["reward"])
    assert scorer.calls[0] == 4  # the first scoring is of the 4 rows after scale 0


@pytest.mark.parametrize("seed", [1, 8])
def test_lloyd_tolerance_is_the_mean_per_feature_variance_not_the_sum(seed):
    # Points 0, 4, 6.9, 10 on the first axis of 1000 (the other 999 are zero: they add nothing to any distance, but
    # count in the mean per-feature variance, scikit-learn's tolerance scale). var(x1) = 13.601875, so with tol = 1
    # the threshold is 0.0136 (a sum over features would give 13.6). From the k-means++ start {4, 10}:
    #   step 1: {0, 4, 6.9} | {10} -> centres 3.633, 10; squared shift 0.134 > 0.0136: go on
    #   step 2: 6.9 is now nearer 10 (3.1 < 3.27): {0, 4} | {6.9, 10} -> centres 2, 8.45; step 3 changes nothing
    from arscale.search.clustering import kmeans

    x = torch.zeros(4, 1000, dtype=torch.float64)
    x[:, 0] = torch.tensor([0.0, 4.0, 6.9, 10.0], dtype=torch.float64)
    assert sorted(kmeans_plus_plus(x, 2, torch.Generator().manual_seed(seed)).tolist()) == [1, 3]  # the start
    labels, centres = kmeans(x, 2, torch.Generator().manual_seed(seed), tol=1.0)
    assert {frozenset(torch.nonzero(labels == j).flatten().tolist()) for j in range(2)} == {frozenset({0, 1}),
                                                                                         frozenset({2, 3})}
    assert sorted(centres[:, 0].tolist()) == pytest.approx([2.0, 8.45], abs=1e-12)
    assert float(centres[:, 1:].abs().max()) == 0.0


def test_resampled_rows_stay_in_ascending_order_within_their_prompt():
    # the batch layout after a resampling is canonical, as after a clustering: each prompt's kept rows in ascending
    # order (copies of a row side by side), whatever order the multinomial drew them in. λ = 0: uniform draws.
    from arscale.generators.trajectories import Trajectories
    from arscale.search.importance import resample_per_prompt
    from arscale.search.rollout import Search

    search = Search(FakeNextScale(), seed=0, prompt_offset=0)
    traj = Trajectories.for_prompts(["a", "b", "c"], 8, seed=0)
    traj.record("reward", 0, torch.arange(24, dtype=torch.float32))
    rows, trace = resample_per_prompt(search, traj, 0, "value", lam=0.0)
    assert len(rows) == 24 and trace["kept"] == rows
    for p in range(3):
        mine = rows[8 * p: 8 * p + 8]
        assert all(8 * p <= r < 8 * p + 8 for r in mine) and mine == sorted(mine)
