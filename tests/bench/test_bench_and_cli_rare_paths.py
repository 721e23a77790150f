"""Rarely run paths of bench/, the commands, cli.py, devices.py and folders.py (bad suites, compare and merge of odd
folders, manifests off the usual machine, launchers, figures at their limits), each held to what it must do."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from bench_records import write_records
from cli_output import one_error_line

from arscale.bench import geneval_layout as gl
from arscale.bench import manifest as mf
from arscale.bench import suites
from arscale.cli import main
from arscale.errors import ArscaleError

LAUNCHER_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)


# --- prompt suites and the GenEval layout: bad input in one line ---------------------------------------------------


@pytest.mark.parametrize("spec, files, message", [
    ("{x}/s.jsonl", {"s.jsonl": "[1, 2]\n"}, "s.jsonl:1: expected a JSON object per line"),
    ("compbench:{x}", {"a.txt": "a cat\n"}, "no '*_val.txt' prompt files in"),
    ("dpg:{x}", {"a.jsonl": "{}\n"}, "no '.txt' prompt files in"),
    ("tiif:{x}", {"a.txt": "a cat\n"}, "no '.jsonl' prompt files in"),
    ("{x}/prompts.csv", {"prompts.csv": "a cat\n"}, "cannot tell the suite kind of"),
])
def test_suite_files_that_hold_no_prompts_of_their_kind(tmp_path, spec, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ArscaleError, match=message.replace("*", r"\*").replace(".", r"\.")):
        suites.load_prompts(spec.format(x=tmp_path))


def test_read_results_names_a_missing_file_and_a_line_that_is_not_json(tmp_path):
    with pytest.raises(ArscaleError, match=r"results file .*none\.jsonl not found"):
        gl.read_results(tmp_path / "none.jsonl")
    (tmp_path / "r.jsonl").write_text('{"filename": "a.png", "tag": "colors", "correct": true}\n{oops\n')
    with pytest.raises(ArscaleError, match=r"r\.jsonl, line 2: not valid JSON"):
        gl.read_results(tmp_path / "r.jsonl")


def test_write_sample_takes_a_pil_image_as_its_docstring_says(tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    gl.write_metadata(tmp_path, 3, {"tag": "colors", "include": [], "prompt": "p"})
    path = gl.write_sample(tmp_path, 3, 0, Image.fromarray(pixels))
    assert path == tmp_path / "00003" / "samples" / "00000.png"
    assert np.array_equal(gl.read_image(path), pixels)


def test_eval_of_a_file_and_of_metadata_that_is_not_utf8(tmp_path, capsys):
    (tmp_path / "f.png").write_bytes(b"x")
    assert main(["eval", "shapeworld", str(tmp_path / "f.png"), "--no-progress"]) == 2
    assert one_error_line(capsys).endswith("f.png is not a folder (expected a GenEval layout folder)")
    folder = tmp_path / "gl" / "00000"
    (folder / "samples").mkdir(parents=True)
    (folder / "metadata.jsonl").write_bytes(b'{"tag": "colors", "prompt": "caf\xe9"}')  # latin-1
    assert main(["eval", "shapeworld", str(tmp_path / "gl"), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert "00000/metadata.jsonl: cannot read metadata" in line and "utf-8" in line


# --- the command line -----------------------------------------------------------------------------------------------


def test_an_unknown_option_of_a_group_without_its_subcommand_is_named_by_the_group(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["eval", "--bogus"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == "arscale eval: error: unrecognized arguments: --bogus (see arscale eval --help)\n"


def test_a_command_prints_into_a_stream_that_has_no_encoding(tmp_path):
    """`contextlib.redirect_stdout(io.StringIO())` (encoding None): the stdout check leaves such a stream alone."""
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream):
        assert main(["shapeworld", "suite", "--per-tag", "1", "--seed", "3", "--out", str(tmp_path / "s.jsonl")]) == 0
    assert stream.getvalue() == f"wrote 6 prompts (1 per tag, seed 3) to {tmp_path / 's.jsonl'}\n"


def test_parse_runs_refuses_a_config_without_label_and_an_empty_strategy_list():
    from arscale.bench.runner import parse_runs

    with pytest.raises(ArscaleError, match=r"--config expects LABEL=JSON .* got 'raw'"):
        parse_runs("raw", ["raw"])
    with pytest.raises(ArscaleError, match="^no strategies given$"):
        parse_runs(" ")


def test_a_bare_prompt_of_a_suite_that_is_not_shapeworld_keeps_no_metadata():
    from arscale.bench.runner import Bench
    from arscale.bench.suites import SuitePrompt

    assert Bench(None, None, kind="plain")._suite_prompt(3, "a cat") == SuitePrompt(3, "a cat", {})


def test_grid_subsamples_images_too_wide_for_it():
    """Four 2100-px-wide candidates (an Infinity run at N = 4 is 1024 px: N = 16 does the same): the grid keeps
    every second pixel, so it stays under GRID_PIXELS, and each tile is its image's subsample."""
    from arscale.commands.generate import GRID_PIXELS, grid

    images = [np.random.default_rng(i).integers(0, 256, (8, 2100, 3), dtype=np.uint8) for i in range(4)]
    canvas = grid(images, chosen=[1])
    assert canvas.shape == (2 * (4 + 4) + 4, 2 * (1050 + 4) + 4, 3) and canvas.shape[1] <= GRID_PIXELS
    assert np.array_equal(canvas[4:8, 4:1054], images[0][::2, ::2])
    assert np.array_equal(canvas[12:16, 1058:2108], images[3][::2, ::2])
    assert tuple(canvas[0, 1060]) == (0, 170, 0) and tuple(canvas[0, 10]) == (150, 150, 150)  # the pick framed


