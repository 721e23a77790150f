"""Seeded randomized "stateful" checks of every tiny generator's caches and trajectories.

Each sequence starts a random batch (prompts, rows per prompt, one CFG half or two, per-row guidance that
differs) and drives it through random `advance` / `step` and `select` (subsets, permutations, repeats, one row)
calls. After every call the next logits, the guided logits, the draws, the accumulated state and the partial /
final decodes must equal a from-scratch run of each surviving row's own history (tracked here, independently of
the trajectory), decoded alone.
"""

from __future__ import annotations

import random

import pytest
import torch
from tiny_families import fake_t5, randomised, tiny_infinity, tiny_llamagen, tiny_llamagen_vq, tiny_var
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.sampling import cfg_mix

SW = ["a photo of a red circle", "a photo of a blue square left of a circle", "a photo of two crosses"]
ATOL, RTOL = 1e-4, 1e-4  # float32: batched and single-row forwards round differently
SEQUENCES = 8  # per family
IMAGE_ATOL = 1e-3  # pixels in [0, 1] after a decoder: one row alone rounds its convolutions otherwise


def close(a: torch.Tensor, b: torch.Tensor, what: str, atol: float = ATOL) -> None:
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    assert torch.allclose(a.float(), b.float(), atol=atol, rtol=RTOL), \
        f"{what}: max |diff| {(a.float() - b.float()).abs().max().item():.3g}"


SEEN: dict = {}  # what the sequences exercised: select kinds, CFG modes (asserted below, so no check is vacuous)


def random_rows(rng: random.Random, n: int) -> list[int]:
    """A random select: a subset (sorted: the in-place pruning path), a permutation, repeats, or one row."""
    kind = rng.choice(["subset", "subset", "permutation", "repeats", "one", "grow"])
    SEEN[kind] = SEEN.get(kind, 0) + 1
    if kind == "subset":
        return sorted(rng.sample(range(n), rng.randint(1, n)))
    if kind == "permutation":
        rows = list(range(n))
        rng.shuffle(rows)
        return rows
    if kind == "repeats":
        return [rng.randrange(n) for _ in range(rng.randint(1, n + 2))]
    if kind == "one":
        return [rng.randrange(n)]
    return sorted(rng.randrange(n) for _ in range(rng.randint(n, n + 3)))  # duplicates, in order


def check_bookkeeping(traj, hist) -> None:
    """Every row: its own node in the tree (alive, of its prompt), its own seed key, its recorded history."""
    nodes = traj.node.tolist()
    assert len(set(nodes)) == len(nodes), "two rows share a tree node"
    assert len(set(traj.seed_key)) == len(traj.seed_key), "two rows share a seed key (identical draws)"
    assert [traj.tree.prompt[n] for n in nodes] == traj.prompt_index.tolist()
    assert all(traj.tree.ended[n] is None for n in nodes), "a live row is marked ended"
    if hist:
        got = traj.history["probe"].nan_to_num(-1.0)
        assert torch.equal(got, torch.tensor(hist).nan_to_num(-1.0)), "history"


def record_probe(traj, hist, rng) -> list:
    """Write one random value per row into history "probe" at column `traj.step`; returns the tracked copy."""
    values = [float(rng.randrange(1000)) for _ in range(len(traj))]
    traj.record("probe", traj.step, torch.tensor(values))
    width = traj.step + 1
    out = []
    for r, v in enumerate(values):
        row = list(hist[r]) if hist else []
        row += [float("nan")] * (width - len(row))
        row[traj.step] = v
        out.append(row)
    return out


class _Rows:
    """What `sample` reads of a trajectory: its seed keys and step, for one row."""

    def __init__(self, keys, step):
        self.seed_key, self.step = list(keys), step

    def __len__(self):
        return len(self.seed_key)


# -- next-token families ------------------------------------------------------------------------------------
def _tiny_t2i() -> LlamaGenGenerator:
    gpt = LlamaGenGPT(LlamaGenConfig("t2i", dim=32, n_layer=2, n_head=2, vocab_size=32, block_size=16,
                                     caption_dim=16))
    return LlamaGenGenerator(randomised(gpt, 7), tiny_llamagen_vq(), cfg=2.0, top_k=16, text_encoder=fake_t5(16))


