"""Feature reductions before K-Means: `pca-joint` is one PCA over the centred tokens of all rows with a sign fixed
by the data, not by the SVD; one embedding per image ([B, C]: CLIP, PickScore, HPSv2) is kept as it is."""

import pytest
import torch

from arscale.search import clustering
from arscale.search.clustering import reduce_features, select_diverse


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_joint_direction_is_the_top_variance_direction_of_centred_tokens():
    # tokens = a large constant offset along channel 0, spread (std 1) along channel 1 and a little (std 0.1) along
    # channel 2. Centred, the first principal direction is channel 1; an uncentred SVD would follow the offset.
    g = _gen(3)
    tokens = torch.zeros(4, 12, 3, dtype=torch.float64)
    tokens[..., 0] = 50.0
    tokens[..., 1] = torch.randn(4, 12, generator=g, dtype=torch.float64)
    tokens[..., 2] = 0.1 * torch.randn(4, 12, generator=g, dtype=torch.float64)
    out = reduce_features(tokens, "pca-joint")
    flat = tokens.reshape(-1, 3)
    centred = flat - flat.mean(0)
    direction = torch.linalg.svd(centred, full_matrices=False)[2][0]
    assert abs(float(direction[1])) > 0.99  # the set-up does what it says
    expected = (centred @ direction).reshape(4, 12)
    assert torch.allclose(out, expected, atol=1e-9) or torch.allclose(out, -expected, atol=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_joint_sign_makes_the_largest_token_mean_projection_positive(seed):
    feats = torch.randn(5, 6, 3, 3, generator=_gen(seed))  # [B, C, h, w]
    out = reduce_features(feats, "pca-joint")
    anchor = out.mean(1)  # each row's token-mean, projected (relative to the overall mean)
    assert float(anchor[anchor.abs().argmax()]) > 0


def test_joint_result_does_not_depend_on_the_svd_sign(monkeypatch):
    feats = torch.randn(5, 6, 3, 3, generator=_gen(9))
    plain = reduce_features(feats, "pca-joint")
    first = clustering._first_direction
    monkeypatch.setattr(clustering, "_first_direction", lambda x: -first(x))  # an SVD that returns the other sign
    assert torch.allclose(reduce_features(feats, "pca-joint"), plain, atol=1e-12)


def _two_groups():
    # rows 0-3 near +e0, rows 4-7 near -e0 (embedding vectors, one per image)
    g = torch.Generator().manual_seed(0)
    x = 0.05 * torch.randn(8, 16, generator=g)
    x[:4, 0] += 1.0
    x[4:, 0] -= 1.0
    return x


def test_pool_and_joint_pca_keep_one_row_of_each_group():
    x = _two_groups()
    for reduction in ("pool", "pca-joint"):
        picks = select_diverse(x, 2, torch.Generator().manual_seed(1), reduction).tolist()
        assert sorted(p // 4 for p in picks) == [0, 1], reduction


def test_per_image_pca_keeps_one_vector_per_image_as_it_is():
    # a single token has no principal direction of its own: its per-image PCA was the zero map, every row one point,
    # and clustering silently kept rows 0..k-1
    x = _two_groups()
    assert torch.equal(reduce_features(x, "pca"), x.double())
    picks = select_diverse(x, 2, torch.Generator().manual_seed(1), "pca").tolist()
    assert sorted(p // 4 for p in picks) == [0, 1]
