"""The bench's statistics (`bench.paired`, `bench.pooled`, `bench.metrics`, `bench.table`) where mutants of them
outlived the suite: each test pins, with values worked out by hand from the docstrings and README, what such a
mutant changed."""

import json
import math

import pytest
from bench_records import write_records

from arscale.bench.metrics import binomial_se, standard_error_of_overall, summarize
from arscale.bench.paired import compare_folders, format_comparison, paired_difference, run_differences
from arscale.bench.pooled import draw_names, format_pooled, pool_draws, same_prompts
from arscale.bench.table import format_table, percent, tag_order
from arscale.errors import ArscaleError


def _rec(correct, tag="counting", reward=None, prompt="p"):
    return {"correct": correct, "tag": tag, "reward": reward, "prompt": prompt}


# -- paired --------------------------------------------------------------------------------------------------------
def test_run_differences_is_empty_where_only_one_folder_has_a_manifest(tmp_path):
    """Docstring: 'Empty where either folder has no manifest' (one of the two having one is not enough)."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_records(a, "raw", 1, [True])
    write_records(b, "raw", 1, [True])
    (a / "manifest.json").write_text(json.dumps({"model": {"id": "shapeworld-ar"}, "seed": 0}))
    assert run_differences(a, b) == [] and run_differences(b, a) == []


def test_two_folders_compare_only_the_runs_both_hold(tmp_path):
    """compare A B: one row per (label, N) in both folders; a run of A alone (or B alone) is no row."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_records(a, "raw", 1, [True, False])
    write_records(b, "raw", 1, [True, True])
    write_records(a, "best-of-n", 2, [True, True])  # A only
    write_records(b, "importance", 2, [False, True])  # B only
    rows = compare_folders(a, b)
    assert [(r["label"], r["n"], r["against"]) for r in rows] == [("raw", 1, "raw N=1")]
    # raw N=1: prompt 1 fixed, nothing broken -> +1/2
    assert rows[0]["diff"] == pytest.approx(0.5) and (rows[0]["b_fixed"], rows[0]["b_broke"]) == (1, 0)


def test_a_comparison_without_rewards_prints_dashes_not_nan():
    """Mean rewards are NaN where a run recorded none (paired_difference's docstring); the table shows '–'."""
    a = {0: _rec(True, prompt="x"), 1: _rec(False, prompt="y")}
    b = {0: _rec(True, reward=0.25, prompt="x"), 1: _rec(True, reward=0.75, prompt="y")}
    row = paired_difference(a, b)
    assert math.isnan(row["reward_a"]) and row["reward_b"] == pytest.approx(0.5)
    line = format_comparison([{"label": "best-of-n", "n": 2, "against": "raw N=1", **row}]).splitlines()[2]
    # prompt 1 fixed of 2: +50 points; SE² = (1.5/4 + 0.5/4 - (1/4)²) / 4 = 0.109375 -> 33.07 points
    assert line == "| best-of-n | 2 | raw N=1 | 2 | 50.0 | 100.0 | +50.0 ± 33.1 | 1 / 0 | – / 0.500 |"


def test_a_match_label_missing_from_a_is_named(tmp_path):
    """--match LABEL_A LABEL_B checks LABEL_A against A's labels (not B's label against A)."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_records(a, "raw", 1, [True])
    write_records(b, "raw", 1, [True])
    with pytest.raises(ArscaleError, match=r"has no label 'nope'; its labels are raw"):
        compare_folders(a, b, match=("nope", "raw"))



def test_match_rows_name_b_s_label_and_n_against_a_s_run(tmp_path):
    """--match raw tts-var: each row is B's run (its label and N), `against` A's label at the N that met it."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_records(a, "raw", 1, [False, True])
    write_records(b, "tts-var", 8, [True, True])
    [row] = compare_folders(a, b, match=("raw", "tts-var"))
    assert (row["label"], row["n"], row["against"]) == ("tts-var", 8, "raw N=1")


