"""benchmarks/compare_runs.py: paired per-prompt differences between two bench folders."""

import json
import math
from pathlib import Path


def _write(root: Path, label: str, n: int, correct: list[bool], reward: float | None) -> None:
    for i, ok in enumerate(correct):
        d = root / label / f"n{n}" / f"{i:05d}"
        d.mkdir(parents=True)
        (d / "record.json").write_text(json.dumps({"label": label, "n": n, "index": i, "correct": ok,
                                                   "reward": reward}))


def test_paired_difference_counts_and_only_common_prompts(tmp_path, benchmark_script):
    cr = benchmark_script("compare_runs")
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "best-of-n", 8, [True, False, False, True, False], 1.0)
    _write(b, "best-of-n", 8, [True, True, True, False], 2.0)  # prompt 4 unfinished in b
    _write(a, "raw", 1, [True], 0.0)  # only in a: not compared
    ra, rb = cr.records(a), cr.records(b)
    assert set(ra) & set(rb) == {("best-of-n", 8)}
    row = cr.compare(ra[("best-of-n", 8)], rb[("best-of-n", 8)])
    assert row["prompts"] == 4 and row["b_fixed"] == 2 and row["b_broke"] == 1
    assert math.isclose(row["acc_a"], 0.5) and math.isclose(row["acc_b"], 0.75)
    d = [0, 1, 1, -1]  # per-prompt b − a
    mean = sum(d) / 4
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / 3 / 4)
    assert math.isclose(row["diff"], mean) and math.isclose(row["diff_se"], se)
    assert math.isclose(row["reward_b"] - row["reward_a"], 1.0)


def test_match_pairs_two_labels_and_a_single_n_meets_every_n(tmp_path, benchmark_script):
    cr = benchmark_script("compare_runs")
    _write(tmp_path, "raw", 1, [True, False, True], None)  # raw sampling without a scorer records no reward
    _write(tmp_path, "scaling-ar", 8, [True, True, False], 0.5)
    _write(tmp_path, "scaling-ar@end", 8, [False, True, True], 0.25)
    runs = cr.records(tmp_path)
    ra, rb = cr.matched(runs, runs, "scaling-ar", "scaling-ar@end")
    assert set(ra) == set(rb) == {("scaling-ar@end", 8)}
    row = cr.compare(ra[("scaling-ar@end", 8)], rb[("scaling-ar@end", 8)])
    assert (row["b_fixed"], row["b_broke"]) == (1, 1) and math.isclose(row["reward_a"], 0.5)
    ra, rb = cr.matched(runs, runs, "raw", "scaling-ar")
    row = cr.compare(ra[("scaling-ar", 8)], rb[("scaling-ar", 8)])
    assert math.isclose(row["acc_a"], 2 / 3) and math.isnan(row["reward_a"])
    assert cr.matched(runs, runs, "importance", "scaling-ar")[0] == {}
