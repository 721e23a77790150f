import torch

from arscale.search.clustering import kmeans, reduce_features, representatives, select_diverse


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


def test_reductions_shapes_and_joint_pca_sign_invariance():
    feats = torch.randn(6, 8, 4, 4, generator=_gen(2))  # [B, C, h, w] maps -> 16 tokens of 8 channels
    assert reduce_features(feats, "pool").shape == (6, 8)
    assert reduce_features(feats, "pca").shape == (6, 16)
    joint = reduce_features(feats, "pca-joint")
    assert joint.shape == (6, 16)
    assert torch.allclose(joint, reduce_features(-feats, "pca-joint"), atol=1e-9)


def test_per_image_pca_is_sign_ambiguous_but_joint_is_not():
    # Two images whose token maps are exact negatives share one structure up to sign.
    base = torch.randn(1, 16, 8, generator=_gen(4))
    pair = torch.cat([base, -base])
    joint = reduce_features(pair, "pca-joint")
    per = reduce_features(pair, "pca")
    # per-image PCA maps the two onto the same (or sign-flipped) map; joint PCA keeps them apart
    assert torch.allclose(per[0].abs(), per[1].abs(), atol=1e-9)
    assert torch.allclose(joint[0], -joint[1], atol=1e-9)