TOKEN_FAMILIES = {
    "shapeworld-ar": (lambda: random_shapeworld_ar(0, grid=3, vocab_size=32, cfg=2.0), SW),
    "llamagen-c2i": (tiny_llamagen, [0, 9, 3]),
    "llamagen-t2i": (_tiny_t2i, ["a", "bb cc", "a cat on a hat"]),
}


def _llamagen(gen) -> bool:
    return isinstance(gen, LlamaGenGenerator)


def _guided(gen, cond, uncond, g):
    """The generator's guidance rule on reference logits."""
    g = g.view(-1, 1)
    if _llamagen(gen):
        return torch.where(g > 1.0, cfg_mix(cond, uncond, g.flatten()), cond)
    return torch.where(g == 1.0, cond, cfg_mix(cond, uncond, g.flatten()))


def token_reference(gen, prompts, rows, cfg):
    """Next logits (cond, uncond) of each row's history [(prompt, tokens)], from a fresh two-half start."""
    fresh = gen.start([prompts[p] for p, _ in rows], 1, seed=0, cfg=cfg, unconditional=True)
    tokens = torch.tensor([t for _, t in rows], dtype=torch.long).reshape(len(rows), -1)
    for t in range(tokens.shape[1]):
        gen.advance(fresh, tokens[:, t])
    return gen.next_logits(fresh) if fresh.step < gen.num_tokens else None


def check_token_state(gen, traj, prompts, rows, guidance, cfg, rng):
    R = len(rows)
    assert len(traj) == R and traj.prompt_index.tolist() == [p for p, _ in rows]
    want_tokens = torch.full((R, gen.num_tokens), -1, dtype=torch.long)
    for r, (_, t) in enumerate(rows):
        want_tokens[r, :len(t)] = torch.tensor(t, dtype=torch.long)
    assert torch.equal(traj.rows["tokens"].cpu(), want_tokens), "token record"
    assert traj.rows["guidance"].tolist() == guidance, "per-row guidance"
    size = rng.choice([None, 8, 5])
    got = gen.preview(traj, size) if rng.random() < 0.4 else []  # a partial decode after some of the calls
    for r in range(len(got)):
        close(got[r:r + 1], gen.decode_prefix(want_tokens[r:r + 1], size), f"preview row {r}", IMAGE_ATOL)
    if traj.step == gen.num_tokens:
        images = gen.finish(traj)
        for r in range(R):
            close(images[r:r + 1], gen.tokenizer.decode_codes(want_tokens[r:r + 1]), f"final image row {r}", IMAGE_ATOL)
        return
    ref = token_reference(gen, prompts, rows, cfg)
    cond, uncond = gen.next_logits(traj)
    close(cond, ref[0], "conditional logits")
    if traj.halves == 2:
        close(uncond, ref[1], "unconditional logits")
    else:
        assert torch.equal(cond, uncond)
    g = torch.tensor(guidance)
    want_guided = _guided(gen, ref[0], ref[1], g)
    close(gen.guided_logits(traj), want_guided, "guided logits")
    draws = gen.sample(traj)
    for r in range(R):
        alone = gen.sample(_Rows([traj.seed_key[r]], traj.step), logits=gen.guided_logits(traj)[r:r + 1])
        assert int(draws[r]) == int(alone[0]), f"draw of row {r} depends on the batch"


