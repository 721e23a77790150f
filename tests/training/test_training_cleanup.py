"""What a trainer that fails leaves behind: no data worker still running, no empty --out it made, and no
shipped file holding inf where a weight was too large for fp16."""

import json
import multiprocessing
import time

import pytest
import torch
from tiny_shapeworld_ar import TINY_VQ

from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.folders import first_missing, remove_empty_folders
from arscale.train import common, scene_stream


def test_a_run_failing_mid_loop_stops_its_data_workers_and_removes_the_folder_it_made(tmp_path, monkeypatch,
                                                                                       capsys):
    streams, workers = [], set()
    opened, sample = scene_stream.ShapeWorldStream.__init__, scene_stream.ShapeWorldStream.sample

    def recording(self, *args, **kwargs):
        opened(self, *args, **kwargs)
        streams.append(self)  # kept referenced, as a traceback would: no garbage collection stops the pool

    def sampling(self, n):
        batch = sample(self, n)
        workers.update(multiprocessing.active_children())  # the pool starts its processes on first use
        return batch

    monkeypatch.setattr(scene_stream.ShapeWorldStream, "__init__", recording)
    monkeypatch.setattr(scene_stream.ShapeWorldStream, "sample", sampling)
    config = tmp_path / "vq.json"
    config.write_text(json.dumps(TINY_VQ))
    out = tmp_path / "new" / "tok"  # two folders this run makes
    before = set(multiprocessing.active_children())
    code = cli(["train", "shapeworld-ar-tokenizer", "--config", str(config), "--steps", "4", "--batch-size", "2",
                "--lr", "1e30", "--data-workers", "1", "--out", str(out), "--seed", "5"])
    assert code == 2 and "the training loss became" in capsys.readouterr().err
    workers -= before
    assert workers  # the run did have data workers
    deadline = time.monotonic() + 20  # a shut-down pool's workers exit shortly
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(w.is_alive() for w in workers)
    assert [s for s in streams if s.pool is not None] == []  # with workers, and shut down
    assert any(s.depth == 2 for s in streams) and not scene_stream._LIVE_STREAMS
    assert not (tmp_path / "new").exists() and tmp_path.exists()


# Failures after `begin` made --out, before anything is written (no model is built, so these are quick).
EARLY_FAILURES = [("shapeworld-ar", ["--tokenizer", "{missing}"]),
                  ("shapeworld-ar-tokenizer", ["--decoder-only", "{missing}"]),
                  ("shapeworld-tokenizer", ["--decoder-only", "--generator", "{missing}"]),
                  ("shapeworld-reward", ["--init", "{missing}"])]


@pytest.mark.parametrize(("trainer", "extra"), EARLY_FAILURES)
def test_an_early_failure_leaves_no_out_or_state_folder_it_made(trainer, extra, tmp_path, monkeypatch, capsys):
    made = []
    make = common.output_folder

    def recording(path, *rest, **kwargs):
        folder = make(path, *rest, **kwargs)
        made.append(str(folder) if folder.is_dir() else None)
        return folder

    monkeypatch.setattr(common, "output_folder", recording)
    extra = [a.replace("{missing}", str(tmp_path / "missing")) for a in extra]
    out, state = tmp_path / "new" / "a" / "out", tmp_path / "states" / "s"
    code = cli(["train", trainer, "--steps", "2", "--batch-size", "2", "--seed", "3", "--threads", "1",
                "--out", str(out), "--state-dir", str(state), *extra])
    assert code == 2 and capsys.readouterr().err.startswith("arscale: error:")
    assert made == [str(out)]  # it failed after making --out, which is the case under test
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_keeps_a_folder_that_was_there_and_anything_written(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "todo.txt").write_text("keep me")
    assert cli(["train", "shapeworld-reward", "--steps", "3", "--batch-size", "1", "--lr", "1e30",
                "--out", str(out)]) == 2
    assert (out / "notes" / "todo.txt").read_text() == "keep me"
    assert {p.name for p in out.iterdir()} == {"notes"}  # nor did it leave a state folder


def test_only_folders_without_files_are_removed(tmp_path):
    assert first_missing(tmp_path) is None
    assert first_missing(tmp_path / "a" / "b" / "c") == tmp_path / "a"
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "x" / "y").mkdir(parents=True)
    (tmp_path / "a" / "x" / "kept.txt").write_text("1")
    remove_empty_folders(tmp_path / "a")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["a", "a/x", "a/x/kept.txt"]
    (tmp_path / "a" / "x" / "kept.txt").unlink()
    remove_empty_folders(tmp_path / "a", keep_root=True)
    assert [p.name for p in tmp_path.iterdir()] == ["a"] and not any((tmp_path / "a").iterdir())
    remove_empty_folders(tmp_path / "a")
    assert not (tmp_path / "a").exists()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "made" / "x").mkdir(parents=True)
    (tmp_path / "made" / "x" / "link").symlink_to(tmp_path / "elsewhere")  # a link is left, and so its folders
    remove_empty_folders(tmp_path / "made")
    assert (tmp_path / "made" / "x" / "link").is_symlink() and (tmp_path / "elsewhere").is_dir()


def test_weights_beyond_fp16_are_refused_not_written_as_inf(tmp_path):
    state = {"ok.weight": torch.full((2, 2), 6.0e4), "big.weight": torch.tensor([1.0, -1.0e6]),
             "index": torch.tensor([70000])}
    with pytest.raises(ArscaleError, match=r"big\.weight holds 1e\+06, beyond its largest value 65504"):
        common.export_weights(state, {}, tmp_path / "w", dtype=torch.float16)
    assert not (tmp_path / "w").exists()  # nothing half-written
    for bad in (float("nan"), float("-inf")):
        with pytest.raises(ArscaleError, match=r"bad holds (nan|inf)"):
            common.export_weights({"bad": torch.tensor([1.0, bad])}, {}, tmp_path / "w", dtype=torch.float16)
    del state["big.weight"]
    path = common.export_weights(state, {}, tmp_path / "w", dtype=torch.float16)
    from safetensors.torch import load_file

    written = load_file(str(path))
    assert written["ok.weight"].dtype == torch.float16 and torch.isfinite(written["ok.weight"]).all()
    assert written["index"].item() == 70000  # integers are not cast
