"""The ShapeWorld commands (`arscale eval shapeworld`, `arscale shapeworld render`) where they cannot write or are
given an empty folder name: bad input is one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest
from cli_output import one_error_line

from arscale.bench import geneval_layout as gl
from arscale.cli import main
from arscale.shapeworld import build_suite, metadata_from_prompt, render, write_suite
from arscale.shapeworld.scene import Scene, SceneObject


def _layout(root):
    """A one-prompt GenEval layout holding one clean render of a red circle."""
    image = render(Scene([SceneObject("circle", "red", 16, 20, 20)]))
    gl.write_prompt(root, 0, metadata_from_prompt("a photo of a circle"), [image])
    return root



def test_eval_that_cannot_write_its_results_is_one_line(tmp_path, capsys):
    """A DIR where results.jsonl cannot be written (here a folder is in the way; a read-only DIR alike) is one line."""
    root = _layout(tmp_path / "gt")
    (root / "results.jsonl").mkdir()
    try:
        rc = main(["eval", "shapeworld", str(root), "--no-progress"])
    except OSError as exc:  # the current code: IsADirectoryError escapes main as a traceback
        pytest.fail(f"traceback: {exc!r}")
    assert rc == 2
    assert "results.jsonl" in one_error_line(capsys)


def test_render_that_cannot_write_a_prompt_folder_is_one_line(tmp_path, capsys):
    """A file where render must make a prompt folder (`--out` of another tool's output) is one line, not a traceback."""
    prompts = tmp_path / "s.jsonl"
    write_suite(build_suite(1, 5), prompts)
    out = tmp_path / "gt"
    out.mkdir()
    (out / "00000").write_text("not a folder")
    args = ["shapeworld", "render", "--prompts", str(prompts), "--out", str(out), "--per-prompt", "1", "--no-progress"]
    try:
        rc = main(args)
    except OSError as exc:  # the current code: NotADirectoryError / FileExistsError escapes main
        pytest.fail(f"traceback: {exc!r}")
    assert rc == 2
    assert "00000" in one_error_line(capsys)


def test_eval_of_an_empty_dir_argument_is_refused_not_the_working_folder(tmp_path, monkeypatch, capsys):
    """`arscale eval shapeworld ""` is refused in one line; it must not judge and write into the working folder."""
    _layout(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "shapeworld", "", "--no-progress"]) == 2
    assert "empty" in one_error_line(capsys)
    assert not (tmp_path / "results.jsonl").exists() and not (tmp_path / "summary.json").exists()


def test_compare_of_an_empty_folder_argument_is_refused(tmp_path, monkeypatch, capsys):
    """`arscale compare ""` (an unset variable) is one line, not a comparison of the working folder."""
    monkeypatch.chdir(tmp_path)
    assert main(["compare", ""]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty" in err[0]
