import pytest

from arscale.bench.manifest import check_compatible, differences
from arscale.bench.runner import blocks
from arscale.bench.sharding import resolve_shard
from arscale.bench.suites import SuitePrompt
from arscale.errors import ArscaleError

PROMPTS = [SuitePrompt(i, f"p{i}", {}) for i in range(11)]


@pytest.mark.parametrize("block", [1, 3])
def test_shards_partition_the_suite_in_whole_blocks(block):
    shards = [resolve_shard(3, i, world_size=1, rank=0) for i in range(3)]
    picked = [[p.index for p in s.select(PROMPTS, block)] for s in shards]
    assert sorted(i for part in picked for i in part) == list(range(11))
    for part in picked:
        assert {i // block for i in part}.isdisjoint({i // block for other in picked if other is not part
                                                     for i in other})
    if block == 1:
        assert picked[1] == [1, 4, 7, 10]


def test_launcher_ranks_subdivide_job_array_shards():
    seen = []
    for array_index in range(2):
        for rank in range(2):
            shard = resolve_shard(2, array_index, world_size=2, rank=rank)
            assert shard.count == 4 and shard.is_main == (rank == 0)
            seen.append(shard.index)
    assert sorted(seen) == [0, 1, 2, 3]


def test_launcher_environment_is_read(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    shard = resolve_shard()
    assert (shard.count, shard.index, shard.distributed, shard.is_main) == (2, 1, True, False)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ArscaleError, match="RANK=2"):
        resolve_shard()


@pytest.mark.parametrize("num, index", [(0, 0), (2, 2), (2, -1)])
def test_bad_shard_arguments_are_errors(num, index):
    with pytest.raises(ArscaleError, match="--num-shards|--shard-index"):
        resolve_shard(num, index, world_size=1, rank=0)


def test_blocks_follow_global_indices_not_what_is_left():
    assert [[p.index for p in b] for b in blocks(PROMPTS[3:8], 4)] == [[3], [4, 5, 6, 7]]


def test_manifest_differences_name_what_differs():
    base = {"model": {"id": "m", "weights_sha256": {"a": "1"}}, "seed": 0, "scorer": "s", "suite": {"size": 3},
            "kind": "shapeworld", "batch_prompts": 2, "strategies": {"raw": {"config": {}}},
            "hardware": {"cpu": "x"}}
    other = {**base, "hardware": {"cpu": "y"}, "strategies": {"raw": {"config": {}}, "tts-var": {"config": {}}}}
    assert differences(base, other) == []  # hardware and new labels are not identity
    changed = {**base, "seed": 1, "strategies": {"raw": {"config": {"x": 1}}}}
    diffs = differences(base, changed)
    assert any(d.startswith("seed: 0 vs 1") for d in diffs) and any("strategy raw" in d for d in diffs)
    with pytest.raises(ArscaleError, match="seed"):
        check_compatible(base, changed, "out")


def test_scorer_weights_are_identity_by_hash_not_by_path():
    base = {"model": {"id": "m"}, "seed": 0, "scorer": "s", "suite": {"size": 3}, "kind": "shapeworld",
            "batch_prompts": 2, "scorer_weights": {"weights_path": "/a", "weights_sha256": {"model.safetensors": "1"}}}
    moved = {**base, "scorer_weights": {"weights_path": "/b", "weights_sha256": {"model.safetensors": "1"}}}
    retrained = {**base, "scorer_weights": {"weights_path": "/a", "weights_sha256": {"model.safetensors": "2"}}}
    shipped = {**base, "scorer_weights": None}
    assert differences(base, moved) == []
    assert any(d.startswith("scorer_weights") for d in differences(base, retrained))
    with pytest.raises(ArscaleError, match="scorer_weights"):
        check_compatible(shipped, base, "out")


