"""Mutation audit of the GenEval layout (arscale.bench.geneval_layout): what djghosh13/geneval's evaluate_images.py
and summary_scores.py read and write, and the reader's refusals, that the other tests left unpinned."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from arscale.bench import geneval_layout as gl
from arscale.errors import ArscaleError

RECORD = {"tag": "single_object", "include": [{"class": "circle", "count": 1}], "prompt": "a photo of a circle"}
IMG = np.zeros((8, 8, 3), dtype=np.uint8)


def _folder(root: Path, name: str, record=RECORD) -> Path:
    folder = root / name
    (folder / "samples").mkdir(parents=True)
    (folder / "metadata.jsonl").write_text(json.dumps(record))
    return folder


def _row(filename: str, record: dict, correct) -> dict:
    return {"filename": filename, "tag": record["tag"], "correct": correct, "metadata": json.dumps(record)}


# --- writing ------------------------------------------------------------------------------------------------


def test_metadata_keeps_keys_beyond_genevals_four():
    """write_metadata / result_row keep extra record keys (after tag, include, exclude, prompt), not drop them."""
    record = {"prompt": "a photo of a circle", "seed": 7, "tag": "single_object", "include": []}
    row = gl.result_row("r/00000/samples/00000.png", record, True, "")
    assert list(json.loads(row["metadata"])) == ["tag", "include", "prompt", "seed"]


def test_metadata_file_holds_every_key(tmp_path):
    """The metadata.jsonl of a record with an extra key reads back as the whole record."""
    record = {**RECORD, "seed": 7}
    gl.write_metadata(tmp_path, 0, record)
    assert json.loads((tmp_path / "00000" / "metadata.jsonl").read_text()) == record


def test_result_row_metadata_is_what_genevals_evaluator_writes(tmp_path):
    """The metadata column is json.dumps of the record as evaluate_images.py json.load-s it from the folder
    (key order kept, no sorting), so summary_scores.py groups our rows and GenEval's alike."""
    counting = {"tag": "counting", "include": [{"class": "cross", "count": 2}],
                "exclude": [{"class": "cross", "count": 3}], "prompt": "a photo of two crosses"}
    gl.write_metadata(tmp_path, 3, counting)
    with open(tmp_path / "00003" / "metadata.jsonl") as fp:
        as_geneval_reads_it = json.load(fp)
    assert gl.result_row("x", counting, False, "")["metadata"] == json.dumps(as_geneval_reads_it)


def test_result_row_columns_are_plain_json_types(tmp_path):
    """`correct` is a Python bool even from a numpy verdict (results.jsonl stays writable); details default
    to an empty object, as GenEval writes when nothing was detected."""
    row = gl.result_row("x", RECORD, np.bool_(True), "")
    assert row["correct"] is True and row["details"] == "{}"
    gl.write_results(tmp_path / "results.jsonl", [row])
    assert gl.read_results(tmp_path / "results.jsonl")[0]["correct"] is True


@pytest.mark.parametrize("image", [np.zeros((4, 4, 3)), np.zeros((4, 4, 4), dtype=np.uint8)],
                         ids=["float", "rgba"])
def test_encode_png_refuses_what_is_not_uint8_rgb(image):
    """encode_png takes uint8 [H, W, 3] only: a float array or a 4-channel one is an ArscaleError."""
    with pytest.raises(ArscaleError, match=r"expected a uint8 \[H, W, 3\] image"):
        gl.encode_png(image)


def test_a_sample_before_its_metadata_is_refused(tmp_path):
    """write_sample into a prompt folder that does not exist says to write the metadata first."""
    with pytest.raises(ArscaleError, match="write the prompt's metadata first"):
        gl.write_sample(tmp_path, 0, 0, IMG)
    assert not any(tmp_path.iterdir())


