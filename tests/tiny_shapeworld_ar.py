"""Tiny ShapeWorld-AR training inputs (a VQ tokenizer config, an AR --config, a random tokenizer folder), shared by
the training tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer
from arscale.train import common

TINY_VQ = {"codebook_size": 16, "code_dim": 4, "z_channels": 8, "ch": 4, "ch_mult": [1, 2, 2, 2]}
TINY_AR = {"text": {"width": 16, "depth": 1, "heads": 2, "max_len": 12},
           "transformer": {"dim": 16, "n_layer": 1, "n_head": 2, "vocab_size": 16, "grid": 8, "cls_token_num": 12,
                           "caption_dim": 16, "multiple_of": 8}}


def write_tiny_vq_folder(folder: Path) -> Path:
    """A random tiny VQ tokenizer, as `arscale train shapeworld-ar-tokenizer` writes it, and `ar.json` (the tiny
    `--config` of `arscale train shapeworld-ar`) beside it."""
    torch.manual_seed(0)
    tok = VQTokenizer(VQConfig(**TINY_VQ))
    common.export_weights(tok.state_dict(), {"tokenizer": tok.config.to_dict()}, folder, "tokenizer.safetensors",
                          "tokenizer_config.json")
    (folder / "ar.json").write_text(json.dumps(TINY_AR))
    return folder
