"""ImageReward v1.0 (THUDM) on transformers' BLIP towers, loaded from the released `ImageReward.pt`.

The released model is BLIP's ViT-L/16 image encoder, BLIP's BERT-base text encoder with a
cross-attention layer after every self-attention (the text attends to all image tokens), and an MLP
on the text encoder's first ([CLS]) output:

    reward = (mlp(text_encoder(prompt tokens, cross-attending to vit(image))[:, 0]) - MEAN) / STD

- The ViT is timm-style (pre-norm, LayerNorm eps 1e-6, exact GELU, a final norm applied to all
  tokens); transformers' `BlipVisionModel` computes the same function with other parameter names,
  so the loader renames keys (`visual_encoder.blocks.i.attn.qkv` -> `encoder.layers.i.self_attn.qkv`...).
- The text encoder is BLIP's `med.py` BERT, which is what `BlipTextModel` is (same key names); it
  runs bidirectionally here (encoder mode) with cross-attention on.
- The MLP is 768->1024->128->64->16->1 with dropouts between and **no activations** (upstream
  commented them out); keys `mlp.layers.{0,2,4,6,7}`.
- Prompts are tokenised with BERT `bert-base-uncased` (plus BLIP's `[DEC]` and `[ENC]` specials),
  padded to and truncated at 35 tokens; position 0 stays `[CLS]` (ImageReward does not swap in
  `[ENC]` the way BLIP's ITM head does).
- Images: bicubic resize of the shorter side to 224, centre crop 224, CLIP mean/std.

The file also holds BLIP's contrastive projections (`blip.vision_proj`, `blip.text_proj`), which
ImageReward never uses, and the text position-id buffer; those are dropped by name, and anything
else that does not fit is an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from arscale.errors import ArscaleError
from arscale.scorers.base import scorer_repr
from arscale.scorers.hf import (
    as_dtype,
    check_batching,
    check_prompts,
    hub_file,
    in_chunks,
    require_transformers,
)
from arscale.scorers.preprocess import CLIP_MEAN, CLIP_STD, ImageTransform, check_images

HUB_REPO = "THUDM/ImageReward"
FILENAME = "ImageReward.pt"
TOKENIZER = "bert-base-uncased"

# Standardisation of the MLP output, fixed in the release (ImageReward.py).
REWARD_MEAN = 0.16717362830052426
REWARD_STD = 1.0333394966054072

MAX_PROMPT_TOKENS = 35
_HEAD_SIZES = (1024, 128, 64, 16)
_HEAD_DROPOUTS = (0.2, 0.2, 0.1)
# Keys present in ImageReward.pt that the scoring path does not use.
UNUSED_KEYS = ("blip.vision_proj.weight", "blip.vision_proj.bias", "blip.text_proj.weight", "blip.text_proj.bias")


@dataclass
class ImageRewardConfig:
    """The architecture; the defaults are ImageReward v1.0 (BLIP ViT-L/16 at 224 + `med_config.json`)."""

    image_size: int = 224
    patch_size: int = 16
    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    vision_mlp: int = 4096
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12
    text_mlp: int = 3072
    vocab_size: int = 30524  # bert-base-uncased + [DEC] + [ENC]
    max_positions: int = 512
    head_sizes: tuple[int, ...] = field(default=_HEAD_SIZES)

    def vision_config(self) -> Any:
        transformers = require_transformers()
        return transformers.BlipVisionConfig(
            hidden_size=self.vision_width, num_hidden_layers=self.vision_layers,
            num_attention_heads=self.vision_heads, intermediate_size=self.vision_mlp,
            image_size=self.image_size, patch_size=self.patch_size, layer_norm_eps=1e-6,  # timm ViT eps
            hidden_act="gelu", attention_dropout=0.0,
        )

    def text_config(self) -> Any:
        transformers = require_transformers()
        return transformers.BlipTextConfig(
            vocab_size=self.vocab_size, hidden_size=self.text_width, encoder_hidden_size=self.vision_width,
            num_hidden_layers=self.text_layers, num_attention_heads=self.text_heads,
            intermediate_size=self.text_mlp, max_position_embeddings=self.max_positions,
            layer_norm_eps=1e-12, hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            is_decoder=True,  # builds the cross-attention layers; forward still runs bidirectionally
            pad_token_id=0, bos_token_id=None, sep_token_id=None,  # generation ids: unused when scoring
        )


class RewardHead(nn.Sequential):
    """Linear layers with dropouts between and no activations: indices match upstream's `mlp.layers.N`."""

    def __init__(self, width: int, sizes: Sequence[int] = _HEAD_SIZES):
        layers: list[nn.Module] = []
        previous = width
        for i, size in enumerate(sizes):
            layers.append(nn.Linear(previous, size))
            if i < len(_HEAD_DROPOUTS):
                layers.append(nn.Dropout(_HEAD_DROPOUTS[i]))
            previous = size
        layers.append(nn.Linear(previous, 1))
        super().__init__(*layers)


