"""One-line errors and kept timings where a command cannot write, gets an empty folder name, or shares its --out."""

from __future__ import annotations

import json

import pytest
from cli_output import one_error_line

from arscale.cli import main

QUICK = ["bench", "--prompts", "draw:1:5", "--limit", "1", "--n", "1", "--scorer", "", "--quiet"]



def test_bench_merge_of_an_empty_input_is_refused_not_the_working_folder(tmp_path, monkeypatch, capsys):
    """`bench merge "" --out M` run inside a bench folder is refused in one line; nothing is merged into M."""
    here = tmp_path / "here"
    here.mkdir()
    (here / "manifest.json").write_text('{"timings": {}}', encoding="utf-8")  # the working folder is a bench's
    monkeypatch.chdir(here)
    merged = tmp_path / "merged"
    assert main(["bench", "merge", "", "--out", str(merged)]) == 2
    assert "empty" in one_error_line(capsys)
    assert not merged.exists()


def test_generate_that_cannot_write_its_result_is_one_line(tmp_path, capsys):
    """A folder named result.json in --out (a read-only --out alike) is one `arscale: error:` line, exit 2."""
    out = tmp_path / "g"
    (out / "result.json").mkdir(parents=True)
    try:
        rc = main(["generate", "a photo of a red circle", "--strategy", "raw", "--n", "1", "--out", str(out)])
    except OSError as exc:  # the current code: IsADirectoryError escapes main
        pytest.fail(f"traceback: {exc!r}")
    assert rc == 2
    assert "result.json" in one_error_line(capsys)


def test_a_bench_that_ends_last_keeps_the_timings_another_bench_added(tmp_path, monkeypatch):
    """Two benches into one --out at once: the final manifest still records the second bench's start."""
    from arscale.bench.runner import Bench

    out = tmp_path / "b"
    run, started, inner = Bench.run, [], []

    def with_another_bench_meanwhile(self, *args, **kwargs):
        if not started:  # the first bench (raw) is running: a second one (best-of-n) starts and ends meanwhile
            started.append(True)
            assert main([*QUICK, "--strategies", "best-of-n", "--out", str(out)]) == 0
            inner.append(json.loads((out / "manifest.json").read_text(encoding="utf-8"))["timings"])
        return run(self, *args, **kwargs)

    monkeypatch.setattr(Bench, "run", with_another_bench_meanwhile)
    assert main([*QUICK, "--strategies", "raw", "--out", str(out)]) == 0
    timings = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["timings"]
    assert inner[0]["resumed"]  # the second bench recorded its start beside the first's
    assert timings.get("resumed") == inner[0]["resumed"]
    assert timings["wall_seconds"] > inner[0]["wall_seconds"]  # and its time counts with the first bench's
