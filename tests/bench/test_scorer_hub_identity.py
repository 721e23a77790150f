"""A transformers load from a hub id records its cached snapshot, and a bench hashes the hub files its scorer read
(apart from the model's): a resume onto a run whose scorer read other contents is refused, one onto a manifest
from before scorer hashes resumes."""

import json
import sys
import types

import pytest

from arscale.bench import manifest as mf
from arscale.generators import loading
from arscale.scorers import hf


class FakePretrained:
    """A transformers class whose `from_pretrained` reads nothing."""

    @classmethod
    def from_pretrained(cls, source, **kwargs):
        return cls()


# -- from_pretrained against the real huggingface_hub, on a cache laid out as it lays one out -----------------
COMMIT = "a" * 40


@pytest.fixture()
def hub_cache(tmp_path, monkeypatch):
    """An HF hub cache under tmp_path: models--owner--clip with refs/main -> one snapshot of links to blobs."""
    constants = pytest.importorskip("huggingface_hub.constants")
    cache = tmp_path / "cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # belt and braces: nothing may download (read at import)
    monkeypatch.chdir(tmp_path)  # "owner/clip" must not exist as a local folder

    def snapshot(commit, files, ref="main", repo_id="owner/clip", listing=None):
        """`listing`: the repository's files as a download of several files caches them (trees/<commit>.json)."""
        repo = cache / ("models--" + repo_id.replace("/", "--"))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        if listing is not None:
            (repo / "trees").mkdir(exist_ok=True)
            (repo / "trees" / f"{commit}.json").write_text(json.dumps(
                {"format_version": 1, "files": {f: {"size": 1, "blob_id": "0" * 40} for f in listing}}))
        (repo / "refs" / ref).write_text(commit)
        for name, content in files.items():
            blob = repo / "blobs" / f"{commit}-{name.replace('/', '-')}"
            blob.parent.mkdir(parents=True, exist_ok=True)
            link = repo / "snapshots" / commit / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if content is not None:  # None: a link whose blob is missing (an interrupted download)
                blob.write_bytes(content)
            link.symlink_to(blob)
        return repo / "snapshots" / commit

    return snapshot


def test_from_pretrained_records_the_cached_snapshot_of_a_hub_id(hub_cache, tmp_path):
    folder = hub_cache(COMMIT, {"config.json": b"{}", "model.safetensors": b"w", "tokenizer/vocab.txt": b"v",
                                "flax_model.msgpack": b"f", "missing.bin": None})
    with loading.recording_hub_files() as seen:
        hf.from_pretrained(FakePretrained, "owner/clip", what="CLIP")
    assert seen == {"owner/clip/config.json": folder / "config.json",
                    "owner/clip/model.safetensors": folder / "model.safetensors",
                    "owner/clip/tokenizer/vocab.txt": folder / "tokenizer" / "vocab.txt"}
    assert mf.sha256_file(seen["owner/clip/model.safetensors"]) == mf.sha256_file(folder / "model.safetensors")


def test_from_pretrained_records_a_snapshot_the_cache_listing_calls_incomplete(hub_cache):
    # transformers fetched the config and weights only; the cached listing of the repository names more files
    folder = hub_cache(COMMIT, {"config.json": b"{}", "model.safetensors": b"w"},
                       listing=["config.json", "model.safetensors", "flax_model.msgpack", "tf_model.h5"])
    with loading.recording_hub_files() as seen:
        hf.from_pretrained(FakePretrained, "owner/clip", what="CLIP")
    assert seen == {"owner/clip/config.json": folder / "config.json",
                    "owner/clip/model.safetensors": folder / "model.safetensors"}


def test_from_pretrained_records_a_repository_named_without_its_owner(hub_cache):
    folder = hub_cache(COMMIT, {"vocab.txt": b"v"}, repo_id="bert-base-uncased")
    with loading.recording_hub_files() as seen:
        hf.from_pretrained(FakePretrained, "bert-base-uncased", what="BERT tokenizer")
    assert seen == {"bert-base-uncased/vocab.txt": folder / "vocab.txt"}


def test_from_pretrained_records_the_revision_it_was_given(hub_cache):
    hub_cache(COMMIT, {"config.json": b"main"})
    tagged = hub_cache("b" * 40, {"config.json": b"v1", "model.safetensors": b"w1"}, ref="v1")
    with loading.recording_hub_files() as seen:
        hf.from_pretrained(FakePretrained, "owner/clip", what="CLIP", revision="v1")
    assert seen == {"owner/clip/config.json": tagged / "config.json",
                    "owner/clip/model.safetensors": tagged / "model.safetensors"}