def run_token_sequence(gen, prompts, seed):
    rng = random.Random(seed)
    V = gen.vocab_size
    chosen = rng.sample(range(len(prompts)), rng.randint(1, len(prompts)))
    counts = [rng.randint(1, 3) for _ in chosen]
    mode = rng.choice(["one-half", "two-halves-at-1", "guided"])
    SEEN[mode] = SEEN.get(mode, 0) + 1
    cfg = 1.0 if mode != "guided" else rng.choice([2.0, 3.5])
    sub = [prompts[i] for i in chosen]
    traj = gen.start(sub, counts, seed=seed, cfg=cfg, unconditional=mode != "one-half")
    assert traj.halves == (1 if mode == "one-half" else 2)
    rows = [(p, []) for p, c in enumerate(counts) for _ in range(c)]
    guidance = [cfg] * len(rows)
    allowed = [1.0] + ([0.5] if _llamagen(gen) else []) if traj.halves == 1 else [1.0, 0.0, 1.5, 3.0]
    check_token_state(gen, traj, sub, rows, guidance, cfg, rng)
    hist: list = []
    while traj.step < gen.num_tokens or rng.random() < 0.3:
        if rng.random() < 0.3:
            hist = record_probe(traj, hist, rng)
        if traj.step < gen.num_tokens and rng.random() < 0.6:
            if rng.random() < 0.5:
                tokens = [rng.randrange(V) for _ in rows]
            else:
                tokens = gen.sample(traj).tolist()
            how = rng.choice(["none", "float", "rows"])
            given = None
            if how == "float":
                given = rng.choice(allowed)
                guidance = [given] * len(rows)
            elif how == "rows":
                guidance = [rng.choice(allowed) for _ in rows]
                given = torch.tensor(guidance)
            gen.advance(traj, torch.tensor(tokens), given)
            rows = [(p, t + [k]) for (p, t), k in zip(rows, tokens)]
        else:
            pick = random_rows(rng, len(rows))
            traj.select(pick)
            rows = [rows[i] for i in pick]
            guidance = [guidance[i] for i in pick]
            hist = [hist[i] for i in pick] if hist else hist
        check_bookkeeping(traj, hist)
        check_token_state(gen, traj, sub, rows, guidance, cfg, rng)


_BUILT: dict = {}


def _build(table, name):
    if name not in _BUILT:
        make, prompts = table[name]
        _BUILT[name] = make(), prompts
    return _BUILT[name]


@pytest.mark.parametrize("family", sorted(TOKEN_FAMILIES))
def test_next_token_random_sequences_follow_each_rows_history(family):
    gen, prompts = _build(TOKEN_FAMILIES, family)
    torch.manual_seed(0)
    SEEN.clear()
    for seed in range(SEQUENCES):
        run_token_sequence(gen, prompts, seed)
    assert {"one-half", "two-halves-at-1", "guided", "subset", "permutation", "repeats", "one"} <= set(SEEN)


# -- next-scale families ------------------------------------------------------------------------------------
def _tiny_shapeworld_var():
    tok, model = tiny_var_configs((1, 2, 4), sampling={"cfg": 2.0, "top_k": 10, "top_p": 0.9})
    return build_tiny_var(tok, model, 0)


SCALE_FAMILIES = {
    "shapeworld-var": (_tiny_shapeworld_var, SW, 1.0, [2.0, 3.0]),
    "var": (tiny_var, [0, 9, 4], 0.0, [1.5, 3.0]),
    "infinity": (tiny_infinity, ["a cat", "two red dogs on a mat", "x"], 1.0, [3.0, 2.0]),
}


def scale_reference(gen, prompts, rows, cfg, row_cfg):
    """A fresh two-half start of each row's prompt fed its own scales' tokens: the trajectory after them."""
    fresh = gen.start([prompts[p] for p, _ in rows], 1, seed=0, cfg=cfg, unconditional=True)
    if row_cfg is not None:
        fresh.rows["cfg"] = torch.tensor(row_cfg)
    for si in range(len(rows[0][1])):
        gen.forward_scale(fresh)
        gen.commit(fresh, torch.cat([t[si] for _, t in rows]))
    return fresh


def check_scale_state(gen, traj, prompts, rows, cfg, row_cfg, rng):
    R = len(rows)
    assert len(traj) == R and traj.prompt_index.tolist() == [p for p, _ in rows]
    if row_cfg is not None:
        assert traj.rows["cfg"].tolist() == row_cfg, "per-row cfg"
    fresh = scale_reference(gen, prompts, rows, cfg, row_cfg)
    for si in range(traj.step):
        assert torch.equal(gen.scale_tokens(traj, si), gen.scale_tokens(fresh, si)), f"tokens of scale {si}"
    if traj.step:
        close(gen.latent(traj), gen.latent(fresh), "accumulated latent")
        size = rng.choice([None, 8, 6])
        got = gen.preview(traj, size) if rng.random() < 0.5 else []  # a partial decode after some of the calls
        for r in range(len(got)):
            close(got[r:r + 1], gen.decode_latent(gen.latent(fresh)[r:r + 1], size), f"preview row {r}", IMAGE_ATOL)
    if traj.step == gen.num_scales:
        images = gen.finish(traj)
        for r in range(R):
            close(images[r:r + 1], gen.decode_latent(gen.latent(fresh)[r:r + 1], None), f"final image row {r}", IMAGE_ATOL)


