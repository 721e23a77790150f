"""benchmarks/objects_per_image.py: objects detected in each run's final images, and two_object's one-class rate."""

import json

import numpy as np
from PIL import Image

from arscale.shapeworld.grammar import metadata_from_prompt
from arscale.shapeworld.render import render
from arscale.shapeworld.scene import sample_scene


def write_record(root, label, n, index, prompt, tag, image_prompt, seed):
    """A finished prompt in `arscale bench`'s layout whose image is a clean render of `image_prompt`."""
    folder = root / label / f"n{n}" / f"{index:05d}"
    (folder / "samples").mkdir(parents=True)
    scene = sample_scene(metadata_from_prompt(image_prompt), np.random.default_rng(seed))
    Image.fromarray(render(scene)).save(folder / "samples" / "0000.png")
    (folder / "record.json").write_text(json.dumps({"label": label, "n": n, "index": index, "prompt": prompt,
                                                    "tag": tag, "correct": True}))


def test_objects_are_counted_per_tag_and_one_class_two_object_images_found(tmp_path, benchmark_script, capsys):
    m = benchmark_script("objects_per_image")
    two = "a photo of a circle and a square"
    write_record(tmp_path, "raw", 1, 0, two, "two_object", two, 0)
    write_record(tmp_path, "raw", 1, 1, two, "two_object", "a photo of two circles", 1)
    write_record(tmp_path, "raw", 1, 2, "a photo of four crosses", "counting", "a photo of four crosses", 2)
    write_record(tmp_path, "search", 8, 0, two, "two_object", "a photo of a circle", 3)
    out = tmp_path / "objects.json"
    assert m.main([str(tmp_path), "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    raw, search = results["raw (N=1)"], results["search (N=8)"]
    assert raw["objects_per_image"]["two_object"] == 2.0 and raw["objects_per_image"]["counting"] == 4.0
    assert raw["objects_per_image"]["all"] == 8 / 3 and raw["two_object_one_class"] == [1, 2]
    assert search["objects_per_image"] == {"two_object": 1.0, "all": 1.0}
    assert search["two_object_one_class"] == [1, 1]
    assert "| raw (N=1) | 3 |" in capsys.readouterr().out


def test_label_filter_and_bad_folders(tmp_path, benchmark_script, capsys):
    m = benchmark_script("objects_per_image")
    write_record(tmp_path, "raw", 1, 0, "a photo of a square", "single_object", "a photo of a square", 0)
    assert m.main([str(tmp_path), "--labels", "scaling-ar"]) == 2
    assert "no finished prompts" in capsys.readouterr().err
    assert m.main([str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
