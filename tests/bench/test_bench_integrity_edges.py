"""What keeps large bench runs right, where the other bench tests left gaps (found by a mutation audit): merging
shards one at a time or in part, launcher ranks inside array shards, every identity key, resumes, per-prompt cost
shares, tag-averaged accuracy, and the numbers table.md prints."""
import json

import pytest

from arscale.bench import manifest as mf
from arscale.bench import merge as mg
from arscale.bench.geneval_layout import PNG_END
from arscale.bench.suites import SuitePrompt
from arscale.errors import ArscaleError

SUITE = [SuitePrompt(i, f"p{i}", {"tag": "single_object", "prompt": f"p{i}"}) for i in range(4)]


def _manifest(array_index, shards=2, **extra):
    return {"model": {"id": "m"}, "seed": 0, "scorer": None, "suite": {"size": 4, "sha256": "h"}, "kind": "plain",
            "batch_prompts": 1, "layout": "geneval", "cost_accounting": mf.COST_ACCOUNTING, "ns": [1],
            "strategies": {"raw": {"strategy": "raw", "config": {}}},
            "shard": {"array_shards": shards, "array_index": array_index},
            "timings": {"started": 1.0, "finished": 2.0, "wall_seconds": 1.0}, **extra}


def _prompt(root, i, record=True):
    d = root / "raw" / "n1" / f"{i:05d}"
    (d / "samples").mkdir(parents=True)
    (d / "metadata.jsonl").write_text(json.dumps({"tag": "single_object", "prompt": f"p{i}"}) + "\n")
    (d / "samples" / "00000.png").write_bytes(b"png" + PNG_END)  # a whole PNG ends so (`is_whole`)
    if record:
        (d / "record.json").write_text(json.dumps({"index": i, "prompt": f"p{i}", "correct": None, "reward": None,
                                                   "cost": {}}))


def _shard(tmp_path, k, half_written=()):
    s = tmp_path / f"shard{k}"
    s.mkdir()
    mf.write_manifest(s / mf.manifest_name(2, k), _manifest(k))
    for i in range(4):
        if i % 2 == k:
            _prompt(s, i, record=i not in half_written)
    return s


def test_an_interrupted_copy_never_leaves_a_record(tmp_path, monkeypatch):
    src = tmp_path / "src"
    _prompt(src, 0)
    writes = []

    def flaky(target, data):
        if writes:
            raise OSError("disk full")
        writes.append(target)
        target.write_bytes(data)

    monkeypatch.setattr(mg, "atomic_write_bytes", flaky)
    with pytest.raises(OSError):
        prompt = src / "raw" / "n1" / "00000"
        mg._copy_prompt(prompt, tmp_path / "dst", (prompt / "record.json").read_bytes())
    assert not (tmp_path / "dst" / "record.json").exists()


def test_merge_copies_the_record_it_checked(tmp_path, monkeypatch):
    """A record rewritten between its check and its copy (a bench still running in the shard) is not copied
    unchecked: the bytes checked are the bytes written."""
    src = tmp_path / "src"
    src.mkdir()
    mf.write_manifest(src / mf.MANIFEST_FILE, _manifest(0, shards=1))
    _prompt(src, 0)
    record = src / "raw" / "n1" / "00000" / "record.json"
    checked = record.read_bytes()
    real_read_record = mg.read_record

    def then_rewritten(folder, data=None):
        value = real_read_record(folder, data)
        record.write_text("{broken")
        return value

    monkeypatch.setattr(mg, "read_record", then_rewritten)
    mg.merge([src], tmp_path / "out")
    assert (tmp_path / "out" / "raw" / "n1" / "00000" / "record.json").read_bytes() == checked


def test_a_half_written_prompt_in_a_shard_is_left_behind(tmp_path):
    s0 = _shard(tmp_path, 0, half_written=(2,))
    (summary,) = mg.merge([s0], tmp_path / "out")
    assert summary["prompts_done"] == 1 and not (tmp_path / "out" / "raw" / "n1" / "00002").exists()