def test_train_lists_every_trainer():
    from arscale.cli import build_parser

    parser = build_parser()
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    trainers = next(a for a in train._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert sorted(trainers) == ["shapeworld-ar", "shapeworld-ar-tokenizer", "shapeworld-reward",
                                "shapeworld-tokenizer", "shapeworld-var"]


# --- compare ---------------------------------------------------------------------------------------------------------


def test_compare_says_what_is_missing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty")]) == 2
    assert "no finished prompts under" in one_error_line(capsys)
    write_records(tmp_path / "A", "raw", 1, [True, False])
    write_records(tmp_path / "B", "best-of-n", 2, [True, True])
    assert main(["compare", str(tmp_path / "A"), str(tmp_path / "B")]) == 2
    assert one_error_line(capsys).endswith(f"no (strategy, N) runs with finished prompts in both {tmp_path / 'A'} "
                                           f"and {tmp_path / 'B'}")


def test_compare_of_runs_no_evaluator_judged(tmp_path, capsys):
    """A suite without verdicts (GenEval's, T2I-CompBench's): every row says no prompt was judged in both, and
    --plot draws nothing."""
    write_records(tmp_path / "C", "raw", 1, [None, None])
    write_records(tmp_path / "C", "best-of-n", 1, [None, None])
    assert main(["compare", str(tmp_path / "C"), "--plot", str(tmp_path / "p.png")]) == 0
    out, err = capsys.readouterr()
    assert "| best-of-n | 1 | raw N=1 | 0 | – | – | no prompt judged in both | – | – |" in out.splitlines()
    assert "note: no prompt judged in both runs: no plot" in err and not (tmp_path / "p.png").exists()


def test_load_records_without_a_list_leaves_a_damaged_record_out(tmp_path):
    from arscale.bench.paired import load_records

    write_records(tmp_path, "raw", 1, [True, False, True])
    (tmp_path / "raw" / "n1" / "00001" / "record.json").write_text("{cut", encoding="utf-8")
    runs = load_records(tmp_path)
    assert list(runs) == [("raw", 1)] and sorted(runs[("raw", 1)]) == [0, 2]


def test_comparison_plot_leaves_out_a_tag_a_run_did_not_judge():
    from arscale.bench.paired_plot import figure_comparison

    cell = {"prompts": 2, "diff": 0.5, "diff_se": 0.1, "fixed": 1, "broke": 0}
    rows = [{"label": "best-of-n", "n": 2, "against": "raw N=2", "prompts": 4, "diff": 0.25, "diff_se": 0.1,
             "tags": {"counting": cell, "colors": cell}},
            {"label": "tts-var", "n": 2, "against": "raw N=2", "prompts": 2, "diff": 0.5, "diff_se": 0.1,
             "tags": {"colors": cell}}]
    ax = figure_comparison(rows).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["counting", "colors", "overall"]
    first, second = (container.lines[0].get_ydata() for container in ax.containers)
    assert len(first) == 3 and len(second) == 2  # tts-var: colors and overall only
    assert sorted(round(y) for y in second) == [1, 2]


def test_summarize_run_names_a_damaged_record(tmp_path):
    from arscale.bench.runner import RunSpec, summarize_run
    from arscale.bench.suites import SuitePrompt

    path = tmp_path / "00000" / "record.json"
    path.parent.mkdir()
    path.write_bytes(b'{"index": 0, "prom')
    with pytest.raises(ArscaleError, match=r"00000/record\.json: unreadable record .*--resume"):
        summarize_run(RunSpec("raw", "raw"), 1, tmp_path, [SuitePrompt(0, "p")], seed=0, model="m")


# --- the figures -----------------------------------------------------------------------------------------------------


def _summary(label: str, n: int, accuracy: float) -> dict:
    return {"label": label, "strategy": label.split("@")[0], "n": n, "overall": accuracy, "overall_se": 0.02,
            "prompts_done": 10, "model": "m", "tags": {"counting": {"accuracy": accuracy}},
            "cost_per_prompt": {"flops": 1e9 * n, "total_wall": 0.1 * n}}


def test_seven_runs_put_the_legend_beside_the_plot_inside_the_picture():
    from arscale.bench.plots import figure_score_vs_compute, figure_score_vs_n

    labels = ["raw", "best-of-n", "importance", "tts-var", "tts-var@a", "tts-var@b", "tts-var@c"]
    summaries = [_summary(label, n, 0.4 + 0.01 * i + 0.02 * n) for i, label in enumerate(labels) for n in (1, 2, 4)]
    for draw, width in ((figure_score_vs_n, 7.5), (figure_score_vs_compute, 12)):
        fig = draw(summaries, None)
        assert fig.get_size_inches()[0] == width
        renderer = fig._get_renderer()
        ax = next(a for a in fig.axes if a.get_legend() is not None)
        legend, plot = ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer)
        assert len(ax.get_legend().get_texts()) == 7
        assert legend.x0 > plot.x1 and legend.x1 <= fig.bbox.x1  # beside the axes, not cut off


