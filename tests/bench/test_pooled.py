"""Paired differences pooled over benches of independent prompt draws (`arscale.bench.pooled`,
`arscale compare --pooled`)."""

import json
import math
import statistics
from pathlib import Path

import pytest
from bench_records import write_records

from arscale.bench.paired import paired_variance
from arscale.bench.pooled import format_pooled, pool_draws
from arscale.cli import main
from arscale.errors import ArscaleError


def _write(root, label, n, correct, draw, reward=None):
    write_records(root, label, n, correct, reward, prompt=f"{draw} prompt")


def _two_draws(tmp_path: Path, second_prompts: str = "second") -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    _write(first, "raw", 8, [True, False, False, False], "first")
    _write(first, "scaling-ar", 8, [True, True, True, False], "first")  # fixed 2, broke 0 of 4
    _write(second, "raw", 8, [True] * 4 + [False] * 4, second_prompts)
    _write(second, "scaling-ar", 8, [True] * 3 + [False] * 5, second_prompts)  # fixed 0, broke 1 of 8
    return first, second


def test_draws_are_pooled_by_their_prompts(tmp_path):
    per_draw, [row] = pool_draws(_two_draws(tmp_path))
    assert [(r["draw"], r["prompts"]) for r in per_draw] == [("first", 4), ("second", 8)]
    w1, w2 = 4 / 12, 8 / 12
    assert (row["label"], row["n"], row["draws"], row["prompts"]) == ("scaling-ar", 8, 2, 12)
    assert row["against"] == "raw N=8"
    assert row["diff"] == pytest.approx(w1 * 2 / 4 + w2 * -1 / 8)
    assert row["diff_se"] == pytest.approx(math.sqrt(w1 ** 2 * paired_variance(2, 0, 4)
                                                     + w2 ** 2 * paired_variance(0, 1, 8)))
    assert row["acc_a"] == pytest.approx(w1 * 1 / 4 + w2 * 4 / 8)
    assert row["acc_b"] == pytest.approx(w1 * 3 / 4 + w2 * 3 / 8)
    assert row["rel"] == pytest.approx(row["diff"] / row["acc_a"])
    assert row["rel_se"] == pytest.approx(row["diff_se"] / row["acc_a"])
    assert row["spread_sd"] == pytest.approx(statistics.stdev([2 / 4, -1 / 8]))
    assert row["spread_se"] == pytest.approx(row["spread_sd"] * math.sqrt(w1 ** 2 + w2 ** 2))  # SD/√2 at one size
    assert (row["b_fixed"], row["b_broke"]) == (2, 1)
    assert row["tags"]["second"] == {"prompts": 8, "diff": -1 / 8, "fixed": 0, "broke": 1,
                                     "diff_se": pytest.approx(math.sqrt(paired_variance(0, 1, 8)))}


def test_mean_rewards_pool_over_the_draws_that_recorded_one(tmp_path):
    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    for root, size, rewards in ((first, 2, (0.5, 1.0)), (second, 4, (0.2, 0.4)), (third, 2, (None, None))):
        _write(root, "raw", 8, [True] * size, root.name, rewards[0])
        _write(root, "scaling-ar", 8, [True] * size, root.name, rewards[1])
    per_draw, [row] = pool_draws([first, second, third])
    assert row["reward_a"] == pytest.approx((2 * 0.5 + 4 * 0.2) / 6)  # the third recorded none
    assert row["reward_b"] == pytest.approx((2 * 1.0 + 4 * 0.4) / 6)
    table = format_pooled(per_draw, [row])
    assert "| 0.300 / 0.600 |" in table and "| third | scaling-ar | 8 | raw N=8 | 2 | 100.0 | 100.0 | +0.0 ± " in table
    assert table.count("– / – |") == 1  # the third draw's row


def test_a_run_missing_from_a_draw_pools_the_others_in_table_order(tmp_path, capsys):
    first, second = _two_draws(tmp_path)
    _write(second, "best-of-n", 8, [True, True, False, False, False, False, False, False], "second")
    _, rows = pool_draws([first, second])
    assert [r["label"] for r in rows] == ["best-of-n", "scaling-ar"]  # table.md's order, not the first draw's
    best = rows[0]
    assert best["draws"] == 1 and best["diff"] == pytest.approx(-2 / 8) and math.isnan(best["spread_sd"])
    assert main(["compare", str(first), str(second), "--pooled"]) == 0
    assert "note: best-of-n N=8 was compared in 1 of the 2 draws" in capsys.readouterr().err