def test_from_pretrained_records_nothing_outside_a_block_for_a_folder_or_without_a_cache(hub_cache, tmp_path):
    hub_cache(COMMIT, {"config.json": b"{}"})
    local = tmp_path / "local-model"
    local.mkdir()
    (local / "config.json").write_text("{}")
    hf.from_pretrained(FakePretrained, "owner/clip", what="CLIP")  # no block open: nothing to record into
    with loading.recording_hub_files() as seen:
        hf.from_pretrained(FakePretrained, str(local), what="CLIP")  # a local folder is the caller's to hash
        hf.from_pretrained(FakePretrained, "owner/not-cached", what="CLIP")  # not in the cache: no crash
    assert seen == {}


def test_from_pretrained_looks_in_the_cache_only_inside_a_block(hub_cache, monkeypatch):
    hub_cache(COMMIT, {"config.json": b"{}"})
    calls = []
    monkeypatch.setattr(hf, "record_snapshot", lambda *a, **k: calls.append(a))
    hf.from_pretrained(FakePretrained, "owner/clip", what="CLIP")
    assert calls == []


def test_from_pretrained_looks_in_the_cache_dir_it_was_given(hub_cache, tmp_path, monkeypatch):
    from huggingface_hub import constants

    folder = hub_cache(COMMIT, {"config.json": b"{}"})
    custom = constants.HF_HUB_CACHE
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with loading.recording_hub_files() as seen:
        hf.from_pretrained(FakePretrained, "owner/clip", what="CLIP", cache_dir=custom)
    assert seen == {"owner/clip/config.json": folder / "config.json"}


# -- bench: the scorer's hub files -----------------------------------------------------------------------------
@pytest.fixture()
def fake_hub(tmp_path, monkeypatch):
    """A `huggingface_hub` whose repositories are folders tmp_path/hub/<owner>/<repo>, fetched file by file or
    as a cached snapshot (local_files_only: nothing may download)."""
    hub = tmp_path / "hub"

    def hf_hub_download(repo_id, filename):
        path = hub / repo_id / filename
        if not path.is_file():
            raise FileNotFoundError(f"404 {repo_id}/{filename}")
        return str(path)

    def snapshot_download(repo_id, *, local_files_only=False, revision=None, cache_dir=None):
        assert local_files_only, "recording a snapshot must not download"
        if not (hub / repo_id).is_dir():
            raise FileNotFoundError(f"{repo_id} is not in the cache")
        return str(hub / repo_id)

    monkeypatch.setitem(sys.modules, "huggingface_hub",
                        types.SimpleNamespace(hf_hub_download=hf_hub_download, snapshot_download=snapshot_download))
    monkeypatch.chdir(tmp_path)  # "owner/repo" must not exist as a local folder

    def publish(repo, filename, content: bytes):
        path = hub / repo / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    return publish


def load_fake_scorer(device="cpu"):
    """A released scorer's factory: a head file fetched by name and a tokenizer through transformers."""
    from arscale.scorers.shapeworld import load_reward

    hf.hub_file("owner/scorer", "head.pt", what="fake head")
    hf.from_pretrained(FakePretrained, "owner/tokenizer", what="fake tokenizer")
    return load_reward(device=device)


FAKE_LOADERS = """
from arscale.generators import loading
from arscale.generators.registry import load_generator
from arscale.scorers import hf


class T5:
    @classmethod
    def from_pretrained(cls, source, **kwargs):
        return cls()


def from_hub(weights=None, device="cpu", **kw):  # a released model with a T5 text encoder from the hub
    loading.resolve(weights, "w.pt")
    hf.from_pretrained(T5, "owner/t5", what="T5 encoder")
    return load_generator("shapeworld-ar", device=device)
"""


