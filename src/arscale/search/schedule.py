"""TTS-VAR's descending batch schedule: which scales cluster, which resample, how many rows live.

Semantics (explicit, unlike the official code's `bs_sis`, whose entry k counts rows alive *after*
scale k): `batch[k]` is the number of rows per prompt that **generate scale k**. An operation
scheduled at scale k runs after scale k has been sampled and before scale k+1 is generated, and
takes the batch from `batch[k]` rows to `batch[k+1]` rows. So the batch may shrink only right after
an operation; clustering must shrink strictly (choosing k representatives among k rows is a no-op);
resampling may keep the count (it still redraws with replacement).

Default. The paper's 13-scale run (Infinity, `run.bash`) is, in these semantics,

    batch = 8, 8, 8, 6, 6, 6, 4, 2, 2, 2, 1, 1, 1   cluster after 2 and 5, resample after 6 and 9

(the paper writes the `bs_sis` form 8,8,6,6,6,4,2,2,2,1,1,1,1 — the same run shifted by one).
Mapping rule onto a model with K scales: each operation scale s of the 13-scale run (last index 12)
moves to round-half-up(s·(K−1)/12); collisions are resolved by pushing later operations one scale
later, and if that runs past K−2 (the last scale that still has a successor), by pulling earlier
operations one scale earlier. The batch then starts at 8 and steps down 8→6→4→2→1 after each
operation, in scale order. This keeps the two clusterings in the coarse part and the two
resamplings in the fine part of any schedule with K ≥ 5 scales; K = 13 gives the paper's run.

What N means (`n_counts`). The paper's text multiplies that pattern by N (so "N" counts the rows
that survive to the end), but the official code has no N: its only run, reported as N=8, is the
pattern itself, `bs_sis[0]` = 8 rows at the start, about 1.3× the transformer cost of one image.
arscale follows the code (and the cost claims made about it):

- `"initial"` (default): N is the number of rows that start (`batch[0] = N`). The pattern is
  scaled by N / pattern[0]: after each operation, rows = max(1, round-half-up(pattern·N/pattern[0])),
  never more than before; a clustering that would keep its count keeps one row fewer; an operation
  that would act on a single row is dropped (there is nothing to choose). So N=8 is the official
  run, N=1 is raw sampling, N=16 doubles every count.
- `"final"`: the paper's text, `batch[k] = pattern[k] × N` (N rows survive to the end).
"""

from __future__ import annotations

from dataclasses import dataclass

from arscale.errors import ArscaleError

PAPER_SCALES = 13
PAPER_CLUSTER_AT = (2, 5)
PAPER_RESAMPLE_AT = (6, 9)
# Rows per prompt (×N) before any operation and after each successive one.
PAPER_LEVELS = (8, 6, 4, 2, 1)
N_COUNTS = ("initial", "final")


@dataclass(frozen=True)
class Schedule:
    """A validated per-prompt schedule in absolute row counts (already multiplied by N)."""

    batch: tuple[int, ...]  # rows generating each scale
    cluster_at: tuple[int, ...]
    resample_at: tuple[int, ...]

    @property
    def num_scales(self) -> int:
        return len(self.batch)

    def operation(self, scale: int) -> str | None:
        if scale in self.cluster_at:
            return "cluster"
        if scale in self.resample_at:
            return "resample"
        return None

    def after(self, scale: int) -> int:
        """Rows alive after the operation at `scale` (= rows generating the next scale)."""
        return self.batch[min(scale + 1, self.num_scales - 1)]


def _round_half_up(x: float) -> int:
    return int(x + 0.5)


