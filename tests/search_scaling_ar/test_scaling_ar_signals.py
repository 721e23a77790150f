"""ScalingAR's signals on hand-built logits, with values worked out by hand."""

import math

import torch

from arscale.search import confidence as sig


def test_entropy_uniform_and_peaked():
    V = 8
    uniform = torch.zeros(1, V)
    assert torch.allclose(sig.entropy(uniform), torch.tensor([math.log(V)]))
    assert torch.allclose(sig.normalized_entropy(uniform), torch.tensor([1.0]))
    peaked = torch.full((1, V), -1e4)
    peaked[0, 3] = 0.0
    assert sig.entropy(peaked).item() < 1e-6


def test_entropy_two_point():
    logits = torch.log(torch.tensor([[0.75, 0.25]]))
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert abs(sig.entropy(logits).item() - expected) < 1e-6


def test_margin_and_token_confidence():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2]])
    logits = probs.log()
    assert torch.allclose(sig.top2_margin(logits), torch.tensor([0.2, 0.0]), atol=1e-6)
    h = sig.normalized_entropy(logits)
    expected = 1 - (0.5 * h + 0.5 * (1 - torch.tensor([0.2, 0.0])))
    assert torch.allclose(sig.token_confidence(logits), expected, atol=1e-6)
    # all weight on the margin: 1 - (1 - m) = m
    assert torch.allclose(sig.token_confidence(logits, 0.0, 1.0), torch.tensor([0.2, 0.0]), atol=1e-6)


def test_kl_hand_value_and_asymmetry():
    p = torch.tensor([[0.5, 0.5]])
    q = torch.tensor([[0.9, 0.1]])
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert abs(sig.kl_divergence(p.log(), q.log()).item() - expected) < 1e-6
    reverse = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert abs(sig.kl_divergence(q.log(), p.log()).item() - reverse) < 1e-6
    assert sig.kl_divergence(p.log(), p.log()).item() == 0.0


def test_ema_starts_at_first_value():
    prev = torch.tensor([float("nan"), 1.0])
    out = sig.ema(prev, torch.tensor([0.5, 0.0]), 0.2)
    assert torch.allclose(out, torch.tensor([0.5, 0.8]))


def test_worst_block_on_4x4_grid_with_2x2_blocks():
    # 4x4 grid, 2x2 blocks -> 4 blocks; block means 0.1, 0.2, 0.3, 0.9
    grid = torch.tensor([[0.1, 0.1, 0.2, 0.2],
                         [0.1, 0.1, 0.2, 0.2],
                         [0.3, 0.3, 0.8, 1.0],
                         [0.3, 0.3, 0.9, 0.9]]).view(1, 16)
    assert torch.allclose(sig.worst_block_entropy(grid, 4, 2, 0.1), torch.tensor([0.9]))  # ceil(0.4) = 1 block
    assert torch.allclose(sig.worst_block_entropy(grid, 4, 2, 0.5), torch.tensor([0.6]))  # 2 blocks: 0.9, 0.3


def test_worst_block_only_counts_generated_tokens():
    grid = torch.full((1, 16), float("nan"))
    grid[0, :3] = torch.tensor([0.2, 0.4, 0.9])  # first raster row partly generated
    # active blocks: block 0 holds (0.2, 0.4) -> 0.3; block 1 holds (0.9) -> 0.9
    assert torch.allclose(sig.worst_block_entropy(grid, 4, 2, 0.1), torch.tensor([0.9]))
    assert torch.allclose(sig.worst_block_entropy(grid, 4, 2, 1.0), torch.tensor([0.6]))
    assert torch.isnan(sig.worst_block_entropy(torch.full((1, 16), float("nan")), 4, 2, 0.1)).all()


def test_worst_block_with_uneven_blocks():
    grid = torch.arange(9.0).view(1, 9) / 10  # 3x3 grid, 2x2 blocks -> 2x2 blocks, edges smaller
    # blocks: {0,1,3,4} mean .2, {2,5} .35, {6,7} .65, {8} .8
    assert torch.allclose(sig.worst_block_entropy(grid, 3, 2, 0.25), torch.tensor([0.8]))
    # ceil(0.5 * 4) = 2 worst blocks: (.8 + .65) / 2
    assert torch.allclose(sig.worst_block_entropy(grid, 3, 2, 0.5), torch.tensor([0.725]))
    # every block, each weighted once: (.2 + .35 + .65 + .8) / 4 = .5, not the token mean .4 (nor .225, what
    # dividing each edge block's sum by a full block's 4 tokens would give)
    assert torch.allclose(sig.worst_block_entropy(grid, 3, 2, 1.0), torch.tensor([0.5]))


def test_prompt_zscore_pools_per_prompt():
    z = sig.PromptZScore(2)
    prompt = torch.tensor([0, 0, 1, 1])
    z.update(torch.tensor([1.0, 3.0, 10.0, 10.0]), prompt)
    z.update(torch.tensor([2.0, float("nan"), 10.0, 30.0]), prompt)
    # prompt 0 saw 1, 3, 2 -> mean 2, population std sqrt(2/3); prompt 1 saw 10, 10, 10, 30
    assert torch.allclose(z.mean, torch.tensor([2.0, 15.0], dtype=torch.float64))
    assert torch.allclose(z.std(), torch.tensor([math.sqrt(2 / 3), math.sqrt(75.0)], dtype=torch.float64))
    values = torch.tensor([2.0, 2.0 + math.sqrt(2 / 3), 15.0, 1000.0])
    zs = z.zscore(values, prompt)
    assert torch.allclose(zs, torch.tensor([0.0, 1.0, 0.0, 3.0]), atol=1e-5)  # clipped at 3
    assert torch.allclose(z.normalize(values, prompt), torch.sigmoid(zs))


def test_rebound_and_windowed_variance():
    c = torch.tensor([0.6, 0.5, 0.7])
    cmin = torch.tensor([0.5, 0.5, float("nan")])
    assert torch.allclose(sig.rebound(c, cmin, 1e-3), torch.tensor([0.1 / 0.501, 0.0, 0.0]))
    hist = torch.tensor([[1.0, 2.0, 3.0, 5.0], [float("nan"), float("nan"), float("nan"), 4.0]])
    var = sig.windowed_variance(hist, 3)
    assert torch.allclose(var, torch.tensor([torch.tensor([2.0, 3.0, 5.0]).var(unbiased=False).item(), 0.0]))


def test_token_pmi_is_the_log_ratio_at_the_sampled_token():
    cond = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]).log()
    uncond = torch.tensor([[0.25, 0.25, 0.5], [0.1, 0.1, 0.8]]).log()
    # from logits known only up to a shift, through the log-probabilities the caller computes once
    pmi = sig.token_pmi((cond + 3.0).log_softmax(-1), (uncond - 1.0).log_softmax(-1), torch.tensor([0, 2]))
    assert torch.allclose(pmi, torch.tensor([math.log(2.0), 0.0]), atol=1e-6)
