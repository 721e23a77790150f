import json
import re

import numpy as np
import pytest
from PIL import Image

from arscale.bench.layouts import CompBenchLayout, DPGLayout, TIIFLayout, atomic_save_png, grid
from arscale.bench.suites import load_compbench, load_dpg, load_geneval, load_prompts, load_tiif
from arscale.errors import ArscaleError


def _img(v):
    return np.full((8, 8, 3), v, dtype=np.uint8)


def test_geneval_loader_keeps_order_and_metadata(tmp_path):
    rows = [{"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"},
            {"tag": "counting", "include": [{"class": "cat", "count": 2}], "exclude": [{"class": "cat", "count": 3}],
             "prompt": "a photo of two cats"}]
    f = tmp_path / "evaluation_metadata.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    prompts = load_geneval(f)
    assert [p.index for p in prompts] == [0, 1]
    assert prompts[1].metadata["exclude"][0]["count"] == 3
    kind, again = load_prompts(str(f))
    assert kind == "geneval" and again == prompts  # dogs are not ShapeWorld


def test_geneval_loader_errors_name_the_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"prompt": "x", "tag": "plain", "include": []}\n{oops\n')
    with pytest.raises(ArscaleError, match="bad.jsonl:2"):
        load_geneval(f)
    with pytest.raises(ArscaleError, match="not found"):
        load_geneval(tmp_path / "missing.jsonl")
    # a record without its tag (the evaluator groups by it) is named, before anything runs
    f.write_text('{"prompt": "a photo of a circle", "include": [{"class": "circle", "count": 1}]}\n')
    with pytest.raises(ArscaleError, match="record 0 lacks 'tag'"):
        load_prompts(str(f))


def test_compbench_directory_and_layout_names(tmp_path):
    (tmp_path / "color_val.txt").write_text("a red book\na blue car\n")
    (tmp_path / "shape_val.txt").write_text("a round clock\n")
    prompts = load_compbench(tmp_path)
    assert [(p.index, p.prompt, p.metadata["category"], p.metadata["category_index"]) for p in prompts] == [
        (0, "a red book", "color", 0), (1, "a blue car", "color", 1), (2, "a round clock", "shape", 0)]
    layout = CompBenchLayout(tmp_path / "out", images_per_prompt=2)
    paths = layout.write(prompts[1], [_img(1), _img(2)])
    # one folder per category; the evaluator reads the question id from the last six digits
    assert [re.search(r"_(\d{6})\.png$", p.name).group(1) for p in paths] == ["000002", "000003"]
    assert paths[0].name.startswith("a blue car_") and paths[0].parent == tmp_path / "out" / "color" / "samples"
    (shape,) = [p.name for p in layout.write(prompts[2], [_img(3), _img(4)])][:1]
    assert shape == "a round clock_000000.png"  # numbered within its own category
    assert layout.is_complete(prompts[1]) and not layout.is_complete(prompts[0])
    with pytest.raises(ArscaleError, match="expects 2 images per prompt, got 1"):
        layout.write(prompts[0], [_img(0)])


def test_dpg_grid_is_two_by_two_named_like_the_prompt_file(tmp_path):
    d = tmp_path / "prompts"
    d.mkdir()
    (d / "zebra.txt").write_text("A zebra.\n")
    (d / "apple.txt").write_text("An apple.")
    prompts = load_dpg(d)
    assert [p.metadata["file"] for p in prompts] == ["apple", "zebra"]
    layout = DPGLayout(tmp_path / "out")
    (path,) = layout.write(prompts[1], [_img(10), _img(20), _img(30), _img(40)])
    im = np.asarray(Image.open(path))
    assert path.name == "zebra.png" and im.shape == (16, 16, 3)
    assert [im[0, 0, 0], im[0, 8, 0], im[8, 0, 0], im[8, 8, 0]] == [10, 20, 30, 40]
    with pytest.raises(ArscaleError, match="2x2"):
        DPGLayout(tmp_path, images_per_prompt=2)
    (tmp_path / "dpg_bench.csv").write_text("item_id,text\n")
    with pytest.raises(ArscaleError, match="dpg_bench/prompts"):
        load_dpg(tmp_path / "dpg_bench.csv")


def test_tiif_gives_short_and_long_descriptions_in_the_type_folder(tmp_path):
    # TIIF ships data/test_prompts/2d_spatial_relation_prompts.jsonl; the evaluator reads the folder named by `type`
    f = tmp_path / "2d_spatial_relation_prompts.jsonl"
    f.write_text(json.dumps({"type": "2d_spatial_relation", "short_description": "s0", "long_description": "l0"}) + "\n")
    prompts = load_tiif(f)
    assert [p.prompt for p in prompts] == ["s0", "l0"]
    path = TIIFLayout(tmp_path / "out", "arscale").write(prompts[1], [_img(5)])[0]
    assert path.relative_to(tmp_path / "out").as_posix() == "2d_spatial_relation/arscale/long_description/0.png"


def test_tiif_errors_name_the_file_line_even_after_blank_lines(tmp_path):
    f = tmp_path / "x_prompts.jsonl"
    good = json.dumps({"type": "x", "short_description": "s", "long_description": "l"})
    f.write_text(good + "\n\n" + json.dumps({"type": "x", "short_description": "s"}) + "\n")
    with pytest.raises(ArscaleError, match=r"x_prompts.jsonl:3: lacks 'long_description'"):
        load_tiif(f)


def test_atomic_save_leaves_no_temporary_files(tmp_path):
    atomic_save_png(_img(7), tmp_path / "a" / "x.png")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.png"]
    assert grid([_img(1)] * 3).shape == (16, 16, 3)


def test_draw_gives_fresh_shapeworld_prompts_from_python_too():
    from arscale.shapeworld import metadata_from_prompt

    kind, prompts = load_prompts("draw:3:4101")
    assert kind == "shapeworld" and len(prompts) == 3 * 6
    assert [p.index for p in prompts] == list(range(18))
    assert all(metadata_from_prompt(p.prompt)["tag"] == p.metadata["tag"] for p in prompts)
    assert [p.prompt for p in load_prompts("draw:3:4101")[1]] == [p.prompt for p in prompts]  # seeded
    assert [p.prompt for p in load_prompts("draw:3:4102")[1]] != [p.prompt for p in prompts]
    with pytest.raises(ArscaleError, match="draw:PER_TAG:SEED expects two integers"):
        load_prompts("draw:three:1")


def test_every_suites_geneval_folders_carry_prompt_and_tag():
    from arscale.bench.runner import geneval_metadata
    from arscale.bench.suites import SuitePrompt

    shapeworld = {"tag": "colors", "include": [], "prompt": "a photo of a red circle"}
    assert geneval_metadata(SuitePrompt(0, "a photo of a red circle", shapeworld)) is shapeworld  # untouched
    compbench = geneval_metadata(SuitePrompt(3, "a green bench", {"category": "color", "line": 3}))
    assert compbench == {"category": "color", "line": 3, "tag": "color", "prompt": "a green bench"}
    assert geneval_metadata(SuitePrompt(0, "a dog", {"file": "coco5"}))["tag"] == "plain"
    assert geneval_metadata(SuitePrompt(0, "a cat", {}))["prompt"] == "a cat"