@pytest.fixture()
def fake_scorer(fake_hub, tmp_path, monkeypatch):
    from arscale.generators.registry import MODELS
    from arscale.scorers.base import SCORERS
    from arscale.search import rollout

    monkeypatch.setattr(rollout, "_SCORERS", {})  # each test loads its scorer afresh, from its own hub
    monkeypatch.setitem(SCORERS, "fake-hub-scorer", load_fake_scorer)
    (tmp_path / "fake_scorer_models.py").write_text(FAKE_LOADERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_scorer_models", raising=False)
    monkeypatch.setitem(MODELS, "fake-t5-model", "fake_scorer_models:from_hub")
    fake_hub("owner/scorer", "head.pt", b"head")
    fake_hub("owner/tokenizer", "tokenizer.json", b"{}")
    fake_hub("owner/tokenizer", "vocab.txt", b"one")
    fake_hub("owner/tokenizer", "flax_model.msgpack", b"not read by torch")
    return fake_hub


def _bench(out, *extra, model=("--model", "shapeworld-ar")):
    from arscale.cli import main

    return main(["bench", *model, "--prompts", "draw:1:5", "--limit", "1", "--n", "1", "--strategies", "raw",
                 "--scorer", "fake-hub-scorer", "--quiet", "--out", str(out), *extra])


SCORER_FILES = ["owner/scorer/head.pt", "owner/tokenizer/tokenizer.json", "owner/tokenizer/vocab.txt"]


def test_bench_hashes_the_scorers_hub_files_and_refuses_a_resume_after_they_changed(fake_scorer, tmp_path, capsys):
    out = tmp_path / "a"
    assert _bench(out) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["scorer_hub_sha256"]) == SCORER_FILES
    assert not any(key.startswith("owner/") for key in manifest["model"]["weights_sha256"])  # the shipped model's
    assert _bench(out, "--resume") == 0
    fake_scorer("owner/tokenizer", "vocab.txt", b"two")  # the tokenizer's repository moved on
    capsys.readouterr()
    assert _bench(out, "--resume") != 0
    error = [line for line in capsys.readouterr().err.splitlines() if "different run" in line]
    assert len(error) == 1 and "use another --out" in error[0]
    assert "scorer fake-hub-scorer: the hub files differ: owner/tokenizer/vocab.txt;" in error[0]
    assert json.loads((out / "manifest.json").read_text())["scorer_hub_sha256"] == manifest["scorer_hub_sha256"]


def test_a_manifest_from_before_scorer_hashes_resumes_and_gains_them(fake_scorer, tmp_path, monkeypatch):
    from arscale.search import rollout

    out = tmp_path / "a"
    assert _bench(out) == 0
    path = out / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["scorer_hub_sha256"]
    path.write_text(json.dumps(manifest))
    fake_scorer("owner/scorer", "head.pt", b"another head")
    monkeypatch.setattr(rollout, "_SCORERS", {})  # as in a new process: the scorer loads again
    assert _bench(out, "--resume") == 0
    hashes = json.loads(path.read_text())["scorer_hub_sha256"]
    assert sorted(hashes) == SCORER_FILES
    assert hashes["owner/scorer/head.pt"] == mf.sha256_file(tmp_path / "hub" / "owner/scorer/head.pt")


def test_the_scorers_files_stay_out_of_a_hub_models_hashes(fake_scorer, tmp_path):
    fake_scorer("owner/model", "w.pt", b"weights")
    fake_scorer("owner/t5", "config.json", b"{}")
    fake_scorer("owner/t5", "model.safetensors", b"t5")
    out = tmp_path / "b"
    assert _bench(out, model=("--model", "fake-t5-model", "--model-weights", "owner/model")) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    # the text encoder is loaded with the model, so its files are the model's
    assert sorted(manifest["model"]["weights_sha256"]) == ["owner/model/w.pt", "owner/t5/config.json",
                                                           "owner/t5/model.safetensors"]
    assert sorted(manifest["scorer_hub_sha256"]) == SCORER_FILES
    # a manifest from before transformers loads were recorded has the checkpoint alone: it resumes
    manifest["model"]["weights_sha256"] = {"owner/model/w.pt": manifest["model"]["weights_sha256"]["owner/model/w.pt"]}
    (out / "manifest.json").write_text(json.dumps(manifest))
    weights = ("--model", "fake-t5-model", "--model-weights", "owner/model")
    assert _bench(out, "--resume", model=weights) == 0
    fake_scorer("owner/model", "w.pt", b"other weights")
    assert _bench(out, "--resume", model=weights) != 0  # a file both runs read changed: refused


def test_every_open_block_records(fake_hub):
    fake_hub("owner/r", "w.pt", b"w")
    with loading.recording_hub_files() as outer, loading.recording_hub_files() as inner:
        loading.resolve("owner/r", "w.pt")
    assert outer == inner and list(outer) == ["owner/r/w.pt"]


