"""ScalingAR on a plugin next-token model (no FLOP count of its own, no `sample`, no sampler settings) and its config's
paper defaults and bounds: what mutants of scaling_ar.py / scaling_ar_config.py showed the suite left open."""

from __future__ import annotations

import math
import warnings

import pytest

from arscale.errors import ArscaleError, ArscaleWarning
from arscale.generators.sampling import MAX_GUIDANCE
from arscale.search import scaling_ar as sar
from arscale.search.scaling_ar import ScalingAR
from arscale.search.scaling_ar_config import ScalingARConfig

PROMPTS = ["a photo of a red circle", "a photo of two blue squares"]


class Plugin:
    """A tiny ShapeWorld-AR model seen as a minimal plugin: `start` / `next_logits` / `advance` / `finish`, a
    `flops_per_token` of (position + 1) per row and `decode_flops` (so that no decode is repeated to count them),
    nothing else (no transformer or text FLOPs in `traj.extra`, no `sample`, `cfg`, `temperature`, `top_k`, `top_p`,
    `needs_unconditional`, `decode_prefix`)."""

    name = "plugin-ar"

    def __init__(self, inner, **attrs):
        self._inner, self.num_tokens, self.image_size = inner, inner.num_tokens, inner.image_size
        self.__dict__.update(attrs)

    def _strip(self, traj):
        traj.extra.pop("transformer_flops", None)
        traj.extra.pop("text_flops", None)
        return traj

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0):
        return self._strip(self._inner.start(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset))

    def next_logits(self, traj):
        return self._inner.next_logits(traj)

    def advance(self, traj, tokens, guidance=None):
        return self._strip(self._inner.advance(traj, tokens, guidance=guidance))

    def finish(self, traj):
        return self._inner.finish(traj)

    def flops_per_token(self, rows=1, position=None):
        return float(rows * (position + 1))  # distinct per position, exact in float

    def decode_flops(self, rows=1, size=None):
        return self._inner.decode_flops(rows, size)


@pytest.fixture(scope="module")
def inner():
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar

    return random_shapeworld_ar(1, grid=4, vocab_size=32, cfg=2.0)


def _record_draws(monkeypatch):
    seen = []
    draw = sar.sample_per_row
    monkeypatch.setattr(sar, "sample_per_row", lambda *a, **kw: seen.append(kw) or draw(*a, **kw))
    return seen


def test_a_plugin_without_sampler_settings_draws_with_the_protocol_defaults(inner, monkeypatch):
    # protocol.py: cfg / temperature / top_k / top_p are optional; absent, the base scale is 1 (no guidance) and the
    # draw is plain softmax sampling: temperature 1, no top-k (0), no top-p (1); no `sample`, so ScalingAR draws
    seen = _record_draws(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ArscaleWarning)  # no cfg_interval, clamp_min 1 = s_base 1: nothing to say
        res = ScalingAR(ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1)).run(Plugin(inner), PROMPTS, 3)
    assert res.telemetry["s_base"] == 1.0
    assert len(seen) == inner.num_tokens
    assert {(kw["temperature"], kw["top_k"], kw["top_p"]) for kw in seen} == {(1.0, 0, 1.0)}
    # the plugin keeps no "tokens" + decode_prefix, so terminated candidates get no preview (and none is asked for)
    pruned = [tr for per in res.telemetry["prompts"] for tr in per if tr["reason"] == "prune"]
    assert pruned and all("preview" not in tr for tr in pruned)


@pytest.mark.parametrize(("own", "used"), [(0.0, 1e-5), (-1.0, 1e-5), (0.5, 0.5)])
def test_a_plugins_own_temperature_is_used_and_a_non_positive_one_is_greedy(inner, monkeypatch, own, used):
    # a generator's temperature <= 0 (LlamaGen, as upstream) is taken as 1e-5, i.e. greedy; a positive one as is
    seen = _record_draws(monkeypatch)
    ScalingAR(ScalingARConfig(terminate=False)).run(Plugin(inner, temperature=own, top_k=5, top_p=0.9), PROMPTS[:1], 2)
    assert {(kw["temperature"], kw["top_k"], kw["top_p"]) for kw in seen} == {(used, 5, 0.9)}


