"""ShapeWorld-VAR: the small text-to-image next-scale model shipped inside the package.

Files in `arscale/weights/shapeworld-var/`:
- `tokenizer.safetensors` + `tokenizer_config.json`: the multi-scale VQ tokenizer;
- `model.safetensors` + `config.json`: the transformer (`transformer.*`) and text encoder
  (`conditioner.*`); config.json holds {"transformer", "text_encoder", "sampling"} (and training notes);
- `MODEL_CARD.md`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from arscale.errors import ArscaleError
from arscale.generators.loading import read_json, read_safetensors, shapeworld_folder, shapeworld_folder_holds
from arscale.generators.next_scale.conditioning import TextConditioner
from arscale.generators.next_scale.generator import SamplingConfig, ScaleGenerator
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer, MultiScaleTokenizerConfig
from arscale.generators.next_scale.transformer import ScaleTransformer, ScaleTransformerConfig
from arscale.generators.registry import check_options
from arscale.generators.text import TextEncoderConfig

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights" / "shapeworld-var"


def build_shapeworld_var(tokenizer_config: dict, config: dict) -> ScaleGenerator:
    """A ShapeWorld-VAR generator with freshly initialised weights, from the two config dicts."""
    tokenizer = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(tokenizer_config))
    text_cfg = TextEncoderConfig(**config.get("text_encoder", {}))
    tcfg = dict(config["transformer"])
    tcfg.update(cond_dim=text_cfg.width, context_dim=text_cfg.width if tcfg.get("context_dim", 1) else 0)
    transformer = ScaleTransformer(ScaleTransformerConfig.from_dict(tcfg))
    sampling = SamplingConfig(**config.get("sampling", {}))
    return ScaleGenerator(tokenizer, transformer, TextConditioner(text_cfg), sampling, name="shapeworld-var")


def load_shapeworld_var(device: str | torch.device = "cpu", weights: str | Path | None = None,
                        **sampling_overrides) -> ScaleGenerator:
    """Load the shipped model (or the one in directory `weights`); keyword overrides change sampling settings
    (the fields of `SamplingConfig`: cfg, temperature, top_k, ...)."""
    # before the folder guard, which reads any TypeError as a folder holding another model
    check_options("shapeworld-var", sampling_overrides, [f.name for f in dataclasses.fields(SamplingConfig)])
    try:  # the caller's values checked alone: an error names them, not the weights folder
        SamplingConfig(**sampling_overrides)
    except TypeError as exc:  # a value of the wrong kind
        raise ArscaleError(f"shapeworld-var sampling options {sampling_overrides}: {exc}") from None
    directory = Path(weights) if weights is not None else WEIGHTS_DIR
    if not directory.is_dir():
        raise ArscaleError(f"ShapeWorld-VAR weights: {directory} is not a folder (--weights takes the folder a "
                           "trainer's --out wrote)")
    files = [directory / n for n in ("config.json", "tokenizer_config.json", "model.safetensors",
                                     "tokenizer.safetensors")]
    missing = [f.name for f in files if not f.exists()]
    held = shapeworld_folder_holds(directory) if missing else None  # another model's folder: say whose
    if held not in (None, "a ShapeWorld-VAR model", "a ShapeWorld-VAR tokenizer", "no ShapeWorld model arscale knows"):
        raise ArscaleError(f"{directory} holds {held}, not a ShapeWorld-VAR model")
    if missing:
        raise ArscaleError(f"ShapeWorld-VAR weights are incomplete in {directory}: missing {', '.join(missing)} "
                           "(train them with `arscale train shapeworld-tokenizer` and `arscale train shapeworld-var`)")
    with shapeworld_folder(directory, "a ShapeWorld-VAR model"):
        config = read_json(files[0])
        config["sampling"] = {**config.get("sampling", {}), **sampling_overrides}
        gen = build_shapeworld_var(read_json(files[1]), config)
    from arscale.train.checkpoint import load_strict

    load_strict(gen.tokenizer, read_safetensors(files[3]), str(files[3]))
    model_state = read_safetensors(files[2])
    load_strict(torch.nn.ModuleDict({"transformer": gen.transformer, "conditioner": gen.conditioner}),
                model_state, str(files[2]))
    return gen.to(device).eval()


def load_shapeworld_tokenizer(directory: str | Path | None = None) -> MultiScaleTokenizer:
    """The multi-scale tokenizer alone, from a weights folder (`tokenizer.safetensors` +
    `tokenizer_config.json`; default: the shipped ShapeWorld-VAR) or a tokenizer training state
    (`model.safetensors` + `state.json` holding the config)."""
    directory = Path(directory) if directory is not None else WEIGHTS_DIR
    if (directory / "tokenizer_config.json").exists():
        config = read_json(directory / "tokenizer_config.json")
        weights = directory / "tokenizer.safetensors"
    elif (directory / "state.json").exists():
        with shapeworld_folder(directory, "a ShapeWorld-VAR tokenizer"):
            config = read_json(directory / "state.json")["config"]
            config = config.get("tokenizer", config)
        weights = directory / "model.safetensors"
    else:
        raise ArscaleError(f"no multi-scale tokenizer in {directory}: expected tokenizer_config.json + "
                           "tokenizer.safetensors (a weights folder) or state.json + model.safetensors (a training state)")
    with shapeworld_folder(directory, "a ShapeWorld-VAR tokenizer"):
        tokenizer = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(config))
    from arscale.train.checkpoint import load_strict

    load_strict(tokenizer, read_safetensors(weights), str(weights))
    return tokenizer.eval()
