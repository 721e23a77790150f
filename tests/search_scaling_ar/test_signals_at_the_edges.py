"""The search methods' numerics at the edges of their inputs (property-based where it helps)."""

import math
import warnings

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.search import confidence as sig
from arscale.search.scaling_ar import ScalingAR, ScalingARConfig
from arscale.search.scaling_ar_termination import TerminationPolicy


def test_mean_pick_with_a_warm_up_over_every_token_scores_finite_confidences():
    """final_pick='mean' with warmup_steps == T still gives finite scores and picks the best of them."""
    gen = random_shapeworld_ar(1, grid=4, vocab_size=8, cfg=2.0)  # 16 tokens: ceil(0.95 * 16) = 16 warm-up steps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ScalingAR(ScalingARConfig(final_pick="mean", warmup_fraction=0.95)).run(gen, ["a red circle"], 3, seed=1)
    assert res.telemetry["warmup_steps"] == gen.num_tokens
    scores = [c.score for c in res.candidates[0]]
    assert all(math.isfinite(s) for s in scores), scores
    assert res.chosen(0).score == max(scores)


def test_entropy_and_kl_of_logits_with_masked_entries_are_those_of_the_unmasked_ones():
    """A -inf logit (a masked or padded code) has probability 0 and adds nothing to entropy or KL."""
    ninf = float("-inf")
    masked = torch.tensor([[0.3, -1.2, ninf, ninf]])
    plain = torch.tensor([[0.3, -1.2]])
    assert torch.allclose(sig.entropy(masked), sig.entropy(plain))
    assert torch.allclose(sig.token_confidence(masked, 0.5, 0.5), 1 - (0.5 * sig.entropy(plain) / math.log(4)
                                                                     + 0.5 * (1 - sig.top2_margin(plain))))
    uncond = torch.tensor([[1.0, 0.5, ninf, ninf]])
    want = sig.kl_divergence(plain, torch.tensor([[1.0, 0.5]]))
    assert torch.allclose(sig.kl_divergence(masked, uncond), want)


def test_an_infinite_kl_leaves_the_drift_score_in_0_1():
    """KL(p_c || p_u) is +inf where p_u is 0 under p_c's mass; D stays in [0, 1] for it and every later value."""
    kl = sig.kl_divergence(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, float("-inf")]]))
    assert kl.item() == math.inf
    z = sig.PromptZScore(1)
    z.update(torch.tensor([0.1, 0.2, 0.4]), torch.zeros(3, dtype=torch.long))
    z.update(torch.tensor([kl.item(), 0.3]), torch.zeros(2, dtype=torch.long))
    d = z.normalize(torch.tensor([kl.item(), 0.3, 0.1]), torch.zeros(3, dtype=torch.long))
    assert torch.isfinite(d).all() and (d >= 0).all() and (d <= 1).all(), d
    assert d[0] > d[1] > d[2]


@settings(max_examples=120, deadline=None, derandomize=True)
@given(n=st.integers(1, 6), steps=st.integers(1, 12), window=st.integers(0, 3), probation=st.sampled_from(["any", "end"]),
       pool=st.sampled_from(["active", "unflagged"]), min_survivors=st.integers(1, 3), data=st.data())
def test_termination_keeps_survivors_and_the_best_for_any_confidences(n, steps, window, probation, pool,
                                                                        min_survivors, data):
    """For any confidences: >= min_survivors left, the arg-max C never cut, a cut only after a full probation."""
    cfg = ScalingARConfig(probation=probation, threshold_pool=pool, min_survivors=min_survivors)
    policy = TerminationPolicy(cfg, 2, window)
    prompt = torch.arange(2).repeat_interleave(n)
    ident = torch.arange(2 * n)
    flagged, flag_step = torch.zeros(2 * n, dtype=torch.bool), torch.full((2 * n,), -1, dtype=torch.long)
    flagged_at: dict[int, int] = {}
    value = st.one_of(st.floats(0, 1, width=32), st.sampled_from([0.0, 0.5, 1.0]))  # ties included
    for t in range(steps):
        rows = len(prompt)
        c = torch.tensor(data.draw(st.lists(value, min_size=rows, max_size=rows)), dtype=torch.float32)
        r = torch.tensor(data.draw(st.lists(st.floats(-1, 2, width=32), min_size=rows, max_size=rows)))
        events, doomed = policy.step(t, c, r, prompt, flagged, flag_step)
        flagged_at.update({int(ident[i]): t for i, kind in events if kind == "flag"})
        for i in doomed:
            assert t - flagged_at[int(ident[i])] >= window
        for p in range(2):
            mine = torch.nonzero(prompt == p).flatten().tolist()
            assert mine[int(torch.argmax(c[mine]))] not in doomed
            assert len([i for i in mine if i not in doomed]) >= min(min_survivors, len(mine))
        keep = [i for i in range(rows) if i not in set(doomed)]
        prompt, ident, flagged, flag_step = prompt[keep], ident[keep], flagged[keep], flag_step[keep]


@settings(max_examples=120, deadline=None, derandomize=True)
@given(vocab=st.integers(2, 40), magnitude=st.sampled_from([1e-6, 1.0, 1e4]),
       dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]), tie=st.booleans(), seed=st.integers(0, 999))
def test_confidence_signals_of_finite_logits_stay_in_their_ranges(vocab, magnitude, dtype, tie, seed):
    """Normalised entropy, margin and token confidence in [0, 1], KL finite and >= 0, margin 0 on an exact tie."""
    g = torch.Generator().manual_seed(seed)
    cond = (torch.randn(3, vocab, generator=g) * magnitude).clamp(-6e4, 6e4)
    uncond = (torch.randn(3, vocab, generator=g) * magnitude).clamp(-6e4, 6e4)
    if tie:
        cond[:, :2] = cond.max(-1, keepdim=True).values
    cond, uncond = cond.to(dtype), uncond.to(dtype)
    for v in (sig.normalized_entropy(cond), sig.top2_margin(cond), sig.token_confidence(cond)):
        assert torch.isfinite(v).all() and (v >= -1e-6).all() and (v <= 1 + 1e-6).all()
    kl = sig.kl_divergence(cond, uncond)
    assert torch.isfinite(kl).all() and (kl >= 0).all()
    if tie:
        assert (sig.top2_margin(cond) == 0).all()
