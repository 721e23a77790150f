"""ScalingAR's policy: the termination state machine, guidance clamps, configs, and whole runs."""

import json
import math

import numpy as np
import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.search.base import make_strategy
from arscale.search.scaling_ar import ScalingAR, ScalingARConfig
from arscale.search.scaling_ar_plot import write_extras
from arscale.search.scaling_ar_profile import guidance_schedule
from arscale.search.scaling_ar_termination import (
    TerminationPolicy,
    grouped_quantile,
    simulate_termination,
    token_floor,
)


def machine(window=2, **kw):
    # the state-machine tests below read the threshold over all active rows; the pool has its own tests
    kw = {"prune_quantile": 0.5, "lambda_theta": 1.0, "delta_rec": 0.05, "threshold_pool": "active", **kw}
    cfg = ScalingARConfig(**kw)
    return TerminationPolicy(cfg, num_prompts=1, window=window)


def test_flag_recover_terminate():
    pol = machine(window=2, probation="any")
    prompt = torch.zeros(4, dtype=torch.long)
    flagged = torch.zeros(4, dtype=torch.bool)
    since = torch.full((4,), -1, dtype=torch.long)
    zero = torch.zeros(4)
    # step 10: rows 0 and 1 fall below the median -> flagged
    ev, doomed = pol.step(10, torch.tensor([0.1, 0.2, 0.8, 0.9]), zero, prompt, flagged, since)
    assert sorted(ev) == [(0, "flag"), (1, "flag")] and doomed == []
    assert flagged.tolist() == [True, True, False, False] and since.tolist() == [10, 10, -1, -1]
    # step 11: row 1 rebounds strongly (R >= delta_rec) while still below theta -> recovers
    ev, doomed = pol.step(11, torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0.0, 0.3, 0.0, 0.0]), prompt,
                          flagged, since)
    assert ev == [(1, "recover")] and doomed == []
    # step 12: row 0 is still flagged two steps after its flag -> terminated; row 1 is flagged again
    ev, doomed = pol.step(12, torch.tensor([0.1, 0.2, 0.8, 0.9]), zero, prompt, flagged, since)
    assert (1, "flag") in ev and (0, "terminate") in ev and doomed == [0]


def test_recovery_by_rising_above_threshold():
    pol = machine(window=3, probation="any")
    prompt = torch.zeros(2, dtype=torch.long)
    flagged = torch.zeros(2, dtype=torch.bool)
    since = torch.full((2,), -1, dtype=torch.long)
    pol.step(5, torch.tensor([0.1, 0.9]), torch.zeros(2), prompt, flagged, since)
    assert flagged.tolist() == [True, False]
    ev, _ = pol.step(6, torch.tensor([0.95, 0.2]), torch.zeros(2), prompt, flagged, since)
    assert (0, "recover") in ev and (1, "flag") in ev


def test_probation_decided_at_the_end_ignores_blips_inside_the_window():
    prompt = torch.zeros(4, dtype=torch.long)
    low, high = torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0.1, 0.85, 0.85, 0.9])
    outcomes = {}
    for probation in ("any", "end"):
        pol = machine(window=3, probation=probation)
        flagged, since = torch.zeros(4, dtype=torch.bool), torch.full((4,), -1, dtype=torch.long)
        zero = torch.zeros(4)
        pol.step(10, low, zero, prompt, flagged, since)  # rows 0 and 1 flagged
        # step 11: row 1 blips above theta, row 0 rebounds (R >= delta_rec) while still below it
        ev11, _ = pol.step(11, high, torch.tensor([0.3, 0.0, 0.0, 0.0]), prompt, flagged, since)
        pol.step(12, low, zero, prompt, flagged, since)
        _, doomed = pol.step(13, low, zero, prompt, flagged, since)
        outcomes[probation] = ev11, doomed
    # "any": both blips clear the flags, nobody is due at the window's end
    assert sorted(outcomes["any"][0]) == [(0, "recover"), (1, "recover")] and outcomes["any"][1] == []
    # "end": the flags survive the blips; at the end both are below theta without a rebound -> terminated
    assert outcomes["end"][0] == [] and sorted(outcomes["end"][1]) == [0, 1]


def test_probation_decided_at_the_end_spares_a_candidate_that_rebounded_by_then():
    pol = machine(window=2, probation="end")
    prompt = torch.zeros(3, dtype=torch.long)
    flagged, since = torch.zeros(3, dtype=torch.bool), torch.full((3,), -1, dtype=torch.long)
    c = torch.tensor([0.1, 0.5, 0.9])
    pol.step(4, c, torch.zeros(3), prompt, flagged, since)
    pol.step(5, c, torch.zeros(3), prompt, flagged, since)
    ev, doomed = pol.step(6, c, torch.tensor([0.2, 0.0, 0.0]), prompt, flagged, since)
    assert ev == [(0, "recover")] and doomed == [] and not flagged[0]


