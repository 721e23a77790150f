"""Untrusted inputs: suite text and metadata that name output files, bench folders and
manifests from others, plugin names, and JSON that no config or prompt file holds."""

import json

import numpy as np
import pytest

from arscale.bench import manifest as mf
from arscale.bench import merge as mg
from arscale.bench.geneval_layout import PNG_END
from arscale.bench.layouts import CompBenchLayout, DPGLayout
from arscale.bench.runner import Bench
from arscale.bench.suites import SuitePrompt, load_prompts, load_tiif
from arscale.cli import main
from arscale.errors import ArscaleError


def _image():
    return np.zeros((8, 8, 3), np.uint8)


def _files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


class _Untouched:
    """A generator a run must refuse before it asks anything of it."""

    name = "m"

    def __init__(self):
        self.asked = []

    def __getattr__(self, attr):
        self.asked.append(attr)
        raise AttributeError(attr)


@pytest.mark.parametrize("kind", ["../../../../../escaped", "ABSOLUTE", 5])
def test_a_tiif_type_that_is_no_folder_name_is_refused_before_any_search(tmp_path, kind):
    """A TIIF `type` of ../.., an absolute path or a number is one line, before any search, and writes nothing."""
    kind = str(tmp_path / "escaped") if kind == "ABSOLUTE" else kind
    src = tmp_path / "prompts.jsonl"
    src.write_text(json.dumps({"type": kind, "short_description": "a", "long_description": "b"}) + "\n")
    generator = _Untouched()
    with pytest.raises(ArscaleError, match="TIIF-Bench: type"):
        Bench(generator, None, kind="tiif", quiet=True, layout="tiif").run(
            ["raw"], [1], load_tiif(src), tmp_path / "bench" / "out")
    assert generator.asked == [] and _files(tmp_path) == [src]


@pytest.mark.parametrize("layout, key", [(DPGLayout, "file"), (CompBenchLayout, "category")])
def test_a_geneval_rows_metadata_cannot_write_outside_the_layout(tmp_path, layout, key):
    """A downloaded GenEval jsonl whose rows carry `file` (DPG) or `category` (CompBench) keys of ../.. is refused."""
    src = tmp_path / "meta.jsonl"
    row = {"prompt": "a photo of a cat", "tag": "single_object", "include": [{"class": "cat", "count": 1}],
           key: "../../../escaped"}
    src.write_text(json.dumps(row) + "\n")
    _, prompts = load_prompts(str(src))
    root = tmp_path / "out" / "raw" / "n1" / "layout"
    with pytest.raises(ArscaleError, match="names a file or folder"):
        layout(root, 4 if layout is DPGLayout else 1).write(prompts[0], [_image()] * (4 if layout is DPGLayout else 1))
    assert _files(tmp_path) == [src]


def test_a_compbench_prompt_too_long_for_a_file_name_is_one_line(tmp_path):
    """`--layout compbench` on a suite with a 300-character prompt says so, not `OSError: File name too long`."""
    sp = SuitePrompt(0, "a red apple " * 25, {})
    with pytest.raises(ArscaleError, match="at most 240 bytes"):
        CompBenchLayout(tmp_path / "compbench", 1).write(sp, [_image()])


def _merge_source(root, records):
    manifest = {"model": {"id": "m"}, "seed": 0, "scorer": None, "suite": {"size": 2, "sha256": "h"},
                "kind": "plain", "batch_prompts": 1, "layout": "geneval", "cost_accounting": mf.COST_ACCOUNTING,
                "ns": [1], "strategies": {"raw": {"strategy": "raw", "config": {}}},
                "shard": {"array_shards": 1, "array_index": 0}, "timings": {}}
    root.mkdir()
    mf.write_manifest(root / mf.MANIFEST_FILE, manifest)
    for i, record in enumerate(records):
        d = root / "raw" / "n1" / f"{i:05d}"
        (d / "samples").mkdir(parents=True)
        (d / "metadata.jsonl").write_text(json.dumps({"tag": "single_object", "prompt": f"p{i}", "include": []}))
        (d / "samples" / "00000.png").write_bytes(b"png" + PNG_END)  # a whole PNG ends so (`is_whole`)
        (d / "record.json").write_text(json.dumps(record))
    return root


@pytest.mark.parametrize("index", [0, -3, "absent", None], ids=["another prompts", "negative", "absent", "null"])
def test_merge_refuses_a_record_that_is_not_its_folders(tmp_path, index):
    """A record in folder 00001 saying index 0 (or none) is refused in one line, not counted twice or a KeyError."""
    good = {"index": 0, "prompt": "p0", "correct": True, "reward": None, "cost": {}}
    second = {**good, "prompt": "p1", "correct": False, "index": index}
    if index == "absent":
        del second["index"]
    src = _merge_source(tmp_path / "src", [good, second])
    with pytest.raises(ArscaleError, match="00001"):
        mg.merge([src], tmp_path / "out")


@pytest.mark.parametrize("text", ["[]", "null", "3"])
def test_a_manifest_that_is_no_json_object_is_one_line(tmp_path, capsys, text):
    """`compare` and `bench merge` of a folder whose manifest.json is `[]` say so in one line."""
    src = _merge_source(tmp_path / "src", [{"index": 0, "prompt": "p0", "correct": True, "label": "raw", "n": 1,
                                            "tag": "single_object", "cost": {}}])
    (src / mf.MANIFEST_FILE).write_text(text)
    for argv in (["compare", str(src), str(src)], ["bench", "merge", str(src), "--out", str(tmp_path / "out")]):
        assert main(argv) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("arscale: error:")]
        assert len(err) == 1 and "manifest" in err[0]


def test_a_strategy_name_that_is_no_folder_name_is_refused(registries):
    """register_strategy("team/raw") is refused: bench would write <out>/team/raw/n1, which no summary reads."""
    from arscale.search.base import register_strategy

    with pytest.raises(ArscaleError, match="strategy name"):
        register_strategy("team/raw", "arscale.search.raw:Raw")


def test_generate_with_a_plugin_model_named_like_a_hub_id(tmp_path, monkeypatch):
    """A plugin model registered as "org/sw" generates into --out itself, not a traceback."""
    from arscale.generators.registry import MODELS

    monkeypatch.setitem(MODELS, "org/sw", MODELS["shapeworld-var"])
    out = tmp_path / "out"
    assert main(["generate", "a photo of a red circle", "--model", "org/sw", "--n", "1", "--threads", "1",
                 "--out", str(out)]) == 0
    assert (out / "org-sw_raw_00.png").is_file() and (out / "result.json").is_file()


@pytest.mark.parametrize("value", ["[" * 100_000 + "]" * 100_000, "1" * 5000], ids=["deep", "long int"])
def test_json_past_pythons_limits_is_one_line(tmp_path, value):
    """A --config or a prompt jsonl nested 100,000 deep or with a 5000-digit number is refused in one line."""
    from arscale.search.base import read_config

    with pytest.raises(ArscaleError, match="--config"):
        read_config('{"lam": ' + value + "}")
    src = tmp_path / "meta.jsonl"
    src.write_text('{"prompt": "p", "tag": "t", "include": ' + value + "}\n")
    with pytest.raises(ArscaleError, match="meta.jsonl:1"):
        load_prompts(str(src))
