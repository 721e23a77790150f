"""What a command leaves behind when it ends: a failed suite write, a --plot that could not be drawn, the data
workers of an in-process trainer, a bench's process group after a setup error."""

import errno
import json
import multiprocessing
import threading

import pytest
from tiny_shapeworld_ar import TINY_VQ

from arscale.cli import main as cli


def test_a_suite_write_that_fails_leaves_no_temporary_file(tmp_path, monkeypatch, capsys):
    """`shapeworld suite` failing mid-write (a full disk) is one line and leaves no hidden temporary file."""
    from arscale.shapeworld import suite

    dumps, written = suite.dumps_record, []

    def full_disk(record):
        written.append(record)
        if len(written) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return dumps(record)

    monkeypatch.setattr(suite, "dumps_record", full_disk)
    code = cli(["shapeworld", "suite", "--per-tag", "2", "--seed", "3", "--out", str(tmp_path / "s.jsonl")])
    assert code == 2 and "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_plot_that_cannot_be_drawn_leaves_no_folder_it_made(tmp_path, monkeypatch):
    """`compare --plot NEW/DIR/c.pgf` without TeX: a one-line error, and NEW/ (made for the plot) is gone."""
    from arscale.bench.paired_plot import plot_comparison
    from arscale.errors import ArscaleError

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no xelatex on it
    row = {"label": "best-of-n", "n": 2, "against": "raw N=1", "prompts": 4, "diff": 0.0, "diff_se": 0.1,
           "tags": {}}
    with pytest.raises(ArscaleError, match=r"cannot write --plot"):
        plot_comparison([row], tmp_path / "new" / "deeper" / "c.pgf")
    assert not (tmp_path / "new").exists()


def test_an_in_process_trainer_returns_with_its_data_workers_gone(tmp_path):
    """After `main(["train", ..., "--data-workers", "1"])` returns, no data worker or pool thread still runs."""
    config = tmp_path / "vq.json"
    config.write_text(json.dumps(TINY_VQ))
    threads_before = set(threading.enumerate())
    children_before = set(multiprocessing.active_children())
    code = cli(["train", "shapeworld-ar-tokenizer", "--config", str(config), "--steps", "1", "--batch-size", "2",
                "--data-workers", "1", "--out", str(tmp_path / "tok"), "--seed", "2"])
    assert code == 0
    left = [p for p in set(multiprocessing.active_children()) - children_before if p.is_alive()]
    pool_threads = [t for t in set(threading.enumerate()) - threads_before
                    if t.is_alive() and "tqdm" not in t.name]  # tqdm's monitor is shared by every bar
    assert left == [] and pool_threads == []


def test_a_bench_that_fails_while_setting_up_starts_no_process_group(tmp_path, monkeypatch, capsys):
    """A setup error (here --class-names with a ShapeWorld model) comes before the gloo group starts: an in-process
    caller is not left holding a group a later bench would take for its own."""
    from arscale.bench import sharding
    from arscale.cli import main

    started = []

    class Recorder(sharding.ProcessGroup):
        def __init__(self, shard):
            started.append(shard)
            super().__init__(shard)

    monkeypatch.setattr(sharding, "ProcessGroup", Recorder)
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n", encoding="utf-8")
    code = main(["bench", "--model", "shapeworld-var", "--prompts", "draw:1:5", "--limit", "1", "--n", "1",
                 "--strategies", "raw", "--scorer", "", "--quiet", "--class-names", str(names),
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "class" in capsys.readouterr().err
    assert started == []
