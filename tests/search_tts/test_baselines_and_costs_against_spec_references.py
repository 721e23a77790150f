"""Raw sampling, Best-of-N and importance sampling against references written from the spec
(docs/strategies.md, docs/extending.md, ../shared/methods/*.md, the strategies' docstrings), driven side by side on
the tiny next-scale (ShapeWorld-VAR engine) and next-token (ShapeWorld-AR engine) models; and the cost record
recounted by hand: tokens, transformer FLOPs (from the forwards actually run), decodes, scorer calls and FLOPs,
wall-time bookkeeping, with CFG at 1 (one half) and with ScalingAR's early termination, and as `arscale bench`
records it.

The only thing the references borrow from the implementation is the definition of the selection stream
(`Search.rng(prompt, purpose)`, docs/extending.md) and the generator protocol itself (`start` / `step` / `advance` /
`sample` / `preview` / `finish`, and `Trajectories.select`, which gathers a batch's state)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_tts_var_against_spec_references import ref_potential  # TTSVAR.md §3's potentials, written once
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.seeding import generator_for, mix, row_key
from arscale.search.best_of_n import BestOfN
from arscale.search.importance import Importance, ImportanceConfig
from arscale.search.raw import Raw
from arscale.search.rollout import flop_counter
from arscale.search.scaling_ar import ScalingAR, ScalingARConfig

PROMPTS = ["a photo of a red circle", "a photo of two squares", "a photo of a blue cross"]
SELECTION_SALT = 0x5E1EC7  # Search.rng's: a prompt's selection stream, apart from its rows' streams


# ================================================================================================================
# models, scorer
# ================================================================================================================

def tiny_scale(cfg: float = 2.0):
    """5 scales (1, 2, 3, 4, 8), 32 px: the real next-scale engine."""
    return build_tiny_var(*tiny_var_configs((1, 2, 3, 4, 8), image_size=32, sampling={"cfg": cfg}))


def tiny_token(cfg: float | None = None):
    """16 tokens (4 x 4), 32 px: the real next-token engine (ShapeWorld-AR)."""
    return random_shapeworld_ar(0, grid=4, cfg=cfg)


MODELS = {"scale": tiny_scale, "token": tiny_token}


class RecordingScorer:
    """Reward = 5 (mean red - mean blue) + a per-prompt offset; records every call's images and prompts; states its
    FLOPs, so none of its calls is a FLOP-counting repeat."""

    name = "recording-reward"

    def __init__(self, input_size: int = 16, pause: float = 0.0):
        self.input_size, self.pause = input_size, pause
        self.calls: list[tuple[torch.Tensor, list[str]]] = []

    def reward(self, images, prompts):
        assert images.shape[-1] == self.input_size
        self.calls.append((images.detach().clone(), list(prompts)))
        time.sleep(self.pause)
        offset = torch.tensor([0.01 * (len(str(p)) % 5) for p in prompts])
        return 5 * (images[:, 0].mean((1, 2)) - images[:, 2].mean((1, 2))) + offset

    def reward_flops(self, rows, size):
        return 7.0 * rows * size * size


# ================================================================================================================
# the references, from the spec
# ================================================================================================================



def ref_weights(phi: list[float], lam: float) -> np.ndarray:
    w = np.exp(lam * (np.asarray(phi, dtype=np.float64) - max(phi)))
    return w / w.sum()


def ref_token_points(checkpoints: list[float], tokens: int) -> list[int]:
    """docs/strategies.md: round(c·T) (ties to even), kept within 1..T−1, equal counts once."""
    return sorted({min(tokens - 1, max(1, round(c * tokens))) for c in checkpoints})


def ref_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < images.shape[-1])


def ref_importance(gen, prompts, n, seed, scorer, points, lam, kind, offset=0) -> dict:
    """Importance sampling as docs/strategies.md says: N rows per prompt from the start (conditional half only where
    the guidance needs none); after each point every row's partial decode is scored at the scorer's input size and
    N rows per prompt are drawn with replacement ∝ exp(λ·potential), normalised within the prompt, from a stream of
    each prompt and point; copies continue with fresh seeds; the final images are scored, the best is the pick.
    Returns the trace and a hand-made search tree (parents, born, ended, reason)."""
    traj = gen.start(prompts, n, seed, prompt_offset=offset, unconditional=False)
    next_scale = hasattr(gen, "num_scales")
    length = gen.num_scales if next_scale else gen.num_tokens
    rows = len(traj)
    hist = [[] for _ in range(rows)]
    node = list(range(rows))
    tree = {"parent": [-1] * rows, "born": [0] * rows, "ended": [None] * rows, "reason": [None] * rows}
    ops = []

    def step():
        if next_scale:
            gen.step(traj)
        else:
            gen.advance(traj, gen.sample(traj))

    for point in (points if n > 1 else []):
        while traj.step < point:
            step()
        images = gen.preview(traj, scorer.input_size)
        r = scorer.reward(images, [prompts[int(p)] for p in traj.prompt_index])
        for i in range(rows):
            hist[i].append(float(r[i]))
        phi = [ref_potential(h, kind) for h in hist]
        weight, kept = [0.0] * rows, []
        for p in range(len(prompts)):
            mine = [i for i in range(rows) if int(traj.prompt_index[i]) == p]
            w = ref_weights([phi[i] for i in mine], lam)
            for i, wi in zip(mine, w):
                weight[i] = float(wi)
            stream = generator_for(mix(seed, offset + p, SELECTION_SALT), point)
            draw = torch.multinomial(torch.tensor(w / w.max()).float(), n, replacement=True, generator=stream)
            kept += sorted(mine[int(d)] for d in draw)
        op = {"position": point - 1, "nodes": list(node), "prompt": traj.prompt_index.tolist(),
              "reward": [h[-1] for h in hist], "potential": phi, "weight": weight, "kept": kept}
        # the tree by hand: a row not drawn ends here; a row drawn again becomes a child node born here
        new_node, seen = [], set()
        for i in range(rows):
            if i not in kept:
                tree["ended"][node[i]], tree["reason"][node[i]] = point, "resample"
        for i in kept:
            if i in seen:
                new_node.append(len(tree["parent"]))
                tree["parent"].append(node[i])
                tree["born"].append(point)
                tree["ended"].append(None)
                tree["reason"].append(None)
            else:
                seen.add(i)
                new_node.append(node[i])
        keys_before = list(traj.seed_key)
        traj.select(kept, "resample")
        firsts = {}
        for j, i in enumerate(kept):  # first copy keeps its stream, later copies get fresh ones
            if i in firsts:
                assert traj.seed_key[j] not in keys_before
            else:
                firsts[i] = j
                assert traj.seed_key[j] == keys_before[i]
        hist = [list(hist[i]) for i in kept]
        node = new_node
        op["kept_nodes"] = list(node)
        ops.append(op)
    while traj.step < length:
        step()
    images = gen.finish(traj)
    final = scorer.reward(ref_resize(images, scorer.input_size), [prompts[int(p)] for p in traj.prompt_index])
    for i in range(rows):
        tree["ended"][node[i]], tree["reason"][node[i]] = length, "final"
    picks = []
    for p in range(len(prompts)):
        mine = [i for i in range(rows) if int(traj.prompt_index[i]) == p]
        picks.append(node[mine[int(np.argmax([float(final[i]) for i in mine]))]])
    return {"ops": ops, "tree": tree, "images": images, "final": final, "picks": picks, "nodes": node}


def _run_both(model: str, kind: str, n: int = 4, lam: float = 3.0):
    if model == "scale":
        config, points = ImportanceConfig(resample_at=[1, 2, 3], potential=kind, lam=lam), [2, 3, 4]
    else:
        checkpoints = [0.25, 0.5, 0.8]
        config, points = ImportanceConfig(checkpoints=checkpoints, potential=kind, lam=lam), \
            ref_token_points(checkpoints, 16)
    gen = MODELS[model]()
    ours, theirs = RecordingScorer(), RecordingScorer()
    res = Importance(config).run(gen, PROMPTS, n, seed=7, prompt_offset=3, scorer=ours)
    ref = ref_importance(gen, PROMPTS, n, 7, theirs, points, lam, kind, offset=3)
    return res, ref, ours, theirs, gen


# ================================================================================================================
# importance sampling, step by step
# ================================================================================================================

@pytest.mark.parametrize("kind", ["value", "diff", "max", "sum"])
@pytest.mark.parametrize("model", ["scale", "token"])
def test_importance_matches_the_spec_reference_step_by_step(model, kind):
    res, ref, ours, theirs, _ = _run_both(model, kind)
    ops = res.telemetry["operations"]
    assert len(ops) == len(ref["ops"]) == 3
    for got, want in zip(ops, ref["ops"]):
        assert got["op"] == "resample"
        for key in ("position", "nodes", "prompt", "kept", "kept_nodes"):
            assert got[key] == want[key], key
        for key in ("reward", "potential", "weight"):
            assert got[key] == pytest.approx(want[key], abs=1e-6), key
    # every reward call saw the same images (partial decodes at the scorer's size, then the finals) and prompts
    assert len(ours.calls) == len(theirs.calls) == 4
    for (a, pa), (b, pb) in zip(ours.calls, theirs.calls):
        assert pa == pb and torch.equal(a, b)
    # the final candidates, their scores, and the pick
    for p in range(len(PROMPTS)):
        assert [c.node for c in res.candidates[p]] == [nd for i, nd in enumerate(ref["nodes"]) if i // 4 == p]
        assert [c.score for c in res.candidates[p]] == pytest.approx(ref["final"][4 * p:4 * p + 4].tolist())
        assert res.chosen(p).node == ref["picks"][p]
    # the search tree, made by hand from the kept lists
    tree = res.tree.to_dict()
    for key in ("parent", "born", "ended", "reason"):
        assert tree[key] == ref["tree"][key], key


def test_the_reference_resamples_for_real():
    """The comparison above would be empty if every draw kept every row once: the draws duplicate rows, and the
    copies' fresh streams make them differ from their originals in the final images."""
    res, ref, *_ = _run_both("scale", "value", lam=20.0)
    kept = [op["kept"] for op in ref["ops"]]
    assert any(len(set(k)) < len(k) for k in kept)
    copies = [i for i, parent in enumerate(ref["tree"]["parent"]) if parent >= 0]
    assert copies
    pixels = {c.node: c.image for per in res.candidates for c in per}
    pairs = [(c, ref["tree"]["parent"][c]) for c in copies if c in pixels and ref["tree"]["parent"][c] in pixels]
    assert pairs and any(not np.array_equal(pixels[a], pixels[b]) for a, b in pairs)


