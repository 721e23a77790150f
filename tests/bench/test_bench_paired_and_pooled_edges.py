"""Paired comparisons (`arscale compare`) and pooled draws (`--pooled`): which raw run stands for every N, draws
whose manifests differ in their suite only (README "Large runs"), and table.md's row order and FLOPs unit."""
import json
import math

from bench_records import write_records

from arscale.bench.paired import against_baseline, load_records, run_differences
from arscale.bench.table import format_table, label_order
from arscale.cli import main


def test_raw_sampling_meets_other_budgets_at_its_smallest_n(tmp_path):
    write_records(tmp_path, "raw", 1, [True, False, False])
    write_records(tmp_path, "raw", 4, [False, False, False])
    write_records(tmp_path, "best-of-n", 2, [True, True, False])
    write_records(tmp_path, "best-of-n", 4, [True, True, True])
    pairs = against_baseline(load_records(tmp_path))
    assert pairs[("best-of-n", 2)]["baseline_n"] == 1 and math.isclose(pairs[("best-of-n", 2)]["diff"], 1 / 3)
    assert pairs[("best-of-n", 4)]["baseline_n"] == 4 and math.isclose(pairs[("best-of-n", 4)]["diff"], 1.0)


def _manifest(spec: str, sha: str) -> dict:
    return {"model": {"id": "shapeworld-ar", "weights_sha256": {"model.safetensors": "1"}}, "seed": 0,
            "scorer": "shapeworld-reward", "kind": "shapeworld", "batch_prompts": 8, "layout": "geneval",
            "suite": {"spec": spec, "limit": 0, "size": 4, "sha256": sha}, "strategies": {}}


def test_draws_of_other_prompts_pool_and_compare_without_a_note(tmp_path, capsys):
    # independent draws differ in their suite by design: pooling them is the point, not a different setup
    first, second = tmp_path / "first", tmp_path / "second"
    write_records(first, "raw", 8, [True, False, False, False], prompt="first")
    write_records(first, "best-of-n", 8, [True, True, True, False], prompt="first")
    write_records(second, "raw", 8, [True, True, False, False], prompt="second")
    write_records(second, "best-of-n", 8, [True, True, True, True], prompt="second")
    (first / "manifest.json").write_text(json.dumps(_manifest("draw:1:11", "a")))
    other = {**_manifest("draw:1:12", "b"), "batch_prompts": 4, "layout": "dpg"}
    (second / "manifest.json").write_text(json.dumps(other))
    assert run_differences(first, second) == []
    assert main(["compare", str(first), str(second), "--pooled"]) == 0
    captured = capsys.readouterr()
    assert "not a bench of the same setup" not in captured.err and "differs from" not in captured.err
    assert "| best-of-n | 8 | raw N=8 | 2 | 8 |" in captured.out


def test_rows_put_raw_first_built_ins_with_their_variants_then_other_labels():
    labels = ["mine", "tts-var@lam1", "raw", "best-of-n", "tts-var", "another"]
    assert sorted(labels, key=label_order) == ["raw", "best-of-n", "tts-var", "tts-var@lam1", "another", "mine"]


def test_the_flops_unit_fits_the_largest_column_whichever_it_is():
    summary = {"label": "raw", "n": 1, "prompts_done": 1, "overall": 0.5, "overall_se": 0.1, "tags": {},
               "cost_per_prompt": {"transformer_flops": 5e7, "decode_flops": 2e11, "scorer_flops": 0}}
    table = format_table([summary])
    assert "TFLOPs/prompt" in table and "| 0.0000500 + 0.200 + 0 |" in table
