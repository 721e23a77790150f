"""A shared cluster: a scheduler's SIGTERM, a merge while shards still run, labels that name folders."""

import json
import signal

import pytest

from arscale.bench import manifest as mf
from arscale.bench import merge as mg
from arscale.bench.geneval_layout import PNG_END
from arscale.cli import main
from arscale.errors import ArscaleError


def _terminate_self():
    """Send this process a SIGTERM, as a scheduler does at the time limit; refuse where nothing handles it (the
    default action would end the whole test run)."""
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        raise AssertionError("SIGTERM is not handled: a scheduler's time limit kills the run unsaved")
    signal.raise_signal(signal.SIGTERM)  # to this thread: handled before the call returns (os.kill may land on
    # another of the process's threads, and the handler then runs a moment later, after the code under test moved on)


def test_a_sigterm_stops_bench_as_ctrl_c_does(tmp_path, monkeypatch):
    """A bench stopped by SIGTERM keeps its time spent in the manifest and exits 143, as Ctrl-C keeps it."""
    from arscale.bench.runner import Bench

    monkeypatch.setattr(Bench, "run", lambda self, *args, **kwargs: _terminate_self())
    assert main(["bench", "--prompts", "draw:1:5", "--strategies", "raw", "--n", "1", "--scorer", "",
                 "--quiet", "--out", str(tmp_path)]) == 143
    timings = json.loads((tmp_path / "manifest.json").read_text())["timings"]
    assert timings["wall_seconds"] > 0 and "finished" not in timings
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handled only while the command ran


def test_a_sigterm_stops_a_trainer_after_its_step_and_saves(tmp_path, monkeypatch):
    """A trainer sent SIGTERM mid-run saves its state after the step, as after a Ctrl-C, so the same command resumes."""
    from arscale.train import scene_stream

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    sample, calls = scene_stream.ShapeWorldStream.sample, []

    def sample_then_terminate(self, n):
        calls.append(n)
        if len(calls) == 2:
            _terminate_self()
        return sample(self, n)

    monkeypatch.setattr(scene_stream.ShapeWorldStream, "sample", sample_then_terminate)
    out = tmp_path / "tok"
    assert main(["train", "shapeworld-tokenizer", "--steps", "40", "--batch-size", "2", "--out", str(out)]) == 143
    state = json.loads((out / "train_state" / "shapeworld-tokenizer" / "state.json").read_text())
    assert state["step"] == 2 and len(calls) == 2  # stopped after the step it was in, and saved


def _shard(root, k, count, wall_seconds):
    """A shard folder with one finished prompt and the timings its manifest holds now."""
    manifest = {"model": {"id": "m"}, "seed": 0, "scorer": None, "suite": {"size": 2, "sha256": "h"},
                "kind": "plain", "batch_prompts": 1, "cost_accounting": mf.COST_ACCOUNTING, "ns": [1],
                "layout": "geneval", "strategies": {"raw": {"strategy": "raw", "config": {}}},
                "timings": {"started": 1.0, **({"wall_seconds": wall_seconds, "finished": 9.0} if wall_seconds else {})}}
    root.mkdir(exist_ok=True)
    mf.write_manifest(root / mf.manifest_name(count, k), manifest)
    d = root / "raw" / "n1" / f"{k:05d}"
    (d / "samples").mkdir(parents=True, exist_ok=True)
    (d / "metadata.jsonl").write_text(json.dumps({"tag": "single_object", "prompt": f"p{k}"}))
    (d / "samples" / "00000.png").write_bytes(b"png" + PNG_END)  # a whole PNG ends so (`is_whole`)
    (d / "record.json").write_text(json.dumps({"index": k, "prompt": f"p{k}", "correct": None, "cost": {}}))
    return root


def test_merging_again_after_the_shards_finish_takes_their_final_timings(tmp_path):
    """`bench merge` run while shards still run, then again once they finished, sums the shards' final times."""
    shards = [_shard(tmp_path / f"s{k}", k, 2, None) for k in range(2)]  # still running: no time recorded yet
    mg.merge(shards, tmp_path / "out")
    for k in range(2):
        _shard(tmp_path / f"s{k}", k, 2, 3.0 + k)  # both finished (or resumed) since
    mg.merge(shards, tmp_path / "out")
    timings = json.loads((tmp_path / "out" / "manifest.json").read_text())["timings"]
    assert timings["wall_seconds"] == 7.0 and timings["finished"] == 9.0


def test_a_label_that_is_no_folder_name_is_refused(tmp_path):
    """A variant label with '/' (or too long for a file name) is refused up front, not run and left out of table.md."""
    from arscale.bench.runner import parse_runs

    for label in ("raw@v1/pca", "raw@" + "x" * 260):
        with pytest.raises(ArscaleError, match="names a folder under --out"):
            parse_runs(label)