def test_a_temporary_file_is_never_a_sample_to_geneval(tmp_path, monkeypatch):
    """The temporary name of an atomic write sits in the same folder and, left behind by a killed run, is not
    a name GenEval's evaluator takes as a sample (it reads every name re.match-ing \\d+\\.png)."""
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append((Path(src), Path(dst)))
        return real(src, dst)

    gl.write_metadata(tmp_path, 0, RECORD)
    monkeypatch.setattr(gl.os, "replace", spy)
    final = gl.write_sample(tmp_path, 0, 0, IMG)
    [(tmp, dst)] = seen
    assert dst == final and tmp.parent == final.parent and tmp != final
    assert not re.match(r"\d+\.png", tmp.name)


# --- reading ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("record", [{"include": [], "prompt": "p"}, {"tag": "colors", "prompt": "p"},
                                    {"tag": "colors", "include": "circle", "prompt": "p"}],
                         ids=["no-tag", "no-include", "include-not-a-list"])
def test_metadata_without_tag_or_an_include_list_is_malformed(tmp_path, record):
    """A record without 'tag', or whose 'include' is not a list, is refused naming the file."""
    _folder(tmp_path, "00000", record)
    with pytest.raises(ArscaleError, match=r"00000.metadata\.jsonl: malformed metadata"):
        gl.read_prompts(tmp_path)


def test_folders_that_are_not_all_digits_are_skipped(tmp_path):
    """Only all-digit folder names are prompt folders (GenEval's subfolder.isdigit()): '1a' is not one."""
    _folder(tmp_path, "00000")
    (tmp_path / "1a").mkdir()
    (tmp_path / "0001_old").mkdir()
    assert [f.index for f in gl.read_prompts(tmp_path)] == [0]


def test_unpadded_folder_names_come_in_index_order(tmp_path):
    """GenEval accepts any all-digit folder name; they are read in index order (2 before 10), not name order."""
    for name in ("10", "2", "00001"):
        _folder(tmp_path, name)
    assert [f.index for f in gl.read_prompts(tmp_path)] == [1, 2, 10]


def test_a_prompt_folder_without_samples_is_one_error(tmp_path):
    """A prompt folder with metadata but no samples/ folder is an ArscaleError naming samples/."""
    (tmp_path / "00000").mkdir()
    (tmp_path / "00000" / "metadata.jsonl").write_text(json.dumps(RECORD))
    with pytest.raises(ArscaleError, match=r"samples: missing"):
        gl.read_prompts(tmp_path)


def test_only_files_named_digits_png_are_samples(tmp_path):
    """A folder named like a sample and a file named just '.png' are not samples."""
    folder = _folder(tmp_path, "00000")
    (folder / "samples" / "00000.png").write_bytes(gl.encode_png(IMG))
    (folder / "samples" / "00001.png").mkdir()
    (folder / "samples" / ".png").write_bytes(b"x")
    [pf] = gl.read_prompts(tmp_path)
    assert [p.name for p in pf.samples] == ["00000.png"]


@pytest.mark.parametrize("mode", ["RGBA", "L", "P"])
def test_read_image_is_always_rgb(tmp_path, mode):
    """read_image returns uint8 [H, W, 3] whatever mode the PNG was saved in."""
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.full((5, 6, 3), 200, dtype=np.uint8)).convert(mode).save(path)
    image = gl.read_image(path)
    assert image.shape == (5, 6, 3) and image.dtype == np.uint8


def test_a_truncated_png_is_one_error_naming_it(tmp_path):
    """A PNG cut short (Pillow's OSError 'image file is truncated') is an ArscaleError naming the file."""
    data = gl.encode_png(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArscaleError, match=re.escape(str(path)) + ": unreadable image"):
        gl.read_image(path)


def test_results_lines_end_only_at_newline(tmp_path):
    """A raw U+2028 inside a JSON string (a results file written with ensure_ascii off) does not split a row."""
    path = tmp_path / "results.jsonl"
    row = {"filename": "a.png", "tag": "colors", "correct": True, "prompt": "a\u2028b"}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert gl.read_results(path) == [row]