def test_a_shipped_scorer_writes_no_hub_hashes(tmp_path):
    from arscale.cli import main

    out = tmp_path / "s"
    assert main(["bench", "--model", "shapeworld-ar", "--prompts", "draw:1:5", "--limit", "1", "--n", "1",
                 "--strategies", "raw", "--quiet", "--out", str(out)]) == 0
    assert mf.SCORER_HUB_KEY not in json.loads((out / "manifest.json").read_text())


def test_a_resume_whose_scorer_records_nothing_keeps_the_hashes(fake_scorer, tmp_path, monkeypatch):
    from arscale.scorers.base import SCORERS
    from arscale.scorers.shapeworld import load_reward
    from arscale.search import rollout

    out = tmp_path / "a"
    assert _bench(out) == 0
    hashes = json.loads((out / "manifest.json").read_text())["scorer_hub_sha256"]
    monkeypatch.setitem(SCORERS, "fake-hub-scorer", lambda device="cpu": load_reward(device=device))  # now local
    monkeypatch.setattr(rollout, "_SCORERS", {})
    assert _bench(out, "--resume") == 0
    assert json.loads((out / "manifest.json").read_text())["scorer_hub_sha256"] == hashes


def test_merge_refuses_shards_whose_scorers_disagree_behind_one_without_hashes(tmp_path):
    from arscale.bench.merge import merge
    from arscale.errors import ArscaleError

    base = {"model": {"id": "shapeworld-ar", "weights_sha256": {}}, "scorer": "clip", "seed": 0, "ns": [1],
            "strategies": {}}
    for name, hashes in (("a", None), ("b", {"owner/clip/model.safetensors": "aaa"}),
                         ("c", {"owner/clip/model.safetensors": "bbb"})):
        (tmp_path / name).mkdir()
        manifest = base | ({mf.SCORER_HUB_KEY: hashes} if hashes else {})
        (tmp_path / name / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArscaleError, match="scorer: the hub files differ"):
        merge([tmp_path / "a", tmp_path / "b", tmp_path / "c"], tmp_path / "merged")


def test_shards_whose_scorers_read_other_files_do_not_merge():
    def shard(hashes):
        manifest = {"model": {"id": "shapeworld-var", "weights_sha256": {}}, "scorer": "clip"}
        return manifest | ({mf.SCORER_HUB_KEY: hashes} if hashes is not None else {})

    one = shard({"owner/clip/model.safetensors": "aaa", "owner/clip/config.json": "ccc"})
    assert mf.differences(one, shard({"owner/clip/model.safetensors": "bbb"})) == [
        "scorer: the hub files differ (owner/clip/model.safetensors)"]
    assert mf.differences(one, shard(None)) == []  # from before scorer hashes, or not loaded yet
    # the cache gained a file the scorer does not read: the files both recorded agree
    assert mf.differences(one, shard({**one[mf.SCORER_HUB_KEY], "owner/clip/pytorch_model.bin": "ddd"})) == []


def test_hub_models_differ_only_in_files_both_recorded():
    def manifest(hashes):
        return {"model": {"id": "infinity-2b", "weights_from_hub": True, "weights_sha256": hashes}}

    one = manifest({"owner/model/w.pth": "1", "google/t5/config.json": "a"})
    more = manifest({**one["model"]["weights_sha256"], "google/t5/pytorch_model.bin": "b"})  # a fuller cache
    assert mf.differences(one, more) == []
    moved = manifest({"owner/model/w.pth": "2", "google/t5/config.json": "a"})
    assert mf.differences(one, moved) == ["model: infinity-2b's weights differ (owner/model/w.pth)"]


def test_a_scorer_named_in_a_strategy_config_is_hashed_too(fake_scorer, tmp_path):
    from arscale.cli import main

    out = tmp_path / "c"
    assert main(["bench", "--model", "shapeworld-ar", "--prompts", "draw:1:5", "--limit", "1", "--n", "2",
                 "--strategies", "best-of-n", "--config", 'best-of-n={"reward": "fake-hub-scorer"}', "--scorer", "",
                 "--quiet", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["strategies"]["best-of-n"]["reward_used"] == "fake-hub-scorer"
    assert sorted(manifest["scorer_hub_sha256"]) == SCORER_FILES