def test_last_survivor_and_best_are_kept():
    prompt = torch.tensor([0, 0, 0])
    c = torch.tensor([0.3, 0.1, 0.2])
    # theta = the 0.99-quantile (just under 0.3): rows 1 and 2 are due, row 0 (the best) recovers
    pol = machine(window=0, prune_quantile=0.99)
    flagged, since = torch.tensor([True, True, True]), torch.tensor([0, 0, 0])
    _, doomed = pol.step(4, c, torch.zeros(3), prompt, flagged, since)
    assert sorted(doomed) == [1, 2]
    # with two survivors required, the more confident of the doomed rows stays
    pol = machine(window=0, prune_quantile=0.99, min_survivors=2)
    flagged, since = torch.tensor([True, True, True]), torch.tensor([0, 0, 0])
    _, doomed = pol.step(4, c, torch.zeros(3), prompt, flagged, since)
    assert doomed == [1]
    # a prompt with a single row never loses it, even unprotected
    pol = machine(window=0, protect_best=False)
    pol.theta = [1.0]
    one = torch.tensor([0])
    flagged = torch.tensor([True])
    ev, doomed = pol.step(4, torch.tensor([0.1]), torch.zeros(1), one, flagged, torch.tensor([0]))
    assert doomed == [] and not flagged[0]  # no probation for a last survivor: its flag is lifted,
    assert ev == [(0, "settle")]  # and the telemetry says so (a flag left unresolved would hang in the plot)
    # the arg-max row is protected even when it is due: rows 0 (the best) and 1 are due, row 2 is flagged only
    # now, so room for two terminations is left and only protection can spare row 0
    for protect, expected in ((True, [1]), (False, [0, 1])):
        pol = machine(window=1, prune_quantile=0.99, lambda_theta=0.2, protect_best=protect)
        pol.theta = [5.0]
        flagged, since = torch.tensor([True, True, False]), torch.tensor([0, 0, -1])
        _, doomed = pol.step(4, c, torch.zeros(3), prompt, flagged, since)
        assert sorted(doomed) == expected


def test_unflagged_pool_puts_several_candidates_on_probation_at_once():
    prompt = torch.zeros(5, dtype=torch.long)
    c = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    flags = {}
    for pool in ("active", "unflagged"):
        pol = machine(window=10, prune_quantile=0.25, threshold_pool=pool)
        flagged, since = torch.zeros(5, dtype=torch.bool), torch.full((5,), -1, dtype=torch.long)
        flags[pool] = [sorted(i for i, kind in pol.step(t, c, torch.zeros(5), prompt, flagged, since)[0]
                              if kind == "flag") for t in range(4)]
    # "active": theta stays at the 0.25-quantile of all five (0.2), so only row 0 is ever below it
    assert flags["active"] == [[0], [], [], []]
    # "unflagged": theta is the 0.25-quantile of the rows not yet on probation, so it climbs one row a step
    # (0.2 over all five, 0.275 over rows 1-4, 0.35 over rows 2-4, 0.425 over rows 3-4)
    assert flags["unflagged"] == [[0], [1], [2], [3]]


def test_unflagged_pool_falls_back_to_all_rows_when_every_row_is_flagged():
    pol = machine(threshold_pool="unflagged", prune_quantile=0.5)
    c, prompt = torch.tensor([0.2, 0.6]), torch.zeros(2, dtype=torch.long)
    theta = pol.update_threshold(c, prompt, torch.tensor([True, True]))
    assert theta.tolist() == pytest.approx([0.4, 0.4])
    theta = pol.update_threshold(c, prompt, torch.tensor([True, False]))
    assert theta.tolist() == pytest.approx([0.6, 0.6])


def test_token_floor_matches_the_cascade_worked_by_hand():
    # T = 256, N = 8, no threshold lag: warm-up 32 steps, windows of 8. "active": the two lowest are flagged at
    # step 32 and end at 40 (41 tokens each), then one at a time: 50, 59, 68, 77, 86 tokens; the survivor 256.
    active = ScalingARConfig(threshold_pool="active", lambda_theta=1.0)
    assert token_floor(active, 256, 8) == 2 * 41 + 50 + 59 + 68 + 77 + 86 + 256
    # "unflagged": two flagged at step 32, then one more each step up to 37, each ending 8 steps later
    unflagged = ScalingARConfig(threshold_pool="unflagged", lambda_theta=1.0)
    assert token_floor(unflagged, 256, 8) == 2 * 41 + 42 + 43 + 44 + 45 + 46 + 256
    assert token_floor(ScalingARConfig(), 256, 1) == 256
    assert token_floor(ScalingARConfig(terminate=False), 256, 8) == 8 * 256
    # more pruning (a higher p) never costs more; the paper's Table 5 count (2,350 at T = 1024) is below the
    # "active" reading's floor at its own p = 0.2
    floors = [token_floor(ScalingARConfig(threshold_pool="active", prune_quantile=p), 1024, 8) for p in (0.1, 0.2, 0.3)]
    assert floors == sorted(floors, reverse=True) and floors[1] > 2350
    assert token_floor(ScalingARConfig(), 1024, 8) < 2350
    with pytest.raises(ArscaleError, match="n >= 1"):
        token_floor(ScalingARConfig(), 256, 0)


