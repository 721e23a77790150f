"""HPSv2 / HPSv2.1 (human preference score) on transformers' `CLIPModel`, without open_clip.

HPS is open_clip's ViT-H-14 (LAION-2B) fine-tuned on human preferences; the released files
(`xswu/HPSv2`: `HPS_v2.1_compressed.pt`, `HPS_v2_compressed.pt`) hold the open_clip state dict under
`state_dict`. `hpsv2.score` computes `cos(image, prompt)` of the normalised embeddings (about 0.2-0.35;
no logit scale). open_clip's CLIP and transformers' CLIP are the same network with other parameter
names (and fused q/k/v), so the loader converts keys instead of depending on open_clip, which would
pull torchvision and timm in.

Preprocessing is HPS's `preprocess_val` (`light_augmentation=True` -> `ResizeMaxSize(224)`): the image
becomes a float tensor first, its *longer* side is resized to 224 (torchvision tensor bicubic with
antialias, no clamping), the shorter side is zero-padded to a square, then CLIP mean/std. A square
input is just resized. Prompts use the OpenAI CLIP BPE (open_clip's tokenizer; transformers'
`CLIPTokenizer` from the LAION ViT-H-14 repository is the same vocabulary), 77 tokens with truncation.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from arscale.errors import ArscaleError
from arscale.scorers.clip import ClipSimilarityScorer
from arscale.scorers.hf import check_batching, from_pretrained, hub_file, require_transformers
from arscale.scorers.preprocess import CLIP_MEAN, CLIP_STD, ImageTransform

HUB_REPO = "xswu/HPSv2"
FILES = {"v2.1": "HPS_v2.1_compressed.pt", "v2.0": "HPS_v2_compressed.pt"}
TOKENIZER = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


def vit_h_14_config(**overrides: Any) -> Any:
    """open_clip `ViT-H-14` as a transformers CLIPConfig (GELU, LayerNorm eps 1e-5)."""
    transformers = require_transformers()
    text = {"vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
            "num_attention_heads": 16, "max_position_embeddings": 77, "hidden_act": "gelu",
            "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 0}
    vision = {"image_size": 224, "patch_size": 14, "hidden_size": 1280, "intermediate_size": 5120,
              "num_hidden_layers": 32, "num_attention_heads": 16, "hidden_act": "gelu"}
    text.update(overrides.pop("text", {}))
    vision.update(overrides.pop("vision", {}))
    projection_dim = overrides.pop("projection_dim", 1024)
    return transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim, **overrides)


_TOP_LEVEL = {
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "logit_scale": "logit_scale",
}
_NORMS = {"visual.ln_pre": "vision_model.pre_layrnorm", "visual.ln_post": "vision_model.post_layernorm",
          "ln_final": "text_model.final_layer_norm"}
_PROJECTIONS = {"visual.proj": "visual_projection.weight", "text_projection": "text_projection.weight"}
_BLOCK = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
          "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}


def convert_open_clip_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip CLIP keys -> transformers CLIPModel keys. Unknown keys pass through unchanged, so strict
    loading names them."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        key = key.removeprefix("module.")
        if key in _TOP_LEVEL:
            out[_TOP_LEVEL[key]] = value
        elif key in _PROJECTIONS:
            out[_PROJECTIONS[key]] = value.t().contiguous()  # open_clip: x @ proj; Linear: x @ W.T
        elif key.rsplit(".", 1)[0] in _NORMS:
            stem, leaf = key.rsplit(".", 1)
            out[f"{_NORMS[stem]}.{leaf}"] = value
        elif key.startswith(("visual.transformer.resblocks.", "transformer.resblocks.")):
            tower = "vision_model" if key.startswith("visual.") else "text_model"
            index, rest = key.split("resblocks.", 1)[1].split(".", 1)
            prefix = f"{tower}.encoder.layers.{index}"
            if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = rest.rsplit("_", 1)[1]  # weight / bias
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                    out[f"{prefix}.self_attn.{name}.{kind}"] = part.contiguous()
                continue
            stem, leaf = rest.rsplit(".", 1)
            out[f"{prefix}.{_BLOCK.get(stem, stem)}.{leaf}"] = value
        else:
            out[key] = value
    return out


def load_open_clip_weights(model: Any, sd: dict[str, torch.Tensor]) -> Any:
    from arscale.generators.loading import load_strict, upcast

    load_strict(model, upcast(convert_open_clip_state_dict(sd)), what="HPSv2 checkpoint")
    return model


def load_model(path: str | os.PathLike) -> Any:
    """A released HPS file at `path` (open_clip ViT-H-14 under `state_dict`) as a transformers `CLIPModel`, in fp32
    on the CPU.

    Built with meta parameters that the file's tensors become (`meta_build`): no random init of its ~990 M
    parameters. `CLIPModel` ties no parameters, its `logit_scale` is a parameter the file fills, and its buffers
    (position ids) are computed without reading a parameter, so this holds bit for bit what an eager build plus a
    copy holds."""
    from arscale.generators.loading import read_checkpoint, unwrap
    from arscale.generators.meta_build import parameters_on_meta

    transformers = require_transformers()
    sd = unwrap(read_checkpoint(path), ("state_dict",))
    with parameters_on_meta():
        model = transformers.CLIPModel(vit_h_14_config())
    return load_open_clip_weights(model, sd)


def hps_transform(size: int = 224, backend: str = "torch") -> ImageTransform:
    if backend != "torch":
        raise ArscaleError("HPSv2 resizes float tensors (torchvision on tensors), so only backend='torch' is faithful")
    return ImageTransform(size, CLIP_MEAN, CLIP_STD, "bicubic", fit="pad", backend="torch", clamp=False)


class Hpsv2Scorer(ClipSimilarityScorer):
    """`cos(image, prompt)` with HPS's preprocessing; `features` are the normalised image embeddings."""

    def __init__(self, model: Any, tokenizer: Any, *, device: str | torch.device = "cpu",
                 dtype: str | torch.dtype | None = None, batch_size: int = 32, backend: str = "torch"):
        super().__init__(model, tokenizer, name="hpsv2", scale=1.0, clamp_at_zero=False, device=device,
                         dtype=dtype, batch_size=batch_size)
        self.transform = hps_transform(self.input_size, backend)


def load_hpsv2(weights: str | os.PathLike = HUB_REPO, *, version: str = "v2.1",
               tokenizer: str | os.PathLike = TOKENIZER, device: str | torch.device = "cpu",
               dtype: str | torch.dtype | None = None, batch_size: int = 32,
               backend: str = "torch") -> Hpsv2Scorer:
    """`weights`: an HPS `.pt` file, a directory holding it, or the hub repo (default xswu/HPSv2)."""
    check_batching(batch_size, backend)
    if version not in FILES:
        raise ArscaleError(f"unknown HPS version {version!r}; choose from {', '.join(FILES)}")
    hps_transform(backend=backend)  # a refused backend is said before gigabytes load
    transformers = require_transformers()
    model = load_model(hub_file(weights, FILES[version], what=f"HPS{version} weights"))
    tok = from_pretrained(transformers.AutoTokenizer, tokenizer, what="HPSv2 (CLIP ViT-H-14) tokenizer")
    return Hpsv2Scorer(model, tok, device=device, dtype=dtype, batch_size=batch_size, backend=backend)
