"""Reads arscale's T2I-CompBench, DPG-Bench and TIIF-Bench outputs the way the official evaluators do.

Prompt files follow the official formats, with lines of our own; the readers follow each evaluator's own
path, sort and split logic (no models): T2I-CompBench BLIPvqa_eval/BLIP_vqa.py,
UniDet_eval/experts/obj_detection/generate_dataset.py, UniDet_eval/numeracy_eval.py, 3_in_1_eval/3_in_1.py;
ELLA dpg_bench/compute_dpg_bench.py; TIIF-Bench eval/eval_with_vlm.py.
"""

import glob
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent.parent / "search_tts"))
from search_fakes import FakeNextScale

from arscale.bench.runner import Bench, parse_runs
from arscale.bench.suites import load_prompts

COMPBENCH = {  # examples/dataset/<category>_val.txt: one prompt per line, CRLF line ends as shipped
    "color_val.txt": "a yellow kite and a purple cup\r\na purple kite and a yellow cup\r\n",
    "complex_val.txt": "The green scarf lay under the white lamp.\r\n"
                       "The orange ball rolled past the grey chair.\r\n",
    "spatial_val.txt": "a zebra below a clock\r\na boy to the left of a tree",
    "complex_val_spatial.txt": "The green scarf lay under the white lamp.\r\n",  # a 3_in_1 list, not a suite
}
TIIF = {  # data/testmini_prompts/<type>_prompts.jsonl: type, short and long description per line
    "2d_spatial_relation_prompts.jsonl": [{"type": "2d_spatial_relation", "short_description": "A dog sits "
                                           "left of a vase.", "long_description": "A small brown dog sits "
                                           "calmly to the left of a tall blue vase."}] * 2,
    "action+color_prompts.jsonl": [{"type": "action+color", "short_description": "A green frog leaps.",
                                    "long_description": "A bright green frog leaps over a puddle."}],
}


def _run(layout, spec, out):
    gen = FakeNextScale()
    gen.image_size = 16
    kind, prompts = load_prompts(spec)
    Bench(gen, None, kind=kind, seed=0, batch_prompts=4, quiet=True, layout=layout).run(
        parse_runs("raw"), [1], prompts, out)
    return prompts, out / "raw" / "n1" / layout, gen.name


def test_compbench_per_category_folders_read_like_its_scorers(tmp_path):
    n_images = 10  # the benchmark's protocol: 10 images per prompt (3_in_1.py: num=10)
    src = tmp_path / "dataset"
    src.mkdir()
    for name, text in COMPBENCH.items():
        (src / name).write_bytes(text.encode())
    _, root, _ = _run("compbench", f"compbench:{src}", tmp_path / "out")
    assert sorted(os.listdir(root)) == ["color", "complex", "spatial"]
    for category in ["color", "complex", "spatial"]:
        lines = [s.strip() for s in (src / f"{category}_val.txt").read_text().splitlines() if s.strip()]
        names = os.listdir(os.path.join(root, category, "samples"))
        assert len(names) == n_images * len(lines)
        # BLIP_vqa.py:20-31: question_id = rank after sorting by the number after the last "_"
        names.sort(key=lambda x: int(x.split("_")[-1].split(".")[0]))
        assert [n.split("_")[0] for n in names] == [p for p in lines for _ in range(n_images)]
        # generate_dataset.py:25 and numeracy_eval.py:188 split on the first "_"
        ids = sorted(int(n.split(".png")[0].split("_")[1]) for n in names)
        assert ids == list(range(n_images * len(lines)))
        assert {Image.open(os.path.join(root, category, "samples", n)).size for n in names} == {(16, 16)}
    # 3_in_1.py:55-69: num = 10 images per prompt, aligned by position with complex_val.txt
    data = [s.strip("\n").split(".")[0].lower() for s in (src / "complex_val.txt").read_text().splitlines()]
    scores = np.arange(len(os.listdir(os.path.join(root, "complex", "samples"))), dtype=float)
    total = np.zeros(10 * len(data))
    for i in range(len(data)):
        total[i * 10:(i + 1) * 10] = scores[i * 10:(i + 1) * 10]  # raises if the counts do not line up


def test_dpg_grids_read_like_compute_dpg_bench(tmp_path):
    src = tmp_path / "prompts"
    src.mkdir()
    for stem in ["0", "10", "COCOval2014000000010363", "partiprompts4"]:  # dpg_bench/prompts/<item_id>.txt
        (src / f"{stem}.txt").write_text(f"Prompt {stem}, with a comma.")
    _, root, _ = _run("dpg", f"dpg:{src}", tmp_path / "out")
    item_ids = {p.stem for p in src.iterdir()}
    files = os.listdir(root)  # compute_dpg_bench.py:190
    assert len(files) == len(item_ids)
    for fn in files:
        assert os.path.basename(fn).split(".")[0] in item_ids  # :119 key into dpg_bench.csv item_id
        im = Image.open(os.path.join(root, fn))
        r = 16  # --resolution = the generator's image size
        assert im.size == (2 * r, 2 * r)


def test_tiif_folders_read_like_eval_with_vlm(tmp_path):
    src = tmp_path / "testmini_prompts"
    src.mkdir()
    for name, rows in TIIF.items():
        (src / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, root, model = _run("tiif", f"tiif:{src}", tmp_path / "out")
    found = 0
    for jsonl_file in glob.glob(os.path.join(src, "*.jsonl")):  # eval_with_vlm.py:124-143
        lines = [json.loads(s) for s in Path(jsonl_file).read_text().splitlines() if s.strip()]
        attr_type = lines[0]["type"]
        for desc in ["long_description", "short_description"]:
            img_dir = os.path.join(root, attr_type, model, desc)
            for idx in range(len(lines)):
                files = [f for f in glob.glob(os.path.join(img_dir, f"{idx}.*")) if f.lower().endswith(".png")]
                assert files, f"No image found for index {idx} in {img_dir}"
                found += 1
    assert found == 2 * sum(len(rows) for rows in TIIF.values())
