"""ScalingAR's boundaries, documented constants and formulas that mutants of its modules (termination, profile,
signals, strategy) showed the suite left open; each test fails on such a mutant."""

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.search import confidence as sig
from arscale.search import scaling_ar_termination as term
from arscale.search.scaling_ar_config import ScalingARConfig
from arscale.search.scaling_ar_termination import simulate_termination

# -- scaling_ar_termination --------------------------------------------------------------------------------------

def test_simulate_termination_accepts_a_single_token():
    # num_tokens = 1 is allowed (the check is >= 1): each of the n candidates draws its one token
    assert simulate_termination(ScalingARConfig(), 1, 3) == 3
    assert simulate_termination(ScalingARConfig(), 1, 1, noise=0.1, seed=3) == 1
    with pytest.raises(ArscaleError, match="num_tokens >= 1"):
        simulate_termination(ScalingARConfig(), 0, 3)
    with pytest.raises(ArscaleError, match="n >= 1"):
        simulate_termination(ScalingARConfig(), 1, 0)


def test_simulated_confidences_are_the_documented_ar1_wander(monkeypatch):
    # docstring: candidate k's C = evenly spaced constant in [0.4, 0.6] + AR(1) wander, wander_t = 0.9 wander_{t-1}
    # + noise * eps_t, eps_t ~ N(0, 1) drawn from a generator seeded with `seed`, n draws a step
    seen = []

    class Recording(term.TerminationPolicy):
        def step(self, t, c, r, prompt, flagged, flag_step):
            seen.append((t, c.clone()))
            return super().step(t, c, r, prompt, flagged, flag_step)

    monkeypatch.setattr(term, "TerminationPolicy", Recording)
    cfg = ScalingARConfig(terminate=True)
    n, T, noise, seed = 3, 16, 0.05, 11
    simulate_termination(cfg, T, n, noise=noise, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    base, wander, expected = torch.linspace(0.4, 0.6, n), torch.zeros(n), {}
    for t in range(T):
        wander = 0.9 * wander + noise * torch.randn(n, generator=gen)
        expected[t] = base + wander
    warmup = cfg.warmup_steps(T)
    assert seen and seen[0][0] == warmup  # the policy decides from the warm-up on
    first_t, first_c = seen[0]
    assert len(first_c) == n  # nobody is terminated before the first decision
    assert torch.allclose(first_c, expected[first_t], atol=1e-6)


def _policy(window=2, **kw):
    kw = {"prune_quantile": 0.5, "lambda_theta": 1.0, "threshold_pool": "active", **kw}
    return term.TerminationPolicy(ScalingARConfig(**kw), num_prompts=1, window=window)


@pytest.mark.parametrize("probation", ["any", "end"])
def test_a_rebound_of_exactly_delta_rec_is_a_rebound(probation):
    # Algorithm 1 line 17 prunes when C < theta and R < delta_rec: R = delta_rec is not below it, so the flag
    # clears (0.25 is exact in float32 and float64)
    pol = _policy(window=1, delta_rec=0.25, probation=probation)
    prompt, zero = torch.zeros(4, dtype=torch.long), torch.zeros(4)
    flagged, since = torch.zeros(4, dtype=torch.bool), torch.full((4,), -1, dtype=torch.long)
    c = torch.tensor([0.1, 0.2, 0.8, 0.9])
    pol.step(10, c, zero, prompt, flagged, since)
    assert flagged.tolist() == [True, True, False, False]
    ev, doomed = pol.step(11, c, torch.tensor([0.25, 0.0, 0.0, 0.0]), prompt, flagged, since)
    assert (0, "recover") in ev and doomed == [1] and not flagged[0]


def test_the_recorded_token_floor_cell_of_the_default_config_reproduces():
    # benchmarks/RESULTS.md (Session 15, token_floor.md): T = 256, N = 8, "unflagged", p = 0.2, wander sd 0.1, mean
    # of seeds 0-19 = 595 tokens per image (the wander's form, coefficient and base spacing all move it)
    cfg = ScalingARConfig(threshold_pool="unflagged", prune_quantile=0.2)
    runs = [simulate_termination(cfg, 256, 8, 0.1, seed) for seed in range(20)]
    assert round(sum(runs) / len(runs)) == 595
    assert simulate_termination(cfg, 256, 8) == 606  # the stable ranking's column


def test_terminations_that_need_no_trimming_come_in_row_order():
    # rows 0 and 1 are due, row 2 (the best) is not; two may go (room = 3 - 1): both are cut, reported in row
    # order like the flags, not re-sorted by C (that order is only for choosing whom to spare)
    pol = _policy(window=1, prune_quantile=0.99)
    prompt = torch.zeros(3, dtype=torch.long)
    flagged, since = torch.tensor([True, True, False]), torch.tensor([0, 0, -1])
    ev, doomed = pol.step(4, torch.tensor([0.2, 0.1, 0.9]), torch.zeros(3), prompt, flagged, since)
    assert doomed == [0, 1]
    assert [e for e in ev if e[1] == "terminate"] == [(0, "terminate"), (1, "terminate")]


def test_grouped_quantile_of_groups_with_nothing_kept_is_nan():
    # the docstring: NaN for a group with none kept, also when no group keeps anything (an empty table)
    q = term.grouped_quantile(torch.tensor([1.0, 2.0]), torch.tensor([0, 1]), torch.tensor([False, False]), 2, 0.5)
    assert q.shape == (2,) and torch.isnan(q).all()
    q = term.grouped_quantile(torch.tensor([1.0, 3.0]), torch.tensor([1, 1]), torch.tensor([True, True]), 2, 0.5)
    assert torch.isnan(q[0]) and q[1].item() == 2.0


# -- confidence --------------------------------------------------------------------------------------------------

def test_ema_moves_a_rate_of_the_way_to_the_new_value():
    # SCALINGAR.md §2.1: s_t = (1 - lambda) s_{t-1} + lambda x_t; a NaN previous value starts at x
    out = sig.ema(torch.tensor([1.0, float("nan")]), torch.tensor([2.0, 3.0]), 0.25)
    assert out.tolist() == [1.25, 3.0]


def test_unified_confidence_default_weights_are_the_papers():
    # App. C.2: w_I / w_D = 0.75 / 0.25, both (the suite pinned w_I only)
    assert sig.unified_confidence(torch.tensor([0.0]), torch.tensor([1.0])).item() == 0.25
    assert sig.unified_confidence(torch.tensor([1.0]), torch.tensor([1.0])).item() == 1.0



def test_worst_block_entropy_by_hand_on_a_partly_generated_grid():
    # a 4 x 4 grid in 2 x 2 blocks, six tokens generated (raster order): block 0 holds tokens 0, 1, 4, 5 (mean 0.1),
    # block 1 tokens 2, 3 (mean 0.8; 6 and 7 not yet generated), blocks 2 and 3 none (inactive)
    e = torch.full((1, 16), float("nan"))
    e[0, :6] = torch.tensor([0.1, 0.1, 0.9, 0.7, 0.1, 0.1])
    assert sig.worst_block_entropy(e, 4, 2, 0.5).item() == pytest.approx(0.8)  # ceil(0.5 * 2) = 1 block
    assert sig.worst_block_entropy(e, 4, 2, 1.0).item() == pytest.approx(0.45)  # both active blocks
    assert sig.worst_block_entropy(e, 4, 2, 0.0).item() == pytest.approx(0.8)  # at least one block


def test_the_signals_reduce_over_the_last_dimension_of_any_batch_shape():
    # the docstrings: "over the last dim" — a [2, 3, V] batch gives the signals of its six rows
    torch.manual_seed(0)
    cond, uncond = torch.randn(2, 3, 7), torch.randn(2, 3, 7)
    flat_c, flat_u = cond.reshape(6, 7), uncond.reshape(6, 7)
    for f in (sig.entropy, sig.normalized_entropy, sig.top2_margin, sig.token_confidence):
        assert torch.allclose(f(cond).reshape(6), f(flat_c), atol=1e-6), f.__name__
    assert torch.allclose(sig.kl_divergence(cond, uncond).reshape(6), sig.kl_divergence(flat_c, flat_u), atol=1e-6)



def test_windowed_variance_of_two_values_is_their_population_variance():
    # "0 where fewer than 2": two values are enough
    assert sig.windowed_variance(torch.tensor([[1.0, 3.0], [2.0, float("nan")]]), 32).tolist() == [1.0, 0.0]


def test_prompt_zscore_takes_in_a_single_value_and_keeps_the_sign_at_zero_spread():
    z = sig.PromptZScore(2)
    z.update(torch.tensor([2.0]), torch.tensor([0]))  # one value of prompt 0 this step: merged like several
    assert z.mean.tolist() == [2.0, 0.0] and z.count.tolist() == [1.0, 0.0]
    z.update(torch.tensor([2.0, 5.0]), torch.tensor([0, 1]))
    # no spread yet (std 0): a value above the mean is +clip, below it -clip, (v - mean) / (0 + eps)
    assert z.zscore(torch.tensor([3.0, 1.0, 6.0]), torch.tensor([0, 0, 1])).tolist() == [3.0, -3.0, 3.0]


# -- scaling_ar --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gen():
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar

    return random_shapeworld_ar(1, grid=8, vocab_size=32, cfg=2.0)


def test_the_wall_time_leaves_out_the_previews_time(gen, monkeypatch):
    # the previews of terminated candidates are telemetry: their seconds (here at least 0.3 s) are taken out of
    # `total_wall`, which stays a duration within the run's own (not a clock reading, not the previews counted)
    import time

    from arscale.search import scaling_ar as sar

    real = sar._attach_previews

    def slow_previews(*args, **kwargs):
        t0 = time.perf_counter()
        time.sleep(0.3)
        return real(*args, **kwargs) + (time.perf_counter() - t0)

    monkeypatch.setattr(sar, "_attach_previews", slow_previews)
    cfg = ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1, preview_size=32)
    # a first run counts the decoder's FLOPs once (seconds, also left out of the wall time); the next one is timed
    sar.ScalingAR(ScalingARConfig(terminate=False)).run(gen, ["a photo of a red circle"], 1, seed=0)
    t0 = time.perf_counter()
    res = sar.ScalingAR(cfg).run(gen, ["a photo of a red circle"], 4, seed=0)
    elapsed = time.perf_counter() - t0
    assert any(tr["reason"] == "prune" for per in res.telemetry["prompts"] for tr in per)
    assert 0 < res.cost.total_wall <= elapsed - 0.3


