"""Weights named by a hub id are hashed once the model has loaded them, and a resume onto a run made with other
hub files is refused, as for a local weights folder."""

import json
import sys
import types

import pytest

from arscale.bench import manifest as mf
from arscale.errors import ArscaleError
from arscale.generators import loading


@pytest.fixture()
def fake_hub(tmp_path, monkeypatch):
    """A `huggingface_hub` whose downloads are files under tmp_path/<repo>/<file>."""
    def hf_hub_download(repo_id, filename):
        path = tmp_path / "hub" / repo_id / filename
        if not path.is_file():
            raise FileNotFoundError(f"404 {repo_id}/{filename}")
        return str(path)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=hf_hub_download))
    monkeypatch.chdir(tmp_path)  # "owner/repo" must not exist as a local folder

    def publish(repo, filename, content: bytes):
        path = tmp_path / "hub" / repo / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    return publish


def test_resolve_records_hub_files_only_inside_the_block(fake_hub, tmp_path):
    fake_hub("owner/model", "weights.pt", b"one")
    local = tmp_path / "local.pt"
    local.write_bytes(b"x")
    with loading.recording_hub_files() as seen:
        path = loading.resolve("owner/model", "weights.pt")
        loading.resolve(str(local))  # a local file is not a hub file
    assert seen == {"owner/model/weights.pt": path} and path.read_bytes() == b"one"
    with loading.recording_hub_files() as later:
        pass
    loading.resolve("owner/model", "weights.pt")  # outside any block: recorded nowhere
    assert later == {}


def test_a_hub_id_is_marked_and_hashed_after_loading(fake_hub):
    entry = mf.model_entry("llamagen-c2i-b", "owner/model")
    assert entry["weights_from_hub"] is True and entry["weights_sha256"] == {}
    fake_hub("owner/model", "weights.pt", b"one")
    manifest = {"model": entry}
    with loading.recording_hub_files() as seen:
        loading.resolve("owner/model", "weights.pt")
    mf.add_hub_hashes(manifest, seen, [], "runs/x")
    assert list(manifest["model"]["weights_sha256"]) == ["owner/model/weights.pt"]


def test_a_local_folder_is_not_a_hub_id(tmp_path):
    (tmp_path / "owner" / "model").mkdir(parents=True)
    assert "weights_from_hub" not in mf.model_entry("llamagen-c2i-b", str(tmp_path / "owner" / "model"))
    assert not loading.is_hub_id(tmp_path / "owner" / "model") and not loading.is_hub_id("./owner/model")
    assert not loading.is_hub_id("~nobody-at-all-here/model")  # a missing home folder is a path, not a hub id
    assert loading.is_hub_id("FoundationVision/LlamaGen")


def _manifest(hashes):
    return {"model": {"id": "llamagen-c2i-b", "revision": None, "weights_path": "owner/model",
                      "weights_sha256": hashes, "weights_from_hub": True}}


def test_a_resume_before_loading_compares_everything_but_the_hub_hashes():
    loaded = _manifest({"owner/model/weights.pt": "aaa"})
    assert mf.differences(loaded, _manifest({})) == []  # the resume's manifest, before its model loaded
    other = _manifest({"owner/model/weights.pt": "bbb"})
    assert any("weights differ" in d for d in mf.differences(loaded, other))  # e.g. two shards being merged
    renamed = _manifest({})
    renamed["model"]["id"] = "llamagen-c2i-l"
    assert mf.differences(loaded, renamed)


def test_a_resume_onto_other_hub_files_is_refused(fake_hub, tmp_path):
    fake_hub("owner/model", "weights.pt", b"new content")
    with loading.recording_hub_files() as seen:
        loading.resolve("owner/model", "weights.pt")
    earlier = _manifest({"owner/model/weights.pt": "0" * 64})
    manifest = _manifest({})
    with pytest.raises(ArscaleError, match="hub files differ: owner/model/weights.pt"):
        mf.add_hub_hashes(manifest, seen, [(tmp_path / "bench_manifest.json", earlier)], "runs/x")
    same = _manifest({"owner/model/weights.pt": mf.sha256_file(seen["owner/model/weights.pt"])})
    mf.add_hub_hashes(manifest, seen, [(tmp_path / "bench_manifest.json", same)], "runs/x")
    assert manifest["model"]["weights_sha256"] == same["model"]["weights_sha256"]


FAKE_LOADERS = """
from arscale.generators import loading
from arscale.generators.registry import load_generator


def from_hub(weights=None, device="cpu", **kw):  # a released model's loader: checkpoint and tokenizer
    loading.resolve(weights, "w.pt")
    loading.resolve(weights, "vq.pt", beside=True)
    return load_generator("shapeworld-ar", device=device)


def local_with_hub_companion(weights=None, device="cpu", **kw):
    loading.resolve(weights, "w.pt")
    loading.resolve("owner/companion", "vq.pt")
    return load_generator("shapeworld-ar", device=device)
"""