def test_simulated_termination_is_seeded_and_wandering_rankings_cost_more_than_stable_ones():
    cfg = ScalingARConfig(threshold_pool="active")
    runs = [simulate_termination(cfg, 256, 8, noise=0.03, seed=s) for s in range(6)]
    assert runs == [simulate_termination(cfg, 256, 8, noise=0.03, seed=s) for s in range(6)]
    assert len(set(runs)) > 1  # the seed changes the wander
    assert sum(runs) / len(runs) > token_floor(cfg, 256, 8)  # flags that recover cost tokens
    with pytest.raises(ArscaleError, match="noise"):
        simulate_termination(cfg, 256, 8, noise=-1.0)


def test_threshold_is_per_prompt_ema_of_quantile():
    cfg = ScalingARConfig(prune_quantile=0.5, lambda_theta=0.2)
    pol = TerminationPolicy(cfg, 2, 2)
    prompt = torch.tensor([0, 0, 1, 1])
    pol.update_threshold(torch.tensor([0.0, 1.0, 10.0, 20.0]), prompt)
    assert pol.theta == pytest.approx([0.5, 15.0])
    pol.update_threshold(torch.tensor([1.0, 1.0, 10.0, 10.0]), prompt)
    assert pol.theta == pytest.approx([0.8 * 0.5 + 0.2 * 1.0, 0.8 * 15 + 0.2 * 10])


def test_guidance_clamps():
    cfg = ScalingARConfig(alpha=0.3, beta=0.4, gamma=0.4, clamp_min=1.0, clamp_over=2.0)
    drift = torch.tensor([0.0, 1.0, 0.5, 1.0])
    var = torch.tensor([100.0, 0.0, 0.0, 0.0])
    reb = torch.tensor([0.0, 0.0, 5.0, -3.0])
    s = guidance_schedule(cfg, 3.0, drift, var, reb)
    # row 0 hits the upper clamp; row 2's rebound is clipped to 1; negative rebound counts as 0
    assert torch.allclose(s, torch.tensor([5.0, 3.0, 3.0 + 0.15 - 0.4, 3.0]))
    low = guidance_schedule(ScalingARConfig(gamma=10.0), 1.2, torch.ones(1), torch.zeros(1), torch.ones(1))
    assert low.item() == 1.0
    # a base scale below clamp_min is the floor itself: the schedule moves around it, not up to clamp_min
    under = guidance_schedule(cfg, 0.5, torch.tensor([1.0, 0.0]), torch.zeros(2), torch.tensor([1.0, 0.0]))
    assert torch.allclose(under, torch.tensor([0.5, 0.8]))


def test_a_base_scale_below_clamp_min_is_said_and_kept(gen):
    with pytest.warns(UserWarning, match="clamp_min 1.0 is above the base scale 0.5"):
        res = ScalingAR(ScalingARConfig(cfg_base=0.5, terminate=False)).run(gen, PROMPTS[:1], 2, seed=0)
    guidance = [g for tr in res.telemetry["prompts"][0] for g in tr["guidance"]]
    assert min(guidance) >= 0.5 and min(guidance) < 1.0  # the floor is the base scale, not clamp_min