def test_merging_shards_one_at_a_time_keeps_every_source(tmp_path):
    s0, s1, out = _shard(tmp_path, 0), _shard(tmp_path, 1), tmp_path / "out"
    mg.merge([s0], out)
    (summary,) = mg.merge([s1], out)
    merged = json.loads((out / "manifest.json").read_text())
    assert len(merged["shard"]["merged_from"]) == 2 and summary["prompts_done"] == 4


def test_a_partial_merge_still_counts_the_whole_suite(tmp_path):
    (summary,) = mg.merge([_shard(tmp_path, 0)], tmp_path / "out")
    assert (summary["prompts_done"], summary["prompts_total"]) == (2, 4)


def test_launcher_ranks_split_their_own_array_shard():
    from arscale.bench.sharding import resolve_shard

    prompts = [SuitePrompt(i, "p", {}) for i in range(24)]
    for a in range(2):
        alone = [p.index for p in resolve_shard(2, a, world_size=1, rank=0).select(prompts, 2)]
        ranks = sorted(p.index for r in range(3) for p in resolve_shard(2, a, world_size=3, rank=r).select(prompts, 2))
        assert ranks == alone


def test_launcher_environment_edges(monkeypatch):
    from arscale.bench.sharding import launcher_rank

    monkeypatch.setenv("WORLD_SIZE", "")
    monkeypatch.setenv("RANK", "")
    assert launcher_rank() == (1, 0)  # set but empty: as if unset
    monkeypatch.setenv("WORLD_SIZE", "0")
    with pytest.raises(ArscaleError, match="WORLD_SIZE=0"):
        launcher_rank()


def test_official_layout_folders_are_merged(tmp_path):
    s0 = _shard(tmp_path, 0)
    (s0 / "raw" / "n1" / "dpg").mkdir()
    (s0 / "raw" / "n1" / "dpg" / "00000.png").write_bytes(b"grid" + PNG_END)
    mg.merge([s0], tmp_path / "out")
    assert (tmp_path / "out" / "raw" / "n1" / "dpg" / "00000.png").read_bytes() == b"grid" + PNG_END


def test_merging_into_a_folder_of_another_run_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mf.write_manifest(out / "manifest.json", _manifest(0, shards=1, seed=1))
    with pytest.raises(ArscaleError, match="seed: 1 vs 0|seed: 0 vs 1"):
        mg.merge([_shard(tmp_path, 0)], out)


@pytest.mark.parametrize("key, value", [("model", {"id": "other"}), ("scorer", "clip"), ("scorer_weights", {"x": 1}),
                                        ("seed", 7), ("suite", {"size": 4, "sha256": "other"}), ("kind", "geneval"),
                                        ("batch_prompts", 8), ("cost_accounting", 3), ("layout", "dpg")])
def test_every_identity_key_is_compared(key, value):
    base = _manifest(0)
    diffs = mf.differences(base, {**base, key: value})
    assert [d.split(" ")[0].rstrip(":") for d in diffs] == [key]
    with pytest.raises(ArscaleError, match=key):
        mf.check_compatible(base, {**base, key: value}, "out")


def test_contiguous_batches_hold_at_most_size():
    from arscale.bench.runner import contiguous_batches

    assert [len(b) for b in contiguous_batches(SUITE, 2)] == [2, 2]


def test_a_batch_cost_is_shared_evenly_walls_included():
    from arscale.bench.runner import _cost_share

    assert _cost_share({"transformer_flops": 6.0, "wall": {"model": 4.0}}, 2) == {"transformer_flops": 3.0,
                                                                                    "wall": {"model": 2.0}}