@pytest.fixture()
def fake_models(tmp_path, monkeypatch):
    from arscale.generators.registry import MODELS

    (tmp_path / "fake_hub_models.py").write_text(FAKE_LOADERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(MODELS, "fake-hub-model", "fake_hub_models:from_hub")
    monkeypatch.setitem(MODELS, "fake-local-model", "fake_hub_models:local_with_hub_companion")


def _bench(model, weights, out, *extra):
    from arscale.cli import main

    return main(["bench", "--model", model, "--model-weights", weights, "--prompts", "draw:1:5", "--limit", "1",
                 "--n", "1", "--strategies", "raw", "--scorer", "", "--quiet", "--out", str(out), *extra])


def test_bench_hashes_hub_files_and_refuses_a_resume_after_the_repository_changed(fake_hub, fake_models, tmp_path,
                                                                                  capsys):
    fake_hub("owner/model", "w.pt", b"one")
    fake_hub("owner/model", "vq.pt", b"vq")
    assert _bench("fake-hub-model", "owner/model", tmp_path / "a") == 0
    entry = json.loads((tmp_path / "a" / "manifest.json").read_text())["model"]
    assert entry["weights_from_hub"] and sorted(entry["weights_sha256"]) == ["owner/model/vq.pt", "owner/model/w.pt"]
    assert _bench("fake-hub-model", "owner/model", tmp_path / "a", "--resume") == 0
    fake_hub("owner/model", "w.pt", b"two")  # the repository moved on
    capsys.readouterr()
    assert _bench("fake-hub-model", "owner/model", tmp_path / "a", "--resume") != 0
    assert "hub files differ: owner/model/w.pt" in capsys.readouterr().err
    saved = json.loads((tmp_path / "a" / "manifest.json").read_text())["model"]
    assert saved["weights_sha256"] == entry["weights_sha256"]  # the refused resume wrote nothing


def test_a_manifest_from_before_hub_hashing_resumes_and_gains_the_hashes(fake_hub, fake_models, tmp_path):
    fake_hub("owner/model", "w.pt", b"one")
    fake_hub("owner/model", "vq.pt", b"vq")
    assert _bench("fake-hub-model", "owner/model", tmp_path / "a") == 0
    path = tmp_path / "a" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["model"] = {k: v for k, v in manifest["model"].items() if k != "weights_from_hub"}
    manifest["model"]["weights_sha256"] = {}
    path.write_text(json.dumps(manifest))
    assert _bench("fake-hub-model", "owner/model", tmp_path / "a", "--resume") == 0
    assert len(json.loads(path.read_text())["model"]["weights_sha256"]) == 2


def test_local_weights_keep_their_hashes_beside_a_hub_companion(fake_hub, fake_models, tmp_path):
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "w.pt").write_bytes(b"local")
    fake_hub("owner/companion", "vq.pt", b"companion")
    assert _bench("fake-local-model", str(folder), tmp_path / "c") == 0
    entry = json.loads((tmp_path / "c" / "manifest.json").read_text())["model"]
    assert "weights_from_hub" not in entry and list(entry["weights_sha256"]) == ["w.pt"]
    assert _bench("fake-local-model", str(folder), tmp_path / "c", "--resume") == 0


def test_what_local_weights_read_from_the_hub_is_hashed_and_checked_on_resume(fake_hub, fake_models, tmp_path,
                                                                               capsys):
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "w.pt").write_bytes(b"local")
    fake_hub("owner/companion", "vq.pt", b"companion")
    assert _bench("fake-local-model", str(folder), tmp_path / "c") == 0
    path = tmp_path / "c" / "manifest.json"
    side = json.loads(path.read_text())[mf.MODEL_HUB_KEY]
    assert side == {"owner/companion/vq.pt": mf.sha256_file(tmp_path / "hub" / "owner/companion/vq.pt")}
    fake_hub("owner/companion", "vq.pt", b"moved on")  # the companion's repository changed
    capsys.readouterr()
    assert _bench("fake-local-model", str(folder), tmp_path / "c", "--resume") != 0
    assert "hub files differ: owner/companion/vq.pt" in capsys.readouterr().err
    manifest = json.loads(path.read_text())
    assert manifest[mf.MODEL_HUB_KEY] == side  # the refused resume wrote nothing
    del manifest[mf.MODEL_HUB_KEY]  # a manifest from before these files were hashed resumes, and gains them
    path.write_text(json.dumps(manifest))
    assert _bench("fake-local-model", str(folder), tmp_path / "c", "--resume") == 0
    assert list(json.loads(path.read_text())[mf.MODEL_HUB_KEY]) == ["owner/companion/vq.pt"]


def test_shards_whose_model_read_other_hub_files_are_not_merged():
    one = {"model": {"id": "infinity-2b", "weights_sha256": {"w.pt": "a"}},
           mf.MODEL_HUB_KEY: {"google/flan-t5-xl/model.safetensors": "a"}}
    other = {**one, mf.MODEL_HUB_KEY: {"google/flan-t5-xl/model.safetensors": "b"}}
    assert mf.differences(one, other) == [
        "model: the hub files beside its weights differ (google/flan-t5-xl/model.safetensors)"]
    more = {**one, mf.MODEL_HUB_KEY: {**one[mf.MODEL_HUB_KEY], "google/flan-t5-xl/config.json": "c"}}
    assert mf.differences(one, more) == []  # a file only one recorded is no difference
    assert mf.combine(one, {**one, mf.MODEL_HUB_KEY: {}})[mf.MODEL_HUB_KEY] == one[mf.MODEL_HUB_KEY]
