"""The strategy contract as properties, end to end: every strategy × N × prompts × seed × cfg (1 included, the
one-CFG-half path) × chunking on tiny real generators returns a SearchResult whose candidates, search tree, costs
and telemetry agree with each other and with docs/strategies.md, deterministically and per prompt."""

import math
import warnings
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_families import BrightnessScorer, randomised, tiny_llamagen_vq
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.errors import ArscaleError
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.search.base import check_result, make_strategy

PROMPTS = ["a red circle", "two blue squares", "a green triangle", "a yellow cross", "three purple circles"]
PATCH_NUMS = (1, 2, 3, 4, 5)  # five scales: the fewest the default TTS-VAR schedule maps onto
SCORER = BrightnessScorer()
CONFIGS = {"raw": None, "best-of-n": None, "importance": None, "tts-var": {"features": "latent"}, "scaling-ar": None}
SETTINGS = {"deadline": None, "derandomize": True}  # seeded: the same examples on every run


@cache
def scale_model(cfg: float):
    return build_tiny_var(*tiny_var_configs(PATCH_NUMS, image_size=20, sampling={"cfg": cfg}))


@cache
def token_model(cfg: float, grid: int = 2):
    return random_shapeworld_ar(0, grid=grid, vocab_size=16, dim=16, n_layer=1, cfg=cfg)


def model_for(strategy: str, cfg: float, *, scale: bool):
    if strategy == "tts-var" or (scale and strategy != "scaling-ar"):
        return scale_model(cfg)
    return token_model(cfg)


