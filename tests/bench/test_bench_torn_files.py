"""What a crash can leave in a bench folder besides a missing file — a file
under its final name cut short or empty (`atomic_write_bytes` renames without an fsync, so a machine that goes
down can lose the data of a file already renamed into place) — and what `bench --resume` and `bench merge` then
do. README "Large runs": a run stopped at any moment and resumed ends with exactly the files of an uninterrupted
run; otherwise a command must refuse in one line naming the file, never with a traceback."""

import json
import random
import shutil

import pytest
from bench_records import reference_bench

from arscale.cli import main

ARGS = ["bench", "--model", "shapeworld-var", "--prompts", "draw:1:5", "--n", "1", "--strategies", "raw",
        "--scorer", "", "--batch-prompts", "2", "--limit", "4", "--quiet"]
WALL = {"wall", "total_wall", "overhead", "overhead_fraction"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_bench(tmp_path_factory, ARGS)


def _no_wall(x):
    if isinstance(x, dict):
        return {k: _no_wall(v) for k, v in x.items() if k not in WALL and not k.startswith("wall_")}
    return x


def _state(out):
    """Every per-prompt file and the summary of raw N=1, wall times aside."""
    root = out / "raw" / "n1"
    state = {"summary": _no_wall(json.loads((root / "summary.json").read_text()))}
    for path in sorted(root.glob("0*/**/*")):
        if path.is_file():
            rel = str(path.relative_to(root))
            state[rel] = _no_wall(json.loads(path.read_text())) if path.name == "record.json" else path.read_bytes()
    return state


def _torn(reference, out, name, rng):
    """A copy of the reference with one prompt's `name` cut short at a random byte (possibly empty)."""
    shutil.copytree(reference, out)
    path = out / "raw" / "n1" / f"{rng.randrange(4):05d}" / name
    data = path.read_bytes()
    path.write_bytes(data[: rng.randrange(len(data) - 1)])  # never only the record's closing newline
    return path


def _same_or_named(rc, capsys, out, reference, path):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if rc == 2:  # a refusal: one line naming the damaged file
        lines = [line for line in err.splitlines() if line.startswith("arscale: error:")]
        assert len(lines) == 1 and str(path) in lines[0], err
    else:
        assert rc == 0 and _state(out) == _state(reference), path


def test_a_torn_record_resumes_to_the_reference_or_is_refused_naming_it(reference, tmp_path, capsys):
    """A record.json cut short at any byte resumes to the uninterrupted run's files, or is refused naming it."""
    rng = random.Random(0)
    for case in range(3):
        path = _torn(reference, tmp_path / f"case{case}", "record.json", rng)
        capsys.readouterr()
        rc = main([*ARGS, "--out", str(tmp_path / f"case{case}"), "--resume"])
        _same_or_named(rc, capsys, tmp_path / f"case{case}", reference, path)


@pytest.mark.parametrize("name", ["samples/00000.png", "metadata.jsonl"])
def test_a_torn_image_or_metadata_resumes_to_the_reference(reference, tmp_path, capsys, name):
    """A finished prompt's image or metadata cut short at any byte is rerun by a resume, not kept."""
    rng = random.Random(1)
    for case in range(2):
        path = _torn(reference, tmp_path / f"case{case}", name, rng)
        capsys.readouterr()
        rc = main([*ARGS, "--out", str(tmp_path / f"case{case}"), "--resume"])
        _same_or_named(rc, capsys, tmp_path / f"case{case}", reference, path)


@pytest.mark.parametrize("damage", ["torn record", "torn metadata", "no metadata"])
def test_merging_a_damaged_prompt_is_refused_in_one_line(reference, tmp_path, capsys, damage):
    """`bench merge` of a folder holding a damaged finished prompt refuses in one line naming its file."""
    rng = random.Random(2)
    src = tmp_path / "src"
    if damage == "no metadata":
        shutil.copytree(reference, src)
        path = src / "raw" / "n1" / "00002" / "metadata.jsonl"
        path.unlink()
    else:
        path = _torn(reference, src, "record.json" if damage == "torn record" else "metadata.jsonl", rng)
    capsys.readouterr()
    assert main(["bench", "merge", str(src), "--out", str(tmp_path / "merged")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("arscale: error: ") and str(path) in lines[0], lines


def test_a_torn_dpg_grid_is_rerun_by_a_resume(tmp_path):
    """A DPG grid cut short at any byte is rewritten by a resume, as the uninterrupted run wrote it."""
    args = [*ARGS[:-3], "--limit", "1", "--quiet", "--layout", "dpg"]
    reference, out = tmp_path / "reference", tmp_path / "out"
    assert main([*args, "--out", str(reference)]) == 0
    shutil.copytree(reference, out)
    grid = out / "raw" / "n1" / "dpg" / "00000.png"
    data = grid.read_bytes()
    grid.write_bytes(data[: random.Random(3).randrange(len(data) - 1)])
    assert main([*args, "--out", str(out), "--resume"]) == 0
    assert grid.read_bytes() == data