def _unjudged(folder: Path, label: str) -> None:
    for record in (folder / label).rglob("record.json"):
        data = json.loads(record.read_text())
        record.write_text(json.dumps({**data, "correct": None}))


def test_draws_without_a_judged_prompt_are_left_out(tmp_path):
    first, second = _two_draws(tmp_path)
    _unjudged(second, "scaling-ar")
    per_draw, [row] = pool_draws([first, second])
    assert per_draw[1]["prompts"] == 0 and (row["draws"], row["prompts"]) == (1, 4)
    assert "| second | scaling-ar | 8 | raw N=8 | 0 | – | – | no prompt judged in both |" in format_pooled(per_draw, [row])
    _unjudged(first, "scaling-ar")
    _, [row] = pool_draws([first, second])
    assert (row["draws"], row["prompts"]) == (0, 0)


def test_draws_of_one_folder_name_are_told_apart(tmp_path, monkeypatch):
    a, b = tmp_path / "a" / "d", tmp_path / "b" / "d"
    for root, draw in ((a, "a"), (b, "b")):
        _write(root, "raw", 8, [True, False], draw)
        _write(root, "scaling-ar", 8, [True, True], draw)
    per_draw, [row] = pool_draws([a, b])
    assert [r["draw"] for r in per_draw] == [str(a), str(b)] and sorted(row["tags"]) == [str(a), str(b)]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArscaleError, match="given twice"):  # the same folder, spelled another way
        pool_draws([a, b, "a/d"])


