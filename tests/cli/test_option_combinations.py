"""Option combinations of the CLI: `compare --pooled` with draws benched on other thread counts or
devices, `bench` with a label whose strategy cannot run on the model, and `generate --scorer-weights` with a
strategy that uses no scorer."""

import json

from bench_records import write_records

from arscale.cli import main
from arscale.scorers.shapeworld import WEIGHTS_DIR as SHIPPED_REWARD


def _draw(root, raw, best, **manifest):
    write_records(root, "raw", 2, raw, prompt=root.name)
    write_records(root, "best-of-n", 2, best, prompt=root.name)
    (root / "manifest.json").write_text(json.dumps({"model": {"id": "shapeworld-var"}, "seed": 0, **manifest}))
    return root


def test_pooled_draws_may_differ_in_threads_as_in_seed(tmp_path, capsys):
    """Draws benched with other --threads pool as draws with another --seed do, with a note, not a refusal."""
    d1 = _draw(tmp_path / "d1", [True, False], [True, True], device="cpu", threads=1)
    d2 = _draw(tmp_path / "d2", [False, False], [True, False], device="cpu", threads=4)
    assert main(["compare", str(d1), str(d2), "--pooled"]) == 0
    captured = capsys.readouterr()
    assert "draw d2 differs from d1 in threads: 1 vs 4" in captured.err
    assert "| best-of-n | 2 | raw N=2 | 2 | 4 |" in captured.out


def test_pooled_draws_may_differ_in_device_type(tmp_path, capsys):
    """A draw benched on a GPU pools with one benched on a CPU: other random numbers, as another seed draws."""
    d1 = _draw(tmp_path / "d1", [True, False], [True, True], device="cpu", threads=1)
    d2 = _draw(tmp_path / "d2", [False, False], [True, False], device="cuda:0", threads=1)
    assert main(["compare", str(d1), str(d2), "--pooled"]) == 0
    assert "draw d2 differs from d1 in device: cpu vs cuda" in capsys.readouterr().err


def test_bench_refuses_a_strategy_the_model_cannot_run_before_any_label_runs(tmp_path, capsys):
    """raw,scaling-ar on shapeworld-var is refused in one line before raw spends its budget (nothing is written)."""
    out = tmp_path / "b"
    assert main(["bench", "--strategies", "raw,scaling-ar", "--n", "1", "--prompts", "draw:1:3", "--limit", "1",
                 "--quiet", "--out", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("arscale: error")]
    assert len(err) == 1 and "ScalingAR steers token by token" in err[0]
    assert not (out / "raw").exists()


def test_a_shard_without_prompts_still_refuses_a_strategy_the_model_cannot_run(tmp_path, capsys):
    """tts-var on shapeworld-ar is refused by every shard, also one whose share of a short --limit is empty."""
    assert main(["bench", "--model", "shapeworld-ar", "--strategies", "tts-var", "--n", "1", "--prompts", "draw:1:3",
                 "--limit", "1", "--num-shards", "2", "--shard-index", "1", "--quiet", "--out",
                 str(tmp_path / "b")]) == 2
    assert "tts-var searches over scales" in capsys.readouterr().err


def test_generate_says_scorer_weights_go_unused_by_a_strategy_without_a_scorer(tmp_path, capsys):
    """raw uses no scorer: --scorer-weights gets the note --scorer gets, and result.json does not claim it."""
    out = tmp_path / "g"
    assert main(["generate", "a photo of two circles", "--n", "1", "--scorer-weights", str(SHIPPED_REWARD),
                 "--out", str(out)]) == 0
    assert "raw uses no scorer; --scorer-weights" in capsys.readouterr().err
    assert "scorer_weights" not in json.loads((out / "result.json").read_text())