def test_scaling_ar_says_it_uses_no_reward_and_the_scorer_is_not_loaded(monkeypatch, capsys, tmp_path):
    # ScalingAR picks by its own confidence (no reward model): `generate --scorer` notes the scorer is ignored and
    # never loads it
    from arscale.cli import main as cli
    from arscale.scorers import base as scorers
    from arscale.search.scaling_ar import ScalingAR

    class Stop(Exception):
        pass

    def no_load(*args, **kwargs):
        raise AssertionError("a scorer was loaded for ScalingAR")

    def stop(self, *args, **kwargs):
        raise Stop

    assert ScalingAR.uses_reward is False
    monkeypatch.setattr(scorers, "load_scorer", no_load)
    monkeypatch.setattr(ScalingAR, "run", stop)
    with pytest.raises(Stop):
        cli(["generate", "a photo of a red circle", "--model", "shapeworld-ar", "--strategy", "scaling-ar", "--n", "2",
             "--scorer", "shapeworld-reward", "--out", str(tmp_path)])
    assert "scaling-ar uses no scorer; --scorer shapeworld-reward is ignored" in capsys.readouterr().err


def test_a_sampler_setting_in_the_config_replaces_the_generators_own_sampler(gen, monkeypatch):
    # `temperature` / `top_k` / `top_p` in the config: ScalingAR draws with them (`sample_per_row`), so the
    # generator's own `sample` (its own temperature and filters) must not be used; with none set it is
    from arscale.search.scaling_ar import ScalingAR

    calls = []
    real = gen.sample
    monkeypatch.setattr(gen, "sample", lambda traj, logits=None: calls.append(1) or real(traj, logits))
    from arscale.search import scaling_ar as sar

    seen = []
    draw = sar.sample_per_row
    monkeypatch.setattr(sar, "sample_per_row", lambda *a, **kw: seen.append(kw) or draw(*a, **kw))
    for setting in ({"temperature": 0.5}, {"top_k": 4}):
        ScalingAR(ScalingARConfig(terminate=False, **setting)).run(gen, ["a photo of a red circle"], 2, seed=1)
        assert calls == [], setting
    # the settings not given are the generator's own (its temperature with a config top_k)
    assert seen[0]["temperature"] == 0.5 and seen[-1]["top_k"] == 4 and seen[-1]["temperature"] == gen.temperature
    assert seen[-1]["top_p"] == gen.top_p
    ScalingAR(ScalingARConfig(terminate=False)).run(gen, ["a photo of a red circle"], 2, seed=1)
    assert len(calls) == gen.num_tokens