def test_a_llamagen_cfg_interval_that_scaling_ar_does_not_apply_is_said():
    """ScalingAR mixes guidance itself at every token, so LlamaGen's own cfg_interval (conditional logits alone late
    in the raster, which raw sampling honours) does not apply: said, not silently dropped; without one, silence."""
    import warnings

    from tiny_families import tiny_llamagen

    from arscale.errors import ArscaleWarning

    gen = tiny_llamagen()
    strategy = ScalingAR(ScalingARConfig(record_previews=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        strategy.run(gen, [1], 2, seed=0)
    gen.cfg_interval = 3
    with pytest.warns(ArscaleWarning, match="cfg_interval 3 .* is not applied"):
        strategy.run(gen, [1], 2, seed=0)


def test_step_constants_scale_with_sequence_length():
    cfg = ScalingARConfig()
    assert cfg.warmup_steps(1024) == 128 and cfg.recovery_steps(1024) == 32 and cfg.variance_steps(1024) == 32
    assert cfg.warmup_steps(64) == 8 and cfg.recovery_steps(64) == 2 and cfg.variance_steps(256) == 8
    assert ScalingARConfig(scale_steps=False).recovery_steps(64) == 32
    assert ScalingARConfig(recovery_window_steps=5).recovery_steps(64) == 5


@pytest.mark.parametrize("bad, match", [
    ({"prune_quantile": 1.5}, "prune_quantile"),
    ({"lambda_theta": 0.0}, "lambda_theta"),
    ({"confidence_from": "mixed"}, "confidence_from"),
    ({"use_token": False, "use_block": False}, "intrinsic"),
    ({"min_survivors": 0}, "min_survivors"),
    ({"alpha": -1.0}, "alpha"),
    ({"warp": 1}, "unknown"),
    ({"rebound_from": "start"}, "rebound_from"),
    ({"probation": "late"}, "probation"),
    ({"threshold_pool": "all"}, "threshold_pool"),
    ({"variance_window_steps": 0}, "variance_window_steps"),
    ({"recovery_window_steps": -1}, "recovery_window_steps"),
    ({"z_clip": 0.0}, "z_clip"),
    ({"rebound_eps": 0.0}, "rebound_eps"),
    ({"temperature": 0.0}, "temperature"),
    ({"z_eps": 0.0}, "z_eps"),
    ({"w_i": 0.0, "use_conditional": False}, "w_i"),
    ({"w_tok": 0.0, "use_block": False}, "intrinsic weights"),
    ({"preview_size": 4}, "preview_size must be >= 8"),
    ({"delta_rec": "0.05"}, "delta_rec must be a number"),
])
def test_invalid_configs_rejected(bad, match):
    with pytest.raises(ArscaleError, match=match):
        make_strategy("scaling-ar", bad)


def test_config_json_round_trip():
    cfg = ScalingARConfig(prune_quantile=0.3, recovery_window_steps=4)
    assert ScalingARConfig.from_json(cfg.to_json()) == cfg


@pytest.fixture(scope="module")
def gen():
    return random_shapeworld_ar(1, grid=8, vocab_size=32, cfg=2.0)


PROMPTS = ["a photo of a red circle", "a photo of three squares"]


def test_a_next_scale_model_is_refused_with_what_to_use_instead():
    class NextScale:
        name = "some-var"

        def step(self, traj):
            return traj

    with pytest.raises(ArscaleError, match="needs a next-token model .* some-var has no next_logits.*tts-var"):
        ScalingAR().run(NextScale(), PROMPTS, 2)


def test_one_candidate_is_raw_sampling_only_without_the_guidance_schedule(gen):
    raw = make_strategy("raw").run(gen, PROMPTS, 1, seed=4)
    plain = ScalingAR(ScalingARConfig(schedule_guidance=False)).run(gen, PROMPTS, 1, seed=4)
    steered = ScalingAR().run(gen, PROMPTS, 1, seed=4)
    assert all((plain.chosen(p).image == raw.chosen(p).image).all() for p in range(len(PROMPTS)))
    # the schedule moves even a lone candidate's guidance away from the model's own
    guidance = steered.telemetry["prompts"][0][0]["guidance"]
    assert max(abs(g - steered.telemetry["s_base"]) for g in guidance) > 0.05
    assert set(plain.telemetry["prompts"][0][0]["guidance"]) == {plain.telemetry["s_base"]}


def test_run_is_deterministic_and_picks_highest_confidence(gen):
    strat = ScalingAR(ScalingARConfig(prune_quantile=0.5))
    a = strat.run(gen, PROMPTS, 4, seed=3)
    b = strat.run(gen, PROMPTS, 4, seed=3)
    for p in range(2):
        assert (a.chosen(p).image == b.chosen(p).image).all()
        scores = [c.score for c in a.candidates[p]]
        assert a.chosen(p).score == max(scores)
    assert a.telemetry["events"] == b.telemetry["events"]


def test_termination_saves_tokens_and_keeps_a_survivor(gen):
    eager = ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1, delta_rec=10.0)
    res = ScalingAR(eager).run(gen, PROMPTS, 6, seed=0)
    full = ScalingAR(ScalingARConfig(terminate=False)).run(gen, PROMPTS, 6, seed=0)
    T = gen.num_tokens
    assert full.cost.generated_tokens == 2 * 6 * T
    assert res.cost.generated_tokens < full.cost.generated_tokens
    assert res.cost.transformer_flops < full.cost.transformer_flops
    pruned = [e for e in res.telemetry["events"] if e["event"] == "terminate"]
    assert pruned and all(e["step"] >= eager.warmup_steps(T) for e in pruned)
    for p in range(2):
        assert 1 <= len(res.candidates[p]) < 6
        assert sum(c.chosen for c in res.candidates[p]) == 1
    # tokens: a candidate terminated at step t generated t tokens (its pmi trace), after t + 1 profiles (its C
    # trace, the last one the decision); the search tree says the same
    traces = [tr for per in res.telemetry["prompts"] for tr in per]
    assert sum(len(tr["pmi"]) for tr in traces) == res.cost.generated_tokens
    assert res.tree.reason.count("prune") == len(pruned)
    for tr in traces:
        generated = T if tr["reason"] is None else tr["ended"]
        assert len(tr["pmi"]) == generated and len(tr["C"]) == min(generated + 1, T)
        assert res.tree.ended[tr["node"]] == generated


def test_each_prompt_is_billed_for_its_own_candidates(gen):
    # prompts in one batch stop candidates at different steps: each prompt's FLOPs and decodes are its own,
    # recounted here from the generator's per-step formula, and they add up to the run's totals
    eager = ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1, delta_rec=10.0, prompt_batch=2)
    prompts = [*PROMPTS, "a photo of a blue triangle"]
    res = ScalingAR(eager).run(gen, prompts, 6, seed=0)
    T, per = gen.num_tokens, res.telemetry["cost_per_prompt"]
    assert len(per) == 3
    # the text encoder read each chunk's prompts and the empty text once: (2 + 1) rows, then (1 + 1)
    text = gen.encode_condition.model.text_encoder
    text_share = [text.forward_flops(3) / 2] * 2 + [text.forward_flops(2)]
    for p, traces in enumerate(res.telemetry["prompts"]):
        lengths = [T if tr["ended"] is None else tr["ended"] for tr in traces]  # tokens generated
        flops = sum(gen.prefill_flops(1) + sum(gen.step_flops(1, s) for s in range(min(L, T - 1))) for L in lengths)
        assert per[p]["transformer_flops"] == pytest.approx(flops + text_share[p], rel=1e-9)
        assert per[p]["generated_tokens"] == sum(lengths)
        assert per[p]["decode_count"] == pytest.approx(len(res.candidates[p]))
        assert per[p]["decode_flops"] == pytest.approx(len(res.candidates[p]) * gen.decode_flops(1))
    assert len({round(c["transformer_flops"]) for c in per}) > 1  # not an even split
    for key in ("transformer_flops", "decode_flops", "decode_count", "generated_tokens"):
        assert sum(c[key] for c in per) == pytest.approx(getattr(res.cost, key), rel=1e-9)