def test_the_suite_is_identified_by_its_prompts_not_its_path():
    from arscale.bench.manifest import suite_hash

    base = {"model": {"id": "m"}, "seed": 0, "scorer": "s", "kind": "shapeworld", "batch_prompts": 2,
            "suite": {"spec": "geneval:s.jsonl", "limit": 0, "size": 11, "sha256": suite_hash(PROMPTS)}}
    typed_otherwise = {**base, "suite": {**base["suite"], "spec": "geneval:/abs/s.jsonl", "limit": 4}}
    edited = [SuitePrompt(p.index, p.prompt.replace("p3", "p33"), p.metadata) for p in PROMPTS]
    changed = {**base, "suite": {**base["suite"], "sha256": suite_hash(edited)}}
    before_hashes = {**base, "suite": {"spec": "other", "limit": 0, "size": 11}}  # an older manifest
    assert differences(base, typed_otherwise) == [] and differences(base, before_hashes) == []
    assert [d.split(":")[0] for d in differences(base, changed)] == ["suite"]


def test_a_config_differs_by_its_resolved_fields_named_one_by_one():
    entry = {"strategy": "tts-var", "config": {}, "resolved": {"lam": 10.0, "potential": "max"}}
    written_out = {**entry, "config": {"lam": 10.0}}  # the default, written out: the same run
    other = {**entry, "config": {"lam": 1.0}, "resolved": {"lam": 1.0, "potential": "max"}}
    base = {"model": {"id": "m"}, "seed": 0, "scorer": "s", "suite": {}, "kind": "k", "batch_prompts": 2,
            "strategies": {"tts-var": entry}}
    assert differences(base, {**base, "strategies": {"tts-var": written_out}}) == []
    assert differences(base, {**base, "strategies": {"tts-var": other}}) == ["strategy tts-var lam: 10.0 vs 1.0"]


def test_merged_timings_are_each_shards_once_and_their_sum(tmp_path):
    from arscale.bench.manifest import shard_timings

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    found = [(a, {"timings": {"started": 5.0, "finished": 9.0, "wall_seconds": 4.0}}),
             (b, {"timings": {"started": 6.0, "finished": 12.0, "wall_seconds": 6.0}})]
    merged = shard_timings(found)
    assert (merged["wall_seconds"], merged["started"], merged["finished"]) == (10.0, 5.0, 12.0)
    again = shard_timings([*found, (tmp_path / "merged.json", {"timings": merged})])
    assert again == merged  # merging again adds nothing


@pytest.mark.parametrize("model, variable", [("var-d16", "ARSCALE_VAR_WEIGHTS"),
                                             ("infinity-2b", "ARSCALE_INFINITY_WEIGHTS"),
                                             ("llamagen-c2i-xl", "ARSCALE_LLAMAGEN_WEIGHTS"),
                                             ("llamagen-t2i-xl", "ARSCALE_LLAMAGEN_T2I_WEIGHTS")])
def test_weights_named_by_the_environment_are_hashed_too(model, variable, tmp_path, monkeypatch):
    import inspect

    from arscale.bench.manifest import model_entry
    from arscale.generators.registry import MODELS

    module, factory = MODELS[model].split(":")
    source = inspect.getsource(__import__(module, fromlist=[factory]))
    assert variable in source  # the variable the factory itself reads
    (tmp_path / "release.pth").write_bytes(b"weights")
    monkeypatch.setenv(variable, str(tmp_path))
    entry = model_entry(model, None)
    assert entry["weights_path"] == str(tmp_path) and set(entry["weights_sha256"]) == {"release.pth"}
    monkeypatch.delenv(variable)
    assert model_entry(model, None)["weights_sha256"] == {}


def test_a_large_checkpoint_is_hashed_by_samples_that_still_tell_files_apart(tmp_path, monkeypatch):
    import hashlib

    from arscale.bench import manifest as mf

    small, big, other = tmp_path / "small.json", tmp_path / "big.pth", tmp_path / "other.pth"
    small.write_bytes(b"{}")
    assert mf.sha256_file(small) == hashlib.sha256(b"{}").hexdigest()
    monkeypatch.setattr(mf, "FULL_HASH_BYTES", 1000)
    monkeypatch.setattr(mf, "SAMPLE_BYTES", 100)
    data = bytes(range(256)) * 20
    big.write_bytes(data)
    other.write_bytes(data[:2560] + b"\xff" + data[2561:])  # one byte changed in the middle sample
    assert mf.sha256_file(big).startswith("sampled:") and mf.sha256_file(big) != mf.sha256_file(other)