def test_a_generators_own_flop_count_is_billed_not_its_per_token_formula(gen, monkeypatch):
    # a generator that counts its transformer FLOPs itself (traj.extra["transformer_flops"]) is billed by that
    # count; `flops_per_token` only bills one that keeps none (and splits the bill between prompts)
    from arscale.search.scaling_ar import ScalingAR

    strategy = ScalingAR(ScalingARConfig(terminate=False))
    own = strategy.run(gen, ["a photo of a red circle"], 2, seed=1).cost.transformer_flops
    monkeypatch.setattr(gen, "flops_per_token", lambda rows=1, position=None: 1.0 * rows)
    assert strategy.run(gen, ["a photo of a red circle"], 2, seed=1).cost.transformer_flops == own
    assert own > 1e4



def test_a_single_candidate_run_gives_no_min_survivors_warning(gen):
    # min_survivors >= n switches termination off, which is said for n > 1; a lone candidate has nothing to
    # terminate anyway, so n = 1 with the default min_survivors 1 runs without the warning
    import warnings

    from arscale.errors import ArscaleWarning
    from arscale.search.scaling_ar import ScalingAR

    with warnings.catch_warnings():
        warnings.simplefilter("error", ArscaleWarning)
        ScalingAR(ScalingARConfig(cfg_base=2.0)).run(gen, ["a photo of a red circle"], 1, seed=0)
        # a base scale equal to clamp_min (1: no guidance) is not below it: nothing to say either
        ScalingAR(ScalingARConfig(cfg_base=1.0, clamp_min=1.0)).run(gen, ["a photo of a red circle"], 1, seed=0)
    # a model's own cfg_interval (LlamaGen's; -1: off) is not applied, from any interval on, 0 included
    gen.cfg_interval = 0
    try:
        with pytest.warns(ArscaleWarning, match="cfg_interval 0"):
            ScalingAR(ScalingARConfig(cfg_base=2.0)).run(gen, ["a photo of a red circle"], 1, seed=0)
    finally:
        del gen.cfg_interval
    with pytest.warns(ArscaleWarning, match="min_survivors 2 keeps all 2"):
        ScalingAR(ScalingARConfig(min_survivors=2, cfg_base=2.0)).run(gen, ["a photo of a red circle"], 2, seed=0)
