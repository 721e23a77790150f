"""TTS-VAR against independent references written from the spec (../shared/methods/TTSVAR.md and the paper):
the batch schedule, the PCA reductions and the cluster representatives, the potentials, the resampling weights,
and whole runs traced through the search tree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from search_fakes import CodedNextScale, FakeNextScale, FakeScorer, TableScorer

from arscale.search import clustering, potentials
from arscale.search.schedule import build_schedule
from arscale.search.tts_var import TTSVAR, TTSVARConfig

# ================================================================================================================
# TTS-VAR: the references
# ================================================================================================================


# TTSVAR.md §1.3: the official run's rows generating each of the 13 scales, and its operations (0-based)
OFFICIAL_ROWS = [8, 8, 8, 6, 6, 6, 4, 2, 2, 2, 1, 1, 1]
OFFICIAL_CLUSTER, OFFICIAL_RESAMPLE = [2, 5], [6, 9]


def ref_ops(K):
    """The paper's operation scales 2, 5 / 6, 9 of 13 moved onto K scales (schedule.py's documented rule)."""
    s = [int(x * (K - 1) / 12 + 0.5) for x in (2, 5, 6, 9)]
    for i in range(1, 4):
        s[i] = max(s[i], s[i - 1] + 1)
    s[3] = min(s[3], K - 2)
    for i in (2, 1, 0):
        s[i] = min(s[i], s[i + 1] - 1)
    return s[:2], s[2:]


def ref_rows(K, n, n_counts="initial"):
    """Rows generating each scale: 8 -> 6 -> 4 -> 2 -> 1 after each operation, in units of N/8 ("initial": N rows
    start, the official code's N) or of N ("final": the paper text's {8N, ..., 1N})."""
    cluster, resample = ref_ops(K)
    levels = [8, 6, 4, 2, 1]
    if n_counts == "final":
        rows, j = [], 0
        for k in range(K):
            rows.append(levels[j] * n)
            j += k in cluster + resample
        return rows, cluster, resample
    rows, j, kc, kr = [n], 0, [], []
    for k in range(K - 1):
        before = rows[-1]
        if k not in cluster + resample or before == 1:
            rows.append(before)
            continue
        j += 1
        after = min(before, max(1, int(levels[j] * n / 8 + 0.5)))
        if k in cluster:
            after = min(after, before - 1)
        (kc if k in cluster else kr).append(k)
        rows.append(after)
    return rows, kc, kr


def test_schedule_reference_is_the_official_run_at_13_scales():
    assert ref_rows(13, 8) == (OFFICIAL_ROWS, OFFICIAL_CLUSTER, OFFICIAL_RESAMPLE)
    assert ref_rows(13, 1, "final") == (OFFICIAL_ROWS, OFFICIAL_CLUSTER, OFFICIAL_RESAMPLE)


@pytest.mark.parametrize("K", range(5, 14))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 12, 16])
@pytest.mark.parametrize("n_counts", ["initial", "final"])
def test_schedule_matches_the_reference(K, n, n_counts):
    plan = build_schedule(K, n, n_counts=n_counts)
    rows, kc, kr = ref_rows(K, n, n_counts)
    assert list(plan.batch) == rows
    if n_counts == "final" or n >= 8:
        assert (list(plan.cluster_at), list(plan.resample_at)) == (kc, kr) == ref_ops(K)
    else:
        assert (list(plan.cluster_at), list(plan.resample_at)) == (kc, kr)
    # descending, shrinking only after an operation, clustering strictly
    assert all(b >= a for a, b in zip(rows[1:], rows[:-1]))
    for k in range(K - 1):
        if rows[k + 1] < rows[k]:
            assert k in kc + kr
        if k in kc:
            assert rows[k + 1] < rows[k]


# -- clustering --------------------------------------------------------------------------------------------------

def ref_pca_map(tokens):
    """Per image: centre the [T, C] tokens, project them on their first principal direction (up to sign)."""
    x = tokens - tokens.mean(0, keepdims=True)
    _, v = np.linalg.eigh(x.T @ x)
    return x @ v[:, -1]


def ref_pca_joint(tokens):
    """One PCA over every token of the rows; projection on the shared first direction (up to one common sign)."""
    flat = tokens.reshape(-1, tokens.shape[-1])
    mean = flat.mean(0, keepdims=True)
    _, v = np.linalg.eigh((flat - mean).T @ (flat - mean))
    return (tokens - mean) @ v[:, -1]


def ref_kmeans(x, k, rng, n_init=30, iters=100):
    """K-Means++ (D² seeding) + Lloyd, the best of n_init starts by inertia; returns labels and centres."""
    best = None
    for _ in range(n_init):
        c = [x[rng.integers(len(x))]]
        for _ in range(1, k):
            d = np.min([((x - ci) ** 2).sum(1) for ci in c], 0)
            c.append(x[rng.choice(len(x), p=d / d.sum())] if d.sum() > 0 else x[rng.integers(len(x))])
        c = np.array(c)
        for _ in range(iters):
            lab = np.argmin(((x[:, None] - c[None]) ** 2).sum(-1), 1)
            new = np.array([x[lab == j].mean(0) if (lab == j).any() else c[j] for j in range(k)])
            if np.allclose(new, c):
                break
            c = new
        lab = np.argmin(((x[:, None] - c[None]) ** 2).sum(-1), 1)
        inertia = ((x - c[lab]) ** 2).sum()
        if best is None or inertia < best[0] - 1e-12:
            best = (inertia, lab, c)
    return best[1], best[2]


def ref_keep(x, k, rng):
    """The sample nearest each K-Means centre, as a sorted list. Ties go to the lowest index (np.argmin in the
    official code), and a two-member cluster's members are tied with its centre, their midpoint, up to rounding."""
    lab, c = ref_kmeans(x, k, rng)
    keep = []
    for j in range(k):
        members = np.nonzero(lab == j)[0]
        d = ((x[members] - c[j]) ** 2).sum(1)
        keep.append(int(members[np.nonzero(d <= d.min() * (1 + 1e-9))[0][0]]))
    return sorted(keep)