def test_telemetry_has_every_signal_and_guidance_in_clamps(gen):
    res = ScalingAR(ScalingARConfig()).run(gen, PROMPTS[:1], 3, seed=1)
    traces = res.telemetry["prompts"][0]
    assert [tr["candidate"] for tr in traces] == [0, 1, 2]
    for tr in traces:
        length = gen.num_tokens if tr["reason"] is None else tr["ended"] + 1  # profiles up to the decision
        for key in ("C", "I", "D", "R", "guidance"):
            assert len(tr[key]) == length
        assert len(tr["pmi"]) == (gen.num_tokens if tr["reason"] is None else tr["ended"])  # tokens drawn
        assert all(1.0 <= g <= 2.0 + 2.0 for g in tr["guidance"])
        assert all(0.0 <= d <= 1.0 for d in tr["D"])


def test_ablation_without_scheduler_uses_base_guidance(gen):
    res = ScalingAR(ScalingARConfig(schedule_guidance=False, cfg_base=1.5)).run(gen, PROMPTS[:1], 2, seed=1)
    for tr in res.telemetry["prompts"][0]:
        assert set(tr["guidance"]) == {1.5}


def test_prompt_batches_do_not_change_decisions(gen):
    # batch layout may move float sums in the last bits (DESIGN: bit-identity needs the same layout),
    # but every decision and every signal must agree
    one = ScalingAR(ScalingARConfig(prompt_batch=1)).run(gen, PROMPTS, 3, seed=2)
    two = ScalingAR(ScalingARConfig(prompt_batch=2)).run(gen, PROMPTS, 3, seed=2)
    def decisions(result):
        return sorted((e["prompt"], e["candidate"], e["step"], e["event"]) for e in result.telemetry["events"])

    assert decisions(one) == decisions(two)
    assert one.cost.generated_tokens == two.cost.generated_tokens
    # one tree with the same node ids and prompt indices whichever chunk a prompt ran in
    assert one.tree.to_dict() == two.tree.to_dict() and one.tree.prompt == [0, 0, 0, 1, 1, 1]
    assert [[c.node for c in per] for per in one.candidates] == [[c.node for c in per] for per in two.candidates]
    for result in (one, two):
        for p, per in enumerate(result.candidates):
            assert all(result.tree.prompt[c.node] == p and result.tree.reason[c.node] == "final" for c in per)
        assert all(result.tree.prompt[e["node"]] == e["prompt"] for e in result.telemetry["events"])
    for p in range(2):
        for a, b in zip(one.telemetry["prompts"][p], two.telemetry["prompts"][p], strict=True):
            assert torch.allclose(torch.tensor(a["C"]), torch.tensor(b["C"]), atol=1e-3)


def test_write_extras_plots(gen, tmp_path):
    res = ScalingAR(ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1)).run(gen, PROMPTS, 4, seed=0)
    paths = write_extras(res, tmp_path)
    assert [p.name for p in paths] == ["confidence_00000.png", "confidence_00001.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    # telemetry is plain JSON but for the terminated candidates' preview images
    json.dumps([[{k: v for k, v in tr.items() if k != "preview"} for tr in per] for per in res.telemetry["prompts"]])
    json.dumps({k: v for k, v in res.telemetry.items() if k != "prompts"})


def test_the_plot_of_many_candidates_colours_them_by_fate_and_wraps_the_thumbnails(gen, tmp_path, saved_figures):
    from PIL import Image

    figures = saved_figures
    few = ScalingAR(ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1)).run(gen, PROMPTS[:1], 4, seed=0)
    many = ScalingAR(ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1)).run(gen, PROMPTS[:1], 30, seed=0)
    (small,), (large,) = write_extras(few, tmp_path / "few"), write_extras(many, tmp_path / "many")
    legends = [[t.get_text() for t in fig.axes[0].get_legend().get_texts()] for fig in figures]
    assert [t.split(" (")[0] for t in legends[0][:4]] == ["cand 0", "cand 1", "cand 2", "cand 3"]
    assert len(legends[0]) == 4 + 3  # one entry per candidate, then θ, warm-up, terminated
    assert legends[1][0] == "chosen" and "terminated" in legends[1] and not any("cand" in t for t in legends[1])
    assert len(figures[1].axes) == 1 + 30  # every candidate still has its thumbnail, under the curves
    rows = {round(ax.get_position().y0, 3) for ax in figures[1].axes[1:]}
    assert len(rows) == 3  # 30 thumbnails, 12 to a row
    with Image.open(large) as big, Image.open(small) as little:
        assert big.width <= 1300 and big.height > little.height
    thumbs = {ax.get_title(): ax for ax in figures[0].axes[1:]}
    chosen = [t for t in thumbs if "chosen" in t]
    assert len(chosen) == 1 and chosen[0].endswith("chosen (image 0)")  # the file `generate` writes it to
    for title, ax in thumbs.items():  # a terminated candidate's undrawn tokens are greyed over its preview
        assert len(ax.get_images()) == (2 if "step" in title else 1)
    survived = [tr for tr in many.telemetry["prompts"][0] if tr["reason"] != "prune"]
    assert ("survived" in legends[1]) == (len(survived) > 1)  # a legend entry only for a line that is there