def run(strategy, gen, prompts, n, seed, config=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ScalingAR's notes (min_survivors >= N, clamp_min over s_base)
        return make_strategy(strategy, config if config is not None else CONFIGS[strategy]).run(
            gen, prompts, n, seed=seed, scorer=SCORER, **kwargs)


def length_of(gen) -> int:
    return gen.num_scales if hasattr(gen, "num_scales") else gen.num_tokens


def tokens_per_row(gen) -> list[int]:
    """Image tokens one row generates at each scale (one per step on a next-token model)."""
    return [p * p for p in PATCH_NUMS] if hasattr(gen, "num_scales") else [1] * gen.num_tokens


def check_tree_and_candidates(result, prompts, gen):
    tree, length = result.tree, length_of(gen)
    check_result(result, result.strategy, len(prompts))
    assert result.prompts == prompts
    for node in range(len(tree)):
        parent = tree.parent[node]
        assert tree.ended[node] is not None and tree.reason[node] is not None, node
        assert tree.born[node] <= tree.ended[node] <= length
        if parent >= 0:
            assert parent < node and tree.prompt[parent] == tree.prompt[node]
            assert tree.born[parent] <= tree.born[node] <= tree.ended[parent]
    nodes = []
    for p, per_prompt in enumerate(result.candidates):
        for c in per_prompt:
            assert c.prompt_index == p and tree.prompt[c.node] == p
            assert (tree.ended[c.node], tree.reason[c.node]) == (length, "final")
            nodes.append(c.node)
        if result.strategy != "raw":
            scores = [c.score for c in per_prompt]
            assert all(math.isfinite(s) for s in scores) and result.chosen(p).score == max(scores)
    assert sorted(nodes) == [i for i, reason in enumerate(tree.reason) if reason == "final"]


@settings(max_examples=30, **SETTINGS)
@given(strategy=st.sampled_from(list(CONFIGS)), n=st.integers(1, 9), prompts=st.integers(1, 5),
       seed=st.integers(0, 2**16), cfg=st.sampled_from([1.0, 2.0]), scale=st.booleans())
def test_every_strategy_returns_one_pick_per_prompt_with_a_consistent_tree_and_token_count(strategy, n, prompts, seed,
                                                                                          cfg, scale):
    """One pick per prompt, every final candidate a tree leaf of its prompt, and generated tokens as documented."""
    gen = model_for(strategy, cfg, scale=scale)
    result = run(strategy, gen, PROMPTS[:prompts], n, seed)
    check_tree_and_candidates(result, PROMPTS[:prompts], gen)
    per_row = tokens_per_row(gen)
    if strategy == "raw":
        rows = [1] * len(per_row)
    elif strategy in ("best-of-n", "importance"):
        rows = [n] * len(per_row)
    elif strategy == "tts-var":
        rows = result.telemetry["schedule"]["batch"]
    else:  # ScalingAR: a candidate terminated at step t generated t tokens
        rows = None
        assert sum(result.telemetry["tokens_per_prompt"]) == result.cost.generated_tokens
    if rows is not None:
        assert result.cost.generated_tokens == prompts * sum(r * t for r, t in zip(rows, per_row))
        assert [len(per) for per in result.candidates] == [rows[-1]] * prompts


def fingerprint(result, p):
    return [(c.chosen, c.image) for c in result.candidates[p]], [c.score for c in result.candidates[p]]


@settings(max_examples=12, **SETTINGS)
@given(strategy=st.sampled_from(list(CONFIGS)), n=st.integers(1, 9), prompts=st.integers(2, 4),
       seed=st.integers(0, 2**16), cfg=st.sampled_from([1.0, 2.0]), scale=st.booleans(), data=st.data())
def test_a_prompts_result_is_seeded_and_does_not_depend_on_the_other_prompts(strategy, n, prompts, seed, cfg, scale,
                                                                              data):
    """The same seed gives the same result; a prompt run alone (at its prompt_offset) gives its batched result."""
    gen = model_for(strategy, cfg, scale=scale)
    batch = run(strategy, gen, PROMPTS[:prompts], n, seed)
    again = run(strategy, gen, PROMPTS[:prompts], n, seed)
    assert again.tree.to_dict() == batch.tree.to_dict()
    for p in range(prompts):
        (picks, scores), (picks2, scores2) = fingerprint(batch, p), fingerprint(again, p)
        assert scores == scores2 and all(a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in zip(picks, picks2))
    p = data.draw(st.integers(0, prompts - 1), label="prompt")
    alone = run(strategy, gen, [PROMPTS[p]], n, seed, prompt_offset=p)
    (picks, scores), (picks1, scores1) = fingerprint(batch, p), fingerprint(alone, 0)
    assert [c for c, _ in picks] == [c for c, _ in picks1]
    assert len(scores) == len(scores1) and all(a == b or abs(a - b) < 1e-5 for a, b in zip(scores, scores1))
    for (_, a), (_, b) in zip(picks, picks1):  # batched CPU kernels may round a pixel otherwise (README)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@settings(max_examples=15, **SETTINGS)
@given(strategy=st.sampled_from(["importance", "tts-var"]), n=st.integers(2, 9), prompts=st.integers(1, 3),
       seed=st.integers(0, 2**16), cfg=st.sampled_from([1.0, 2.0]), scale=st.booleans(),
       potential=st.sampled_from(["value", "diff", "max", "sum"]), lam=st.sampled_from([0.0, 1.0, 50.0]))
def test_each_operation_trace_agrees_with_the_search_tree(strategy, n, prompts, seed, cfg, scale, potential, lam):
    """Each clustering / resampling: one entry per row, weights summing to 1 per prompt, kept rows and copies in the
    tree, the dropped ones ended there after the scale or token the operation read."""
    gen = model_for(strategy, cfg, scale=scale)
    config = {**(CONFIGS[strategy] or {}), "potential": potential, "lam": lam}
    result = run(strategy, gen, PROMPTS[:prompts], n, seed, config)
    tree = result.tree
    for op in result.telemetry["operations"]:
        nodes, step = op["nodes"], op.get("scale", op.get("position")) + 1
        assert all(len(op[k]) == len(nodes) for k in ("prompt", "reward", "potential", "weight") if k in op)
        assert len(op["kept"]) == len(op["kept_nodes"])
        for position, node in zip(op["kept"], op["kept_nodes"]):
            source = nodes[position]
            assert node == source or (tree.parent[node], tree.born[node]) == (source, step)
        for node in set(nodes) - set(op["kept_nodes"]):
            assert (tree.ended[node], tree.reason[node]) == (step, op["op"])
        for p in set(op["prompt"]) if "weight" in op else ():
            assert math.isclose(sum(w for w, q in zip(op["weight"], op["prompt"]) if q == p), 1.0, rel_tol=1e-5)


@settings(max_examples=20, **SETTINGS)
@given(n=st.integers(1, 9), prompts=st.integers(1, 5), seed=st.integers(0, 2**16), cfg=st.sampled_from([1.0, 2.0]),
       prompt_batch=st.integers(1, 3), quantile=st.sampled_from([0.2, 0.5, 0.9]), protect=st.booleans(),
       probation=st.sampled_from(["end", "any"]), pool=st.sampled_from(["unflagged", "active"]),
       window=st.sampled_from([None, 0, 1, 3]))
def test_scaling_ar_traces_costs_and_chunks_add_up(n, prompts, seed, cfg, prompt_batch, quantile, protect, probation,
                                                   pool, window):
    """ScalingAR: a trace per candidate with the documented step counts, per-prompt costs that add up to the run's,
    and the same decisions whatever `prompt_batch` splits the prompts into."""
    gen = token_model(cfg, grid=4)  # 16 tokens: room for terminations
    config = {"prune_quantile": quantile, "protect_best": protect, "probation": probation, "threshold_pool": pool,
              "recovery_window_steps": window, "warmup_fraction": 0.125}
    result = run("scaling-ar", gen, PROMPTS[:prompts], n, seed, {**config, "prompt_batch": prompt_batch})
    whole = run("scaling-ar", gen, PROMPTS[:prompts], n, seed, config)
    check_tree_and_candidates(result, PROMPTS[:prompts], gen)
    tele, tree, T = result.telemetry, result.tree, gen.num_tokens
    for key in ("generated_tokens", "transformer_flops", "decode_flops", "decode_count"):
        assert math.isclose(sum(c[key] for c in tele["cost_per_prompt"]), getattr(result.cost, key), rel_tol=1e-9)
    assert tele["tokens_per_image"] == result.cost.generated_tokens / prompts
    for p, traces in enumerate(tele["prompts"]):
        assert [tr["candidate"] for tr in traces] == list(range(n)) and len(tele["threshold"][p]) == T
        generated = 0
        for tr in traces:
            assert tr["prompt"] == p and tree.prompt[tr["node"]] == p
            ended = T if tr["ended"] is None else tr["ended"]
            assert (tree.ended[tr["node"]], tree.reason[tr["node"]]) == (ended, "final" if tr["ended"] is None
                                                                         else "prune")
            steps = T if tr["ended"] is None else ended + 1  # the profile that decided is the last one
            assert all(len(tr[k]) == steps for k in ("C", "I", "D", "R", "guidance", "s_tok", "B", "K", "entropy",
                                                      "margin")) and len(tr["pmi"]) == ended
            generated += ended
        assert tele["cost_per_prompt"][p]["generated_tokens"] == tele["tokens_per_prompt"][p] == generated
        chunked_ids = {tr["node"]: tr["candidate"] for tr in traces}
        whole_ids = {tr["node"]: tr["candidate"] for tr in whole.telemetry["prompts"][p]}
        assert [(chunked_ids[c.node], c.chosen) for c in result.candidates[p]] == \
            [(whole_ids[c.node], c.chosen) for c in whole.candidates[p]]
        assert [tr["ended"] for tr in traces] == [tr["ended"] for tr in whole.telemetry["prompts"][p]]
    for event in tele["events"]:
        assert tree.prompt[event["node"]] == event["prompt"]


@pytest.mark.parametrize("strategy", ["best-of-n", "importance", "tts-var"])
def test_an_empty_reward_name_in_the_config_is_refused_in_one_line(strategy):
    """A config whose `reward` names no scorer ('') is an ArscaleError, not an AttributeError at the first score."""
    with pytest.raises(ArscaleError, match="scorer"):
        make_strategy(strategy, {"reward": "", **(CONFIGS[strategy] or {})}).run(scale_model(2.0), PROMPTS[:1], 2)


@pytest.mark.parametrize("cfg", [0.0, 0.5])
def test_scaling_ar_without_its_schedule_is_raw_sampling_on_llamagen_without_guidance(cfg):
    """docs/strategies.md: with schedule_guidance false ScalingAR's N = 1 image is raw's, at LlamaGen's cfg <= 1 too."""
    gpt = LlamaGenGPT(LlamaGenConfig("c2i", dim=64, n_layer=2, n_head=2, vocab_size=32, block_size=16,
                                     num_classes=10))
    gen = LlamaGenGenerator(randomised(gpt, 4), tiny_llamagen_vq(), cfg=cfg, top_k=16, top_p=1.0)
    classes = [1, 4, 7]
    raw = run("raw", gen, classes, 1, 0)
    plain = run("scaling-ar", gen, classes, 1, 0, {"schedule_guidance": False})
    assert all(np.array_equal(a, b) for a, b in zip(raw.images, plain.images))
