"""TTS-VAR's laws: MAX over recorded rewards only, and K-Means++ seeding with probability proportional to D²
(checked against the exact law over 6000 seeds)."""
import itertools
import math

import torch

from arscale.search.clustering import kmeans_plus_plus
from arscale.search.potentials import potential

NAN = float("nan")


def test_max_potential_ignores_unrecorded_scales_with_negative_rewards():
    # potentials.py docstring l.11 "MAX: max(r_t, r_<t)" over the *recorded* rewards; TTSVAR.md l.235
    # "max: exp(λ·max(r, record[:, <si]))". NaN = not scored, so it must not act as a reward of 0.
    h = torch.tensor([[-3.0, NAN, -1.0], [-0.5, NAN, -2.0]])
    assert potential(h, 2, "max").tolist() == [-1.0, -0.5]


def _exact_second_centre_law(x):
    """k = 2 greedy k-means++ (TTSVAR.md l.201 / clustering.py l.87-88, scikit-learn's: first centre uniform,
    2 + floor(ln 2) = 2 trials drawn with probability proportional to D^2, keep the one with the lowest
    potential, ties to the first trial). Returns {(first, second): probability}."""
    n = len(x)
    law = {}
    for f in range(n):
        d2 = [float(((x[i] - x[f]) ** 2).sum()) for i in range(n)]
        tot = sum(d2)
        for t1, t2 in itertools.product(range(n), repeat=2):
            p = (1 / n) * (d2[t1] / tot) * (d2[t2] / tot)
            if p == 0:
                continue
            pots = [sum(min(d2[i], float(((x[i] - x[t]) ** 2).sum())) for i in range(n)) for t in (t1, t2)]
            best = t1 if pots[0] <= pots[1] else t2
            law[(f, best)] = law.get((f, best), 0.0) + p
    return law


def test_kmeans_plus_plus_samples_candidates_proportional_to_squared_distance():
    x = torch.tensor([[0.0], [1.0], [-1.5]], dtype=torch.float64)
    law = _exact_second_centre_law(x)
    trials = 6000
    counts = {}
    for seed in range(trials):
        c = tuple(kmeans_plus_plus(x, 2, torch.Generator().manual_seed(seed)).tolist())
        counts[c] = counts.get(c, 0) + 1
    assert set(counts) <= set(law)
    for key, p in law.items():
        freq = counts.get(key, 0) / trials
        assert abs(freq - p) < 5 * math.sqrt(p * (1 - p) / trials) + 1e-9, (key, freq, p)
