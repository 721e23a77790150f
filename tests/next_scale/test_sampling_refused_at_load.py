"""Next-scale sampling settings refused when a model is built (not at its first draw), and the generation
benchmark's device and thread options (from an acceptance audit of issue 3)."""

import json
import math
import runpy
import sys
from pathlib import Path

import pytest
import torch

from arscale.errors import ArscaleError

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run_benchmark(monkeypatch, name: str, *args: str) -> None:
    """`python benchmarks/<name>.py ARGS` in this process; torch's thread count is restored afterwards."""
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / f"{name}.py"), *args])
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(BENCHMARKS / f"{name}.py"), run_name="__main__")
    finally:
        torch.set_num_threads(threads)


def test_a_var_training_config_with_a_negative_guidance_is_refused_before_any_step(tmp_path, monkeypatch, capsys):
    """`train shapeworld-var --config` with sampling cfg -1 is a one-line error before the first training batch."""
    from arscale import cli
    from arscale.train import scene_stream

    def no_batch(self, n):
        raise AssertionError("a training batch was drawn before the bad cfg was refused")

    monkeypatch.setattr(scene_stream.ShapeWorldStream, "sample", no_batch)
    config = tmp_path / "var.json"
    config.write_text(json.dumps({"transformer": {"width": 16, "depth": 1, "heads": 2},
                                  "text_encoder": {"width": 8, "depth": 1, "heads": 2},
                                  "sampling": {"cfg": -1.0}}), encoding="utf-8")
    code = cli.main(["train", "shapeworld-var", "--config", str(config), "--steps", "1", "--batch-size", "2",
                     "--eval-every", "0", "--device", "cpu", "--out", str(tmp_path / "out")])
    assert code != 0
    assert "cfg" in capsys.readouterr().err


@pytest.mark.parametrize("cfg", [-1.0, math.nan, math.inf])
def test_next_scale_sampling_refuses_a_guidance_scale_no_draw_can_use(cfg):
    """SamplingConfig refuses a cfg below 0 or not finite when it is built, as it does a bad temperature."""
    from arscale.generators.next_scale.generator import SamplingConfig

    with pytest.raises(ArscaleError, match="cfg"):
        SamplingConfig(cfg=cfg)


def test_generation_benchmark_takes_device_auto(monkeypatch, capsys):
    """benchmarks/generation.py --device auto runs on this machine's device and prints its table row."""
    _run_benchmark(monkeypatch, "generation", "--device", "auto", "--batch-sizes", "1", "--threads", "1")
    out = capsys.readouterr().out
    assert "shapeworld-var on cpu" in out or "shapeworld-var on cuda" in out
    assert any(line.startswith("| 1 |") for line in out.splitlines())


def test_generation_benchmark_refuses_negative_threads_in_one_line(monkeypatch):
    """benchmarks/generation.py --threads -1 exits with one line naming --threads."""
    with pytest.raises(SystemExit) as excinfo:
        _run_benchmark(monkeypatch, "generation", "--threads", "-1", "--batch-sizes", "1")
    message = excinfo.value.code
    assert isinstance(message, str) and "--threads" in message and "\n" not in message
