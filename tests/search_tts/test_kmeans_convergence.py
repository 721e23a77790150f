"""Lloyd's K-Means as the clustering docstring states it: run to convergence, a tolerance relative to the data's
variance (scikit-learn's), labels that match the returned centres, and clustering that must shrink."""

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.search.clustering import kmeans, select_diverse


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _uniform(seed):
    # 40 points spread evenly over the unit square: no blob structure, so one Lloyd step from the k-means++ start
    # never is the fixed point (checked on these seeds)
    return torch.rand(40, 2, generator=_gen(100 + seed), dtype=torch.float64)


@pytest.mark.parametrize("seed", range(4))
def test_lloyd_runs_to_its_fixed_point(seed):
    x = _uniform(seed)
    labels, centres = kmeans(x, 5, _gen(seed))
    # converged: every centre is its members' mean and every point is labelled with its nearest centre
    for j in range(5):
        assert torch.allclose(centres[j], x[labels == j].mean(0), atol=1e-12)
    assert torch.equal(labels, torch.cdist(x, centres).argmin(1))


@pytest.mark.parametrize("seed", range(4))
def test_tolerance_is_relative_to_the_variance(seed):
    # tol is scaled by the mean per-feature variance (scikit-learn's rule), so shrinking the data by 1e4 changes
    # nothing: the same partition, the centres shrunk by the same factor
    x = _uniform(seed)
    labels, centres = kmeans(x, 5, _gen(seed))
    small_labels, small_centres = kmeans(x * 1e-4, 5, _gen(seed))
    assert torch.equal(labels, small_labels)
    assert torch.allclose(small_centres * 1e4, centres, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_labels_match_the_returned_centres_even_when_stopped_early(seed):
    # stopped after one Lloyd step (max_iter=1), the centres moved: the labels must be recomputed against them
    x = _uniform(seed)
    labels, centres = kmeans(x, 5, _gen(seed), max_iter=1)
    assert torch.equal(labels, torch.cdist(x, centres).argmin(1))


def test_clustering_to_as_many_rows_as_there_are_is_refused():
    feats = torch.randn(4, 3, 2, 2, generator=_gen(1))
    with pytest.raises(ArscaleError, match="must shrink the batch, but asked for 4 of 4 rows"):
        select_diverse(feats, 4, _gen(0))
    assert len(select_diverse(feats, 3, _gen(0))) == 3