def test_terminated_candidates_keep_their_raster_prefix(gen):
    cfg = ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1, preview_size=32)
    res = ScalingAR(cfg).run(gen, PROMPTS, 4, seed=0)
    pruned = [tr for per in res.telemetry["prompts"] for tr in per if tr["reason"] == "prune"]
    assert pruned
    for tr in pruned:
        tokens = tr["tokens"]
        assert len(tokens) == tr["ended"] and min(tokens) >= 0  # every token it generated, and no more
        prefix = torch.full((1, gen.num_tokens), -1, dtype=torch.long)
        prefix[0, : len(tokens)] = torch.tensor(tokens)
        expected = (gen.decode_prefix(prefix, 32).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()[0]
        assert tr["preview"].shape == (32, 32, 3)  # decoded in one batch: a rounding step apart at most
        assert abs(tr["preview"].astype(int) - expected.astype(int)).max() <= 1
    survivors = [tr for per in res.telemetry["prompts"] for tr in per if tr["reason"] is None]
    assert survivors and not any("preview" in tr for tr in survivors)  # their images are the candidates'
    off = ScalingAR(ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1, record_previews=False))
    plain = off.run(gen, PROMPTS, 4, seed=0)
    assert not any("preview" in tr for per in plain.telemetry["prompts"] for tr in per)
    assert plain.telemetry["events"] == res.telemetry["events"]  # previews are telemetry only


def _running_min_rebound(c: list[float], start: int, eps: float) -> float:
    low = min(c[start:])
    return (c[-1] - low) / (abs(low) + eps)


def test_rebound_from_flag_measures_the_dip_since_the_flag(gen):
    cfg = ScalingARConfig(prune_quantile=0.6, recovery_window_steps=3)  # default: rebound_from="flag"
    res = ScalingAR(cfg).run(gen, PROMPTS, 6, seed=0)
    warmup, eps = cfg.warmup_steps(gen.num_tokens), cfg.rebound_eps
    flags = [e for e in res.telemetry["events"] if e["event"] == "flag"]
    assert flags
    checked = 0
    for e in flags:
        trace = next(tr for tr in res.telemetry["prompts"][e["prompt"]] if tr["node"] == e["node"])
        t = e["step"]
        if t + 1 >= len(trace["C"]):
            continue
        since_flag = _running_min_rebound(trace["C"][:t + 2], t, eps)
        assert trace["R"][t + 1] == pytest.approx(since_flag, rel=1e-4, abs=1e-5)
        since_warmup = _running_min_rebound(trace["C"][:t + 2], warmup, eps)
        checked += since_flag != pytest.approx(since_warmup, rel=1e-4, abs=1e-5)
    assert checked  # at least one flag came after an earlier, deeper dip: the two readings differ there
    assert ScalingARConfig().rebound_from == "flag"
    warm = ScalingARConfig(prune_quantile=0.6, recovery_window_steps=3, rebound_from="warmup")
    compared = 0
    for per in ScalingAR(warm).run(gen, PROMPTS, 6, seed=0).telemetry["prompts"]:
        for tr in per:
            last = len(tr["C"]) - 1
            if last > warmup:
                assert tr["R"][last] == pytest.approx(_running_min_rebound(tr["C"], warmup, eps), rel=1e-4, abs=1e-5)
                compared += 1
    assert compared  # the loop above checked some trace, not none


def test_guided_confidence_starts_at_s_base_not_the_generators_scale():
    from arscale.search import confidence as sig

    g = random_shapeworld_ar(1, grid=8, vocab_size=32, cfg=3.0)
    cond, uncond = g.next_logits(g.start(PROMPTS[:1], 1, 0))
    res = ScalingAR(ScalingARConfig(confidence_from="guided", cfg_base=1.5, terminate=False)).run(g, PROMPTS[:1], 1, seed=0)
    expected = float(sig.token_confidence(uncond + 1.5 * (cond - uncond)))
    assert res.telemetry["prompts"][0][0]["s_tok"][0] == pytest.approx(expected, abs=1e-6)