def test_summaries_are_ordered_by_numeric_n(tmp_path):
    from arscale.bench.runner import collect_summaries

    for n in (16, 2):
        (tmp_path / "raw" / f"n{n}").mkdir(parents=True)
        (tmp_path / "raw" / f"n{n}" / "summary.json").write_text(json.dumps({"label": "raw", "n": n}))
    assert [s["n"] for s in collect_summaries(tmp_path)] == [2, 16]


def test_prompts_total_counts_the_suite_not_the_finished(tmp_path):
    from arscale.bench.runner import RunSpec, summarize_run

    _prompt(tmp_path, 0)
    s = summarize_run(RunSpec("raw", "raw"), 1, tmp_path / "raw" / "n1", SUITE, seed=0, model="m")
    assert (s["prompts_done"], s["prompts_total"]) == (1, 4)


def _rec(reward=None, **cost):
    return {"reward": reward, "cost": cost}


def test_reward_se_is_the_sample_se():
    from arscale.bench.metrics import _mean_se

    assert _mean_se([0.0, 1.0]) == pytest.approx((0.5, 0.5))


def test_summaries_count_zero_rewards_and_scorer_flops():
    from arscale.bench.metrics import summarize

    s = summarize([_rec(0.0, scorer_flops=2.0, total_wall=0.0), _rec(1.0, scorer_flops=4.0, total_wall=0.0)], [])
    assert s["mean_reward"] == pytest.approx(0.5)  # a reward of 0.0 is a reward
    assert s["cost_per_prompt"]["flops"] == pytest.approx(3.0)  # scorer FLOPs count
    assert s["cost_per_prompt"]["overhead_fraction"] == 0.0  # no wall time: no division by zero


def test_overall_is_the_mean_over_tags_not_images():
    from arscale.bench.geneval_layout import compute_summary

    rows = [{"tag": "single_object", "correct": True, "prompt": f"a{i}", "metadata": str(i)} for i in range(3)]
    rows.append({"tag": "counting", "correct": False, "prompt": "b", "metadata": "b"})
    assert compute_summary(rows)["overall"] == pytest.approx(0.5)


def test_the_numbers_table_md_prints():
    from arscale.bench.table import _paired, flops_unit, format_table, percent

    assert flops_unit(1.5e11) == (1e12, "TFLOPs") and flops_unit(1.5e8) == (1e9, "GFLOPs")
    assert percent(0.1234) == "12.3" and percent(None) == "–"
    assert _paired({"prompts": 3, "diff": 0.05, "diff_se": 0.02}) == "+5.0 ± 2.0"
    a = {"label": "a", "n": 1, "prompts_done": 1, "overall": 0.5, "overall_se": 0.1,
         "tags": {"single_object": {"accuracy": 0.5}}, "cost_per_prompt": {"overhead_fraction": 0.25}}
    b = {**a, "label": "b", "tags": {"counting": {"accuracy": 0.5}}}
    row_a = format_table([a, b]).splitlines()[2]
    assert "| 50.0 ± 10.0 | 50.0 | – |" in row_a and row_a.endswith("| 25.0 % |")


def test_a_later_label_that_differs_is_named_after_an_equal_one():
    base = _manifest(0, strategies={"raw": {"strategy": "raw", "config": {}},
                                    "tts-var": {"strategy": "tts-var", "config": {"lam": 1.0}}})
    other = {**base, "strategies": {**base["strategies"], "tts-var": {"strategy": "tts-var", "config": {"lam": 2.0}}}}
    assert mf.differences(base, other) == ["strategy tts-var lam: 1.0 vs 2.0"]


def test_a_resume_keeps_the_union_of_labels_and_budgets():
    old = {"strategies": {"raw": {}}, "ns": [1, 2], "timings": {"started": 1.0}}
    new = {"strategies": {"best-of-n": {}}, "ns": [4, 2], "timings": {"started": 5.0}}
    out = mf.combine(old, new)
    assert out["ns"] == [1, 2, 4] and set(out["strategies"]) == {"raw", "best-of-n"}
    assert out["timings"] == {"started": 1.0, "resumed": [5.0]}
