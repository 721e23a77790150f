"""Bad command-line input as a careless user gives it (session 27's sweep): a state folder that is a file or left
empty, prompt files that are a folder or not UTF-8, empty paths, absurd thread counts, a picture path that is a
folder, a variant configured twice. Each is refused in one line, before any work, with exit status 2."""

import pytest
import torch

from arscale.cli import main
from arscale.errors import ArscaleError

PROMPT = "a photo of a red circle"
QUICK_BENCH = ["bench", "--prompts", "draw:1:5", "--limit", "1", "--strategies", "raw", "--n", "1", "--scorer", "",
               "--quiet"]
QUICK_TRAIN = ["train", "shapeworld-ar-tokenizer", "--steps", "1", "--batch-size", "2"]


def _rc(argv) -> int:
    """main's exit status, a usage error's SystemExit included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _one_line(capsys, *needles) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1 and "error:" in lines[0], err
    assert all(n in lines[0] for n in needles), err
    return lines[0]


def test_a_state_dir_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    """A --state-dir naming a file is one line before training starts, not a traceback at the first save."""
    blocker = tmp_path / "state"
    blocker.write_text("mine")
    out = tmp_path / "out"
    assert main([*QUICK_TRAIN, "--state-dir", str(blocker), "--out", str(out)]) == 2
    _one_line(capsys, "--state-dir", str(blocker), "not a folder")
    assert blocker.read_text() == "mine" and not out.exists()


def test_an_empty_state_dir_is_refused_not_the_working_folder(tmp_path, monkeypatch, capsys):
    """--state-dir '' is refused; it must not save (or resume) a training state in the working folder."""
    monkeypatch.chdir(tmp_path)
    assert _rc([*QUICK_TRAIN, "--state-dir", "", "--out", str(tmp_path / "out")]) == 2
    _one_line(capsys, "--state-dir is empty")
    assert not (tmp_path / "state.json").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec", ["geneval:{folder}", "compbench:{latin}", "dpg:{folder}", "{latin}"])
def test_prompt_files_that_are_a_folder_or_not_utf8_are_one_line(spec, tmp_path, capsys):
    """A prompt 'file' that is a folder, or .txt prompts that are not UTF-8, give one line naming the path."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    latin = tmp_path / "color_val.txt"
    latin.write_bytes("a photo of a caf\xe9\n".encode("latin-1"))
    (folder / "p.txt").write_bytes(latin.read_bytes())  # dpg: one prompt per .txt file
    named = str(folder if "{folder}" in spec else latin)
    out = tmp_path / "out"
    assert main(["bench", "--prompts", spec.format(folder=folder, latin=latin), "--strategies", "raw", "--n", "1",
                 "--out", str(out)]) == 2
    _one_line(capsys, named)
    assert not out.exists()


def test_bench_merge_refuses_an_empty_out(tmp_path, monkeypatch, capsys):
    """`bench merge --out ''` is refused as `bench --out ''` is, instead of writing into the working folder."""
    shard = tmp_path / "shard"
    shard.mkdir()
    (shard / "manifest.json").write_text('{"timings": {}}')
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert _rc(["bench", "merge", str(shard), "--out", ""]) == 2
    _one_line(capsys, "--out is empty")
    assert list(here.iterdir()) == []


@pytest.mark.parametrize("argv, option", [
    (["generate", PROMPT, "--n", "1", "--weights", ""], "--weights"),
    ([*QUICK_BENCH, "--model-weights", ""], "--model-weights"),
    (["compare", "{tmp}", "--plot", ""], "--plot"),
    ([*QUICK_TRAIN, "--decoder-only", ""], "--decoder-only"),
])
def test_an_empty_path_option_is_refused_not_ignored(argv, option, tmp_path, capsys):
    """A path option given as '' (an unset shell variable) is refused, not read as the option left out."""
    argv = [a.format(tmp=tmp_path) for a in argv]
    out = tmp_path / "out"
    assert _rc([*argv, *([] if argv[0] == "compare" else ["--out", str(out)])]) == 2
    _one_line(capsys, f"{option} is empty")
    assert not out.exists()


@pytest.mark.parametrize("argv", [["generate", PROMPT, "--n", "1"], QUICK_BENCH, QUICK_TRAIN])
def test_an_absurd_thread_count_is_refused_before_torch_sees_it(argv, tmp_path, monkeypatch, capsys):
    """--threads 100000 is one line; torch is never asked for that many threads (it crashes without a word)."""
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)  # the real call would kill this process
    assert _rc([*argv, "--threads", "100000", "--out", str(tmp_path / "out")]) == 2
    _one_line(capsys, "--threads", "100000")
    assert 100000 not in calls and not (tmp_path / "out").exists()


def test_compare_refuses_a_plot_path_that_is_a_folder(tmp_path, capsys):
    """`compare --plot DIR` is refused up front, like `--json DIR`, instead of writing DIR.png beside it."""
    picture = tmp_path / "pictures"
    picture.mkdir()
    assert main(["compare", str(tmp_path), "--plot", str(picture)]) == 2
    _one_line(capsys, "--plot", "folder")
    assert not (tmp_path / "pictures.png").exists()


def test_a_label_configured_twice_is_refused():
    """Two --config for one label are refused, not resolved silently in favour of the last."""
    from arscale.bench.runner import parse_runs

    with pytest.raises(ArscaleError, match="--config given twice for 'tts-var'"):
        parse_runs("tts-var", ['tts-var={"lam": 1}', 'tts-var={"lam": 2}'])