def test_without_conditional_channel_c_is_i_but_the_scheduler_still_reads_d(gen):
    cfg = ScalingARConfig(use_conditional=False, terminate=False)
    res = ScalingAR(cfg).run(gen, PROMPTS[:1], 3, seed=1)
    s_base = res.telemetry["s_base"]
    for tr in res.telemetry["prompts"][0]:
        assert tr["C"] == pytest.approx(tr["I"], abs=1e-6)  # w_I renormalised to 1
        # at t = 0, R = 0 and Var(I) = 0 (one value): the scale is s_base + alpha (1 - D)
        t = 0
        assert tr["guidance"][t] == pytest.approx(s_base + cfg.alpha * (1 - tr["D"][t]), abs=1e-5)


def test_grouped_quantile_equals_torch_quantile_per_group():
    g = torch.Generator().manual_seed(7)
    values = torch.randn(40, generator=g, dtype=torch.float64)
    group = torch.randint(0, 5, (40,), generator=g)
    keep = torch.rand(40, generator=g) < 0.7
    keep[group == 3] = False  # a group with nothing kept
    out = grouped_quantile(values, group, keep, 6, 0.2)
    for p in range(6):
        chosen = values[(group == p) & keep]
        if len(chosen):
            assert out[p].item() == torch.quantile(chosen, 0.2).item()  # bit for bit: the same interpolation
        else:
            assert torch.isnan(out[p])


def test_the_profile_combines_its_signals_as_specified(gen):
    # SCALINGAR.md §2-3 recomputed from each candidate's own traces, with the paper's constants written out
    res = ScalingAR(ScalingARConfig(terminate=False)).run(gen, PROMPTS[:1], 3, seed=5)
    tele = res.telemetry
    s_base, window, warmup = tele["s_base"], tele["variance_window_steps"], tele["warmup_steps"]
    traj = gen.start(PROMPTS[:1], 3, 5)
    cond, uncond = gen.next_logits(traj)  # step 0's logits, before any sampling
    log_c, log_u = torch.log_softmax(cond.double(), -1), torch.log_softmax(uncond.double(), -1)
    p_c = log_c.exp()
    entropy = -(p_c * log_c).sum(-1) / math.log(cond.shape[-1])
    top = p_c.topk(2, -1).values
    for k, tr in enumerate(tele["prompts"][0]):
        s_tok, b, i, d, c, r, g = (torch.tensor(tr[key], dtype=torch.float64)
                                   for key in ("s_tok", "B", "I", "D", "C", "R", "guidance"))
        assert tr["K"][0] == pytest.approx(float((p_c[k] * (log_c[k] - log_u[k])).sum()), rel=1e-4)
        assert tr["entropy"][0] == pytest.approx(float(entropy[k]), abs=1e-6)
        assert tr["margin"][0] == pytest.approx(float(top[k, 0] - top[k, 1]), abs=1e-6)
        assert s_tok[0] == pytest.approx(float(1 - (0.5 * entropy[k] + 0.5 * (1 - (top[k, 0] - top[k, 1])))), abs=1e-5)
        assert 0 < float(b.min()) and float(b.max()) < 1 and float(b.std()) > 1e-3  # a live squashed z-score
        mixed = 0.65 * s_tok + 0.35 * b
        assert i[0] == pytest.approx(float(mixed[0]), abs=1e-6)
        assert torch.allclose(i[1:], 0.8 * i[:-1] + 0.2 * mixed[1:], atol=1e-5)  # EMA, lambda_I = 0.2
        assert torch.allclose(c, 0.75 * i + 0.25 * d, atol=1e-5)
        for t in range(len(c)):
            c_min = float(c[warmup:t + 1].min()) if t >= warmup else None
            rebound = 0.0 if c_min is None else (float(c[t]) - c_min) / (abs(c_min) + 1e-3)
            assert float(r[t]) == pytest.approx(rebound, abs=1e-4)
            recent = i[max(0, t - window + 1):t + 1]
            var = float(recent.var(unbiased=False)) if len(recent) >= 2 else 0.0
            s = s_base + 0.3 * (1 - float(d[t])) + 0.4 * var - 0.4 * min(max(rebound, 0.0), 1.0)
            assert float(g[t]) == pytest.approx(min(max(s, 1.0), s_base + 2.0), abs=2e-6)


def _pooled_sigmoid_z(values: np.ndarray) -> np.ndarray:
    """SCALINGAR.md §2.2 by hand: at step t, z over every candidate's values of steps 0..t (one prompt), clipped
    to +-3, then the logistic."""
    out = np.empty_like(values)
    for t in range(values.shape[1]):
        seen = values[:, : t + 1]
        z = np.clip((values[:, t] - seen.mean()) / (seen.std() + 1e-6), -3, 3)
        out[:, t] = 1 / (1 + np.exp(-z))
    return out


