"""Next-scale sampling settings refused when a model is built, not at its first draw (from an acceptance audit of
issue 3)."""

import json
import math

import pytest

from arscale.errors import ArscaleError


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