def test_pooled_json_is_strict_and_a_zero_baseline_has_no_relative_gain(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        _write(root, "raw", 8, [False] * 4, root.name)
        _write(root, "scaling-ar", 8, [True, False, False, False], root.name)
    assert main(["compare", str(first), str(second), "--pooled", "--json", str(tmp_path / "p.json")]) == 0
    data = json.loads((tmp_path / "p.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in --json"))
    assert data["draws"][0]["reward_a"] is None and data["pooled"][0]["rel"] is None


def test_the_plot_draws_each_draw_and_the_pooled_row(tmp_path, monkeypatch, capsys):
    from arscale.bench import paired_plot

    figures = []
    original = paired_plot.figure_comparison
    monkeypatch.setattr(paired_plot, "figure_comparison",
                        lambda *a, **k: figures.append(original(*a, **k)) or figures[-1])
    first, second = _two_draws(tmp_path)
    pooled = tmp_path / "pooled"  # a draw may be named like the pooled row
    _write(pooled, "raw", 8, [False], "third")
    _write(pooled, "scaling-ar", 8, [True], "third")
    assert main(["compare", str(first), str(second), str(pooled), "--pooled", "--plot", str(tmp_path / "p")]) == 0
    assert f"wrote {tmp_path / 'p.png'}" in capsys.readouterr().err and (tmp_path / "p.png").stat().st_size > 0
    ax = figures[0].axes[0]
    assert [t.get_text() for t in figures[0].legends[0].get_texts()] == [
        "scaling-ar N=8 (against raw N=8, 13 prompts in 3 draws)"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["first", "second", "pooled", "all draws pooled"]
    _, [row] = pool_draws([first, second, pooled])
    line = ax.containers[0].lines[0]
    assert list(line.get_ydata()) == [0, 1, 2, 3]
    assert list(line.get_xdata()) == pytest.approx([50.0, -12.5, 100.0, 100 * row["diff"]])


def test_pooled_command(tmp_path, capsys):
    first, second = _two_draws(tmp_path)
    assert main(["compare", str(first), str(second), "--pooled", "--json", str(tmp_path / "pooled.json"),
                 "--plot", str(tmp_path / "pooled.png")]) == 0
    captured = capsys.readouterr()
    _, [row] = pool_draws([first, second])
    assert "| first | scaling-ar | 8 | raw N=8 | 4 | 25.0 | 75.0 | +50.0 ± " in captured.out
    assert (f"| scaling-ar | 8 | raw N=8 | 2 | 12 | {100 * row['acc_a']:.1f} | {100 * row['acc_b']:.1f} | "
            f"{100 * row['diff']:+.2f} ± {100 * row['diff_se']:.2f} | {100 * row['rel']:+.1f} ± "
            f"{100 * row['rel_se']:.1f} % | {100 * row['spread_se']:.1f} ({100 * row['spread_sd']:.1f}) | 2 / 1 |"
            ) in captured.out
    notes = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert notes == ["note: no draw has a manifest, so nothing says they are benches of one setup"]
    assert (tmp_path / "pooled.png").stat().st_size > 0
    data = json.loads((tmp_path / "pooled.json").read_text())
    assert [r["draw"] for r in data["draws"]] == ["first", "second"]
    assert data["pooled"][0]["prompts"] == 12 and data["pooled"][0]["per_draw"]["first"]["fixed"] == 2


def test_pooled_notes_draws_that_are_not_independent_or_alike(tmp_path, capsys):
    first, second = _two_draws(tmp_path, second_prompts="first")
    for label in ("raw", "scaling-ar"):  # the first draw's four prompts and four more: not the same suite
        for i in range(4, 8):
            record = second / label / "n8" / f"{i:05d}" / "record.json"
            record.write_text(record.read_text().replace('"first prompt', '"more prompt'))
    assert main(["compare", str(first), str(second), "--pooled"]) == 0
    assert "same prompts" not in capsys.readouterr().err
    third = tmp_path / "third"
    _write(third, "raw", 8, [True, False, False, False], "first")
    _write(third, "scaling-ar", 8, [False, False, False, False], "first")
    base = {"model": {"id": "shapeworld-ar", "weights_sha256": {"model.safetensors": "1"}}, "seed": 0,
            "cost_accounting": 5}
    (first / "manifest.json").write_text(json.dumps(base))
    (third / "manifest.json").write_text(json.dumps({**base, "seed": 3, "cost_accounting": 6}))
    assert main(["compare", str(first), str(second), str(third), "--pooled"]) == 0
    err = capsys.readouterr().err
    assert "note: draws first and third hold the same prompts" in err
    # another bench seed or cost count moves no accuracy: said, and pooled
    assert "note: draw third differs from first in seed: 0 vs 3" in err
    assert "note: draw third differs from first in cost_accounting: 5 vs 6\n" in err
    (third / "manifest.json").write_text(json.dumps({**base, "model": {"id": "shapeworld-ar",
                                                                       "weights_sha256": {"model.safetensors": "2"}}}))
    assert main(["compare", str(first), str(second), str(third), "--pooled"]) == 2
    err = capsys.readouterr().err
    assert "draw third is not a bench of the same setup as first (model: shapeworld-ar's weights differ" in err


def test_draws_without_a_manifest_are_noted_and_the_others_checked(tmp_path, capsys):
    first, second = _two_draws(tmp_path)
    third = tmp_path / "third"
    _write(third, "raw", 8, [True, False], "third")
    _write(third, "scaling-ar", 8, [True, True], "third")
    (second / "manifest.json").write_text(json.dumps({"model": {"id": "shapeworld-ar"}, "seed": 0}))
    (third / "manifest.json").write_text(json.dumps({"model": {"id": "shapeworld-var"}, "seed": 0}))
    assert main(["compare", str(first), str(second), str(third), "--pooled"]) == 2  # checked past the first draw
    assert "draw third is not a bench of the same setup as second (model: shapeworld-ar vs shapeworld-var)" \
        in capsys.readouterr().err
    (third / "manifest.json").unlink()
    assert main(["compare", str(first), str(second), str(third), "--pooled"]) == 0
    err = capsys.readouterr().err
    assert "note: draw first has no manifest" in err and "note: draw third has no manifest" in err


def test_pooled_refusals(tmp_path, capsys):
    first, second = _two_draws(tmp_path)

    def one_line_error(argv, *needles):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert len(err.strip().splitlines()) == 1 and all(n in err for n in needles), err
        assert out == ""  # refused before any table

    one_line_error(["compare", str(first), str(second), str(first)], "3 folders", "--pooled")
    one_line_error(["compare", str(first), "--pooled"], "at least two")
    one_line_error(["compare", str(first), str(second), str(tmp_path / "first"), "--pooled"], "given twice")
    one_line_error(["compare", str(first), str(second), "--pooled", "--match", "raw", "scaling-ar"], "--match")
    one_line_error(["compare", str(first), str(second), "--pooled", "--baseline", "best-of-n"], "no 'best-of-n' run")
    one_line_error(["compare", str(first), str(second), "--pooled", "--plot", str(tmp_path / "p.xyz")], "picture file")
    one_line_error(["compare", str(first), str(second), "--pooled", "--json", str(tmp_path / "no" / "p.json")],
                   "its folder does not exist")
    one_line_error(["compare", str(first), str(second), "--pooled", "--json", str(tmp_path)], "it is a folder")
    one_line_error(["compare", str(first), str(second)], "same suite", "--pooled")  # two draws, --pooled forgotten
    with pytest.raises(ArscaleError, match="at least two"):
        pool_draws([first])
