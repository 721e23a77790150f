"""Mutation audit of `arscale.bench.paired`, `arscale.bench.pooled` and `arscale.bench.table`: the behaviours the
other tests left unpinned (row order, rewards over the common prompts, pooled counts and labels, table cells)."""

import json
import math
from pathlib import Path

import pytest
from bench_records import write_records

from arscale.bench.paired import compare_folders, load_records, paired_difference
from arscale.bench.pooled import format_pooled, pool_draws
from arscale.bench.table import _flops, _paired, flops_unit, format_table, label_order
from arscale.errors import ArscaleError


def test_a_record_missing_a_field_is_skipped_not_fatal(tmp_path):
    """load_records leaves out a record.json that is JSON but not a bench record (no label / n / index)."""
    write_records(tmp_path, "raw", 1, [True, False])
    stray = tmp_path / "raw" / "n1" / "00002" / "record.json"
    stray.parent.mkdir()
    stray.write_text(json.dumps({"note": "not a bench record"}))
    skipped: list[Path] = []
    runs = load_records(tmp_path, skipped)
    assert set(runs) == {("raw", 1)} and sorted(runs[("raw", 1)]) == [0, 1] and skipped == [stray]


def test_mean_rewards_are_over_the_prompts_both_judged():
    """The reward columns average the common prompts only, not a prompt only one run finished."""
    a = {i: {"correct": True, "tag": "colors", "prompt": str(i), "reward": 1.0} for i in range(3)}
    b = {i: {"correct": True, "tag": "colors", "prompt": str(i), "reward": 2.0} for i in range(2)}
    a[2]["reward"] = 10.0  # prompt 2 is a's alone
    row = paired_difference(a, b)
    assert row["prompts"] == 2 and row["reward_a"] == pytest.approx(1.0) and row["reward_b"] == pytest.approx(2.0)


def test_comparison_rows_follow_table_md_order_label_first_then_numeric_n(tmp_path):
    """compare_folders' rows: raw first, built-ins in their order, other labels after, each by numeric N."""
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        write_records(root, "mine", 2, [True, False])
        write_records(root, "tts-var", 16, [True, False])
        write_records(root, "tts-var", 2, [True, False])
        write_records(root, "raw", 1, [True, False])
    rows = compare_folders(a, b)
    assert [(r["label"], r["n"]) for r in rows] == [("raw", 1), ("tts-var", 2), ("tts-var", 16), ("mine", 2)]
    within = compare_folders(a)  # every run against raw: the same order
    assert [(r["label"], r["n"]) for r in within] == [("tts-var", 2), ("tts-var", 16), ("mine", 2)]


def test_a_folder_against_itself_reads_each_record_once(tmp_path):
    """`compare A A`: a damaged record is counted once among the skipped, not once per side."""
    write_records(tmp_path, "raw", 1, [True, False])
    (tmp_path / "raw" / "n1" / "00001" / "record.json").write_text('{"label": ')
    skipped: list[Path] = []
    [row] = compare_folders(tmp_path, tmp_path, skipped=skipped)
    assert row["prompts"] == 1 and len(skipped) == 1


def test_a_second_folder_without_finished_prompts_is_named(tmp_path):
    """B with no record at all is refused as such, not as a mismatch of runs."""
    write_records(tmp_path / "a", "raw", 1, [True])
    (tmp_path / "b").mkdir()
    with pytest.raises(ArscaleError, match="no finished prompts under"):
        compare_folders(tmp_path / "a", tmp_path / "b")