def _cumulative(position):
    return sum(pos + 1 for pos in range(position + 1))  # flops_per_token(1, pos) = pos + 1, positions 0..position


@pytest.mark.parametrize(("n", "prompt_batch"), [(1, 64), (4, 64), (4, 1)])
def test_a_plugin_is_billed_its_flops_per_token_position_by_position(inner, n, prompt_batch):
    # DESIGN/rollout: without its own count a generator is billed flops_per_token(rows, position): the prefill
    # (position 0) for every row, then feeding token t gives position t + 1 for the rows still decoding. A
    # candidate that generated L tokens (terminated before drawing token L) paid positions 0..L, a survivor 0..T-1;
    # each prompt's share is its own candidates' bill, whether its prompts ran in one batch or one by one
    T = inner.num_tokens
    cfg = ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1, prompt_batch=prompt_batch)
    res = ScalingAR(cfg).run(Plugin(inner), PROMPTS, n, seed=2)
    flops, tokens, survivors = [], [], []
    for p, traces in enumerate(res.telemetry["prompts"]):
        assert [tr["candidate"] for tr in traces] == list(range(n)) and {tr["prompt"] for tr in traces} == {p}
        lengths = [T if tr["ended"] is None else tr["ended"] for tr in traces]
        assert all(0 < L <= T for L in lengths)
        flops.append(sum(_cumulative(min(L, T - 1)) for L in lengths))
        tokens.append(sum(lengths))
        survivors.append(lengths.count(T))
    if n > 1:
        assert any(tr["ended"] is not None for per in res.telemetry["prompts"] for tr in per)
        assert {e["prompt"] for e in res.telemetry["events"]} <= {0, 1}
    assert res.cost.transformer_flops == sum(flops)  # integers: exact, and no text FLOPs added
    assert res.cost.generated_tokens == sum(tokens) and res.telemetry["tokens_per_prompt"] == tokens
    assert res.telemetry["tokens_per_image"] == sum(tokens) / 2
    assert res.cost.decode_count == sum(survivors)  # only survivors are decoded
    shares = res.telemetry["cost_per_prompt"]
    assert [c["transformer_flops"] for c in shares] == pytest.approx(flops, rel=1e-12)
    assert [c["decode_count"] for c in shares] == survivors
    assert [[c.prompt_index for c in per] for per in res.candidates] == [[0] * survivors[0], [1] * survivors[1]]
    # node ids are the run's, a later batch's moved past the earlier ones': distinct, and a survivor's trace and its
    # candidate name the same node
    nodes = [tr["node"] for per in res.telemetry["prompts"] for tr in per]
    assert len(set(nodes)) == len(nodes) and min(nodes) >= 0
    assert {e["node"] for e in res.telemetry["events"]} <= set(nodes)
    assert sorted(c.node for per in res.candidates for c in per) == sorted(
        tr["node"] for per in res.telemetry["prompts"] for tr in per if tr["ended"] is None)
    if n == 1:  # one candidate per prompt decodes all T tokens: 2 * (1 + 2 + ... + T)
        assert res.cost.transformer_flops == 2 * T * (T + 1) // 2


def test_a_plugin_that_bills_no_flops_gets_zero_shares(inner):
    # the shares add up to the measured total, 0 here: no prompt is given a FLOP it did not cost
    plugin = Plugin(inner, flops_per_token=lambda rows=1, position=None: 0.0)
    res = ScalingAR(ScalingARConfig(terminate=False)).run(plugin, PROMPTS, 2)
    assert res.cost.transformer_flops == 0.0
    assert [c["transformer_flops"] for c in res.telemetry["cost_per_prompt"]] == [0.0, 0.0]


