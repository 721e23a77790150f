"""Reproducibility review: what else decides a bench's images besides its identity fields. A resume or a shard
on another device type (a CUDA generator draws other numbers than a CPU one for the same seed) or, on a CPU,
with another --threads (kernels split their sums by the thread count: measured on ShapeWorld-VAR, images
differ in pixels and rewards in their last digits, as with another --batch-prompts) must be refused, or
"resumed ends with exactly the images of an uninterrupted run" (README "Large runs") does not hold."""

import json

from arscale.bench import manifest as mf
from arscale.cli import main


def _bench(out, *extra):
    return main(["bench", "--model", "shapeworld-var", "--prompts", "draw:1:5", "--n", "1", "--strategies", "raw",
                 "--scorer", "", "--batch-prompts", "1", "--quiet", "--out", str(out), *extra])


def test_a_cpu_run_resumed_with_another_thread_count_is_refused(tmp_path, capsys):
    """A CPU bench resumed with another --threads is refused, naming the thread counts."""
    out = tmp_path / "out"
    assert _bench(out, "--limit", "1") == 0
    capsys.readouterr()
    assert _bench(out, "--limit", "2", "--resume", "--threads", "2") == 2
    err = capsys.readouterr().err
    assert "threads: 1 vs 2" in err and "Traceback" not in err
    assert sorted(p.parent.name for p in (out / "raw" / "n1").glob("*/record.json")) == ["00000"]  # nothing ran


def test_a_run_resumed_on_another_device_type_is_refused(tmp_path, capsys):
    """A bench started on CUDA and resumed on the CPU is refused; another GPU of the same type is the same run."""
    out = tmp_path / "out"
    assert _bench(out, "--limit", "1") == 0
    path = out / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "device": "cuda:0"}))  # as a run on a GPU machine records it
    capsys.readouterr()
    assert _bench(out, "--limit", "2", "--resume") == 2
    assert "device: cuda vs cpu" in capsys.readouterr().err
    assert mf.differences({**manifest, "device": "cuda:0"}, {**manifest, "device": "cuda:1"}) == []
