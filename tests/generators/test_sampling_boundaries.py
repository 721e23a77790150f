"""Boundary behaviour of the samplers (shared/methods/MODELS.md, VAR sampler and LlamaGen HF-style sampler)."""
import math

import torch

from arscale.generators.sampling import filter_logits, filter_logits_hf, sample_batch


def test_var_top_p_drops_entries_whose_ascending_cumsum_equals_one_minus_p():
    # MODELS.md: "removes entries whose ascending cumulative softmax is <= 1-top_p" (the boundary is dropped)
    logits = torch.tensor([[math.log(1.0), math.log(1.0), math.log(2.0)]], dtype=torch.float64)  # .25 .25 .5
    kept = torch.isfinite(filter_logits(logits, top_p=0.75))  # 1 - p = .25; ascending cumsum .25 .5 1
    assert kept.tolist() == [[False, True, True]]


def test_var_top_p_always_keeps_the_largest_even_when_one_minus_p_rounds_to_one():
    # MODELS.md: "The largest entry is always kept." In float32, 1 - 1e-9 == 1.0 == the last cumsum.
    out = filter_logits(torch.tensor([[1.0, 3.0, 2.0]]), top_p=1e-9)  # float32 ascending cumsum ends at 1.0
    assert torch.isfinite(out).tolist() == [[False, True, False]]


def test_temperature_divides_the_logits():
    # MODELS.md (LlamaGen sampler): logits / T; sampling draws from softmax(logits / T)
    logits = torch.randn(300, 8, generator=torch.Generator().manual_seed(0)) * 3
    got = sample_batch(logits, torch.Generator().manual_seed(7), temperature=0.4)
    want = torch.multinomial((logits / 0.4).softmax(-1), 1, generator=torch.Generator().manual_seed(7))[:, 0]
    assert torch.equal(got, want)


def test_hf_top_p_keeps_the_token_whose_cumsum_equals_p():
    # MODELS.md: HF style removes positions whose cumulative probability is > top_p, shifted right
    logits = torch.tensor([[math.log(2.0), 0.0, 0.0]], dtype=torch.float64)  # .5 .25 .25
    kept = torch.isfinite(filter_logits_hf(logits, top_p=0.5))  # descending cumsum .5 .75 1 -> drop [F T T] >> 1
    assert kept.tolist() == [[True, True, False]]


def test_hf_top_k_one_keeps_only_the_argmax():
    # MODELS.md: "top-k keeps values >= the k-th largest"; k = 1 is a real filter
    logits = torch.tensor([[0.5, 3.0, -1.0, 2.0]])
    assert torch.isfinite(filter_logits_hf(logits, top_k=1)).tolist() == [[False, True, False, False]]
