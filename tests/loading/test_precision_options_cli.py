"""`--dtype` / `--text-dtype` on `arscale generate` and `arscale bench`, with tiny checkpoints in the released
layouts: the options reach the loaders, are part of a bench's identity, and are refused in one line for a model
whose loader does not take them."""

from __future__ import annotations

import json

import pytest
import torch
from test_released_models_offline import StubT5, _llamagen

from arscale.cli import main
from arscale.generators import registry, t5_text


@pytest.fixture
def loaded(monkeypatch) -> list:
    """Every generator the commands load, for the test to look at."""
    generators = []
    real = registry.load_generator

    def keep(name, **options):
        generators.append(real(name, **options))
        return generators[-1]

    monkeypatch.setattr(registry, "load_generator", keep)
    return generators


def _one_line_error(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("arscale: error: "), lines
    return lines[0]


def _weights(monkeypatch, tmp_path, kind: str) -> str:
    folder = tmp_path / "weights"
    folder.mkdir()
    _llamagen(monkeypatch, folder, kind)
    return str(folder)


def test_generate_passes_both_dtypes_to_the_loader_and_records_them(monkeypatch, tmp_path, loaded):
    """`--dtype bfloat16 --text-dtype bfloat16` load LlamaGen t2i's GPT in bf16 and ask for a bf16 T5 (the VQ stays
    fp32), and result.json says so; without them the GPT is fp32, the T5 is asked for the loader's default and
    result.json has neither key, as before the options."""
    weights = _weights(monkeypatch, tmp_path, "t2i")
    t5_dtypes = []
    monkeypatch.setattr(t5_text, "load_t5", lambda *a, **k: t5_dtypes.append(k.get("dtype")) or StubT5(16))

    def generate(out, *extra):
        return main(["generate", "a cat", "--model", "llamagen-t2i-xl", "--weights", weights, "--n", "1",
                     "--out", str(tmp_path / out), *extra])

    assert generate("bf16", "--dtype", "bfloat16", "--text-dtype", "bfloat16") == 0
    assert generate("fp32") == 0
    bf16, fp32 = loaded
    assert {p.dtype for p in bf16.transformer.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in bf16.tokenizer.parameters()} == {torch.float32}
    assert {p.dtype for p in fp32.transformer.parameters()} == {torch.float32}
    assert t5_dtypes == ["bfloat16", None]
    given, default = (json.loads((tmp_path / out / "result.json").read_text()) for out in ("bf16", "fp32"))
    assert (given["dtype"], given["text_dtype"]) == ("bfloat16", "bfloat16")
    assert not {"dtype", "text_dtype"} & set(default)


@pytest.mark.parametrize("command, model, option, message", [
    ("generate", "shapeworld-var", "--dtype",
     "--dtype is for var-d*, infinity-2b, llamagen-c2i-*, llamagen-t2i-xl; shapeworld-var takes no dtype"),
    ("generate", "var-d16", "--text-dtype", "--text-dtype is for infinity-2b, llamagen-t2i-xl; var-d16 takes no text"),
    ("bench", "shapeworld-ar", "--dtype", "; shapeworld-ar takes no dtype"),
    ("bench", "llamagen-c2i-b", "--text-dtype", "llamagen-t2i-xl; llamagen-c2i-b takes no text_dtype"),
])
def test_an_option_the_models_loader_does_not_take_is_one_line_before_anything(command, model, option, message,
                                                                                tmp_path, capsys, loaded):
    """Refused naming the models that take it, before a model loads or --out is made."""
    out = tmp_path / "out"
    args = [command, *(["a cat"] if command == "generate" else ["--scorer", ""]), "--model", model,
            option, "bfloat16", "--out", str(out)]
    assert main(args) == 2
    assert message in _one_line_error(capsys)
    assert not loaded and not out.exists()


def test_bench_dtype_is_part_of_the_runs_identity_and_absent_leaves_the_manifest_as_it_was(monkeypatch, tmp_path,
                                                                                           capsys, loaded):
    """A bf16 bench records its dtype and loads a bf16 GPT; a resume or merge with another dtype is refused naming
    it; a bench without the option records no precision key, and naming float32 (the default) resumes it."""
    weights = _weights(monkeypatch, tmp_path, "c2i")
    (tmp_path / "classes.txt").write_text("3\n7\n")

    def bench(out, *extra):
        return main(["bench", "--model", "llamagen-c2i-b", "--model-weights", weights, "--prompts",
                     str(tmp_path / "classes.txt"), "--strategies", "raw", "--n", "1", "--scorer", "", "--quiet",
                     "--out", str(tmp_path / out), *extra])

    def model_entry(out):
        return json.loads((tmp_path / out / "manifest.json").read_text())["model"]

    assert bench("bf16", "--dtype", "bfloat16") == 0 and bench("fp32") == 0
    assert {p.dtype for p in loaded[0].transformer.parameters()} == {torch.bfloat16}
    assert model_entry("bf16")["dtype"] == "bfloat16" and "text_dtype" not in model_entry("bf16")
    assert set(model_entry("fp32")) == {"id", "revision", "weights_path", "weights_sha256"}
    capsys.readouterr()
    assert bench("bf16", "--dtype", "float16", "--resume") == 2
    assert "model: dtype bfloat16 vs float16" in _one_line_error(capsys)
    assert bench("fp32", "--dtype", "bfloat16", "--resume") == 2
    assert "model: dtype float32 vs bfloat16" in _one_line_error(capsys)
    assert bench("fp32", "--dtype", "float32", "--resume") == 0  # the loaders' default, named
    assert main(["bench", "merge", str(tmp_path / "bf16"), str(tmp_path / "fp32"), "--out", str(tmp_path / "m")]) == 2
    assert "model: dtype bfloat16 vs float32" in _one_line_error(capsys)
    assert len(loaded) == 3  # the refused resumes loaded nothing