def test_a_next_token_partial_decode_is_the_prefix_on_the_blank_canvas_code():
    """docs/strategies.md: ungenerated positions hold the code the tokenizer gives a blank patch (ShapeWorld-AR: its
    background); the decode is resized to the scorer's input size."""
    from arscale.shapeworld import BACKGROUND

    res, _, ours, _, gen = _run_both("token", "value")
    blank = torch.tensor(BACKGROUND, dtype=torch.float32).div(255).view(1, 3, 1, 1).expand(1, 3, 32, 32)
    background = int(torch.mode(gen.tokenizer.encode(blank).flatten()).values)
    first = res.telemetry["operations"][0]
    count = first["position"] + 1  # tokens generated at the first checkpoint (0.25 · 16 = 4)
    assert count == 4
    traj = gen.start(PROMPTS, 4, 7, prompt_offset=3, unconditional=False)
    for _ in range(count):
        gen.advance(traj, gen.sample(traj))
    codes = traj.rows["tokens"].clone()
    assert (codes[:, count:] == -1).all()
    codes[:, count:] = background
    want = ref_resize(gen.tokenizer.decode_codes(codes), 16).clamp(0, 1)
    assert torch.allclose(ours.calls[0][0], want, atol=1e-6)


# ================================================================================================================
# raw and Best-of-N; N = 1
# ================================================================================================================