def test_subtitle_and_figures_of_sparse_summaries():
    from arscale.bench.plots import figure_score_vs_compute, subtitle

    assert subtitle([{"overall": 0.5}], {"suite": {"spec": "x.jsonl"}}) == "x.jsonl"
    assert subtitle([{"overall": 0.5}]) == ""
    assert figure_score_vs_compute([{"label": "raw", "n": 1, "overall": None}]) is None


# --- manifest --------------------------------------------------------------------------------------------------------


def test_manifest_of_an_installed_copy_or_without_git(monkeypatch, tmp_path):
    monkeypatch.setattr(mf, "__file__", str(tmp_path / "site-packages" / "arscale" / "bench" / "manifest.py"))
    assert (mf.git_commit(), mf.git_dirty()) == ("unknown", None)  # no pyproject.toml: not arscale's checkout
    monkeypatch.undo()

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(mf.subprocess, "run", no_git)
    assert (mf.git_commit(), mf.git_dirty()) == ("unknown", None)


def test_hardware_without_a_cpu_model_name(monkeypatch):
    """macOS has no /proc/cpuinfo; an ARM Linux one has no 'model name': the platform's own name stands."""
    import platform

    expected = platform.processor() or platform.machine()
    read = Path.read_text

    def cpuinfo(text):
        def fake(self, *args, **kwargs):
            if str(self) == "/proc/cpuinfo":
                if text is None:
                    raise FileNotFoundError(self)
                return text
            return read(self, *args, **kwargs)
        return fake

    for text in (None, "processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n"):
        monkeypatch.setattr(Path, "read_text", cpuinfo(text))
        assert mf.hardware()["cpu"] == expected


def test_a_strategy_entry_that_differs_outside_its_configs_is_named():
    entry = {"strategy": "best-of-n", "config": {}, "resolved": {"reward": "shapeworld-reward"}}
    old = {"strategies": {"best-of-n": {**entry, "reward_used": "shapeworld-reward"}}}
    new = {"strategies": {"best-of-n": {**entry, "reward_used": "imagereward"}}}
    assert mf.differences(old, new) == ['strategy best-of-n reward_used: "shapeworld-reward" vs "imagereward"']


def _infinity_entry(monkeypatch, tmp_path, node: str, t5: bytes) -> dict:
    """The manifest's model entry for infinity-2b on a node that keeps its weights and Flan-T5 under `node`."""
    (tmp_path / node / "w").mkdir(parents=True, exist_ok=True)
    (tmp_path / node / "w" / "infinity.safetensors").write_bytes(b"weights")
    (tmp_path / node / "t5").mkdir(exist_ok=True)
    (tmp_path / node / "t5" / "model.safetensors").write_bytes(t5)
    monkeypatch.setenv("ARSCALE_T5_WEIGHTS", str(tmp_path / node / "t5"))
    return mf.model_entry("infinity-2b", str(tmp_path / node / "w"))


