"""ShapeWorld-AR: the shipped tiny next-token model (text encoder + Llama-style decoder + VQ tokenizer).

Files in `arscale/weights/shapeworld-ar/`: `config.json` (model + default sampling settings),
`model.safetensors` (`text_encoder.*`, `transformer.*`), `tokenizer.safetensors` +
`tokenizer_config.json` (the VQ tokenizer) and `MODEL_CARD.md`. Loading is strict and never unpickles
anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators.loading import read_json, read_safetensors, shapeworld_folder, shapeworld_folder_holds
from arscale.generators.next_token.generator import TokenGenerator
from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer
from arscale.generators.next_token.transformer import Transformer, TransformerConfig
from arscale.generators.registry import check_options
from arscale.generators.sampling import check_sampler
from arscale.generators.text import TextEncoder, TextEncoderConfig

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights" / "shapeworld-ar"


@dataclass
class SamplingDefaults:
    # fallback when config.json has no "sampling" section: the v1 model's pick from
    # benchmarks/shapeworld_ar_sweep.py (fresh prompts only); the shipped v2 config.json overrides
    # them (temperature 1.0, RESULTS.md, Session 7)
    cfg: float = 2.5
    temperature: float = 0.8
    top_k: int = 64
    top_p: float = 1.0


@dataclass
class ShapeWorldARConfig:
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    sampling: SamplingDefaults = field(default_factory=SamplingDefaults)
    preview_fill: str = "background"

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text.to_dict(), "transformer": self.transformer.to_dict(),
                "sampling": dict(self.sampling.__dict__), "preview_fill": self.preview_fill}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShapeWorldARConfig:
        return cls(TextEncoderConfig(**d["text"]), TransformerConfig(**d["transformer"]),
                   SamplingDefaults(**d.get("sampling", {})), d.get("preview_fill", "background"))


class ShapeWorldAR(nn.Module):
    """The trainable part: ShapeWorld text encoder -> prefix tokens -> decoder over VQ codes."""

    def __init__(self, config: ShapeWorldARConfig):
        super().__init__()
        if config.text.max_len != config.transformer.cls_token_num:
            raise ArscaleError("text max_len must equal the transformer's cls_token_num (one prefix token per word)")
        if config.text.width != config.transformer.caption_dim:
            raise ArscaleError("text width must equal the transformer's caption_dim")
        self.config = config
        self.text_encoder = TextEncoder(config.text)
        self.transformer = Transformer(config.transformer)

    def encode_condition(self, prompts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        features, mask, _ = self.text_encoder(prompts)
        return features * mask[..., None].to(features.dtype), mask


def sampling_options() -> list[str]:
    """The sampling overrides a ShapeWorld-AR generator takes."""
    return [f.name for f in fields(SamplingDefaults)] + ["preview_fill"]


def build_generator(model: ShapeWorldAR, tokenizer: VQTokenizer, **overrides: Any) -> TokenGenerator:
    s = model.config.sampling
    options = {"cfg": s.cfg, "temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p,
               "preview_fill": model.config.preview_fill}
    options.update({k: v for k, v in overrides.items() if v is not None})
    check_sampler(options["temperature"], options["top_k"], top_p=options["top_p"])
    return TokenGenerator(model.transformer, tokenizer, _ConditionEncoder(model), name="shapeworld-ar", **options)


class _ConditionEncoder:
    """`model.encode_condition` without gradients; `flops_spent` is its text encoder's (for the cost record)."""

    def __init__(self, model: ShapeWorldAR):
        self.model = model

    def __call__(self, prompts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self.model.encode_condition(prompts)

    @property
    def flops_spent(self) -> float:
        return self.model.text_encoder.flops_spent

    def to(self, device: str | torch.device) -> _ConditionEncoder:
        """Move the text encoder (`TokenGenerator.to` moves the transformer it shares a model with)."""
        self.model.text_encoder.to(device)
        return self


def _load_state(module: nn.Module, path: Path) -> None:
    from arscale.train.checkpoint import load_strict

    state = read_safetensors(path)
    own = module.state_dict()
    load_strict(module, {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}, str(path))


def load_shapeworld_ar(device: str | torch.device = "cpu", weights: str | Path | None = None,
                       **overrides: Any) -> TokenGenerator:
    """The shipped ShapeWorld-AR generator; `weights` is a directory laid out like the shipped one.

    `overrides` (cfg, temperature, top_k, top_p, preview_fill) replace the defaults in config.json.
    """
    check_options("shapeworld-ar", overrides, sampling_options())  # before any file is read
    folder = Path(weights) if weights is not None else WEIGHTS_DIR
    if not folder.is_dir():
        raise ArscaleError(f"ShapeWorld-AR weights: {folder} is not a folder (--weights takes the folder a trainer's "
                           "--out wrote)")
    needed = ["config.json", "model.safetensors", "tokenizer.safetensors", "tokenizer_config.json"]
    missing = [f for f in needed if not (folder / f).exists()]
    held = shapeworld_folder_holds(folder) if missing else None  # another model's folder: say whose
    if held not in (None, "a ShapeWorld-AR model", "a ShapeWorld-AR tokenizer", "no ShapeWorld model arscale knows"):
        raise ArscaleError(f"{folder} holds {held}, not a ShapeWorld-AR model")
    if missing:
        raise ArscaleError(f"ShapeWorld-AR weights incomplete in {folder}: missing {', '.join(missing)} "
                           "(train with `arscale train shapeworld-ar-tokenizer` then `arscale train shapeworld-ar`)")
    with shapeworld_folder(folder, "a ShapeWorld-AR model"):
        config = ShapeWorldARConfig.from_dict(read_json(folder / "config.json"))
        tok_info = read_json(folder / "tokenizer_config.json")
        tokenizer = VQTokenizer(VQConfig(**tok_info.get("tokenizer", tok_info)))
        model = ShapeWorldAR(config)
    _load_state(model, folder / "model.safetensors")
    _load_state(tokenizer, folder / "tokenizer.safetensors")
    model.to(device).eval()
    tokenizer.to(device).eval()
    return build_generator(model, tokenizer, **overrides)


def random_shapeworld_ar(seed: int = 0, *, grid: int = 4, vocab_size: int = 32, dim: int = 32, n_layer: int = 2,
                         **overrides: Any) -> TokenGenerator:
    """A tiny randomly initialised ShapeWorld-AR generator (tests and examples; no weights needed).

    The image is `grid * 8` pixels square (the VQ tokenizer downsamples by 8).
    """
    check_options("shapeworld-ar", overrides, sampling_options(), others=("seed", "grid", "vocab_size", "dim",
                                                                          "n_layer"))
    text = TextEncoderConfig(width=32, depth=1, heads=2, max_len=12)
    transformer = TransformerConfig(dim=dim, n_layer=n_layer, n_head=2, vocab_size=vocab_size, grid=grid,
                                    cls_token_num=12, caption_dim=32, multiple_of=32)
    with torch.random.fork_rng(devices=[]):  # seeded by `seed`; the caller's global RNG stays as it was
        torch.manual_seed(seed)
        model = ShapeWorldAR(ShapeWorldARConfig(text=text, transformer=transformer)).eval()
        tokenizer = VQTokenizer(VQConfig(image_size=grid * 8, codebook_size=vocab_size, ch=8, z_channels=16)).eval()
    return build_generator(model, tokenizer, **overrides)