@pytest.mark.parametrize("cfg", [None, 1.0])
@pytest.mark.parametrize("model", ["scale", "token"])
def test_raw_is_candidate_zero_and_n_1_of_every_reward_strategy_is_raw(model, cfg):
    """docs/strategies.md: raw is candidate 0 of each prompt whatever N is; at N = 1 best-of-n and importance are raw
    sampling, plus one scorer call each (importance decodes and scores nothing before the end)."""
    gen = MODELS[model](cfg) if cfg is not None else MODELS[model]()
    raw = Raw().run(gen, PROMPTS, 5, seed=2, prompt_offset=4)
    assert [len(c) for c in raw.candidates] == [1, 1, 1] and raw.cost.scorer_calls == 0
    bon = BestOfN().run(gen, PROMPTS, 3, seed=2, prompt_offset=4, scorer=RecordingScorer())
    for strategy in (BestOfN(), Importance()):
        one = strategy.run(gen, PROMPTS, 1, seed=2, prompt_offset=4, scorer=RecordingScorer())
        assert one.cost.scorer_calls == one.cost.decode_count == len(PROMPTS)
        assert not one.telemetry.get("operations")
        for p in range(len(PROMPTS)):
            assert np.array_equal(one.chosen(p).image, raw.chosen(p).image)
    for p in range(len(PROMPTS)):
        assert np.array_equal(bon.candidates[p][0].image, raw.chosen(p).image)
        # Best-of-N: every sample a candidate, the best final reward chosen
        scores = [c.score for c in bon.candidates[p]]
        assert bon.chosen(p) is bon.candidates[p][int(np.argmax(scores))]