def run_scale_sequence(gen, prompts, seed, no_guidance, guided):
    rng = random.Random(seed)
    chosen = rng.sample(range(len(prompts)), rng.randint(1, len(prompts)))
    counts = [rng.randint(1, 3) for _ in chosen]
    mode = rng.choice(["one-half", "two-halves-unguided", "guided"])
    SEEN[mode] = SEEN.get(mode, 0) + 1
    cfg = no_guidance if mode != "guided" else rng.choice(guided)
    sub = [prompts[i] for i in chosen]
    traj = gen.start(sub, counts, seed=seed, cfg=cfg, unconditional=mode != "one-half")
    assert traj.halves == (1 if mode == "one-half" else 2)
    rows = [(p, []) for p, c in enumerate(counts) for _ in range(c)]
    row_cfg = None
    if "cfg" in traj.rows:  # codebook families keep each row's guidance scale: make them differ
        row_cfg = [cfg if traj.halves == 1 else rng.choice([cfg, no_guidance, *guided]) for _ in rows]
        traj.rows["cfg"] = torch.tensor(row_cfg)
    check_scale_state(gen, traj, sub, rows, cfg, row_cfg, rng)
    hist: list = []
    while traj.step < gen.num_scales or rng.random() < 0.3:
        if rng.random() < 0.3:
            hist = record_probe(traj, hist, rng)
        if traj.step < gen.num_scales and rng.random() < 0.6:
            fresh = scale_reference(gen, sub, rows, cfg, row_cfg)
            logits = gen.forward_scale(traj)
            want = gen.forward_scale(fresh)
            H = traj.halves
            close(logits, want[: len(rows) * H], "pre-guidance logits")
            guided_logits = gen.guide(traj, logits)
            close(guided_logits, gen.guide(fresh, want), "guided logits")
            tokens = gen.sample(traj, guided_logits)
            for r in range(len(rows)):
                alone = gen.sample(_Rows([traj.seed_key[r]], traj.step), guided_logits[r:r + 1])
                assert torch.equal(tokens[r:r + 1], alone), f"draw of row {r} depends on the batch"
            if rng.random() < 0.5:  # or tokens of our own choosing
                tokens = gen.shape_tokens(traj.step, torch.stack([
                    gen.sample(_Rows([rng.getrandbits(62)], traj.step), guided_logits[r:r + 1])[0]
                    for r in range(len(rows))]))
            gen.commit(traj, tokens)
            rows = [(p, t + [tokens[r:r + 1].clone()]) for r, (p, t) in enumerate(rows)]
        else:
            pick = random_rows(rng, len(rows))
            traj.select(pick)
            rows = [rows[i] for i in pick]
            if row_cfg is not None:
                row_cfg = [row_cfg[i] for i in pick]
            hist = [hist[i] for i in pick] if hist else hist
        check_bookkeeping(traj, hist)
        check_scale_state(gen, traj, sub, rows, cfg, row_cfg, rng)


@pytest.mark.parametrize("family", sorted(SCALE_FAMILIES))
def test_next_scale_random_sequences_follow_each_rows_history(family):
    make, prompts, no_guidance, guided = SCALE_FAMILIES[family]
    if family not in _BUILT:
        _BUILT[family] = make(), prompts
    gen = _BUILT[family][0]
    torch.manual_seed(0)
    SEEN.clear()
    for seed in range(SEQUENCES):
        run_scale_sequence(gen, prompts, seed, no_guidance, guided)
    assert {"one-half", "two-halves-unguided", "guided", "subset", "permutation", "repeats", "one"} <= set(SEEN)


# -- refused inputs: one clear error, and the trajectory as it was --------------------------------------------
def _snapshot(traj):
    return (len(traj), traj.step, traj.prompt_index.tolist(), list(traj.seed_key), traj.node.tolist(),
            {k: v.clone() for k, v in traj.rows.items()}, len(traj.tree))


def _same(a, b) -> bool:
    return a[:5] == b[:5] and a[6] == b[6] and a[5].keys() == b[5].keys() and \
        all(torch.equal(a[5][k], b[5][k]) for k in a[5])