def test_the_text_encoders_flops_are_billed_once_and_split_between_the_prompts(inner):
    # the built-in model counts its own FLOPs; its text encoder's (one read per prompt) are added once. The shares
    # add up to the run's total, and with identical candidates (no termination) each prompt has half of it
    res = ScalingAR(ScalingARConfig(terminate=False)).run(inner, PROMPTS, 2)
    # its own count: the prefill of the 4 rows, feeding tokens 0..T-2, and the text encoder on the 2 prompts
    text = inner.start(PROMPTS, 2, 0).extra["text_flops"]
    T = inner.num_tokens
    expected = inner.prefill_flops(4) + sum(inner.step_flops(4, s) for s in range(T - 1)) + text
    assert text > 0 and res.cost.transformer_flops == pytest.approx(expected, rel=1e-12)
    shares = [c["transformer_flops"] for c in res.telemetry["cost_per_prompt"]]
    assert sum(shares) == pytest.approx(res.cost.transformer_flops, rel=1e-12)
    assert shares == pytest.approx([res.cost.transformer_flops / 2] * 2, rel=1e-12)


def test_run_defaults_to_seed_zero_and_no_prompt_offset(inner):
    cfg = ScalingARConfig(terminate=False)
    plain = ScalingAR(cfg).run(Plugin(inner), PROMPTS[:1], 2)
    explicit = ScalingAR(cfg).run(Plugin(inner), PROMPTS[:1], 2, seed=0, prompt_offset=0)
    other = ScalingAR(cfg).run(Plugin(inner), PROMPTS[:1], 2, seed=0, prompt_offset=1)
    assert [tr["C"] for tr in plain.telemetry["prompts"][0]] == [tr["C"] for tr in explicit.telemetry["prompts"][0]]
    assert [tr["C"] for tr in plain.telemetry["prompts"][0]] != [tr["C"] for tr in other.telemetry["prompts"][0]]


@pytest.mark.parametrize(("attrs", "cfg_base", "s_base"), [
    ({}, None, 1.0),  # no `cfg`: 1, no guidance
    ({"cfg": 2.5}, None, 2.5),  # the model's own default scale
    ({"cfg": 2.5, "needs_unconditional": lambda s: s != 1.0}, None, 2.5),  # a scale that guides is kept
    ({"cfg": 0.5, "needs_unconditional": lambda s: s > 1.0}, None, 1.0),  # LlamaGen-like: cfg <= 1 means none -> 1
    ({"cfg": 2.5, "needs_unconditional": lambda s: s > 1.0}, 0.5, 0.5),  # a cfg_base asked for is used as given
])
def test_the_base_scale_is_the_models_own_or_one_where_it_means_no_guidance(inner, attrs, cfg_base, s_base):
    # SCALINGAR.md §3.2: s_base = the base model's default CFG scale; protocol.py: needs_unconditional(scale) False
    # means "no guidance", ScalingAR's base scale is then 1
    cfg = ScalingARConfig(terminate=False, cfg_base=cfg_base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ArscaleWarning)  # clamp_min 1 above a base of 0.5 is said (tested below)
        res = ScalingAR(cfg).run(Plugin(inner, **attrs), PROMPTS[:1], 1)
    assert res.telemetry["s_base"] == s_base
    assert res.telemetry["tokens_per_image"] == inner.num_tokens  # one prompt, one candidate: all T tokens


def test_the_config_warnings_point_at_the_callers_line(inner):
    # each warning is about the caller's settings: stacklevel must take it to the `run(...)` line in this file
    cases = [({"min_survivors": 2}, {}, "min_survivors 2 keeps all 2"),
             ({"cfg_base": 2.0}, {"cfg_interval": 0}, "cfg_interval 0"),
             ({"cfg_base": 0.5}, {}, "clamp_min 1.0 is above the base scale 0.5")]
    for config, attrs, match in cases:
        with pytest.warns(ArscaleWarning, match=match) as record:
            ScalingAR(ScalingARConfig(**config)).run(Plugin(inner, **attrs), PROMPTS[:1], 2)
        assert [w.filename for w in record if match in str(w.message)] == [__file__]


