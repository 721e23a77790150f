"""Paired differences between bench runs (`arscale.bench.paired`, `arscale compare`, table.md's column)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from bench_records import write_records

from arscale.bench.paired import (
    against_baseline,
    load_records,
    match_labels,
    paired_difference,
    paired_variance,
)
from arscale.cli import main
from arscale.errors import ArscaleError

ROOT = Path(__file__).resolve().parents[2]


def _write(root, label, n, correct, reward, tags=None):
    write_records(root, label, n, correct, reward, tag=tags or "counting")


def test_paired_difference_counts_and_only_common_prompts(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "best-of-n", 8, [True, False, False, True, False], 1.0)
    _write(b, "best-of-n", 8, [True, True, True, False], 2.0)  # prompt 4 unfinished in b
    _write(a, "raw", 1, [True], 0.0)  # only in a: not compared
    ra, rb = load_records(a), load_records(b)
    assert set(ra) & set(rb) == {("best-of-n", 8)}
    row = paired_difference(ra[("best-of-n", 8)], rb[("best-of-n", 8)])
    assert row["prompts"] == 4 and row["b_fixed"] == 2 and row["b_broke"] == 1
    assert math.isclose(row["acc_a"], 0.5) and math.isclose(row["acc_b"], 0.75)
    # per-prompt b − a is [0, 1, 1, -1]; Agresti–Min: half a prompt added to each cell of the 2x2 table
    p01, p10 = 2.5 / 6, 1.5 / 6
    assert math.isclose(row["diff"], 0.25)
    assert math.isclose(row["diff_se"], math.sqrt((p01 + p10 - (p01 - p10) ** 2) / 6))
    assert math.isclose(row["reward_b"] - row["reward_a"], 1.0)


def test_the_paired_se_is_never_zero():
    # a tag of one prompt, or one where every prompt moved the same way, still has an uncertainty
    assert paired_variance(1, 0, 1) > 0 and paired_variance(3, 0, 3) > 0 and paired_variance(0, 0, 5) > 0
    # and it shrinks with more prompts like a binomial SE
    assert paired_variance(0, 0, 400) < paired_variance(0, 0, 40) / 9
    same = {i: {"correct": i % 2 == 0, "tag": "colors", "prompt": str(i)} for i in range(10)}
    row = paired_difference(same, same)
    assert row["diff"] == 0 and row["diff_se"] > 0 and row["b_fixed"] == row["b_broke"] == 0


def test_the_difference_is_per_tag_like_the_overall_column(tmp_path):
    # three counting prompts and one colors prompt: the overall accuracy is the mean of the two tags'
    tags = ["counting", "counting", "counting", "colors"]
    _write(tmp_path, "raw", 1, [False, False, True, False], None, tags)
    _write(tmp_path, "tts-var", 8, [True, False, True, True], 0.5, tags)
    runs = load_records(tmp_path)
    row = against_baseline(runs)[("tts-var", 8)]
    assert math.isclose(row["acc_a"], (1 / 3 + 0) / 2) and math.isclose(row["acc_b"], (2 / 3 + 1) / 2)
    assert math.isclose(row["diff"], row["acc_b"] - row["acc_a"])
    # counting: one prompt fixed of three; colors: its one prompt fixed
    assert math.isclose(row["diff_se"], math.sqrt(paired_variance(1, 0, 3) + paired_variance(1, 0, 1)) / 2)
    assert ("raw", 1) not in against_baseline(runs) and against_baseline(runs, "importance") == {}


def test_only_raw_sampling_stands_for_every_n(tmp_path):
    # raw sampling's image does not depend on N; Best-of-N's does, so it is compared at the same N only
    _write(tmp_path, "raw", 1, [True, False], None)
    _write(tmp_path, "best-of-n", 1, [True, False], 0.5)
    _write(tmp_path, "importance", 2, [True, True], 0.5)
    runs = load_records(tmp_path)
    assert against_baseline(runs)[("importance", 2)]["baseline_n"] == 1
    assert ("importance", 2) not in against_baseline(runs, "best-of-n")
    assert set(match_labels(runs, runs, "best-of-n", "importance")) == set()
    [(key, (n_a, _, _))] = match_labels(runs, runs, "raw", "importance").items()
    assert key == ("importance", 2) and n_a == 1


def test_runs_of_different_prompts_are_refused(tmp_path):
    _write(tmp_path / "a", "raw", 1, [True, False], None)
    _write(tmp_path / "b", "raw", 1, [True, False], None)
    record = tmp_path / "b" / "raw" / "n1" / "00001" / "record.json"
    record.write_text(record.read_text().replace("prompt 1", "another prompt"))
    a, b = load_records(tmp_path / "a"), load_records(tmp_path / "b")
    with pytest.raises(ArscaleError, match="prompt 1 is 'prompt 1' in one run and 'another prompt'"):
        paired_difference(a[("raw", 1)], b[("raw", 1)])


def test_match_pairs_two_labels_and_a_single_n_meets_every_n(tmp_path):
    _write(tmp_path, "raw", 1, [True, False, True], None)  # raw sampling without a scorer records no reward
    _write(tmp_path, "scaling-ar", 8, [True, True, False], 0.5)
    _write(tmp_path, "scaling-ar@end", 8, [False, True, True], 0.25)
    runs = load_records(tmp_path)
    met = match_labels(runs, runs, "scaling-ar", "scaling-ar@end")
    assert set(met) == {("scaling-ar@end", 8)}
    _, a, b = met[("scaling-ar@end", 8)]
    row = paired_difference(a, b)
    assert (row["b_fixed"], row["b_broke"]) == (1, 1) and math.isclose(row["reward_a"], 0.5)
    _, a, b = match_labels(runs, runs, "raw", "scaling-ar")[("scaling-ar", 8)]
    row = paired_difference(a, b)
    assert math.isclose(row["acc_a"], 2 / 3) and math.isnan(row["reward_a"])
    assert match_labels(runs, runs, "importance", "scaling-ar") == {}


def test_compare_command(tmp_path, capsys):
    _write(tmp_path, "raw", 1, [True, False, False, False], None)
    _write(tmp_path, "scaling-ar", 8, [True, True, True, False], 0.5)
    assert main(["compare", str(tmp_path), "--json", str(tmp_path / "rows.json")]) == 0
    out = capsys.readouterr().out
    se = 100 * math.sqrt(paired_variance(2, 0, 4))
    assert f"| scaling-ar | 8 | raw N=1 | 4 | 25.0 | 75.0 | +50.0 ± {se:.1f} | 2 / 0 | – / 0.500 |" in out
    [row] = json.loads((tmp_path / "rows.json").read_text())  # strict JSON: a missing reward is null
    assert row["label"] == "scaling-ar" and row["b_fixed"] == 2 and row["reward_a"] is None
    assert main(["compare", str(tmp_path), "--names", "before", "after"]) == 0
    assert "after − before ± paired SE" in capsys.readouterr().out

    def one_line_error(argv, *needles):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and all(n in err for n in needles), err

    one_line_error(["compare", str(tmp_path), "--baseline", "best-of-n"], "no 'best-of-n' run", "raw, scaling-ar")
    one_line_error(["compare", str(tmp_path / "missing")], "is not a folder")
    one_line_error(["compare", str(tmp_path), str(tmp_path), "--baseline", "raw"], "--baseline compares the runs of one")
    one_line_error(["compare", str(tmp_path), "--json", str(tmp_path / "no" / "rows.json")], "cannot write --json")
    alone = tmp_path / "alone"
    _write(alone, "raw", 1, [True], None)
    one_line_error(["compare", str(alone)], "nothing under", "raw N=1")


def test_a_suite_difference_is_named_as_typed():
    from arscale.bench.manifest import differences

    typed = [{"suite": {"spec": f"draw:2:{seed}", "sha256": str(seed)}} for seed in (11, 12)]
    assert differences(*typed) == ["suite: draw:2:11 vs draw:2:12 (other prompts)"]
    edited = [{"suite": {"spec": "mine.jsonl", "sha256": sha}} for sha in "ab"]
    assert differences(*edited) == ["suite: mine.jsonl in both, with other contents (other prompts)"]
    cfg = [{"model": {"id": "shapeworld-var"}}, {"model": {"id": "shapeworld-var", "cfg": 2.0}}]
    assert differences(*cfg) == ["model: cfg default vs 2.0"]


def test_compare_names_what_sets_two_benches_apart(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "raw", 1, [True, False], None)
    _write(b, "raw", 1, [True, True], None)
    assert main(["compare", str(a), str(b)]) == 0
    assert "note:" not in capsys.readouterr().err  # no manifests: nothing to say
    base = {"model": {"id": "shapeworld-ar", "weights_sha256": {"model.safetensors": "1"}}, "seed": 0,
            "scorer": None, "suite": {"sha256": "s"}, "strategies": {"raw": {"resolved": {"temperature": 1.0}}}}
    (a / "manifest.json").write_text(json.dumps(base))
    other = {**base, "seed": 3, "model": {"id": "shapeworld-ar", "weights_sha256": {"model.safetensors": "2"}},
             "strategies": {"raw": {"resolved": {"temperature": 0.9}}}}
    (b / "manifest.json").write_text(json.dumps(other))
    assert main(["compare", str(a), str(b)]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("note: the two benches differ in ")]
    assert len(notes) == 3, captured.err
    assert any("seed: 0 vs 3" in n for n in notes)
    assert any("model: shapeworld-ar's weights differ (model.safetensors)" in n for n in notes)
    assert any("strategy raw temperature: 1.0 vs 0.9" in n for n in notes)
    assert "| raw | 1 | raw N=1 | 2 | 50.0 | 100.0 |" in captured.out  # still compared
    assert main(["compare", str(a), str(a)]) == 0
    err = capsys.readouterr().err
    assert "differ in" not in err and "a folder against itself differs in nothing; --match" in err
    assert main(["compare", str(a), str(a), "--match", "raw", "raw"]) == 0
    assert "against itself" not in capsys.readouterr().err
    (b / "raw" / "n1" / "00001" / "record.json").write_text('{"label": "raw", "n": ')  # damaged
    assert main(["compare", str(a), str(b)]) == 0
    captured = capsys.readouterr()
    assert "note: 1 record(s) could not be read and are left out, e.g. " in captured.err
    assert "| raw | 1 | raw N=1 | 1 |" in captured.out


def test_the_old_script_still_runs_with_its_old_flags(tmp_path):
    _write(tmp_path, "raw", 1, [True, False], None)
    _write(tmp_path, "scaling-ar", 8, [True, True], None)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare_runs.py"), str(tmp_path), str(tmp_path),
                           "--match", "raw", "scaling-ar", "--label-a", "old", "--label-b", "new"],
                          capture_output=True, text=True, check=True)
    assert "new − old ± paired SE" in done.stdout and "| scaling-ar | 8 | raw N=1 | 2 | 50.0 | 100.0 | +50.0" in done.stdout


def test_per_tag_rows_add_up_to_the_overall_difference(tmp_path):
    tags = ["counting", "counting", "colors", "colors", "colors", "position"]
    _write(tmp_path, "raw", 1, [True, False, False, True, False, True], None, tags)
    _write(tmp_path, "best-of-n", 8, [True, True, True, True, False, False], None, tags)
    row = against_baseline(load_records(tmp_path))[("best-of-n", 8)]
    per = row["tags"]
    assert {t: (c["fixed"], c["broke"], c["prompts"]) for t, c in per.items()} == {
        "counting": (1, 0, 2), "colors": (1, 0, 3), "position": (0, 1, 1)}
    assert per["colors"]["diff"] == pytest.approx(1 / 3)
    assert row["diff"] == pytest.approx(sum(c["diff"] for c in per.values()) / 3)
    assert row["diff_se"] == pytest.approx(math.sqrt(sum(c["diff_se"] ** 2 for c in per.values())) / 3)


def test_compare_draws_each_run_per_tag(tmp_path, capsys):
    from arscale.bench.paired import compare_folders
    from arscale.bench.paired_plot import figure_comparison

    tags = ["counting", "colors"] * 3
    _write(tmp_path, "raw", 1, [True, False, False, True, False, True], None, tags)
    _write(tmp_path, "best-of-n", 8, [True, True, True, True, False, False], None, tags)
    _write(tmp_path, "scaling-ar", 8, [False, False, False, True, True, True], None, tags)
    rows = compare_folders(tmp_path)
    fig = figure_comparison(rows, "raw", "run")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["counting", "colors", "overall"]  # table.md's order
    points = [bars.lines[0].get_xydata() for bars in ax.containers]  # each run's markers
    assert len(points) == 2 and all(len(p) == 3 for p in points)  # two runs, three rows each
    by_label = {r["label"]: r for r in rows}
    overall_x = sorted(p[-1][0] for p in points)
    assert overall_x == pytest.approx(sorted(100 * by_label[k]["diff"] for k in ("best-of-n", "scaling-ar")))
    plot = tmp_path / "compare.png"
    assert main(["compare", str(tmp_path), "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 1000 and "wrote" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), "--plot", str(tmp_path / "new" / "compare.png")]) == 0  # folder made
    (tmp_path / "a_file").write_text("")
    assert main(["compare", str(tmp_path), "--plot", str(tmp_path / "a_file" / "compare.png")]) != 0
    assert "cannot write --plot" in capsys.readouterr().err


def test_the_compare_plot_keeps_bars_inside_what_accuracy_allows_and_tells_budgets_apart(tmp_path):
    from arscale.bench.paired import compare_folders
    from arscale.bench.paired_plot import figure_comparison

    _write(tmp_path, "raw", 1, [False, False], None)
    _write(tmp_path, "best-of-n", 2, [True, True], None)  # +100 points on two prompts: a wide bar
    _write(tmp_path, "best-of-n", 4, [True, False], None)
    ax = figure_comparison(compare_folders(tmp_path)).axes[0]
    markers = [bars.lines[0].get_marker() for bars in ax.containers]
    assert len(set(markers)) == 2  # N=2 and N=4 of one label
    _write(tmp_path, "tts-var", 4, [True, True], None)
    both = figure_comparison(compare_folders(tmp_path)).axes[0]
    by_n = {}
    for bars in both.containers:  # a marker means one N, whichever run it belongs to
        by_n.setdefault(bars.get_label().split(" N=")[1].split(" ")[0], set()).add(bars.lines[0].get_marker())
    assert by_n.keys() == {"2", "4"} and all(len(m) == 1 for m in by_n.values()) and by_n["2"] != by_n["4"]
    for bars in ax.containers:
        for segment in bars.lines[2][0].get_segments():  # the horizontal error bars
            assert -100 <= min(x for x, _ in segment) and max(x for x, _ in segment) <= 100


def test_a_match_that_finds_nothing_lists_what_the_folders_hold(tmp_path, capsys):
    _write(tmp_path, "best-of-n", 8, [True], None)
    _write(tmp_path, "scaling-ar", 4, [True], None)
    assert main(["compare", str(tmp_path), str(tmp_path), "--match", "best-of-n", "scaling-ar"]) != 0
    assert "holds best-of-n N=8, scaling-ar N=4" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), "--match", "best-of-n", "tts-var@lam2"]) != 0
    err = capsys.readouterr().err  # a label that is not there is named as such, not blamed on the budgets
    assert f"{tmp_path} has no label 'tts-var@lam2'; its labels are best-of-n, scaling-ar" in err


def test_two_folders_are_named(tmp_path, capsys):
    a, b = tmp_path / "old", tmp_path / "new"
    _write(a, "raw", 1, [True, False], None)
    _write(b, "raw", 1, [True, True], None)
    assert main(["compare", str(a), str(b)]) == 0
    said = capsys.readouterr()
    assert f"old = {a}, new = {b}" in said.err and "| new − old ± paired SE" in said.out
    twin = tmp_path / "elsewhere" / "old"  # two folders of one name: A and B
    _write(twin, "raw", 1, [True, True], None)
    assert main(["compare", str(a), str(twin)]) == 0
    assert f"A = {a}, B = {twin}" in capsys.readouterr().err
    _write(a, "best-of-n", 1, [True, True], None)  # two labels of one folder: named by their labels
    assert main(["compare", str(a), "--match", "raw", "best-of-n"]) == 0
    assert "| best-of-n − raw ± paired SE" in capsys.readouterr().out
    assert main(["compare", str(a), str(b), "--match", "best-of-n", "raw"]) == 0
    assert "| new raw − old best-of-n ± paired SE" in capsys.readouterr().out


def test_the_compare_plot_says_what_was_run(tmp_path, monkeypatch):
    from arscale.bench import paired_plot

    figures = []
    original = paired_plot.figure_comparison
    monkeypatch.setattr(paired_plot, "figure_comparison",
                        lambda *a, **k: figures.append(original(*a, **k)) or figures[-1])
    a, b = tmp_path / "seed0", tmp_path / "seed1"
    for folder, seed in ((a, 0), (b, 1)):
        _write(folder, "raw", 1, [True, False, True], None)
        (folder / "manifest.json").write_text(json.dumps({"model": {"id": "shapeworld-ar"}, "seed": seed,
                                                          "suite": {"spec": "draw:3:7"}}))
    assert main(["compare", str(a), str(b), "--plot", str(tmp_path / "c.png")]) == 0
    ax = figures[-1].axes[0]
    assert ax.get_title().splitlines()[1] == "shapeworld-ar · draw:3:7 · seed 0 vs 1"
    assert ax.get_xlabel().startswith("seed1 − seed0, accuracy points")
    figures[-1].canvas.draw()
    legend = figures[-1].legends[0].get_window_extent()
    label = ax.xaxis.label.get_window_extent()
    assert legend.y1 <= label.y0  # the legend below the x label, not over it
    for folder in (a, b):
        _write(folder, "best-of-n", 2, [True, True, True], None)
    assert main(["compare", str(a), str(b), "--pooled", "--plot", str(tmp_path / "p.png")]) == 0
    assert figures[-1].axes[0].get_title().splitlines()[1] == "shapeworld-ar · draw:3:7 · seeds 0, 1"
