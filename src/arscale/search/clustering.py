"""Diversity search: features of partial decodes → reduction → K-Means++ → one representative per cluster.

Reductions of spatial features [B, T, C] (T patch tokens of C channels; [B, C, h, w] maps are
flattened to that):
- `pca`: per image, centre the T tokens and project them on that image's own first principal
  direction → a T-dim map per image (what the official code does). The direction's sign is
  arbitrary per image, so two identical layouts can land far apart;
- `pca-joint`: one PCA over all B·T tokens of the prompt's rows, projection on the shared first
  direction → T-dim maps with one common sign (the official `pca_all`), whose sign is then fixed so
  that, of the images' mean tokens, the one projected farthest from the centre lands on the positive side;
- `pool`: the mean token, [B, C].
One embedding per image ([B, C]: CLIP, PickScore, HPSv2) is already a semantic vector: `pca` and `pool` take
it as it is (a single token has no per-image principal direction), `pca-joint` projects it as above.

K-Means follows scikit-learn's defaults as the official code used them (greedy k-means++ with 2 +
⌊ln k⌋ local trials, Lloyd to tol 1e-4 relative to the mean variance, 300 iterations, one init), in
float64, seeded by an explicit generator. Ties go to the lowest index everywhere and duplicate
points never yield a missing or repeated representative (an empty cluster takes the nearest unused
row). Distances to a centre within a relative TIE_RTOL count as ties: with 8 → 6 or 6 → 4 rows most
clusters have one or two members, and the two members of a pair are equidistant from their centre
(their midpoint), so without it the pick would be decided by float rounding (as in the official
code's float32 `np.argmin`).
"""

from __future__ import annotations

import math

import torch

from arscale.errors import ArscaleError

REDUCTIONS = ("pca", "pca-joint", "pool")
TIE_RTOL = 1e-9


def as_tokens(features: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] maps or [B, T, C] tokens → [B, T, C] float64; [B, C] vectors → [B, 1, C]."""
    f = features.detach().double().cpu()
    if f.dim() == 4:
        return f.flatten(2).transpose(1, 2)
    if f.dim() == 3:
        return f
    if f.dim() == 2:
        return f.unsqueeze(1)
    raise ArscaleError(f"features must be [B,C], [B,T,C] or [B,C,h,w], got shape {tuple(features.shape)}")


def _first_direction(x: torch.Tensor) -> torch.Tensor:
    """First right singular vector of a centred [M, C] matrix (zero vector if x is all zero)."""
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return vh[0]


def reduce_features(features: torch.Tensor, reduction: str = "pca") -> torch.Tensor:
    """[B, ...] features → [B, D] vectors for K-Means (see module docstring)."""
    tokens = as_tokens(features)
    if reduction == "pool" or (reduction == "pca" and tokens.shape[1] == 1):  # one vector per image: itself
        return tokens.mean(1)
    if reduction == "pca":
        out = []
        for t in tokens:
            centred = t - t.mean(0, keepdim=True)
            out.append(centred @ _first_direction(centred))
        return torch.stack(out)
    if reduction == "pca-joint":
        flat = tokens.reshape(-1, tokens.shape[-1])
        mean = flat.mean(0, keepdim=True)
        direction = _first_direction(flat - mean)
        # SVD's sign is arbitrary; fix it so that the joint result does not depend on it.
        anchor = (tokens.mean(1) - mean) @ direction
        if float(anchor.abs().max()) > 0 and float(anchor[anchor.abs().argmax()]) < 0:
            direction = -direction
        return (tokens - mean) @ direction
    raise ArscaleError(f"unknown feature reduction {reduction!r}; choose from {', '.join(REDUCTIONS)}")


def _sq_dists(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return ((x.unsqueeze(1) - c.unsqueeze(0)) ** 2).sum(-1)


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of k distinct initial centres by greedy k-means++ (scikit-learn's variant)."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    closest = _sq_dists(x, x[first : first + 1]).squeeze(1)
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0.0:
            # Every point coincides with a centre: take the lowest unused index (deterministic).
            chosen.append(next(i for i in range(n) if i not in chosen))
            continue
        picks = torch.multinomial((closest / total).float(), trials, replacement=True, generator=generator)
        best, best_pot, best_closest = None, None, None
        for p in picks.tolist():  # greedy: keep the trial that lowers the potential most; ties → first
            cand = torch.minimum(closest, _sq_dists(x, x[p : p + 1]).squeeze(1))
            pot = float(cand.sum())
            if best is None or pot < best_pot:
                best, best_pot, best_closest = p, pot, cand
        if best in chosen:  # a chosen row has weight 0: only a uniform draw of exactly 0 lands a trial there
            unused = [i for i in range(n) if i not in chosen]
            equal = [i for i in unused if torch.equal(x[i], x[best])]  # an unused copy is as good
            best = equal[0] if equal else max(unused, key=lambda i: float(closest[i]))  # else the farthest row
            best_closest = torch.minimum(closest, _sq_dists(x, x[best : best + 1]).squeeze(1))
        chosen.append(best)
        closest = best_closest
    return torch.tensor(chosen)


def kmeans(x: torch.Tensor, k: int, generator: torch.Generator, *, max_iter: int = 300,
           tol: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's K-Means from a k-means++ start → (labels [n], centres [k, D])."""
    x = x.double()
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ArscaleError(f"cannot form {k} clusters from {n} points")
    centres = x[kmeans_plus_plus(x, k, generator)].clone()
    threshold = tol * float(x.var(0, unbiased=False).mean()) if n > 1 else 0.0
    labels = torch.zeros(n, dtype=torch.long)
    for _ in range(max_iter):
        labels = _sq_dists(x, centres).argmin(1)  # argmin: ties to the lowest cluster id
        new = centres.clone()
        for j in range(k):
            members = labels == j
            if bool(members.any()):
                new[j] = x[members].mean(0)
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if shift <= threshold:
            break
    labels = _sq_dists(x, centres).argmin(1)
    return labels, centres


def representatives(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k distinct row indices: per cluster (in label order) the member nearest its centre.

    A taken member is passed over; a cluster left empty (duplicate points) or whose members were all taken
    (by an earlier cluster's fallback) falls back to the row nearest its centre among those not yet chosen,
    so the result always has k distinct rows.
    """
    x = x.double()
    labels, centres = kmeans(x, k, generator)
    d = _sq_dists(x, centres)
    chosen: list[int] = []
    for j in range(k):
        members = [i for i in range(x.shape[0]) if int(labels[i]) == j and i not in chosen]
        pool = members or [i for i in range(x.shape[0]) if i not in chosen]
        nearest = min(float(d[i, j]) for i in pool)
        # A two-member cluster's centre is their midpoint: an exact tie that rounding would otherwise break.
        chosen.append(min(i for i in pool if float(d[i, j]) <= nearest * (1 + TIE_RTOL)))
    return torch.tensor(chosen)


def select_diverse(features: torch.Tensor, k: int, generator: torch.Generator,
                   reduction: str = "pca") -> torch.Tensor:
    """Rows (indices into features) to keep when clustering one prompt's rows down to k."""
    n = features.shape[0]
    if k >= n:
        raise ArscaleError(f"clustering must shrink the batch, but asked for {k} of {n} rows")
    bad = ~torch.isfinite(features.detach().reshape(n, -1)).all(1)
    if bool(bad.any()):
        raise ArscaleError(f"clustering features are not finite for row(s) {torch.nonzero(bad).flatten().tolist()[:8]}; "
                           "the feature scorer (or the latent) returned NaN/inf — check its inputs and weights")
    return representatives(reduce_features(features, reduction), k, generator)