def _draws(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    write_records(first, "raw", 1, [False, False, True, False], prompt="first")
    write_records(first, "best-of-n", 2, [True, True, True, False], prompt="first")  # fixed 2
    write_records(first, "best-of-n", 4, [True, True, True, True], prompt="first")
    write_records(first, "importance", 2, [True, False, True, False], prompt="first")
    write_records(second, "raw", 2, [False, True, False, False], prompt="second")
    write_records(second, "best-of-n", 2, [True, True, True, False], prompt="second")  # fixed 2
    write_records(second, "best-of-n", 4, [True, True, False, False], prompt="second")
    write_records(second, "importance", 2, [False, True, False, True], prompt="second")
    return first, second


def test_pooled_counts_add_up_and_rows_are_in_table_order(tmp_path):
    """Pooled fixed / broken are sums over the draws; rows go label first (table.md's order), then N; a row
    compared against raw at other Ns in the draws names both."""
    _, pooled = pool_draws(_draws(tmp_path))
    assert [(r["label"], r["n"]) for r in pooled] == [("best-of-n", 2), ("best-of-n", 4), ("importance", 2)]
    best2 = pooled[0]
    assert (best2["b_fixed"], best2["b_broke"]) == (4, 0)
    assert best2["against"] == "raw N=1 / raw N=2"


def test_pooled_damaged_records_are_reported(tmp_path):
    """pool_draws lists each draw's unreadable records in `skipped` (the --pooled note)."""
    first, second = _draws(tmp_path)
    damaged = second / "importance" / "n2" / "00000" / "record.json"
    damaged.write_text('{"label": ')
    skipped: list[Path] = []
    pool_draws([first, second], skipped=skipped)
    assert skipped == [damaged]


def test_pooled_table_shows_a_dash_for_what_one_draw_or_a_zero_baseline_cannot_give(tmp_path):
    """With one draw there is no spread, with a zero baseline no relative gain: '–', never 'nan'."""
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        write_records(root, "raw", 1, [False, False], prompt=root.name)
        write_records(root, "best-of-n", 2, [True, False], prompt=root.name)
    write_records(second, "tts-var", 2, [True, True], prompt="second")  # in one draw only
    per_draw, pooled = pool_draws([first, second])
    table = format_pooled(per_draw, pooled)
    assert "nan" not in table
    tts = next(line for line in table.splitlines() if line.startswith("| tts-var | 2 |"))
    assert "| – | – |" in tts  # relative (zero baseline) and spread (one draw)


def test_a_pooled_row_without_prompts_claims_no_difference(tmp_path):
    """A (label, N) no draw judged has no accuracies or difference to report (not a difference of 0)."""
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        write_records(root, "raw", 1, [True], prompt=root.name)
        write_records(root, "best-of-n", 2, [None], prompt=root.name)
    _, [row] = pool_draws([first, second])
    assert (row["draws"], row["prompts"]) == (0, 0) and "diff" not in row and "acc_a" not in row


def test_built_in_strategies_keep_their_documented_order():
    """raw, best-of-n, importance, tts-var, scaling-ar (README's --strategies order), then other labels."""
    labels = ["scaling-ar", "mine", "tts-var", "importance", "best-of-n", "raw"]
    assert sorted(labels, key=label_order) == ["raw", "best-of-n", "importance", "tts-var", "scaling-ar", "mine"]


def _summary(**over) -> dict:
    return {"label": "raw", "n": 1, "prompts_done": 2, "overall": 0.5, "overall_se": 0.1, "tags": {},
            "mean_reward": 0.25, "cost_per_prompt": {}} | over


def test_table_cells_without_a_value_are_dashes():
    """format_table: no paired column without paired rows; '–' for a run with no overall, no reward (NaN)
    or a paired row with no common prompt."""
    plain = format_table([_summary()])
    assert "paired" not in plain and len(plain.splitlines()[0].split("|")) == len(plain.splitlines()[2].split("|"))
    empty = format_table([_summary(overall=None, mean_reward=math.nan)]).splitlines()[2]
    assert empty.startswith("| raw | 1 | 2 | – | – |") and "nan" not in empty
    assert _paired({"prompts": 0}) == "–" and _paired(None) == "–"
    with_paired = format_table([_summary(label="best-of-n", n=2)], {("best-of-n", 2): {"prompts": 0}})
    assert with_paired.splitlines()[2].startswith("| best-of-n | 2 | 2 | 50.0 ± 10.0 | – |")


def test_flops_units_and_digits_at_their_boundaries():
    """flops_unit: TFLOPs from 1e11, GFLOPs from 1e8, else MFLOPs; _flops: three significant digits, no
    trailing decimals on large values (0.0123, 1.23, 123, 1234)."""
    assert flops_unit(1e11) == (1e12, "TFLOPs") and flops_unit(9.99e10) == (1e9, "GFLOPs")
    assert flops_unit(1e8) == (1e9, "GFLOPs") and flops_unit(5e7) == (1e6, "MFLOPs")
    assert [_flops(v) for v in (0.0123, 1.23, 123, 1234)] == ["0.0123", "1.23", "123", "1234"]