def test_a_match_that_meets_nowhere_names_each_label_with_its_folder(tmp_path):
    """No common N (and A's label is not raw sampling): the message names A's label in A, B's in B, and what
    each of the two folders holds."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_records(a, "best-of-n", 2, [True])
    write_records(b, "tts-var", 8, [True])
    with pytest.raises(ArscaleError) as err:
        compare_folders(a, b, match=("best-of-n", "tts-var"))
    assert str(err.value) == (f"no runs of 'best-of-n' in {a} and 'tts-var' in {b} at a common N (raw sampling, "
                              f"which draws the same image at any N, meets every N); {a} holds best-of-n N=2, "
                              f"{b} holds tts-var N=8")


def test_nothing_to_compare_with_the_baseline_lists_the_runs(tmp_path):
    write_records(tmp_path, "importance", 4, [True])
    write_records(tmp_path, "best-of-n", 2, [True])
    with pytest.raises(ArscaleError) as err:
        compare_folders(tmp_path, baseline="importance")
    assert str(err.value) == (f"nothing under {tmp_path} to compare with 'importance': no other run at an N it ran "
                              "at (its runs are best-of-n N=2, importance N=4)")


# -- pooled --------------------------------------------------------------------------------------------------------
def _unequal_draws(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    write_records(first, "raw", 1, [False, False, True, False], prompt="first")
    write_records(first, "best-of-n", 2, [True, True, True, False], 0.5, prompt="first")  # fixed 2 of 4
    write_records(second, "raw", 1, [True, True], prompt="second")
    write_records(second, "best-of-n", 2, [False, True], 0.8, prompt="second")  # broke 1 of 2
    return first, second


def test_pooled_row_and_its_table_lines_worked_by_hand(tmp_path):
    """Weights 4/6 and 2/6; Agresti–Min variances 7/108 (2 fixed of 4: (3/6 − (2/6)²) / 6) and 7/64 (1 broken
    of 2: (2/4 − (1/4)²) / 4); the relative gain is over the pooled baseline accuracy; the spread SE is the SD
    of the two differences (+1/2, −1/2) times sqrt(Σ w²)."""
    per_draw, [row] = pool_draws(_unequal_draws(tmp_path))
    w1, w2 = 2 / 3, 1 / 3
    assert row["acc_a"] == pytest.approx(w1 / 4 + w2 * 1.0) == pytest.approx(0.5)
    assert row["acc_b"] == pytest.approx(w1 * 3 / 4 + w2 / 2) == pytest.approx(2 / 3)
    assert row["diff"] == pytest.approx(1 / 6)
    se = math.sqrt(w1 ** 2 * 7 / 108 + w2 ** 2 * 7 / 64)
    assert row["diff_se"] == pytest.approx(se)
    assert row["rel"] == pytest.approx(1 / 3) and row["rel_se"] == pytest.approx(2 * se)
    assert row["spread_sd"] == pytest.approx(math.sqrt(0.5))
    assert row["spread_se"] == pytest.approx(math.sqrt(0.5) * math.sqrt(5) / 3)
    assert ((row["b_fixed"], row["b_broke"]), row["prompts"], row["draws"]) == ((2, 1), 6, 2)
    assert math.isnan(row["reward_a"]) and row["reward_b"] == pytest.approx((4 * 0.5 + 2 * 0.8) / 6)
    assert row["tags"] == {
        "first": {"prompts": 4, "diff": 0.5, "diff_se": pytest.approx(math.sqrt(7 / 108)), "fixed": 2, "broke": 0},
        "second": {"prompts": 2, "diff": -0.5, "diff_se": pytest.approx(math.sqrt(7 / 64)), "fixed": 0, "broke": 1}}
    lines = format_pooled(per_draw, [row]).splitlines()
    # per draw: SEs sqrt(7/108) = 25.46 and sqrt(7/64) = 33.07 points
    assert lines[2] == "| first | best-of-n | 2 | raw N=1 | 4 | 25.0 | 75.0 | +50.0 ± 25.5 | 2 / 0 | – / 0.500 |"
    assert lines[3] == "| second | best-of-n | 2 | raw N=1 | 2 | 100.0 | 50.0 | -50.0 ± 33.1 | 0 / 1 | – / 0.800 |"
    # pooled: SE sqrt(7/243 + 7/576) = 20.24 points, relative 1/3 ± 40.48 %, spread 70.71 · √5/3 = 52.70
    assert lines[7] == ("| best-of-n | 2 | raw N=1 | 2 | 6 | 50.0 | 66.7 | +16.67 ± 20.24 | +33.3 ± 40.5 % | 52.7 (70.7) | "
                        "2 / 1 | – / 0.600 |")


def test_pooled_rows_go_by_numeric_n_within_a_label(tmp_path):
    """table.md's order: label first, then N as a number (2 before 16), whatever order the draws hold them in."""
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        write_records(root, "raw", 1, [True], prompt=root.name)
        for n in (32, 2, 16, 4, 8, 64):
            write_records(root, "best-of-n", n, [True], prompt=root.name)
    _, pooled = pool_draws([first, second])
    assert [r["n"] for r in pooled] == [2, 4, 8, 16, 32, 64]


