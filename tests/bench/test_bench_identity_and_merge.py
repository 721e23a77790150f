"""Run identity (manifest.py) and shard merging (merge.py): what a suite's hash covers, older manifests, the
manifest a resume keeps, and the timings a merge keeps."""
import json

from arscale.bench import manifest as mf
from arscale.bench import merge as mg
from arscale.bench.geneval_layout import PNG_END
from arscale.bench.suites import SuitePrompt

SUITE = [SuitePrompt(i, "a photo of a circle", {"tag": "single_object", "include": [{"class": "circle", "count": 1}]})
         for i in range(3)]


def test_the_suite_hash_covers_each_prompts_metadata_and_index():
    base = mf.suite_hash(SUITE)
    judged_otherwise = [SUITE[0], SuitePrompt(1, SUITE[1].prompt, {**SUITE[1].metadata, "tag": "counting"}), SUITE[2]]
    assert mf.suite_hash(judged_otherwise) != base  # same text, judged by other metadata: another suite
    shifted = [SuitePrompt(sp.index + 1, sp.prompt, sp.metadata) for sp in SUITE]
    assert mf.suite_hash(shifted) != base  # seeds derive from the index: another suite
    assert mf.suite_hash(list(SUITE)) == base


def _manifest(**extra):
    return {"model": {"id": "m"}, "seed": 0, "scorer": None, "suite": {"size": 2, "sha256": "h"}, "kind": "plain",
            "batch_prompts": 1, "cost_accounting": mf.COST_ACCOUNTING, "ns": [1],
            "strategies": {"raw": {"strategy": "raw", "config": {}}},
            "timings": {"started": 1.0, "finished": 2.0, "wall_seconds": 1.0}, **extra}


def test_a_manifest_without_a_layout_is_a_geneval_run():
    older = _manifest()  # no "layout" key
    assert mf.differences(older, _manifest(layout="geneval")) == []
    assert mf.differences(_manifest(layout="geneval"), older) == []


def test_another_layout_is_another_run():
    assert [d.split(":")[0] for d in mf.differences(_manifest(layout="geneval"), _manifest(layout="dpg"))] == ["layout"]


def test_a_resume_keeps_the_new_runs_entry_for_a_label():
    old = _manifest()
    new = _manifest(strategies={"raw": {"strategy": "raw", "config": {}, "resolved": {"temperature": 1.0}}})
    assert mf.differences(old, new) == []
    assert mf.combine(old, new)["strategies"]["raw"] == new["strategies"]["raw"]


def test_where_the_weights_lie_is_no_identity():
    here = _manifest(model={"id": "m", "weights_path": "/node0/w", "weights_sha256": {"model.safetensors": "1"}})
    there = _manifest(model={"id": "m", "weights_path": "/node1/w", "weights_sha256": {"model.safetensors": "1"}})
    assert mf.differences(here, there) == []
    retrained = _manifest(model={"id": "m", "weights_path": "/node0/w", "weights_sha256": {"model.safetensors": "2"}})
    assert mf.differences(here, retrained) == ["model: m's weights differ (model.safetensors)"]


def test_a_resume_may_run_fewer_labels():
    both = _manifest(strategies={"raw": {"strategy": "raw", "config": {}},
                                 "best-of-n": {"strategy": "best-of-n", "config": {}}})
    assert mf.differences(both, _manifest()) == [] and mf.differences(_manifest(), both) == []


def _shard(root, k, count, **extra):
    root.mkdir()
    mf.write_manifest(root / mf.manifest_name(count, k), _manifest(layout="geneval", **extra))
    d = root / "raw" / "n1" / f"{k:05d}"
    (d / "samples").mkdir(parents=True)
    (d / "metadata.jsonl").write_text(json.dumps({"tag": "single_object", "prompt": f"p{k}"}))
    (d / "samples" / "00000.png").write_bytes(b"png" + PNG_END)  # a whole PNG ends so (`is_whole`)
    (d / "record.json").write_text(json.dumps({"index": k, "prompt": f"p{k}", "correct": None, "cost": {}}))
    return root


def test_the_merged_manifest_keeps_each_shards_timings_and_their_sum(tmp_path):
    shards = [_shard(tmp_path / f"s{k}", k, 2) for k in range(2)]
    (summary,) = mg.merge(shards, tmp_path / "out")
    timings = json.loads((tmp_path / "out" / "manifest.json").read_text())["timings"]
    assert len(timings["shards"]) == 2 and timings["wall_seconds"] == 2.0
    assert summary["prompts_done"] == 2
