"""Tiny random-weight ShapeWorld-VAR generators (the real next-scale engine), shared by every test folder."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from arscale.generators.next_scale.shapeworld import build_shapeworld_var


def tiny_var_configs(patch_nums=(1, 2, 3, 4), *, image_size: int = 16, vocab_size: int = 24, depth: int = 2,
                     sampling: dict | None = None) -> tuple[dict, dict]:
    """(tokenizer config, model config) small enough for a CPU test."""
    patch_nums = tuple(patch_nums)
    tokenizer = {"image_size": image_size, "patch_nums": patch_nums, "vocab_size": vocab_size, "code_dim": 8,
                 "ch": 8, "ch_mult": (1, 2, 2)}
    model = {"transformer": {"patch_nums": patch_nums, "vocab_size": vocab_size, "code_dim": 8, "width": 32,
                             "depth": depth, "heads": 2},
             "text_encoder": {"width": 16, "depth": 1, "heads": 2, "max_len": 12},
             "sampling": dict(sampling or {"cfg": 2.0})}
    return tokenizer, model


def build_tiny_var(tokenizer: dict, model: dict, seed: int = 0):
    torch.manual_seed(seed)
    gen = build_shapeworld_var(tokenizer, model)
    # random weights are far from a trained model's: spread the logits so sampled rows differ
    gen.transformer.head.weight.data.mul_(50)
    return gen.eval()


def write_tiny_training_configs(folder: Path) -> tuple[Path, Path]:
    """`--config` files for 64×64 `arscale train shapeworld-tokenizer` / `shapeworld-var` runs of a few steps."""
    tokenizer = {"patch_nums": [1, 2, 4], "vocab_size": 16, "code_dim": 4, "ch": 4, "ch_mult": [1, 2, 2, 2, 2]}
    model = {"transformer": {"width": 16, "depth": 1, "heads": 2}, "text_encoder": {"width": 8, "depth": 1, "heads": 2}}
    paths = folder / "tok.json", folder / "var.json"
    for path, config in zip(paths, (tokenizer, model)):
        path.write_text(json.dumps(config))
    return paths


def write_tiny_var_training_folder(folder: Path) -> tuple[Path, Path]:
    """A random tiny multi-scale tokenizer in `folder/tok` and the tiny transformer `--config`: (tokenizer folder,
    var.json), the inputs of an `arscale train shapeworld-var` run of a few steps."""
    from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer, MultiScaleTokenizerConfig
    from arscale.train import common

    tok_json, var_json = write_tiny_training_configs(folder)
    torch.manual_seed(0)
    tok = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(json.loads(tok_json.read_text())))
    common.export_weights(tok.state_dict(), tok.config.to_dict(), folder / "tok", "tokenizer.safetensors",
                          "tokenizer_config.json")
    return folder / "tok", var_json
