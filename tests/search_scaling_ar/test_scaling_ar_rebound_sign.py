"""The rebound divides by |C_min| (SCALINGAR.md §2.3): it stays a rise even where C_min is negative, which
happens once alpha_h + alpha_m > 1 lets token confidence drop below zero."""

import torch

from arscale.search import confidence as sig


def test_rebound_over_a_negative_running_minimum():
    c, cmin = torch.tensor([-0.3, 0.2]), torch.tensor([-0.5, -0.5])
    r = sig.rebound(c, cmin, 1e-3)
    assert torch.allclose(r, torch.tensor([0.2 / 0.501, 0.7 / 0.501]))
    assert (r > 0).all()