class ImageRewardModel(nn.Module):
    def __init__(self, config: ImageRewardConfig | None = None):
        super().__init__()
        transformers = require_transformers()
        self.config = config or ImageRewardConfig()
        self.vision = transformers.BlipVisionModel(self.config.vision_config())
        self.text = transformers.BlipTextModel(self.config.text_config(), add_pooling_layer=False)
        self.head = RewardHead(self.config.text_width, self.config.head_sizes)

    def raw(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Unstandardised MLP output [B] for normalised pixels and token ids, one prompt per image."""
        image_tokens = self.vision(pixel_values=pixels).last_hidden_state
        image_mask = torch.ones(image_tokens.shape[:2], dtype=torch.long, device=image_tokens.device)
        text = self.text(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=image_tokens,
                         encoder_attention_mask=image_mask, is_decoder=False).last_hidden_state
        return self.head(text[:, 0].to(self.head[0].weight.dtype)).squeeze(-1)


# -- loading the released file ------------------------------------------------------------------------
_VISION_RENAMES = (
    ("blip.visual_encoder.cls_token", "vision.embeddings.class_embedding"),
    ("blip.visual_encoder.pos_embed", "vision.embeddings.position_embedding"),
    ("blip.visual_encoder.patch_embed.proj.", "vision.embeddings.patch_embedding."),
    ("blip.visual_encoder.norm.", "vision.post_layernorm."),
)
_BLOCK_RENAMES = (("norm1.", "layer_norm1."), ("norm2.", "layer_norm2."), ("attn.qkv.", "self_attn.qkv."),
                  ("attn.proj.", "self_attn.projection."), ("mlp.", "mlp."))


def released_to_model_key(key: str) -> str | None:
    """ImageReward.pt key -> ImageRewardModel key; None for keys that are dropped on purpose."""
    key = key.removeprefix("module.")
    if key in UNUSED_KEYS or key == "blip.text_encoder.embeddings.position_ids":
        return None
    for old, new in _VISION_RENAMES:
        if key == old or (old.endswith(".") and key.startswith(old)):
            return new + key[len(old):]
    prefix = "blip.visual_encoder.blocks."
    if key.startswith(prefix):
        index, rest = key[len(prefix):].split(".", 1)
        for old, new in _BLOCK_RENAMES:
            if rest.startswith(old):
                return f"vision.encoder.layers.{index}.{new}{rest[len(old):]}"
        return key  # unknown block part: left as is, so strict loading names it as unexpected
    if key.startswith("blip.text_encoder."):
        return "text." + key[len("blip.text_encoder."):]
    if key.startswith("mlp.layers."):
        return "head." + key[len("mlp.layers."):]
    return key


def convert_released_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        new = released_to_model_key(key)
        if new is None:
            if key.endswith("position_ids") and not torch.equal(
                    value.flatten().long(), torch.arange(value.numel(), device=value.device)):
                raise ArscaleError(f"{key} is not 0..{value.numel() - 1}; this is not an ImageReward checkpoint")
            continue
        if new in out:
            raise ArscaleError(f"two checkpoint keys map onto {new}; the file mixes layouts")
        out[new] = value
    return out


def load_released(model: ImageRewardModel, sd: dict[str, torch.Tensor]) -> ImageRewardModel:
    """Load a released-layout state dict; every model key must be filled and every file key used."""
    from arscale.generators.loading import load_strict, upcast

    load_strict(model, upcast(convert_released_state_dict(sd)), what="ImageReward checkpoint")
    return model


def read_released(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    from arscale.generators.loading import read_checkpoint, unwrap

    return unwrap(read_checkpoint(path), ("state_dict", "model"))


def load_model(path: str | os.PathLike) -> ImageRewardModel:
    """The released `ImageReward.pt` at `path` as the full-size model, in fp32 on the CPU.

    Built with meta parameters that the file's tensors become (`meta_build`): no random init of its ~450 M
    parameters. The towers tie no parameters and compute their one buffer (the text position ids) without reading
    a parameter, so this holds bit for bit what an eager build plus a copy holds."""
    from arscale.generators.meta_build import parameters_on_meta

    sd = read_released(path)
    with parameters_on_meta():
        model = ImageRewardModel()
    return load_released(model, sd)


# -- the scorer ---------------------------------------------------------------------------------------
def blip_tokenizer(source: str | os.PathLike = TOKENIZER) -> Any:
    """BERT uncased tokenizer with BLIP's two added specials (ids 30522 `[DEC]`, 30523 `[ENC]` in the real vocab)."""
    from arscale.scorers.hf import from_pretrained

    transformers = require_transformers()
    tokenizer = from_pretrained(transformers.BertTokenizer, source, what="ImageReward's BERT tokenizer")
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


class ImageRewardScorer:
    name = "imagereward"
    resizes_itself = True  # any size: its own preprocessing brings it to input_size
    __repr__ = scorer_repr

    def __init__(self, model: ImageRewardModel, tokenizer: Any, *, device: str | torch.device = "cpu",
                 dtype: str | torch.dtype | None = None, batch_size: int = 32, backend: str = "torch"):
        self.dtype = as_dtype(dtype)
        self.device = torch.device(device)
        self.model = model.eval().requires_grad_(False).to(self.device, self.dtype)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.input_size = model.config.image_size
        self.transform = ImageTransform(self.input_size, CLIP_MEAN, CLIP_STD, "bicubic", fit="crop", backend=backend)
        vocab = len(tokenizer)
        if vocab > model.config.vocab_size:
            raise ArscaleError(f"the tokenizer has {vocab} tokens but the model's vocabulary is "
                               f"{model.config.vocab_size}; use bert-base-uncased")

    def tokenize(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(list(prompts), padding="max_length", truncation=True,
                                max_length=MAX_PROMPT_TOKENS, return_tensors="pt")
        return tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device)

    @torch.no_grad()
    def raw(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        """The MLP output before standardisation, [B] float32."""
        images = check_images(images)
        prompts = check_prompts(prompts, len(images))

        def run(imgs: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
            pixels = self.transform(imgs.to(self.device)).to(self.dtype)
            ids, mask = self.tokenize(texts)
            return self.model.raw(pixels, ids, mask).float()

        return in_chunks(run, self.batch_size, images, prompts)

    def reward(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        """ImageReward scores [B] (standardised: about N(0, 1) over the authors' data), float32 on the CPU."""
        return ((self.raw(images, prompts) - REWARD_MEAN) / REWARD_STD).cpu()

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The BLIP ViT's normalised tokens [B, 1 + (224/16)^2, 1024] (CLS first), float32 on the CPU."""
        images = check_images(images)

        def run(imgs: torch.Tensor) -> torch.Tensor:
            pixels = self.transform(imgs.to(self.device)).to(self.dtype)
            return self.model.vision(pixel_values=pixels).last_hidden_state.float().cpu()

        return in_chunks(run, self.batch_size, images)


def load_imagereward(weights: str | os.PathLike = HUB_REPO, *, tokenizer: str | os.PathLike = TOKENIZER,
                     device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None,
                     batch_size: int = 32, backend: str = "torch") -> ImageRewardScorer:
    """`weights`: the `ImageReward.pt` file, a directory holding it, or a hub id (default THUDM/ImageReward)."""
    check_batching(batch_size, backend)
    model = load_model(hub_file(weights, FILENAME, what="ImageReward weights"))
    return ImageRewardScorer(model, blip_tokenizer(tokenizer), device=device, dtype=dtype,
                             batch_size=batch_size, backend=backend)
