"""Paired comparison of two `arscale bench` output folders on the prompts both finished.

Same suite and seed ⇒ the same prompt index drew the same candidates, so per-prompt differences are
paired and their standard error is far smaller than either run's own (e.g. one reward against
another: Best-of-N's candidates are identical, only the pick differs). Per (label, N) present in both:
accuracy of A, of B, B − A with its paired SE, how many prompts flipped each way, and mean reward.

    python benchmarks/compare_runs.py OLD_OUT NEW_OUT [--label-a NAME] [--label-b NAME] [--json FILE]
    python benchmarks/compare_runs.py OUT OUT --match scaling-ar scaling-ar@end   # two variants, one folder
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def records(root: Path) -> dict[tuple[str, int], dict[int, dict]]:
    """(label, N) → {prompt index: record} for every finished prompt under an output folder."""
    out: dict[tuple[str, int], dict[int, dict]] = {}
    for path in sorted(root.glob("*/n*/*/record.json")):
        try:
            rec = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        out.setdefault((rec["label"], int(rec["n"])), {})[int(rec["index"])] = rec
    return out


def matched(ra: dict, rb: dict, label_a: str, label_b: str) -> tuple[dict, dict]:
    """`label_a`'s runs of A against `label_b`'s of B, keyed by B's (label, N). A's label may have run at
    another N only (raw sampling at N = 1 against a search at N = 8): then that run meets every N of B."""
    rb = {key: runs for key, runs in rb.items() if key[0] == label_b}
    a_runs = {n: runs for (label, n), runs in ra.items() if label == label_a}
    if not a_runs:
        return {}, rb
    only = next(iter(a_runs.values())) if len(a_runs) == 1 else None
    return {key: a_runs.get(key[1], only) for key in rb if a_runs.get(key[1], only) is not None}, rb


def compare(a: dict[int, dict], b: dict[int, dict]) -> dict:
    common = sorted(set(a) & set(b))
    if not common:
        return {"prompts": 0}
    xa = [float(bool(a[i]["correct"])) for i in common]
    xb = [float(bool(b[i]["correct"])) for i in common]
    d = [y - x for x, y in zip(xa, xb)]
    n = len(common)
    mean_d = sum(d) / n
    se = math.sqrt(sum((v - mean_d) ** 2 for v in d) / max(1, n - 1) / n)
    return {"prompts": n, "acc_a": sum(xa) / n, "acc_b": sum(xb) / n, "diff": mean_d, "diff_se": se,
            "b_fixed": sum(v > 0 for v in d), "b_broke": sum(v < 0 for v in d),
            "reward_a": _mean_reward(a, common), "reward_b": _mean_reward(b, common)}


def _mean_reward(runs: dict[int, dict], common: list[int]) -> float:
    """Mean of the recorded rewards (NaN where a run recorded none, e.g. raw sampling without a scorer)."""
    values = [runs[i]["reward"] for i in common if runs[i].get("reward") is not None]
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--match", nargs=2, metavar=("LABEL_A", "LABEL_B"), default=None,
                    help="compare strategy label LABEL_A of A with LABEL_B of B (e.g. two variants in one folder)")
    args = ap.parse_args()
    ra, rb = records(args.a), records(args.b)
    if args.match:
        ra, rb = matched(ra, rb, *args.match)
    keys = sorted(set(ra) & set(rb))
    if not keys:
        sys.exit(f"no (strategy, N) runs with finished prompts in both {args.a} and {args.b}")
    rows = [{"label": k[0], "n": k[1], **compare(ra[k], rb[k])} for k in keys]
    print(f"| strategy | N | prompts | {args.label_a} % | {args.label_b} % | diff ± paired SE (points) | "
          f"fixed / broken | mean reward {args.label_a} / {args.label_b} |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if not r["prompts"]:
            continue
        print(f"| {r['label']} | {r['n']} | {r['prompts']} | {100 * r['acc_a']:.1f} | {100 * r['acc_b']:.1f} | "
              f"{100 * r['diff']:+.1f} ± {100 * r['diff_se']:.1f} | {r['b_fixed']} / {r['b_broke']} | "
              f"{r['reward_a']:.3f} / {r['reward_b']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