def test_draw_names_are_folder_names_unless_two_coincide():
    assert draw_names(["x/a", "y/a", "z/b"]) == ["x/a", "y/a", "b"]
    assert draw_names(["/", "x/b"]) == ["/", "b"]  # the root has no name: its path


def test_same_prompts_pairs_only_draws_with_the_very_same_suite(tmp_path):
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    for root, prompt in ((first, "same"), (second, "same"), (third, "other")):
        write_records(root, "raw", 1, [True, False], prompt=prompt)
    (tmp_path / "empty").mkdir()  # no records: no suite to share
    assert same_prompts([first, second, third]) == [("first", "second")]
    assert same_prompts([third, first, second]) == [("first", "second")]
    assert same_prompts([tmp_path / "empty", first, third]) == []


def test_same_prompts_matches_index_by_index_even_with_a_repeated_prompt(tmp_path):
    """A suite may hold one prompt twice; the draws are the same suite whatever order their records are read in
    (here index 1 comes first in `first`, whose label `a` ran only that prompt)."""
    def put(root, label, index):
        d = root / label / "n1" / f"{index:05d}"
        d.mkdir(parents=True)
        (d / "record.json").write_text(json.dumps({"label": label, "n": 1, "index": index, "prompt": "dup"}))

    first, second = tmp_path / "first", tmp_path / "second"
    put(first, "a", 1)
    put(first, "b", 0)
    put(first, "b", 1)
    put(second, "b", 0)
    put(second, "b", 1)
    assert same_prompts([first, second]) == [("first", "second")]

# -- table ---------------------------------------------------------------------------------------------------------
def test_table_rows_carry_every_cell_worked_by_hand():
    """format_table: tags in order of first appearance, '–' where a run lacks a tag or a paired row, FLOPs in the
    unit of the largest column (GFLOPs from 1e8) at three significant digits, costs per prompt."""
    cost = {"transformer_flops": 2.5e9, "decode_flops": 1.25e8, "scorer_flops": 0, "generated_tokens": 256,
            "decode_count": 4, "scorer_calls": 8, "total_wall": 1.5, "overhead_fraction": 0.125}
    best = {"label": "best-of-n", "n": 4, "prompts_done": 3, "overall": 0.5, "overall_se": 0.125,
            "tags": {"counting": {"accuracy": 1 / 3}, "mine": {"accuracy": 0.75}}, "mean_reward": 0.4,
            "cost_per_prompt": cost}
    raw = {"label": "raw", "n": 1, "prompts_done": 3, "overall": 0.5,  # no overall_se recorded: 0
           "tags": {"colors": {"accuracy": 0.5}}, "mean_reward": math.nan, "cost_per_prompt": {}}
    lines = format_table([best, raw], {("best-of-n", 4): {"prompts": 3, "diff": 0.25, "diff_se": 0.1}}).splitlines()
    assert lines[0] == ("| strategy | N | prompts | overall ± SE | − raw, paired ± SE | count | mine | colors | "
                        "mean reward | tokens/prompt | GFLOPs/prompt (model + decode + scorer) | decodes | "
                        "scorer calls | wall s/prompt | selection overhead |")
    assert lines[1] == "|" + "---|" * 15
    # 2.5e9 / 1e9 = 2.50, 1.25e8 / 1e9 = 0.125 (three significant digits), 0 -> "0"
    assert lines[2] == ("| best-of-n | 4 | 3 | 50.0 ± 12.5 | +25.0 ± 10.0 | 33.3 | 75.0 | – | 0.400 | 256 | "
                        "2.50 + 0.125 + 0 | 4.0 | 8.0 | 1.500 | 12.5 % |")
    assert lines[3] == "| raw | 1 | 3 | 50.0 ± 0.0 | – | – | – | 50.0 | – | 0 | 0 + 0 + 0 | 0.0 | 0.0 | 0.000 | 0.0 % |"