def test_each_terminated_candidate_of_a_built_in_model_gets_its_preview(inner):
    # the built-in model keeps rows["tokens"] and has decode_prefix: each terminated candidate's trace gets the
    # `ended` tokens it generated and their decode at preview_size; survivors (decoded in full) get neither
    cfg = ScalingARConfig(prune_quantile=0.6, recovery_window_steps=1, preview_size=8)
    res = ScalingAR(cfg).run(inner, PROMPTS, 4, seed=2)
    traces = [tr for per in res.telemetry["prompts"] for tr in per]
    pruned = [tr for tr in traces if tr["reason"] == "prune"]
    assert len(pruned) >= 2
    for tr in pruned:
        assert tr["preview"].shape == (8, 8, 3) and str(tr["preview"].dtype) == "uint8"
        assert len(tr["tokens"]) == tr["ended"] and all(0 <= v < 32 for v in tr["tokens"])
    assert all("preview" not in tr and "tokens" not in tr for tr in traces if tr["reason"] is None)


def test_every_drawn_tokens_pmi_is_in_the_trace_the_last_one_included(inner):
    # telemetry `pmi`: log p_cond - log p_uncond of each sampled token, one per step; the last token's is recorded
    # after the loop, so a candidate that drew all T tokens has T finite values (a guided run: cond != uncond)
    res = ScalingAR(ScalingARConfig(terminate=False)).run(inner, PROMPTS[:1], 2)
    for tr in res.telemetry["prompts"][0]:
        assert len(tr["pmi"]) == inner.num_tokens and all(math.isfinite(v) for v in tr["pmi"])


def test_a_mean_pick_after_a_warm_up_over_every_token_reads_the_last_confidence(inner):
    # final_pick="mean" ranks by the mean C after warm-up; a warm-up of ceil(0.95 * 16) = 16 steps covers every
    # token, so the mean is over the last step's C alone: each candidate's score is its final C
    T = inner.num_tokens
    cfg = ScalingARConfig(final_pick="mean", warmup_fraction=0.95)
    assert cfg.warmup_steps(T) >= T
    res = ScalingAR(cfg).run(inner, PROMPTS[:1], 3)
    last = {tr["node"]: tr["C"][-1] for tr in res.telemetry["prompts"][0]}
    assert len(res.candidates[0]) == 3 and all(math.isfinite(v) for v in last.values())
    assert all(c.score == pytest.approx(last[c.node], abs=1e-6) for c in res.candidates[0])


# -- scaling_ar_config ------------------------------------------------------------------------------------------

# SCALINGAR.md §6 (App. C.2) for the paper's symbols, §2-§3 for the [PROPOSAL] values, docs/strategies.md's table
# for the rest; every switch of the full method on
DEFAULTS = {
    "alpha_h": 0.5, "alpha_m": 0.5, "lambda_tok": 0.2, "lambda_i": 0.2, "w_tok": 0.65, "w_blk": 0.35, "block": 4,
    "worst_q": 0.1, "w_i": 0.75, "w_d": 0.25, "kl_ema": 0.0, "z_clip": 3.0, "z_eps": 1e-6, "rebound_eps": 1e-3,
    "rebound_from": "flag", "confidence_from": "conditional", "prune_quantile": 0.2, "lambda_theta": 0.2,
    "warmup_fraction": 0.125, "recovery_window": 32, "delta_rec": 0.05, "min_survivors": 1, "probation": "end",
    "threshold_pool": "unflagged", "final_pick": "last", "protect_best": True, "cfg_base": None, "alpha": 0.3,
    "beta": 0.4, "gamma": 0.4, "variance_window": 32, "clamp_min": 1.0, "clamp_over": 2.0, "scale_steps": True,
    "reference_tokens": 1024, "min_window": 2, "recovery_window_steps": None, "variance_window_steps": None,
    "use_token": True, "use_block": True, "use_conditional": True, "terminate": True, "schedule_guidance": True,
    "temperature": None, "top_k": None, "top_p": None, "prompt_batch": 64, "record_previews": True,
    "preview_size": 64,
}


def test_the_defaults_are_the_papers_and_the_documented_ones():
    assert ScalingARConfig().to_dict() == DEFAULTS


