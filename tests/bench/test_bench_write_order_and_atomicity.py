"""A prompt's record.json is written after its images, every file atomically, and an official layout's prompt
counts as done only when all its images are there (README "Large runs": a run killed at any moment resumes to
exactly the uninterrupted run's files)."""
import json
import os

import numpy as np
import pytest
from search_fakes import FakeNextScale, FakeScorer

from arscale.atomic_files import atomic_write_bytes
from arscale.bench import geneval_layout
from arscale.bench.geneval_layout import sample_path
from arscale.bench.layouts import CompBenchLayout
from arscale.bench.runner import Bench
from arscale.bench.suites import SuitePrompt
from arscale.shapeworld import build_suite


def _bench_setup():
    gen = FakeNextScale()
    gen.image_size = 64
    prompts = [SuitePrompt(i, md["prompt"], md) for i, md in enumerate(build_suite(1, 3)[:4])]
    return Bench(gen, FakeScorer(), kind="shapeworld", seed=1, batch_prompts=1, quiet=True), prompts


def test_a_failed_image_write_leaves_no_record_and_a_resume_completes_the_run(tmp_path, monkeypatch):
    bench, prompts = _bench_setup()
    reference = tmp_path / "reference"
    bench.run(["raw"], [1], prompts, reference)

    out = tmp_path / "crashed"
    original = geneval_layout.write_sample

    def crash_on_prompt_2(root, index, sample, image):
        if index == 2:
            raise KeyboardInterrupt("killed while writing prompt 2's image")
        return original(root, index, sample, image)

    monkeypatch.setattr(geneval_layout, "write_sample", crash_on_prompt_2)
    with pytest.raises(KeyboardInterrupt):
        bench.run(["raw"], [1], prompts, out)
    root = out / "raw" / "n1"
    assert sorted(p.parent.name for p in root.glob("*/record.json")) == ["00000", "00001"]
    assert not (root / "00002" / "record.json").exists()  # the record comes last: the prompt does not count

    monkeypatch.setattr(geneval_layout, "write_sample", original)
    bench.run(["raw"], [1], prompts, out, resume=True)
    for sp in prompts:
        assert sample_path(root, sp.index, 0).read_bytes() == sample_path(reference / "raw" / "n1", sp.index, 0).read_bytes()
        assert json.loads((root / f"{sp.index:05d}" / "record.json").read_text())["index"] == sp.index


def test_an_interrupted_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "record.json"
    target.write_bytes(b"old")

    def killed_before_rename(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed_before_rename)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new contents")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"  # never a half-written or new file under the final name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]  # the temporary file is gone
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents" and sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_a_compbench_prompt_with_some_images_missing_is_not_complete(tmp_path):
    sp = SuitePrompt(4, "a red book", {"category": "color", "category_index": 1})
    layout = CompBenchLayout(tmp_path, images_per_prompt=3)
    images = [np.full((4, 4, 3), v, dtype=np.uint8) for v in (1, 2, 3)]
    paths = layout.write(sp, images)
    assert layout.is_complete(sp)
    paths[-1].unlink()  # killed between the second and third image
    assert not layout.is_complete(sp)


def test_a_prompt_whose_image_is_gone_is_not_finished(tmp_path):
    bench, prompts = _bench_setup()
    bench.run(["raw"], [1], prompts, tmp_path)
    image = sample_path(tmp_path / "raw" / "n1", 1, 0)
    before = image.read_bytes()
    image.unlink()  # its record.json stays
    bench.run(["raw"], [1], prompts, tmp_path, resume=True)
    assert image.read_bytes() == before