def map_operation_scales(num_scales: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The paper's clustering and resampling scales mapped onto `num_scales` scales (rule above)."""
    if num_scales < 5:
        raise ArscaleError(
            f"the default TTS-VAR schedule needs at least 5 scales (two clusterings and two resamplings, each "
            f"followed by a scale); this model has {num_scales}: give batch, cluster_at and resample_at explicitly"
        )
    ops = list(PAPER_CLUSTER_AT + PAPER_RESAMPLE_AT)
    scaled = [_round_half_up(s * (num_scales - 1) / (PAPER_SCALES - 1)) for s in ops]
    for i in range(1, len(scaled)):  # push collisions later
        scaled[i] = max(scaled[i], scaled[i - 1] + 1)
    last = num_scales - 2
    scaled[-1] = min(scaled[-1], last)
    for i in range(len(scaled) - 2, -1, -1):  # pull back what ran past the end
        scaled[i] = min(scaled[i], scaled[i + 1] - 1)
    return tuple(scaled[:2]), tuple(scaled[2:])


def derive_batch(num_scales: int, cluster_at: tuple[int, ...], resample_at: tuple[int, ...]) -> list[int]:
    """The default pattern: 8 rows before the first operation, then one step down PAPER_LEVELS per
    operation (the official run at N=8; multipliers of N in the paper text's reading).

    With fewer than four operations the last levels are used (two operations: 8 → 2 → 1), so the
    pattern ends with one row (with none, it stays at 8).
    """
    ops = sorted(set(cluster_at) | set(resample_at))
    if len(ops) > len(PAPER_LEVELS) - 1:
        raise ArscaleError(
            f"{len(ops)} operations scheduled but the derived batch has only {len(PAPER_LEVELS) - 1} steps down; "
            "give batch explicitly"
        )
    levels = [PAPER_LEVELS[0]] + list(PAPER_LEVELS[len(PAPER_LEVELS) - len(ops):]) if ops else [PAPER_LEVELS[0]]
    batch, level = [], 0
    for k in range(num_scales):
        batch.append(levels[level])
        if k in ops:
            level += 1
    return batch


def build_schedule(num_scales: int, n: int, *, batch: list[int] | None = None,
                   cluster_at: list[int] | None = None, resample_at: list[int] | None = None,
                   n_counts: str = "initial") -> Schedule:
    """Resolve defaults (see module docstring), scale by N and validate.

    `batch` is a pattern of rows per scale (the derived default starts at 8); `n_counts` says how N
    scales it. Any of the three may be given; missing ones come from the mapped paper default
    (operations) or from `derive_batch` (batch).
    """
    if n < 1:
        raise ArscaleError(f"N must be at least 1, got {n}")
    if n_counts not in N_COUNTS:
        raise ArscaleError(f"n_counts must be one of {', '.join(N_COUNTS)}, got {n_counts!r}")
    if cluster_at is None or resample_at is None:
        default_cluster, default_resample = map_operation_scales(num_scales)
        cluster_at = list(default_cluster) if cluster_at is None else cluster_at
        resample_at = list(default_resample) if resample_at is None else resample_at
    cluster, resample = tuple(sorted(int(s) for s in cluster_at)), tuple(sorted(int(s) for s in resample_at))
    _check_operations(num_scales, cluster, resample)
    pattern = tuple(int(b) for b in (batch if batch is not None else derive_batch(num_scales, cluster, resample)))
    validate(num_scales, pattern, cluster, resample)  # the pattern must make sense before it is scaled
    if n_counts == "final":
        return Schedule(tuple(b * n for b in pattern), cluster, resample)
    return _scale_from_start(pattern, n, cluster, resample)


def _scale_from_start(pattern: tuple[int, ...], n: int, cluster: tuple[int, ...],
                      resample: tuple[int, ...]) -> Schedule:
    """The `"initial"` reading: N rows start and the pattern's proportions carry over (docstring)."""
    rows, kept_cluster, kept_resample = [n], [], []
    for k in range(len(pattern) - 1):
        before = rows[-1]
        if k not in cluster and k not in resample:
            rows.append(before)
            continue
        if before == 1:  # one row: clustering or resampling could only keep it
            rows.append(1)
            continue
        after = min(before, max(1, _round_half_up(pattern[k + 1] * n / pattern[0])))
        if k in cluster:
            after = min(after, before - 1)
            kept_cluster.append(k)
        else:
            kept_resample.append(k)
        rows.append(after)
    plan = Schedule(tuple(rows), tuple(kept_cluster), tuple(kept_resample))
    validate(len(rows), plan.batch, plan.cluster_at, plan.resample_at)
    return plan


def _check_operations(num_scales: int, cluster: tuple[int, ...], resample: tuple[int, ...]) -> None:
    for name, scales in (("cluster_at", cluster), ("resample_at", resample)):
        if len(set(scales)) != len(scales):
            raise ArscaleError(f"{name} lists a scale twice: {list(scales)}")
        bad = [s for s in scales if not 0 <= s <= num_scales - 2]
        if bad:
            raise ArscaleError(
                f"{name} scale(s) {bad} out of range: an operation runs after a scale and before the next, so it "
                f"must lie in 0..{num_scales - 2} for a model with {num_scales} scales (0-based)"
            )
    both = sorted(set(cluster) & set(resample))
    if both:
        raise ArscaleError(f"scale(s) {both} are scheduled for both clustering and resampling; pick one per scale")


def validate(num_scales: int, batch: tuple[int, ...], cluster: tuple[int, ...], resample: tuple[int, ...]) -> None:
    """Raise ArscaleError naming the first thing wrong with a schedule (absolute row counts)."""
    _check_operations(num_scales, cluster, resample)
    if len(batch) != num_scales:
        raise ArscaleError(
            f"batch schedule has {len(batch)} entries but the model has {num_scales} scales; give one row count "
            "per scale (batch[k] = rows that generate scale k)"
        )
    if any(b < 1 for b in batch):
        raise ArscaleError(f"batch schedule entries must be at least 1, got {list(batch)}")
    for k in range(num_scales - 1):
        now, nxt = batch[k], batch[k + 1]
        if nxt > now:
            raise ArscaleError(
                f"batch schedule must be non-increasing, but batch[{k + 1}]={nxt} > batch[{k}]={now} "
                f"(rows cannot be created between scales)"
            )
        if nxt < now and k not in cluster and k not in resample:
            raise ArscaleError(
                f"batch schedule shrinks from {now} to {nxt} rows after scale {k}, but no clustering or resampling "
                f"is scheduled there (cluster_at={list(cluster)}, resample_at={list(resample)}); schedule one at "
                f"scale {k} or keep the batch constant"
            )
        if k in cluster and nxt == now:
            raise ArscaleError(
                f"clustering after scale {k} keeps all {now} rows (batch[{k + 1}] = batch[{k}]); clustering must "
                "shrink the batch — lower batch[k+1] or drop the clustering"
            )