def test_percent_rounds_to_nine_places_before_one_decimal():
    """percent's docstring: 117/240 = 48.75 % prints 48.8 however it was summed; rounding to 9 places first
    (not 10, not 0) takes an error of 1e-9 points off, not a tenth."""
    assert percent(117 / 240) == "48.8" and percent(0.487499999999) == "48.8" and percent(None) == "–"
    assert percent(0.48749999) == "48.7"


def test_tag_order_is_genevals_then_the_rest_by_name():
    assert tag_order({"mine", "counting", "another", "single_object"}) == ["single_object", "counting", "another",
                                                                          "mine"]
    assert tag_order([]) == []


# -- metrics -------------------------------------------------------------------------------------------------------
def test_summary_rewards_and_costs_are_means_over_the_prompts():
    """summarize: mean reward with SD/√n over the prompts that recorded one; costs are per-prompt means (a
    missing key counts 0); flops = model + decode + scorer; no wall time: no overhead share (0, not 0/0)."""
    records = [{"reward": 0.2, "cost": {"transformer_flops": 3e9, "decode_flops": 1e9, "scorer_flops": 2e9,
                                        "wall": {"selection": 0.3}}},
               {"reward": 0.6, "cost": {"transformer_flops": 1e9}},
               {"reward": None, "cost": {}}]
    s = summarize(records, [])
    assert s["overall"] is None and "overall_se" not in s and s["images"] == 0 and s["prompts_done"] == 3
    # rewards 0.2, 0.6: mean 0.4, SD = sqrt(2 · 0.2² / 1) = 0.2·√2, SE = SD / √2 = 0.2
    assert s["mean_reward"] == pytest.approx(0.4) and s["mean_reward_se"] == pytest.approx(0.2)
    c = s["cost_per_prompt"]
    assert c["transformer_flops"] == pytest.approx(4e9 / 3) and c["decode_flops"] == pytest.approx(1e9 / 3)
    assert c["flops"] == pytest.approx(7e9 / 3) and c["wall_selection"] == pytest.approx(0.1)
    assert c["overhead_fraction"] == 0.0 and c["decode_count"] == 0.0
    one = summarize([{"reward": 0.5, "cost": {}}], [])
    assert one["mean_reward"] == 0.5 and math.isnan(one["mean_reward_se"])  # one value: no spread known
    none = summarize([{"cost": {}}], [])
    assert math.isnan(none["mean_reward"]) and math.isnan(none["mean_reward_se"])
    # the overhead share is mean overhead over mean wall time: (0.1 + 0.15) / 2 over (0.2 + 0.8) / 2 = 1/4
    short = summarize([{"cost": {"total_wall": 0.2, "overhead": 0.1}}, {"cost": {"total_wall": 0.8, "overhead": 0.15}}],
                      [])
    assert short["cost_per_prompt"]["overhead_fraction"] == pytest.approx(0.25)
    empty = summarize([], [])  # no prompt finished: zeros, not NaN means of nothing
    assert empty["prompts_done"] == 0 and empty["cost_per_prompt"]["total_wall"] == 0.0
    assert empty["cost_per_prompt"]["wall_model"] == 0.0 and math.isnan(empty["mean_reward"])


def test_binomial_se_and_overall_se_by_hand():
    # 1 of 4 right: p~ = (1 + 2) / 8 = 3/8, SE = sqrt(3/8 · 5/8 / 8)
    assert binomial_se(0.25, 4) == pytest.approx(math.sqrt(3 / 8 * 5 / 8 / 8))
    # tags of other sizes: 3 of 5 (SE² = 5/9 · 4/9 / 9) and 1 of 4; the mean of two tags halves the root sum
    tags = {"a": {"accuracy": 0.6, "total": 5}, "b": {"accuracy": 0.25, "total": 4}}
    assert standard_error_of_overall(tags) == pytest.approx(math.sqrt(20 / 729 + 15 / 512) / 2)
