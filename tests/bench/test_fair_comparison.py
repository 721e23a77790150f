"""Findings of a review of `arscale bench` / `arscale compare` as a fair comparison of test-time-scaling methods:
what table.md and compare print must describe the same prompts, and a variant's config must mean what it says."""
import json

import pytest

from arscale.bench.paired import against_baseline, load_records
from arscale.cli import main


def _bench(out, *extra):
    return main(["bench", "--model", "shapeworld-var", "--prompts", "draw:1:6001", "--n", "2", "--batch-prompts", "2",
                 "--quiet", "--out", str(out), *extra])


def test_a_resume_with_a_smaller_limit_keeps_the_table_on_one_set_of_prompts(tmp_path, capsys):
    """After `--limit 4` then `--resume --limit 2`, each run's summary and its paired column cover the same prompts."""
    out = tmp_path / "out"
    assert _bench(out, "--strategies", "raw,best-of-n", "--limit", "4") == 0
    assert _bench(out, "--strategies", "raw,best-of-n", "--limit", "2", "--resume") == 0
    capsys.readouterr()
    records = load_records(out)
    paired = against_baseline(records)[("best-of-n", 2)]
    for label in ("raw", "best-of-n"):
        summary = json.loads((out / label / "n2" / "summary.json").read_text())
        assert summary["prompts_done"] == len(records[(label, 2)]) == paired["prompts"] == 4
    raw = json.loads((out / "raw" / "n2" / "summary.json").read_text())
    bon = json.loads((out / "best-of-n" / "n2" / "summary.json").read_text())
    assert bon["overall"] - raw["overall"] == pytest.approx(paired["diff"])  # "on the same prompts"


def test_bench_refuses_a_config_reward_that_scorer_replaces(tmp_path, capsys):
    """A --config reward other than the bench's --scorer is refused in one line, not silently ignored."""
    code = _bench(tmp_path / "out", "--strategies", "raw,best-of-n@f", "--limit", "1",
                  "--config", 'best-of-n@f={"reward": "shapeworld-features"}')
    err = capsys.readouterr().err
    assert code == 2 and "shapeworld-features" in err and "--scorer" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing was run or written
