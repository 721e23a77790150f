"""`representatives()` given a clustering outright (k-means replaced by fixed labels and centres): a cluster's
pick is its own member nearest its centre even when another cluster's point lies nearer, and an empty cluster
falls back to the nearest unused row of all, whatever its index."""

import torch

from arscale.search import clustering


def _fixed_kmeans(monkeypatch, labels, centres):
    fixed = (torch.tensor(labels), torch.tensor(centres, dtype=torch.float64))
    monkeypatch.setattr(clustering, "kmeans", lambda x, k, generator: fixed)


def test_a_cluster_keeps_its_own_member_when_a_neighbours_point_is_nearer_its_centre(monkeypatch):
    # Cluster 0 = {(-1, 0), (1, 0)}, centre (0, 0); cluster 1 = {(0, 0.6), (0, 1.2)}, centre (0, 0.9). A converged
    # clustering (each point is nearest its own centre), yet (0, 0.6) lies 0.6 from centre 0, nearer than either
    # member (1.0). Cluster 0 must still pick a member: rows 0 and 1 tie at 1.0, the lower index wins.
    x = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.6], [0.0, 1.2]])
    _fixed_kmeans(monkeypatch, [0, 0, 1, 1], [[0.0, 0.0], [0.0, 0.9]])
    # cluster 1: rows 2 and 3 are both 0.3 from (0, 0.9) (a midpoint tie), the lower index wins
    assert clustering.representatives(x, 2, torch.Generator().manual_seed(0)).tolist() == [0, 2]


def test_an_empty_cluster_takes_the_nearest_unused_row_even_past_the_feature_width(monkeypatch):
    # One feature column, four rows, every row labelled 0: cluster 1 is empty and falls back to the unused row
    # nearest its centre 3.1, which is row 3 (value 3.0), an index beyond the single feature column.
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    _fixed_kmeans(monkeypatch, [0, 0, 0, 0], [[1.4], [3.1]])
    # cluster 0: its members' distances to 1.4 are 1.4, 0.4, 0.6, 1.6 → row 1
    assert clustering.representatives(x, 2, torch.Generator().manual_seed(0)).tolist() == [1, 3]


def test_a_cluster_whose_members_were_taken_falls_back_to_the_nearest_unused_row(monkeypatch):
    # Cluster 0 is empty and its fallback (nearest to 1.9 of all rows) takes row 2, cluster 1's only member;
    # cluster 1 then falls back to the nearest unused row to its centre 2.0: row 1 (1.0 away) before row 0.
    x = torch.tensor([[0.0], [1.0], [2.0]])
    _fixed_kmeans(monkeypatch, [2, 2, 1], [[1.9], [2.0], [0.5]])
    # cluster 2: of its members (rows 0 and 1) row 1 is taken, row 0 is left
    assert clustering.representatives(x, 3, torch.Generator().manual_seed(0)).tolist() == [2, 1, 0]
