import pytest
import torch

from arscale.search.clustering import REDUCTIONS, kmeans, reduce_features, representatives, select_diverse


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_representatives_are_the_members_nearest_each_centre():
    # Three tight groups; in each, one point sits exactly on the group mean.
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    offsets = torch.tensor([[0.0, 0.0], [0.3, 0.0], [-0.3, 0.0], [0.0, 0.4], [0.0, -0.4]])
    points, on_mean = [], []
    for c in centres:
        on_mean.append(len(points))
        points += [c + o for o in offsets]
    x = torch.stack(points)
    perm = torch.randperm(len(x), generator=_gen(1))
    x = x[perm]
    expected = {int(torch.nonzero(perm == i)) for i in on_mean}
    for seed in range(5):
        reps = representatives(x, 3, _gen(seed))
        assert set(reps.tolist()) == expected


def test_duplicates_never_give_empty_clusters_or_repeats():
    x = torch.tensor([[1.0, 1.0]] * 5 + [[5.0, 5.0]])
    reps = representatives(x, 3, _gen(0))
    assert len(set(reps.tolist())) == 3
    assert 5 in reps.tolist()
    all_same = torch.ones(6, 4)
    assert sorted(representatives(all_same, 4, _gen(0)).tolist()) == [0, 1, 2, 3]  # ties -> lowest indices


def test_deterministic_given_the_generator():
    x = torch.randn(16, 5, generator=_gen(7))
    a = select_diverse(x.view(16, 5, 1), 6, _gen(3), "pool")
    b = select_diverse(x.view(16, 5, 1), 6, _gen(3), "pool")
    assert torch.equal(a, b)
    labels, centres = kmeans(x, 4, _gen(3))
    assert labels.shape == (16,) and centres.shape == (4, 5)
    # every point carries the label of its nearest centre (distances computed here)
    d = torch.cdist(x.double(), centres)
    assert torch.equal(labels, d.argmin(1))


def test_kmeans_separates_blobs_and_centres_are_their_members_means():
    blob_centres = torch.tensor([[0.0, 0.0, 0.0], [20.0, 0.0, 0.0], [0.0, 20.0, 0.0], [0.0, 0.0, 20.0]])
    noise = 0.5 * torch.randn(4, 6, 3, generator=_gen(11))
    x = (blob_centres[:, None] + noise).reshape(24, 3)
    blob = torch.arange(24) // 6
    perm = torch.randperm(24, generator=_gen(12))
    x, blob = x[perm], blob[perm]
    for seed in range(5):
        labels, centres = kmeans(x, 4, _gen(seed))
        # the same partition as the blobs (cluster ids are arbitrary)
        found = {frozenset(torch.nonzero(labels == j).flatten().tolist()) for j in range(4)}
        truth = {frozenset(torch.nonzero(blob == b).flatten().tolist()) for b in range(4)}
        assert found == truth
        for j in range(4):
            assert torch.allclose(centres[j], x[labels == j].double().mean(0), atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_select_diverse_keeps_one_row_of_each_group_of_duplicates(reduction):
    # rows r and r + 1 (r even) are exact duplicates: 8 -> 4 must keep one row of each pair, the lower index
    # (ties go to the lowest); the first four rows would be two copies each of pairs 0 and 1
    pairs = torch.randn(4, 8, 4, 4, generator=_gen(5))  # [C, h, w] feature maps
    feats = pairs[torch.arange(8) // 2]
    for seed in range(5):
        assert sorted(select_diverse(feats, 4, _gen(seed), reduction).tolist()) == [0, 2, 4, 6]


def test_reductions_shapes_and_joint_pca_sign_invariance():
    feats = torch.randn(6, 8, 4, 4, generator=_gen(2))  # [B, C, h, w] maps -> 16 tokens of 8 channels
    pool = reduce_features(feats, "pool")
    assert pool.shape == (6, 8)
    assert torch.allclose(pool, feats.double().mean((2, 3)), atol=1e-12)  # the mean token = per-channel mean
    assert reduce_features(feats, "pca").shape == (6, 16)
    joint = reduce_features(feats, "pca-joint")
    assert joint.shape == (6, 16) and joint.abs().max() > 0.1
    assert torch.allclose(joint, reduce_features(-feats, "pca-joint"), atol=1e-9)


def test_pca_of_rank_one_token_maps_is_the_centred_spatial_factor():
    # tokens[b, i, c] = u_b[i] * v_b[c]: centred, (u_b - mean u_b) ⊗ v_b, whose first principal direction is
    # v_b / |v_b|, so per-image PCA gives ±(u_b - mean u_b)·|v_b| (the sign is the SVD's)
    g = _gen(6)
    u = torch.randn(3, 10, generator=g, dtype=torch.float64)
    v = torch.randn(3, 5, generator=g, dtype=torch.float64)
    tokens = u[:, :, None] * v[:, None, :]  # [B, T, C]
    per = reduce_features(tokens, "pca")
    for b in range(3):
        expected = (u[b] - u[b].mean()) * v[b].norm()
        assert expected.abs().max() > 0.1
        assert torch.allclose(per[b], expected, atol=1e-9) or torch.allclose(per[b], -expected, atol=1e-9)
    # joint PCA with one shared channel direction v: projection (u_b[i] - mean of all u)·|v|, signed so that the
    # image whose mean moves farthest from the overall mean gets a positive mean projection
    shared = u[:, :, None] * v[0][None, None, :]
    overall = u.mean()
    offsets = u.mean(1) - overall
    sign = torch.sign(offsets[offsets.abs().argmax()])
    expected = sign * (u - overall) * v[0].norm()
    assert torch.allclose(reduce_features(shared, "pca-joint"), expected, atol=1e-9)


def test_per_image_pca_is_sign_ambiguous_but_joint_is_not():
    # Two images whose token maps are exact negatives share one structure up to sign.
    base = torch.randn(1, 16, 8, generator=_gen(4))
    pair = torch.cat([base, -base])
    joint = reduce_features(pair, "pca-joint")
    per = reduce_features(pair, "pca")
    # per-image PCA maps the two onto the same (or sign-flipped) map; joint PCA keeps them apart
    assert per.abs().max() > 0.1 and joint.abs().max() > 0.1  # all-zero maps would satisfy the equalities below
    assert torch.allclose(per[0].abs(), per[1].abs(), atol=1e-9)
    assert torch.allclose(joint[0], -joint[1], atol=1e-9)