def test_token_confidence_block_stability_and_drift_recomputed_at_every_step(gen):
    # from the recorded per-token entropy, margin and KL alone, with the paper's constants written out
    res = ScalingAR(ScalingARConfig(terminate=False)).run(gen, PROMPTS[:1], 3, seed=5)
    traces = res.telemetry["prompts"][0]
    h, m, k = (np.array([tr[key] for tr in traces], dtype=np.float64) for key in ("entropy", "margin", "K"))
    T, grid = h.shape[1], 8
    x = 1 - (0.5 * h + 0.5 * (1 - m))
    s_tok = x.copy()
    for t in range(1, T):
        s_tok[:, t] = 0.8 * s_tok[:, t - 1] + 0.2 * x[:, t]  # EMA, lambda_tok = 0.2, from the first value
    worst = np.empty_like(h)
    for t in range(T):
        for row in range(len(traces)):
            seen = np.full(T, np.nan)
            seen[: t + 1] = h[row, : t + 1]
            square = seen.reshape(grid, grid)
            means = sorted(np.nanmean(square[r:r + 4, c:c + 4]) for r in (0, 4) for c in (0, 4)
                           if not np.isnan(square[r:r + 4, c:c + 4]).all())  # 4x4 blocks holding a generated token
            worst[row, t] = np.mean(means[-math.ceil(0.1 * len(means)):])  # the worst 10 %, at least one block
    expected = {"s_tok": s_tok, "B": 1 - _pooled_sigmoid_z(worst), "D": _pooled_sigmoid_z(k)}
    for key, want in expected.items():
        got = np.array([tr[key] for tr in traces], dtype=np.float64)
        assert np.abs(got - want).max() < 1e-3, (key, np.abs(got - want).max())  # float32 runs, magnified by z
    assert float(np.ptp(expected["B"])) > 0.1 and float(np.ptp(expected["D"])) > 0.1  # live signals, not constants


def test_kl_smoothing_is_an_ema_of_the_raw_kl_at_rate_kl_ema(gen):
    # with the base scale throughout and no termination both runs draw the same tokens: only K's smoothing differs
    fixed = {"terminate": False, "schedule_guidance": False}
    raw = ScalingAR(ScalingARConfig(**fixed)).run(gen, PROMPTS[:1], 2, seed=4).telemetry["prompts"][0]
    smooth = ScalingAR(ScalingARConfig(kl_ema=0.2, **fixed)).run(gen, PROMPTS[:1], 2, seed=4).telemetry["prompts"][0]
    for a, b in zip(raw, smooth):
        kl, k = np.array(a["K"]), np.array(b["K"])
        want = kl.copy()
        for t in range(1, len(kl)):
            want[t] = 0.8 * want[t - 1] + 0.2 * kl[t]
        assert np.abs(k - want).max() < 1e-5 and np.abs(k - kl).max() > 1e-3


def test_termination_starts_when_the_warm_up_ends(gen):
    res = ScalingAR(ScalingARConfig(prune_quantile=0.5)).run(gen, PROMPTS[:1], 4, seed=2)
    warmup, theta = res.telemetry["warmup_steps"], res.telemetry["threshold"][0]
    assert all(math.isnan(v) for v in theta[:warmup]) and not math.isnan(theta[warmup])
    events = res.telemetry["events"]
    assert events and min(e["step"] for e in events) >= warmup


def test_min_survivors_at_or_above_n_is_said_to_switch_termination_off(gen):
    with pytest.warns(UserWarning, match="min_survivors 3 keeps all 3 candidates"):
        res = ScalingAR(ScalingARConfig(min_survivors=3)).run(gen, PROMPTS[:1], 3, seed=2)
    assert not [e for e in res.telemetry["events"] if e["event"] == "terminate"]


@pytest.mark.parametrize("final_pick", ["last", "mean"])
def test_the_pick_is_the_survivor_with_the_highest_final_confidence(gen, final_pick):
    res = ScalingAR(ScalingARConfig(prune_quantile=0.5, final_pick=final_pick)).run(gen, PROMPTS, 4, seed=3)
    warmup = res.telemetry["warmup_steps"]
    for p, per in enumerate(res.candidates):
        traces = {tr["node"]: tr for tr in res.telemetry["prompts"][p]}
        for cand in per:
            c = torch.tensor(traces[cand.node]["C"], dtype=torch.float64)
            expected = float(c[-1]) if final_pick == "last" else float(c[warmup:].mean())
            assert cand.score == pytest.approx(expected, abs=1e-5)
        assert res.chosen(p).score == max(cand.score for cand in per)


def test_the_undrawn_part_of_a_preview_is_the_raster_order_after_its_last_token():
    import matplotlib.pyplot as plt

    from arscale.search.scaling_ar_plot import UNDRAWN, _shade_undrawn

    fig, ax = plt.subplots()
    _shade_undrawn(ax, np.zeros((8, 8, 3), np.uint8), ended=6, num_tokens=16)  # a 4×4 token grid, 2 px a token
    alpha = ax.get_images()[0].get_array()[..., 3]
    expected = np.zeros((8, 8))
    expected[2:4, 4:] = expected[4:] = UNDRAWN[3]  # token 6 is row 1, column 2: from there on, nothing was drawn
    assert np.allclose(alpha, expected)
    _shade_undrawn(ax, np.zeros((8, 8, 3), np.uint8), ended=6, num_tokens=15)  # not a square grid: no guess
    assert len(ax.get_images()) == 1
    plt.close(fig)
