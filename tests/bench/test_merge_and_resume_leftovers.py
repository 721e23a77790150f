"""What a crash can leave in a bench folder's images, and what `bench merge` and `bench --resume` then do (README
"Large runs": a file a crash left empty or cut short leaves its prompt unfinished, `bench merge` refuses it naming
the file; layouts.py: a run killed at any moment never leaves a half-written image that an evaluator would
count)."""

import os
import shutil

import pytest
import torch
from bench_records import reference_bench
from cli_output import one_error_line

from arscale.cli import main

ARGS = ["bench", "--model", "shapeworld-var", "--prompts", "draw:1:5", "--n", "1", "--strategies", "raw",
        "--scorer", "", "--batch-prompts", "1", "--limit", "2", "--quiet", "--layout", "compbench"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_bench(tmp_path_factory, ARGS)



@pytest.mark.parametrize("which", ["geneval sample", "compbench image"])
def test_merge_refuses_a_finished_prompts_torn_image_naming_it(reference, tmp_path, capsys, which):
    """`bench merge` of a shard whose finished prompt has an image cut short refuses in one line naming the file."""
    src = tmp_path / "shard"
    shutil.copytree(reference, src)
    run = src / "raw" / "n1"
    if which == "geneval sample":
        path = run / "00001" / "samples" / "00000.png"
    else:
        path = min((run / "compbench" / "samples").glob("*_000013.png"))  # prompt 1, draw 3
    path.write_bytes(path.read_bytes()[:100])
    capsys.readouterr()
    assert main(["bench", "merge", str(src), "--out", str(tmp_path / "merged")]) == 2
    assert str(path) in one_error_line(capsys)


def test_resume_removes_a_temporary_file_a_kill_left_among_compbench_samples(reference, tmp_path):
    """After a kill mid-write and a resume, the CompBench samples folder lists exactly the uninterrupted run's files."""
    out = tmp_path / "killed"
    shutil.copytree(reference, out)
    run = out / "raw" / "n1"
    (run / "00001" / "record.json").unlink()  # prompt 1 was being written when the kill landed
    samples = run / "compbench" / "samples"
    image = min(samples.glob("*_000012.png"))
    # what `atomic_write_bytes` leaves when killed between open() and os.replace: `.<name>.tmp<pid>`, cut short
    (samples / f".{image.name}.tmp4242").write_bytes(image.read_bytes()[:50])
    image.unlink()
    before = torch.get_num_threads()
    assert main([*ARGS, "--out", str(out), "--resume"]) == 0
    torch.set_num_threads(before)
    expected = sorted(os.listdir(reference / "raw" / "n1" / "compbench" / "samples"))
    assert len(expected) == 20
    # BLIPvqa_eval/BLIP_vqa.py: file_names = os.listdir(samples); sorted by int(x.split("_")[-1].split('.')[0])
    assert sorted(os.listdir(samples)) == expected