def test_the_same_text_encoder_at_another_path_is_the_same_run(monkeypatch, tmp_path):
    one = _infinity_entry(monkeypatch, tmp_path, "node1", b"t5")
    two = _infinity_entry(monkeypatch, tmp_path, "node2", b"t5")
    assert one["text_encoder_path"] != two["text_encoder_path"]
    assert mf.differences({"model": one}, {"model": two}) == []


def test_another_text_encoder_is_named_by_its_file(monkeypatch, tmp_path):
    one = _infinity_entry(monkeypatch, tmp_path, "node1", b"t5")
    two = _infinity_entry(monkeypatch, tmp_path, "node2", b"another t5")
    assert mf.differences({"model": one}, {"model": two}) == [
        "model: infinity-2b's text encoder files differ (model.safetensors)"]


# --- launchers and devices -------------------------------------------------------------------------------------------


def test_accelerate_state_gives_the_rank(monkeypatch, no_launcher):
    """A script that initialised accelerate (no WORLD_SIZE in the environment): its state says the ranks."""
    from arscale.bench.sharding import launcher_rank, resolve_shard

    class PartialState:
        num_processes, process_index = 3, 2

    PartialState._shared_state = {"initialised": True}  # what accelerate holds once a script initialised it

    state = types.ModuleType("accelerate.state")
    state.PartialState = PartialState
    package = types.ModuleType("accelerate")
    package.state = state
    monkeypatch.setitem(sys.modules, "accelerate", package)
    monkeypatch.setitem(sys.modules, "accelerate.state", state)
    assert launcher_rank() == (3, 2)
    shard = resolve_shard(2, 1)
    assert (shard.count, shard.index, shard.rank, shard.world_size) == (6, 5, 2, 3)
    PartialState._shared_state = {}  # imported but not initialised: one process
    assert launcher_rank() == (1, 0)


def test_launcher_device_without_cuda_is_left_to_pick_device(monkeypatch, no_launcher):
    from arscale.bench.sharding import launcher_device

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert (launcher_device("auto"), launcher_device("cuda"), launcher_device("cpu")) == ("auto", "cuda", "cpu")


def test_mps_where_the_machine_has_it(monkeypatch):
    from arscale.devices import device_key, pick_device

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("mps") == torch.device("mps")
    assert device_key(None) == "None"  # a plugin generator without a device: its own spelling


def test_first_missing_claims_nothing_where_a_parent_cannot_be_searched(monkeypatch, tmp_path):
    from arscale.folders import first_missing

    assert first_missing(tmp_path / "a" / "b") == tmp_path / "a"

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "exists", denied)
    assert first_missing(tmp_path / "a" / "b") is None


# --- bench: launcher environment, --scorer-weights, merge of one shard -----------------------------------------------

@pytest.fixture(scope="module")
def two_prompts(tmp_path_factory) -> Path:
    """A suite of two ShapeWorld prompts (a single object, two objects): a bench of it prints no note."""
    from arscale.shapeworld.suite import build_suite, write_suite

    path = tmp_path_factory.mktemp("suite") / "two.jsonl"
    write_suite(build_suite(1, 5)[:2], path)
    return path


def bench_args(suite: Path, strategies: str = "best-of-n") -> list[str]:
    return ["bench", "--strategies", strategies, "--n", "1", "--prompts", str(suite), "--batch-prompts", "1",
            "--quiet"]


def test_bench_refuses_a_launcher_environment_it_cannot_read_and_a_stray_file(monkeypatch, tmp_path, capsys,
                                                                               no_launcher, two_prompts):
    BENCH = bench_args(two_prompts)
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert main([*BENCH, "--out", str(tmp_path / "a")]) == 2
    assert one_error_line(capsys) == "arscale: error: environment variable WORLD_SIZE must be an integer, got 'two'"
    # a rank started by hand (no MASTER_ADDR) may find another rank's label folders, but no other file
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    (tmp_path / "out" / "best-of-n").mkdir(parents=True)
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert main([*BENCH, "--out", str(tmp_path / "out")]) == 2
    assert "holds other files and no bench manifest" in one_error_line(capsys)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["best-of-n", "notes.txt"]