def _grouped_points(n, k, dim, seed):
    """n points in k well-separated groups (every group non-empty), small jitter inside each."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 50
    groups = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    rng.shuffle(groups)
    return centres[groups] + rng.normal(size=(n, dim)), groups


def test_pca_reductions_match_the_reference_up_to_sign():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(5, 16, 6)) * np.linspace(3, 0.5, 6)  # a clear first direction
    got = clustering.reduce_features(torch.tensor(tokens), "pca").numpy()
    for g, t in zip(got, tokens):
        ref = ref_pca_map(t)
        assert min(np.abs(g - ref).max(), np.abs(g + ref).max()) < 1e-8
    joint = clustering.reduce_features(torch.tensor(tokens), "pca-joint").numpy()
    ref = ref_pca_joint(tokens)
    assert min(np.abs(joint - ref).max(), np.abs(joint + ref).max()) < 1e-8
    pool = clustering.reduce_features(torch.tensor(tokens), "pool").numpy()
    assert np.allclose(pool, tokens.mean(1))
    # [B, C, h, w] maps are tokens too
    maps = torch.tensor(tokens).transpose(1, 2).reshape(5, 6, 4, 4)
    assert np.allclose(clustering.reduce_features(maps, "pool").numpy(), pool)


@pytest.mark.parametrize("n,k", [(8, 6), (6, 4), (16, 12), (12, 8), (5, 2), (9, 3)])
@pytest.mark.parametrize("seed", range(4))
def test_cluster_representatives_match_the_reference(n, k, seed):
    x, groups = _grouped_points(n, k, 5, seed)
    ref = ref_keep(x, k, np.random.default_rng(seed))
    # one representative per group, each the member nearest its group's mean
    assert sorted(groups[ref].tolist()) == list(range(k))
    got = clustering.select_diverse(torch.tensor(x), k, torch.Generator().manual_seed(seed), "pool")
    assert sorted(got.tolist()) == ref


# -- potentials and weights --------------------------------------------------------------------------------------

def ref_potential(history, kind):
    """history: the rewards a row has recorded so far, oldest first, the current one last (paper §4.3)."""
    r = history[-1]
    if kind == "value" or len(history) == 1:
        return r
    if kind == "diff":
        return r - history[-2]
    if kind == "max":
        return max(history)
    return sum(history)


def ref_weights(phi, lam):
    w = np.exp(lam * (np.asarray(phi, dtype=np.float64) - max(phi)))
    return w / w.sum()


@pytest.mark.parametrize("kind", ["value", "diff", "max", "sum"])
def test_potentials_match_the_reference_on_a_sparse_history(kind):
    rng = np.random.default_rng(5)
    hist = torch.full((6, 9), float("nan"), dtype=torch.float64)
    cols = {r: sorted(rng.choice(7, size=int(rng.integers(0, 4)), replace=False).tolist()) for r in range(6)}
    for r, cs in cols.items():
        for c in cs:
            hist[r, c] = float(rng.normal())
    hist[:, 7] = torch.tensor(rng.normal(size=6))
    got = potentials.potential(hist, 7, kind).numpy()
    for r in range(6):
        recorded = [float(hist[r, c]) for c in cols[r]] + [float(hist[r, 7])]
        assert got[r] == pytest.approx(ref_potential(recorded, kind), abs=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.5, 10.0, 1e4])
def test_resampling_weights_are_the_normalised_exp_of_lambda_phi(lam):
    phi = torch.tensor([0.3, -1.2, 0.31, 2.0, 2.0, -0.5], dtype=torch.float64)
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    got = potentials.log_weights(phi, lam, groups).exp().numpy()
    assert got[:3] == pytest.approx(ref_weights(phi[:3].tolist(), lam), abs=1e-12)
    assert got[3:] == pytest.approx(ref_weights(phi[3:].tolist(), lam), abs=1e-12)
    # the draw follows the weights: a large sample's frequencies
    draw = potentials.resample(phi[:3], lam, 20000, torch.Generator().manual_seed(0))
    freq = np.bincount(draw.numpy(), minlength=3) / 20000
    assert freq == pytest.approx(ref_weights(phi[:3].tolist(), lam), abs=0.015)


# -- TTS-VAR end to end on a fake next-scale model --------------------------------------------------------------

def _candidate_of(tree, node, n):
    return tree.lineage(node)[0] % n  # roots are laid out prompt by prompt, candidate by candidate


@pytest.mark.parametrize("kind", ["value", "diff", "max", "sum"])
@pytest.mark.parametrize("history", ["resample", "all"])
def test_tts_var_resampling_matches_the_reference(kind, history):
    """7 scales, no clustering, resampling after scales 2 and 4 (8 -> 4 -> 2 rows): each row's reward history is
    table[scale][its original candidate], so the reference knows every potential and weight."""
    rng = np.random.default_rng(11)
    table = {s: rng.normal(size=8).round(3).tolist() for s in range(7)}
    cfg = TTSVARConfig(batch=[8, 8, 8, 4, 4, 2, 2], n_counts="final", cluster_at=[], resample_at=[2, 4],
                       potential=kind, lam=3.0, history=history, record_previews=False)
    res = TTSVAR(cfg).run(CodedNextScale(), ["a photo of a red circle"], 1, seed=4, scorer=TableScorer(table))
    ops = res.telemetry["operations"]
    assert [op["scale"] for op in ops] == [2, 4]
    scored = {2: [2], 4: [2, 4]} if history == "resample" or kind == "value" else {2: [0, 1, 2], 4: [0, 1, 2, 3, 4]}
    for op in ops:
        k = op["scale"]
        cands = [_candidate_of(res.tree, node, 8) for node in op["nodes"]]
        assert op["reward"] == pytest.approx([table[k][c] for c in cands])
        phi = [ref_potential([table[s][c] for s in scored[k]], kind) for c in cands]
        assert op["potential"] == pytest.approx(phi, abs=1e-6)  # the scorer's float32 rewards
        assert op["weight"] == pytest.approx(ref_weights(phi, 3.0).tolist(), abs=1e-6)
        assert len(op["kept"]) == {2: 4, 4: 2}[k]
    final = res.candidates[0]
    assert len(final) == 2
    assert res.chosen(0).score == max(c.score for c in final)
    assert res.chosen(0).score == pytest.approx(max(table[6][_candidate_of(res.tree, c.node, 8)] for c in final))


def test_tts_var_greedy_resampling_keeps_the_best_potential():
    """λ large: every draw is the row of highest potential (exp(λ·φ) puts all weight there)."""
    table = {2: [0.1, 0.5, 0.2, 0.9, 0.3, 0.0, 0.4, 0.6], 4: [0.0] * 8}
    cfg = TTSVARConfig(batch=[8, 8, 8, 4, 4, 2, 2], n_counts="final", cluster_at=[], resample_at=[2, 4], lam=1e5,
                       record_previews=False)
    res = TTSVAR(cfg).run(CodedNextScale(), ["a photo of a red circle"], 1, seed=0, scorer=TableScorer(table))
    first = res.telemetry["operations"][0]
    assert {_candidate_of(res.tree, n, 8) for n in first["kept_nodes"]} == {3}


class _GroupFeatures:
    """A feature scorer whose features put the rows of one prompt in exactly `k` far-apart groups (k = the rows
    the next scale keeps, from the schedule: `keeps[rows]`) by the rank of each image's mean, plus a small
    image-derived jitter; it records what it returned."""

    name, input_size = "group-features", 16

    def __init__(self, keeps):
        self.keeps, self.seen = keeps, []

    def features(self, images):
        k = self.keeps[len(images)]
        v = images.mean((1, 2, 3)).double()
        order = torch.argsort(v)
        group = torch.empty(len(v), dtype=torch.long)
        group[order] = torch.arange(len(v)) * k // len(v)
        f = torch.nn.functional.one_hot(group, k).double() * 100
        f = torch.cat([f, images.double().flatten(1)[:, :4] * 3], 1)
        if not (self.seen and self.seen[-1].shape == f.shape and torch.equal(self.seen[-1], f)):
            self.seen.append(f)  # (a second call on the same images, e.g. to count FLOPs, is the same look)
        return f


@pytest.mark.parametrize("reduction", ["pool", "pca-joint"])
def test_tts_var_clustering_keeps_the_reference_representatives(reduction):
    K = FakeNextScale.num_scales
    rows, kc, kr = ref_rows(K, 8)
    feats = _GroupFeatures({rows[k]: rows[k + 1] for k in kc})
    cfg = TTSVARConfig(reduction=reduction, record_previews=False)
    res = TTSVAR(cfg, feature_scorer=feats).run(FakeNextScale(), ["a photo of a red circle"], 8, seed=2,
                                                scorer=FakeScorer())
    assert res.telemetry["schedule"] == {"batch": rows, "cluster_at": kc, "resample_at": kr}
    clusters = [op for op in res.telemetry["operations"] if op["op"] == "cluster"]
    assert [op["scale"] for op in clusters] == kc
    for op, f, k in zip(clusters, feats.seen, kc):
        x = f.numpy()
        if reduction == "pca-joint":
            x = ref_pca_joint(x[:, None, :])  # one token per image: the shared first direction's coordinate
        assert op["kept"] == ref_keep(np.asarray(x).reshape(len(x), -1), rows[k + 1], np.random.default_rng(0))
    resamples = [op for op in res.telemetry["operations"] if op["op"] == "resample"]
    assert [op["scale"] for op in resamples] == kr
    assert [len(op["kept"]) for op in resamples] == [rows[k + 1] for k in kr]