def test_raw_draws_candidate_zeros_stream_from_the_global_prompt_index():
    """README: seeds derive from (global prompt index, candidate index, step); raw's row is candidate 0."""
    gen = tiny_scale()
    raw = Raw().run(gen, PROMPTS[:1], 1, seed=9, prompt_offset=6)
    traj = gen.start(PROMPTS[:1], 1, 9, prompt_offset=6, unconditional=False)
    assert traj.seed_key == [row_key(9, 6, 0)]
    while traj.step < gen.num_scales:
        gen.step(traj)
    want = (gen.finish(traj).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()[0]
    assert np.array_equal(raw.chosen(0).image, want)


# ================================================================================================================
# the cost record, recounted by hand
# ================================================================================================================

def _count_forwards(gen, model: str) -> list[float]:
    """Analytic FLOPs of every transformer forward the run makes, from the rows it actually fed (both halves or
    one): next-scale `forward_scale` [halves·R] at scale si; next-token `forward` [halves·R, S] at `start`."""
    spent: list[float] = []
    t = gen.transformer
    if model == "scale":
        forward = t.forward_scale

        def counted(si, cond, x, cache, context=None, context_mask=None):
            ctx = 0 if context is None else int(context.shape[1])  # the text positions cross-attended
            spent.append(t.flops_per_scale(int(cond.shape[0]), ctx)[si])
            return forward(si, cond, x, cache, context, context_mask)

        t.forward_scale = counted
    else:
        forward, embed = t.forward, t.embed_condition

        def counted(x, key_mask, start=0, cache=None):
            rows, length = int(x.shape[0]), int(x.shape[1])
            spent.append(rows * sum(t.flops_per_position(pos + 1) for pos in range(start, start + length)))
            return forward(x, key_mask, start=start, cache=cache)

        def embedded(features):
            spent.append(int(features.shape[0]) * t.condition_flops())
            return embed(features)

        t.forward, t.embed_condition = counted, embedded
    return spent


def _torch_count(module, name: str) -> list[float]:
    """torch's FLOP counter on every call of `module.name` (fused CPU attention included)."""
    counts: list[float] = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        with torch.no_grad(), flop_counter() as counter:
            out = original(*args, **kwargs)
        counts.append(counter.get_total_flops())
        return out

    setattr(module, name, counted)
    return counts


def _strategies(model):
    points = [1, 2] if model == "scale" else ref_token_points([0.5, 0.75], 16)
    config = ImportanceConfig(resample_at=[0, 1]) if model == "scale" else ImportanceConfig()
    return [(Raw(), 1, 0), (BestOfN(), 4, 0), (Importance(config), 4, len(points))]


@pytest.mark.parametrize("cfg", [None, 1.0])
@pytest.mark.parametrize("model", ["scale", "token"])
def test_cost_record_recounted_by_hand(model, cfg):
    """N = 4, 3 prompts: tokens per final image (a CFG pair once), the transformer FLOPs of the forwards actually run
    (cfg 1: the conditional half only, half the compute) plus the text encoder, decodes and their FLOPs (partial
    decodes included), scorer calls and FLOPs (docs/strategies.md: N·(points + 1) for importance)."""
    P = len(PROMPTS)
    per_image = 1 + 4 + 9 + 16 + 64 if model == "scale" else 16
    for strategy, rows, points in _strategies(model):
        gen = MODELS[model](cfg) if cfg is not None else MODELS[model]()
        halves = gen.start(PROMPTS, 1, 0, unconditional=False).halves
        assert halves == (1 if cfg == 1.0 else 2)
        text = gen.start(PROMPTS, rows, 0, unconditional=False).extra["text_flops"]
        assert text > 0  # once per prompt of the call (and the empty prompt)
        forwards = _count_forwards(gen, model)
        scorer = RecordingScorer()
        res = strategy.run(gen, PROMPTS, 4, seed=1, scorer=scorer)
        c = res.cost
        assert c.generated_tokens == P * rows * per_image
        assert c.transformer_flops == pytest.approx(sum(forwards) + text, rel=1e-9)
        if strategy.name == "raw":
            assert c.decode_count == P and c.scorer_calls == 0 and c.scorer_flops == 0
        else:
            assert c.decode_count == c.scorer_calls == P * rows * (points + 1)
            assert len(scorer.calls) == points + 1
            assert c.scorer_flops == pytest.approx(7.0 * 16 * 16 * c.scorer_calls)
        # every decode, partial or final, costs a full decode of the latent / token grid (then resized)
        assert c.decode_flops == pytest.approx(_decode_flops_per_row(gen, model) * c.decode_count, rel=1e-9)


def _decode_flops_per_row(gen, model: str) -> float:
    """What torch counts on decoding one row."""
    with torch.no_grad(), flop_counter() as counter:
        if model == "scale":
            gen.tokenizer.decode_fhat(torch.zeros(1, *gen.latent_shape))
        else:
            gen.tokenizer.decode_codes(torch.zeros(1, gen.num_tokens, dtype=torch.long))
    return counter.get_total_flops()


@pytest.mark.parametrize("model", ["scale", "token"])
def test_analytic_transformer_flops_agree_with_torchs_counter(model):
    """The analytic counts the record sums are what torch counts on the forwards (within the prefill's causal
    attention, which torch counts as a full square)."""
    gen = MODELS[model]()
    counted = _torch_count(gen.transformer, "forward_scale" if model == "scale" else "forward")
    embedded = [] if model == "scale" else _torch_count(gen.transformer, "embed_condition")
    res = BestOfN().run(gen, PROMPTS, 4, seed=1, scorer=RecordingScorer())
    torch_total = sum(counted) + sum(embedded)
    text = gen.start(PROMPTS, 4, 1, unconditional=False).extra["text_flops"]
    assert res.cost.transformer_flops - text == pytest.approx(torch_total, rel=0.02)


def test_wall_time_bookkeeping_of_importance():
    """CostRecord: phases are timed, total_wall is the search alone (a scorer's FLOP-counting repeat excluded), and
    overhead = total − model − decode − features − reward (selection is overhead)."""

    class Slow(RecordingScorer):
        reward_flops = None  # counted by torch on one repeat of the first call per size: off the clock

    pause = 0.05
    res = Importance().run(tiny_token(), PROMPTS, 2, seed=0, scorer=Slow(pause=pause))
    c = res.cost
    calls = 3  # two checkpoints and the final rewards
    assert c.wall["reward"] >= calls * pause
    phases = c.wall["model"] + c.wall["decode"] + c.wall["features"] + c.wall["reward"]
    assert c.overhead == pytest.approx(c.total_wall - phases)
    assert c.overhead < pause  # the FLOP-counting repeat (one per size: 16 px) is in no phase and not in the total
    assert c.wall["selection"] <= c.overhead + 1e-9


# ================================================================================================================
# ScalingAR: candidates terminated early
# ================================================================================================================

def test_scaling_ar_costs_of_terminated_candidates_recounted_by_hand():
    """A terminated candidate generated the tokens it drew before it was cut and cost the forwards that gave its
    logits up to then; survivors are decoded once; each prompt's cost adds up to the run's; tokens per image is
    the mean of the prompts' tokens (SCALINGAR.md §9: a CFG pair counts once)."""
    gen = tiny_token()
    seen: list[tuple[int, list[int], int]] = []
    start, advance = gen.start, gen.advance

    def started(*args, **kwargs):
        traj = start(*args, **kwargs)
        seen.append((-1, traj.prompt_index.tolist(), traj.halves))
        return traj

    def advanced(traj, tokens, guidance=None):
        seen.append((traj.step, traj.prompt_index.tolist(), traj.halves))
        return advance(traj, tokens, guidance)

    gen.start, gen.advance = started, advanced
    config = ScalingARConfig(prune_quantile=0.6, recovery_window_steps=2, record_previews=False, protect_best=False)
    res = ScalingAR(config).run(gen, PROMPTS, 4, seed=3)
    assert "prune" in res.tree.reason  # some candidates were terminated early
    T, P = gen.num_tokens, len(PROMPTS)
    text = gen.start(PROMPTS, 4, 3).extra["text_flops"]
    tokens, flops = [0] * P, [text / P] * P
    _, rows, halves = seen[0]
    assert halves == 2  # ScalingAR guides every token: both halves
    for p in rows:
        flops[p] += gen.prefill_flops(1, halves)
    for step, rows, halves in seen[1:-1]:
        for p in rows:
            tokens[p] += 1
            if step + 1 < T:
                flops[p] += gen.step_flops(1, step, halves)
    per_prompt = res.telemetry["cost_per_prompt"]
    assert [c["generated_tokens"] for c in per_prompt] == tokens
    assert [c["transformer_flops"] for c in per_prompt] == pytest.approx(flops, rel=1e-9)
    assert res.cost.generated_tokens == sum(tokens) and res.cost.transformer_flops == pytest.approx(sum(flops))
    assert res.telemetry["tokens_per_image"] == pytest.approx(sum(tokens) / P)
    survivors = [len(c) for c in res.candidates]
    assert res.cost.decode_count == sum(survivors)
    assert [c["decode_count"] for c in per_prompt] == pytest.approx(survivors)
    ended = [e for e, r in zip(res.tree.ended, res.tree.reason) if r == "prune"]
    assert sum(tokens) == sum(ended) + T * sum(survivors)


# ================================================================================================================
# what `arscale bench` records
# ================================================================================================================

def test_bench_records_each_prompts_share_of_the_searchs_cost(tmp_path):
    """bench/runner.py: a batch's cost split evenly over its prompts (ScalingAR: its own per-prompt costs); the
    numbers are those of the same search run directly (same prompts, seed, offsets)."""
    from arscale.cli import main
    from arscale.generators.registry import load_generator

    out = tmp_path / "out"
    before = torch.get_num_threads()
    try:
        assert main(["bench", "--model", "shapeworld-ar", "--strategies", "importance,scaling-ar", "--n", "2",
                     "--prompts", "draw:1:11", "--limit", "2", "--batch-prompts", "2", "--quiet", "--threads", "1",
                     "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    records = {label: [json.loads((out / label / "n2" / f"{i:05d}" / "record.json").read_text()) for i in range(2)]
               for label in ("importance", "scaling-ar")}
    prompts = [r["prompt"] for r in records["importance"]]
    gen = load_generator("shapeworld-ar")
    keys = ("transformer_flops", "decode_flops", "decode_count", "scorer_calls", "scorer_flops", "generated_tokens")
    imp = Importance().run(gen, prompts, 2, seed=0, scorer="shapeworld-reward").cost.to_dict()
    for rec in records["importance"]:
        assert {k: rec["cost"][k] for k in keys} == pytest.approx({k: imp[k] / 2 for k in keys})
        assert rec["cost"]["generated_tokens"] == 2 * gen.num_tokens
    sar = ScalingAR().run(gen, prompts, 2, seed=0)
    for rec, own in zip(records["scaling-ar"], sar.telemetry["cost_per_prompt"]):
        assert {k: rec["cost"][k] for k in own} == pytest.approx(own)
        assert rec["cost"]["scorer_calls"] == 0


# ================================================================================================================
# where the implementation and the spec differ: degenerate model lengths
# ================================================================================================================

@pytest.mark.parametrize("n", [1, 2])
def test_importance_on_a_one_scale_model_has_nothing_to_resample(n):
    # docs/strategies.md: the default maps onto "a model with fewer than 5 scales: its second-to-last scale"; a model
    # of one scale has none, so importance sampling is Best-of-N there (at N = 1 raw sampling plus one scorer call),
    # not an error about a resample_at the user never set
    gen = build_tiny_var(*tiny_var_configs((1,), image_size=4))
    res = Importance().run(gen, PROMPTS[:1], n, seed=0, scorer=RecordingScorer(4))
    bon = BestOfN().run(gen, PROMPTS[:1], n, seed=0, scorer=RecordingScorer(4))
    assert res.telemetry["operations"] == []
    assert res.cost.decode_count == res.cost.scorer_calls == n
    assert [c.image.tolist() for c in res.candidates[0]] == [c.image.tolist() for c in bon.candidates[0]]


def test_importance_on_a_one_token_model_does_not_resample_after_the_last_token():
    # docs/strategies.md: "A fraction c of T tokens resamples after round(c·T) tokens ..., kept within 1..T−1"; with
    # T = 1 no position qualifies (a resampling after the last token changes nothing the final reward does not see)
    from arscale.search.rollout import Search

    gen = random_shapeworld_ar(0, grid=1)
    assert gen.num_tokens == 1
    assert Importance().points(Search(gen, seed=0, prompt_offset=0)) == []
    res = Importance().run(gen, PROMPTS[:1], 2, seed=0, scorer=RecordingScorer(8))
    assert res.telemetry["operations"] == []
    assert res.cost.decode_count == res.cost.scorer_calls == 2