@pytest.fixture(scope="module")
def shard_with_scorer_weights(tmp_path_factory, two_prompts):
    """Shard 0 of 2 of a best-of-n bench over two prompts, scored by a copy of the shipped reward
    (--scorer-weights)."""
    import os

    from arscale.scorers.shapeworld import WEIGHTS_DIR

    root = tmp_path_factory.mktemp("shard")
    shutil.copytree(WEIGHTS_DIR, root / "reward")
    saved = {k: os.environ.pop(k) for k in LAUNCHER_ENV if k in os.environ}
    threads = torch.get_num_threads()
    try:
        assert main([*bench_args(two_prompts), "--num-shards", "2", "--shard-index", "0", "--scorer-weights", str(root / "reward"),
                     "--out", str(root / "s0")]) == 0
    finally:
        os.environ.update(saved)
        torch.set_num_threads(threads)
    return root


def test_bench_records_the_scorer_weights_and_refuses_others(shard_with_scorer_weights, tmp_path, capsys,
                                                             two_prompts):
    root, BENCH = shard_with_scorer_weights, bench_args(two_prompts)
    manifest = json.loads((root / "s0" / "manifest.shard-0-of-2.json").read_text(encoding="utf-8"))
    assert manifest["scorer_weights"] == {
        "weights_path": str(root / "reward"),
        "weights_sha256": {name: mf.sha256_file(root / "reward" / name) for name in ("config.json", "model.safetensors")}}
    other = tmp_path / "reward"
    shutil.copytree(root / "reward", other)
    (other / "notes.json").write_text("{}")
    shard = ["--num-shards", "2", "--shard-index", "0", "--resume", "--out", str(root / "s0")]
    assert main([*BENCH, *shard, "--scorer-weights", str(other)]) == 2
    assert "(scorer_weights: the weights differ (notes.json))" in one_error_line(capsys)
    assert main([*BENCH, *shard]) == 2
    assert "(scorer_weights: --scorer-weights vs the shipped reward)" in one_error_line(capsys)


def test_merge_of_one_shard_of_two_says_it_is_incomplete(shard_with_scorer_weights, tmp_path, capsys):
    root = shard_with_scorer_weights
    assert main(["bench", "merge", str(root / "s0"), "--out", str(tmp_path / "merged")]) == 0
    out = capsys.readouterr().out
    assert "note: incomplete runs (missing shards?): best-of-n N=1: 1/2" in out.splitlines()
    merged = json.loads((tmp_path / "merged" / "manifest.json").read_text(encoding="utf-8"))
    assert merged["scorer_weights"]["weights_path"] == str(root / "reward")


def test_merge_refuses_inputs_that_are_not_shards(shard_with_scorer_weights, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    assert main(["bench", "merge", str(tmp_path / "file"), "--out", str(tmp_path / "m")]) == 2
    assert one_error_line(capsys).endswith(f"merge input {tmp_path / 'file'} is not a directory")
    assert main(["bench", "merge", str(tmp_path / "empty"), "--out", str(tmp_path / "m")]) == 2
    assert one_error_line(capsys).endswith(f"merge input {tmp_path / 'empty'} has no manifest.json (was it written "
                                           "by `arscale bench`?)")
    shard = tmp_path / "s0"
    shutil.copytree(shard_with_scorer_weights / "s0", shard)
    (shard / "best-of-n" / "n1" / "00000" / "record.json").write_text("[]")
    assert main(["bench", "merge", str(shard), "--out", str(tmp_path / "m")]) == 2
    assert one_error_line(capsys).endswith("00000/record.json: not a JSON object")


def test_a_refused_merge_leaves_no_folder_it_made(shard_with_scorer_weights, tmp_path, capsys):
    shard = tmp_path / "s0"
    shutil.copytree(shard_with_scorer_weights / "s0", shard)
    (shard / "best-of-n" / "n1" / "00000" / "record.json").write_text("{cut")
    assert main(["bench", "merge", str(shard), "--out", str(tmp_path / "new" / "merged")]) == 2
    assert "00000/record.json: unreadable" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0"]


def test_a_plugin_model_whose_module_cannot_be_imported(monkeypatch, tmp_path, capsys, no_launcher, two_prompts):
    """The manifest finds no weights folder for it, and the load says what is wrong; the --out it made is gone."""
    from arscale.generators.registry import MODELS

    monkeypatch.setitem(MODELS, "broken-model", "no_such_module_s34:make")
    assert mf.weights_directory("broken-model", None) is None
    assert main([*bench_args(two_prompts, "raw"), "--model", "broken-model", "--scorer", "", "--out", str(tmp_path / "out")]) == 2
    assert one_error_line(capsys) == ("arscale: error: model 'broken-model': 'no_such_module_s34:make' cannot be "
                                      "imported: No module named 'no_such_module_s34'")
    assert list(tmp_path.iterdir()) == []