# the closed end of each documented range is a valid setting; one step past it is refused
EDGES = [
    ({"alpha": 0.0, "beta": 0.0, "gamma": 0.0, "delta_rec": 0.0, "alpha_h": 0.0}, None),  # ">= 0"
    ({"w_tok": 0.0}, None), ({"w_blk": 0.0}, None), ({"w_d": 0.0}, None), ({"w_i": 0.0}, None),
    ({"alpha_m": -0.01}, "alpha_m must be >= 0"), ({"w_d": -0.01}, "w_d must be >= 0"),
    ({"lambda_theta": 1.0}, None), ({"lambda_theta": 1.01}, r"lambda_theta must be in \(0, 1\]"),
    ({"kl_ema": 0.0}, None), ({"kl_ema": 0.99}, None),
    ({"worst_q": 1.0}, None), ({"worst_q": 1e-3}, None),
    ({"block": 1}, None), ({"block": 0}, "block must be >= 1"),
    ({"recovery_window": 0}, None), ({"recovery_window": -1}, "recovery_window must be >= 0"),
    ({"variance_window": 1}, None), ({"variance_window": 0}, "variance_window must be >= 1"),
    ({"min_survivors": 1}, None), ({"min_survivors": 0}, "min_survivors must be >= 1"),
    ({"reference_tokens": 1, "min_window": 1}, None),
    ({"reference_tokens": 0}, "reference_tokens and min_window must be >= 1"),
    ({"min_window": 0}, "reference_tokens and min_window must be >= 1"),
    ({"clamp_min": 0.01, "clamp_over": 0.0}, None), ({"clamp_over": -0.01}, "clamp_over >= 0"),
    ({"prompt_batch": 1}, None), ({"prompt_batch": 0}, "prompt_batch must be >= 1"),
    ({"preview_size": 8}, None), ({"preview_size": 7}, "preview_size must be >= 8"),
    ({"cfg_base": 0.5}, None), ({"cfg_base": MAX_GUIDANCE}, None),
    ({"cfg_base": MAX_GUIDANCE * 2}, "cfg_base must be positive and at most"),
    ({"cfg_base": -1.0}, "cfg_base must be positive"),
    ({"recovery_window_steps": 0}, None), ({"recovery_window_steps": -1}, "recovery_window_steps must be >= 0"),
    ({"variance_window_steps": 1}, None), ({"variance_window_steps": 0}, "variance_window_steps must be >= 1"),
    ({"z_clip": 0.5, "z_eps": 1e-12, "rebound_eps": 1e-12}, None),
    ({"z_clip": -1.0}, "z_clip must be > 0"), ({"z_eps": -1e-6}, "z_eps must be > 0"),
    ({"rebound_eps": -1e-3}, "rebound_eps must be > 0"),
    ({"temperature": 0.5}, None), ({"temperature": 1e-6}, None), ({"temperature": -1.0}, "temperature must be > 0"),
    ({"w_tok": 1e308, "w_blk": 1e308}, "must be finite"), ({"w_i": 1e308, "w_d": 1e308}, "must be finite"),
    ({"w_tok": 1e308, "w_blk": 0.0, "w_i": 1e308, "w_d": 0.0}, None),  # the sums are finite: the ratios are fine
]


@pytest.mark.parametrize(("settings", "error"), EDGES)
def test_the_documented_ranges_edge_by_edge(settings, error):
    if error is None:
        cfg = ScalingARConfig(**settings)
        assert all(getattr(cfg, k) == v for k, v in settings.items())
    else:
        with pytest.raises(ArscaleError, match=error):
            ScalingARConfig(**settings)


def test_an_explicit_variance_window_overrides_the_scaling():
    # variance_window_steps (in this model's steps) replaces the scaled 32 -> 8 on 256 tokens, whatever its size
    assert ScalingARConfig().variance_steps(256) == 8
    assert ScalingARConfig(variance_window_steps=3).variance_steps(256) == 3
    assert ScalingARConfig(variance_window_steps=100, scale_steps=False).variance_steps(256) == 100
