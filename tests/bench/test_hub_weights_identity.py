"""Weights named by a hub id are hashed once the model has loaded them, and a resume onto a run made with other
hub files is refused, as for a local weights folder."""

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
