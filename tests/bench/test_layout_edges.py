"""GenEval / CompBench layout edge cases (geneval_layout.py module docs; layouts.py compbench_name comment)."""
import json

from arscale.bench.geneval_layout import iter_prompts
from arscale.bench.layouts import compbench_name


def test_samples_named_by_the_official_evaluator_sort_numerically(tmp_path):
    # module docs: the official evaluator accepts any `\d+\.png`; iter_prompts yields "sorted sample paths",
    # i.e. in sample-index order, so 2.png comes before 10.png
    folder = tmp_path / "00000"
    (folder / "samples").mkdir(parents=True)
    (folder / "metadata.jsonl").write_text(json.dumps({"tag": "single_object", "include": [], "prompt": "x"}))
    for n in (10, 2, 1):
        (folder / "samples" / f"{n}.png").write_bytes(b"")
    [pf] = list(iter_prompts(tmp_path))
    assert [p.name for p in pf.samples] == ["1.png", "2.png", "10.png"]


def test_compbench_name_keeps_the_prompt_words_apart():
    # the evaluators read the prompt before the first "_" (comment above compbench_name); an "_" inside the
    # prompt is read as a word break, so the recovered prompt has the same words
    name = compbench_name("a red_car and a/blue bench", 7)
    prompt, index = name[: name.index("_")], name[name.rindex("_") + 1: -4]
    assert prompt.split() == ["a", "red", "car", "and", "a", "blue", "bench"]
    assert index == "000007"
