"""Prompt files read line by line as the official evaluators and generators read them.

GenEval's generator (`[json.loads(line) for line in fp]`), TIIF-Bench's eval_with_vlm.py (`for line in f`) and
T2I-CompBench's 3_in_1.py (`f.readlines()`) open their prompt files in text mode, where only "\\n" (after "\\r\\n"
and "\\r" become "\\n") ends a line. `str.splitlines` also breaks at U+0085, U+2028, U+2029, \\x0b, \\x0c and
\\x1c-\\x1e, which JSON strings and prompt text may hold.
"""

import json

from arscale.bench.suites import load_prompts

# U+2028 and U+0085 are legal inside a JSON string; json.dumps(..., ensure_ascii=False) writes them raw
ODD = "a photo of a dog\u2028on a mat\x85"


def _upstream_lines(path):
    """The records an upstream reader gets: non-blank lines of the file opened in text mode."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_geneval_record_with_a_unicode_line_separator_loads_like_geneval_reads_it(tmp_path):
    """A GenEval record whose prompt holds U+2028 / U+0085 loads as the one record GenEval's generator reads."""
    rec = {"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": ODD}
    f = tmp_path / "evaluation_metadata.jsonl"
    f.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    assert _upstream_lines(f) == [rec]
    kind, prompts = load_prompts(f"geneval:{f}")
    assert kind == "geneval" and [(p.prompt, p.metadata) for p in prompts] == [(ODD, rec)]


def test_tiif_line_indices_follow_eval_with_vlm_when_a_description_holds_u2028(tmp_path):
    """TIIF rows with U+2028 in a description load, and each keeps the line index eval_with_vlm.py gives it."""
    rows = [{"type": "text", "short_description": f"sign {i}", "long_description": f"a sign{ODD} {i}"}
            for i in range(2)]
    f = tmp_path / "text_prompts.jsonl"
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert len(_upstream_lines(f)) == 2
    _, prompts = load_prompts(f"tiif:{f}")
    assert [(p.metadata["description"], p.metadata["line"], p.prompt) for p in prompts] == [
        (d, i, rows[i][d]) for i in range(2) for d in ("short_description", "long_description")]


def test_compbench_prompt_positions_follow_3_in_1_readlines(tmp_path):
    """A *_val.txt line holding U+0085 stays one prompt, at the position 3_in_1.py aligns its 10 images by."""
    f = tmp_path / "complex_val.txt"
    f.write_text("a red\x85 book on a desk\r\na blue car\r\n", encoding="utf-8")
    with open(f, encoding="utf-8") as fh:
        data = fh.readlines()  # 3_in_1.py: dataset_num = len(data); scores[i*10:(i+1)*10] belong to line i
    _, prompts = load_prompts(f"compbench:{f}")
    assert len(prompts) == len(data) == 2
    assert [(p.prompt, p.metadata["category_index"]) for p in prompts] == [
        ("a red\x85 book on a desk", 0), ("a blue car", 1)]