@pytest.mark.parametrize("rows, error, match", [
    ([], ValueError, "at least one row"), (torch.tensor([]), ValueError, "at least one row"),
    ([5], IndexError, r"must lie in \[0, 5\)"), ([0, -1], IndexError, r"must lie in \[0, 5\)"),
    ([0.0, 1.0], TypeError, "integers"), (torch.tensor([1.5]), TypeError, "integers"),
    (torch.tensor([True, False, True, False, True]), TypeError, "boolean mask"),
])
def test_select_refuses_empty_out_of_range_and_non_integer_rows_in_one_line(rows, error, match):
    gen, prompts = _build(TOKEN_FAMILIES, "shapeworld-ar")
    traj = gen.start(prompts[:2], [2, 3], seed=4)
    gen.advance(traj, gen.sample(traj))
    before = _snapshot(traj)
    with pytest.raises(error, match=match):
        traj.select(rows)
    assert _same(before, _snapshot(traj))


@pytest.mark.parametrize("rows", [[None], ["0"], {0, 1}, [[0], [1, 2]], iter([0, 1])])
def test_select_refuses_rows_that_are_no_indices_with_a_type_error_naming_select(rows):
    gen, prompts = _build(TOKEN_FAMILIES, "shapeworld-ar")
    traj = gen.start(prompts[:2], [2, 3], seed=4)
    before = _snapshot(traj)
    with pytest.raises(TypeError, match=r"select takes row indices"):
        traj.select(rows)
    assert _same(before, _snapshot(traj))


@pytest.mark.parametrize("family", ["shapeworld-ar", "llamagen-c2i"])
def test_advance_refuses_guidance_for_another_number_of_rows_in_one_line(family):
    """A strategy that selects rows but not its own per-row guidance vector hears what is wrong."""
    from arscale.errors import ArscaleError

    gen, prompts = _build(TOKEN_FAMILIES, family)
    traj = gen.start(prompts[:1], 4, seed=2)
    stale = torch.full((4,), 2.0)
    traj.select([0, 2, 3])
    before = _snapshot(traj)
    with pytest.raises(ArscaleError, match="3 rows"):
        gen.advance(traj, gen.sample(traj), stale)
    assert _same(before, _snapshot(traj))


def _bad_tokens(gen, tokens, kind):
    top = gen.token_values if hasattr(gen, "token_values") else (2 if hasattr(gen, "tau_list") else
                                                                 gen.transformer.config.vocab_size)
    return {"one row short": tokens[:-1], "too large": tokens + top, "negative": tokens - top,
            "fractional": tokens.float() + 0.5}[kind]


@pytest.mark.parametrize("family", sorted(SCALE_FAMILIES))
@pytest.mark.parametrize("kind", ["one row short", "too large", "negative", "fractional"])
def test_a_refused_commit_says_why_and_leaves_the_trajectory_able_to_go_on(family, kind):
    from arscale.errors import ArscaleError

    make, prompts, _, _ = SCALE_FAMILIES[family]
    if family not in _BUILT:
        _BUILT[family] = make(), prompts
    gen = _BUILT[family][0]
    traj = gen.start(prompts[:2], [1, 2], seed=6)
    gen.step(traj)
    traj.select([2, 0, 0])
    logits = gen.forward_scale(traj)
    tokens = gen.sample(traj, gen.guide(traj, logits))
    f_hat = traj.rows["f_hat"].clone()
    with pytest.raises(ArscaleError, match="tokens"):
        gen.commit(traj, _bad_tokens(gen, tokens, kind))
    assert traj.step == 1 and torch.equal(traj.rows["f_hat"], f_hat)
    gen.commit(traj, tokens)  # the valid tokens go on from where it was
    rows = [(p, [gen.scale_tokens(traj, 0)[r:r + 1], gen.scale_tokens(traj, 1)[r:r + 1]])
            for r, p in enumerate(traj.prompt_index.tolist())]
    fresh = scale_reference(gen, prompts[:2], rows, None, None)
    close(gen.latent(traj), gen.latent(fresh), "accumulated latent")
    close(gen.forward_scale(traj), gen.forward_scale(fresh), "next scale's logits")