@pytest.mark.parametrize("line", ["3", '["filename", "tag", "correct"]'])
def test_a_results_line_that_is_not_an_object_is_one_error(tmp_path, line):
    """A line of results.jsonl that is valid JSON but not an object is an ArscaleError naming the line (not a
    TypeError traceback, nor a row that later fails in compute_summary)."""
    path = tmp_path / "results.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ArscaleError, match="line 1"):
        gl.read_results(path)


def test_metadata_without_a_prompt_is_malformed(tmp_path):
    """GenEval's evaluator reads metadata['prompt'] (a KeyError without one); the reader's own message says
    it expects 'tag', 'include' and 'prompt': a record without 'prompt' is refused naming the file."""
    _folder(tmp_path, "00000", {"tag": "colors", "include": []})
    with pytest.raises(ArscaleError, match="malformed metadata"):
        gl.read_prompts(tmp_path)


# --- summary ------------------------------------------------------------------------------------------------


def test_summary_tags_come_in_genevals_order():
    """Known tags appear in GenEval's order (single_object before two_object) whatever the row order."""
    two = {**RECORD, "tag": "two_object"}
    s = gl.compute_summary([_row("r/00000/samples/0.png", two, True), _row("r/00001/samples/0.png", RECORD, True),
                            _row("r/00002/samples/0.png", {**RECORD, "tag": "mine"}, True)])
    assert list(s["tags"]) == ["single_object", "two_object", "mine"]


def test_summary_of_no_rows_is_zeros():
    """An empty result set summarises to 0.0 accuracies (not NaN) and zero counts."""
    s = gl.compute_summary([])
    assert s["overall"] == 0.0 and s["image_accuracy"] == 0.0 and s["prompt_accuracy"] == 0.0
    assert s["images"] == 0 and s["prompts"] == 0 and s["tags"] == {}


def test_summary_counts_correct_by_truth_like_summary_scores():
    """summary_scores.py takes the mean of `correct`: a results file with 1/0 counts like true/false."""
    s = gl.compute_summary([_row("r/00000/samples/0.png", RECORD, 1), _row("r/00001/samples/0.png", RECORD, 0)])
    assert s["tags"]["single_object"]["correct"] == 1 and s["overall"] == 0.5
    assert s["prompt_accuracy"] == 0.5 and s["geneval_prompt_accuracy"] == 1.0


def test_rows_with_bare_filenames_group_by_their_metadata():
    """A row whose filename has no prompt folder is grouped with the rows of the same record, not with all."""
    other = {**RECORD, "prompt": "a photo of a square"}
    s = gl.compute_summary([_row("a.png", RECORD, True), _row("b.png", other, False), _row("c.png", RECORD, False)])
    assert s["prompts"] == 2 and s["prompt_accuracy"] == 0.5


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_strict_json_nulls_every_non_finite_float_in_tuples_too(value):
    """strict_json writes null for NaN and both infinities, inside dicts, lists and tuples alike."""
    text = gl.strict_json({"a": value, "b": (1.0, value), "c": [{"d": value}]})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": [{"d": None}]}


def test_the_table_counts_are_rounded_not_truncated():
    """The images / prompts lines of format_summary show the correct counts (15 of 22, not 14, where
    15 / 22 * 22 is 14.999...) and the per-folder prompt accuracy, not the per-record one."""
    rows = [_row(f"r/{i:05d}/samples/0.png", RECORD, i < 15) for i in range(22)]
    s = gl.compute_summary(rows)
    lines = {line.split()[0]: line.split() for line in gl.format_summary(s).splitlines()}
    assert lines["images"][-2:] == ["15", "22"]
    assert lines["prompts"][-3:] == ["68.18%", "15", "22"]
    assert s["geneval_prompt_accuracy"] == 1.0  # one record: its number differs from the per-folder line's
