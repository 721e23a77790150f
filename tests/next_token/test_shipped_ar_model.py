"""The shipped ShapeWorld-AR weights load strictly and generate valid images."""

import json

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.next_token.shapeworld import WEIGHTS_DIR, load_shapeworld_ar
from arscale.generators.registry import load_generator


def test_shipped_model_loads_and_generates():
    gen = load_generator("shapeworld-ar")
    assert gen.num_tokens == 256 and gen.image_size == 64 and gen.grid == 16
    images = gen.generate(["a photo of a red circle", "a photo of two squares"], 1, seed=0)
    assert images.shape == (2, 3, 64, 64)
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    again = gen.generate(["a photo of a red circle", "a photo of two squares"], 1, seed=0)
    assert torch.equal(images, again)


def test_shipped_files_are_small_and_described():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.iterdir())
    assert total <= 8 * 1024 * 1024
    config = json.loads((WEIGHTS_DIR / "config.json").read_text())
    assert config["transformer"]["grid"] == 16 and config["sampling"]["cfg"] > 0
    assert (WEIGHTS_DIR / "MODEL_CARD.md").exists()


def test_overrides_and_missing_weights(tmp_path):
    gen = load_shapeworld_ar(cfg=1.5, top_k=10)
    assert gen.cfg == 1.5 and gen.top_k == 10
    with pytest.raises(ArscaleError, match="missing config.json"):
        load_shapeworld_ar(weights=tmp_path)


def test_unknown_prompt_word_is_a_clear_error():
    gen = load_generator("shapeworld-ar")
    with pytest.raises(ArscaleError, match="unknown word 'hexagon'"):
        gen.start(["a photo of a hexagon"], 1, seed=0)


def test_generate_scaling_ar_writes_its_telemetry_into_result_json(tmp_path):
    from arscale.cli import main

    assert main(["generate", "a photo of two circles", "--model", "shapeworld-ar", "--strategy", "scaling-ar",
                 "--n", "4", "--cfg", "3", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["cfg"] == 3.0
    tele = result["telemetry"]
    traces = tele["prompts"][0]
    assert [tr["candidate"] for tr in traces] == [0, 1, 2, 3]
    for tr in traces:
        steps = 256 if tr["reason"] is None else tr["ended"] + 1
        assert all(len(tr[key]) == steps for key in ("C", "I", "D", "R", "guidance", "entropy", "margin"))
        assert "preview" not in tr  # images stay in the PNGs
    terminated = {tr["node"] for tr in traces if tr["reason"] == "prune"}
    assert terminated == {e["node"] for e in tele["events"] if e["event"] == "terminate"}
    assert tele["tokens_per_image"] == result["cost"]["generated_tokens"] < 4 * 256
    assert (tmp_path / "confidence_00000.png").is_file()
