"""A JSON file the user handed over or a run left behind that is not UTF-8 at all is treated like one that is not
JSON: a one-line error where the file is required, skipped where it is optional (never a UnicodeDecodeError
traceback)."""

import pytest

from arscale.bench import geneval_layout, manifest, plots, runner
from arscale.errors import ArscaleError
from arscale.train import common

NOT_UTF8 = b"\xff\xfe{\x00}"


def test_a_trainer_config_that_is_not_utf8_is_a_one_line_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(NOT_UTF8)
    with pytest.raises(ArscaleError, match="config.json"):
        common.read_config(path)


def test_a_results_file_that_is_not_utf8_is_a_one_line_error(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"filename": "a.png", "tag": "colors", "correct": true}\n' + NOT_UTF8)
    with pytest.raises(ArscaleError, match="results.jsonl"):
        geneval_layout.read_results(path)


def test_a_results_file_keeps_reading_line_by_line(tmp_path):
    """One record per "\\n"-ended line, CRLF endings included, blank lines skipped."""
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"filename": "a.png", "tag": "colors", "correct": true}\r\n\n'
                     b'{"filename": "b.png", "tag": "counting", "correct": false}\n')
    assert [r["filename"] for r in geneval_layout.read_results(path)] == ["a.png", "b.png"]


def test_a_bench_manifest_that_is_not_utf8_is_a_one_line_error(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_bytes(NOT_UTF8)
    with pytest.raises(ArscaleError, match="manifest"):
        manifest.read_manifest(path)


def test_a_plot_subtitle_skips_a_manifest_that_is_not_utf8(tmp_path):
    (tmp_path / "manifest.json").write_bytes(NOT_UTF8)
    (tmp_path / "manifest.shard-0-of-2.json").write_text('{"model": "shapeworld-ar"}')
    assert plots.read_manifest(tmp_path) == {"model": "shapeworld-ar"}


def test_the_bench_table_skips_a_summary_that_is_not_utf8(tmp_path):
    good, bad = tmp_path / "raw" / "n1", tmp_path / "best-of-n" / "n2"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    (good / "summary.json").write_text('{"label": "raw", "n": 1}')
    (bad / "summary.json").write_bytes(NOT_UTF8)
    assert [s["label"] for s in runner.collect_summaries(tmp_path)] == ["raw"]
