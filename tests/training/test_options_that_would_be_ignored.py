"""Training options that would be silently ignored: refused, or said to be ignored, as their help promises."""

import json
from pathlib import Path

import pytest

from arscale.cli import build_parser
from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.train import reward, tokenizer_vq

SHIPPED_AR = Path(tokenizer_vq.WEIGHTS_DIR)


def test_ar_tokenizer_decoder_only_refuses_a_config_it_would_ignore(tmp_path):
    """`train shapeworld-ar-tokenizer --decoder-only DIR --config FILE` is refused before anything is written."""
    config = tmp_path / "vq.json"
    config.write_text(json.dumps({"codebook_size": 8}))
    args = build_parser().parse_args(["train", "shapeworld-ar-tokenizer", "--decoder-only", str(SHIPPED_AR),
                                      "--config", str(config), "--steps", "1", "--batch-size", "1",
                                      "--out", str(tmp_path / "out")])
    with pytest.raises(ArscaleError, match="--config"):
        tokenizer_vq.check_args(args)
    assert not (tmp_path / "out").exists()


def test_reward_init_ignored_by_a_resume_is_said(tmp_path, monkeypatch, capsys):
    """A resumed reward run names the --init it does not start from, as `--init-from` does for shapeworld-var."""
    monkeypatch.setattr(reward, "calibrate", lambda *args, **kwargs: (0.0, 1.0))  # 512 scenes: not the point
    run = ["train", "shapeworld-reward", "--batch-size", "1", "--threads", "1", "--device", "cpu",
           "--out", str(tmp_path / "out")]
    assert cli([*run, "--steps", "1"]) == 0
    assert cli(["train", "shapeworld-reward", "--batch-size", "1", "--steps", "1", "--threads", "1",
                "--device", "cpu", "--out", str(tmp_path / "other")]) == 0
    capsys.readouterr()
    assert cli([*run, "--steps", "2", "--init", str(tmp_path / "other")]) == 0
    captured = capsys.readouterr()
    assert f"--init {tmp_path / 'other'} is ignored" in captured.out + captured.err
