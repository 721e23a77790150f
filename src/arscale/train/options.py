"""The command line every ShapeWorld trainer shares: its options (`add_training_args`), what can be refused before
anything is written (`check_arguments`: the numbers, where the weights and state go, an --out that holds another
kind of model; `check_share` / `check_count` / `check_rate` for a trainer's own options) and a trainer's
`--config` file (`read_config`, its sizes checked by `check_config_sizes`)."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

from arscale.devices import check_threads
from arscale.errors import ArscaleError
from arscale.generators.loading import shapeworld_folder_holds as holds
from arscale.train.checkpoint import TrainState

# What a trainer may share its --out with: a transformer and the tokenizer whose codes it is trained on
# (`common.tokenizer_folder`, `common.refuse_new_codes_under_a_model`). Names as `shapeworld_folder_holds` gives them.
VAR_MODEL, VAR_TOKENIZER = "a ShapeWorld-VAR model", "a ShapeWorld-VAR tokenizer"
AR_MODEL, AR_TOKENIZER = "a ShapeWorld-AR model", "a ShapeWorld-AR tokenizer"
REWARD = "a ShapeWorld reward"
NOTHING_KNOWN = "no ShapeWorld model arscale knows"
PARTNERS = {VAR_MODEL: VAR_TOKENIZER, VAR_TOKENIZER: VAR_MODEL, AR_MODEL: AR_TOKENIZER, AR_TOKENIZER: AR_MODEL}


def add_training_args(parser: argparse.ArgumentParser, *, steps: int, batch_size: int, lr: float,
                      state_dir: str, out_dir: str, scene_stream: bool = True,
                      used_with: str = "`arscale generate --weights DIR`", trains: str | None = None) -> None:
    """`trains`: what the trainer makes (VAR_MODEL, ..., REWARD); an --out holding another kind is refused."""
    parser.add_argument("--steps", type=int, default=steps, help="total optimizer steps (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="images per step (default %(default)s)")
    parser.add_argument("--lr", type=float, default=lr, help="peak learning rate (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="data and init seed (default %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default %(default)s)")
    parser.add_argument("--out", help=f"where the final weights and config go (use them with {used_with}); "
                                      "required unless --replace-shipped")
    parser.add_argument("--state-dir", help="resumable training state, resumed when present (default: "
                                            f"OUT/train_state/{Path(state_dir).name}; "
                                            f"with --replace-shipped: {state_dir})")
    parser.add_argument("--replace-shipped", action="store_true",
                        help=f"retrain the model shipped in the package: state {state_dir}, weights {out_dir}")
    parser.set_defaults(shipped_out=out_dir, shipped_state_dir=state_dir, trains=trains)
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0,
                        help="save the training state this often (default %(default)s)")
    parser.add_argument("--time-limit", type=float, default=0.0,
                        help="stop (and save) after this many minutes of this run; 0 = no limit")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing training state and start over")
    if scene_stream:
        parser.add_argument("--data-workers", type=int, default=0, metavar="N",
                            help="processes that sample and render scenes ahead of the trainer (0 = in the "
                                 "trainer; use several on a GPU, where one core cannot keep up); same data "
                                 "either way")


def read_config(path: str | os.PathLike, build: Any = None) -> Any:
    """A trainer's `--config` JSON file, optionally through `build(data)`: a missing file, bad JSON or an
    unknown field is a one-line error naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ArscaleError(f"--config {path}: " + ("not a regular file" if p.exists() else "no such file"))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:  # not JSON, or not UTF-8
        raise ArscaleError(f"--config {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ArscaleError(f"--config {path} must hold a JSON object of config fields, got {type(data).__name__}")
    check_config_sizes(data, f"--config {path}")
    if build is None:
        return data
    try:
        return build(data)
    except (TypeError, KeyError, ValueError, ArithmeticError) as exc:
        raise ArscaleError(f"--config {path} does not fit this trainer: {exc}") from None


# The config fields of the trainers' models (tokenizers, transformers, text encoders, sampling) that are sizes,
# counts or rates, by name, in whichever section they appear: a 0 width or depth would otherwise end in a
# traceback from torch (or a division by zero) once the model is built.
_AT_LEAST_ONE = {"image_size", "vocab_size", "codebook_size", "code_dim", "z_channels", "ch", "width", "depth",
                 "heads", "max_len", "dim", "n_layer", "n_head", "grid", "cls_token_num", "caption_dim",
                 "multiple_of", "image_depth", "fusion_depth"}
_AT_LEAST_ZERO = {"num_res", "num_phi", "context_dim", "top_k", "coarse_scales", "coarse_top_k"}
_LISTS_OF_SIZES = {"ch_mult", "patch_nums"}
_POSITIVE = {"mlp_ratio", "norm_eps", "rope_base", "temperature", "coarse_temperature"}
_SHARES = {"phi_ratio", "top_p", "dropout"}


def check_config_sizes(config: dict, source: str, prefix: str = "") -> None:
    """Refuse, in one line naming the field, a size/width/depth/count below 1 (or 0 where 0 means none), a rate
    that must be positive, a share outside [0, 1]; nested sections are checked under their dotted names."""
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            check_config_sizes(value, source, f"{name}.")
            continue
        whole = isinstance(value, int) and not isinstance(value, bool)
        number = whole or isinstance(value, float)
        if key in _AT_LEAST_ONE and not (whole and value >= 1):
            raise ArscaleError(f"{source}: {name} must be a whole number >= 1, got {value!r}")
        if key in _AT_LEAST_ZERO and not (whole and value >= 0):
            raise ArscaleError(f"{source}: {name} must be a whole number >= 0, got {value!r}")
        if key in _LISTS_OF_SIZES and not (isinstance(value, list) and value and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
            raise ArscaleError(f"{source}: {name} must be a non-empty list of whole numbers >= 1, got {value!r}")
        if key in _POSITIVE and not (number and math.isfinite(value) and value > 0):
            raise ArscaleError(f"{source}: {name} must be a positive number, got {value!r}")
        if key in _SHARES and not (number and 0 <= value <= 1):
            raise ArscaleError(f"{source}: {name} must be in [0, 1], got {value!r}")


def resolve_output(args: argparse.Namespace) -> None:
    """Fill in --out and --state-dir. Trying a trainer must not overwrite the model shipped in the package,
    so that takes --replace-shipped; any other run needs an --out of its own (its state goes beside it).
    Writes nothing: `begin` creates --out."""
    if args.state_dir is not None:  # now, not at the first checkpoint after training (`cli` refuses an empty one)
        there = next((p for p in (Path(args.state_dir), *Path(args.state_dir).parents) if p.exists()), None)
        in_outs_way = args.out is not None and there is not None and Path(args.out).resolve().is_relative_to(
            there.resolve())  # the default OUT/train_state/...: --out's own error says so
        if there is not None and not there.is_dir() and not in_outs_way:
            raise ArscaleError(f"--state-dir {args.state_dir}: {there} exists and is not a folder")
    shipped = Path(args.shipped_out).resolve()
    if args.replace_shipped:
        if args.out is not None and Path(args.out).resolve() != shipped:
            raise ArscaleError(f"--replace-shipped writes the shipped model to {args.shipped_out}; drop --out {args.out}")
        args.out = args.shipped_out
        args.state_dir = args.state_dir or args.shipped_state_dir
        return
    if args.out is None:
        raise ArscaleError(f"say where the weights go: --out DIR (a model of your own: a generator is used with "
                           f"--weights DIR, a reward with `arscale bench --scorer-weights DIR`), "
                           f"or --replace-shipped to retrain the shipped model in {args.shipped_out}")
    if Path(args.out).resolve() == shipped:
        raise ArscaleError(f"--out {args.out} is the model shipped in the package; pass --replace-shipped to "
                           "retrain it, or choose another folder")
    package_weights = shipped.parent  # every shipped model: another trainer's --out must not overwrite them
    if Path(args.out).resolve().is_relative_to(package_weights):
        raise ArscaleError(f"--out {args.out} lies among the models shipped in the package ({package_weights}); "
                           "choose a folder of your own")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ArscaleError(f"--out {args.out} exists and is not a folder")
    if args.state_dir is None:
        # one subfolder per trainer, as in the repository's train_state/: a tokenizer and its transformer may share
        # --out. A state written before 2026-12-06 lies in train_state/ itself: resume that one rather than restart.
        legacy = Path(args.out) / "train_state"
        args.state_dir = str(legacy if (legacy / "state.json").is_file() else legacy / Path(args.shipped_state_dir).name)


def option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_share(value: float | None, option: str) -> None:
    """A probability or share: in [0, 1] (None: not given)."""
    if value is not None and not 0 <= value <= 1:
        raise ArscaleError(f"{option_name(option)} must be in [0, 1], got {value}")


def check_count(value: int | None, option: str, least: int = 0, meaning: str = "") -> None:
    """A count or interval: at least `least` (None: not given); `meaning` says what the smallest value does."""
    if value is not None and value < least:
        raise ArscaleError(f"{option_name(option)} must be at least {least}{meaning}, got {value}")


def check_rate(value: float | None, option: str) -> None:
    """A learning rate or weight: finite and >= 0 (None: not given)."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ArscaleError(f"{option_name(option)} must be a finite number >= 0, got {value}")


def check_training_args(args: argparse.Namespace) -> None:
    """The numbers every trainer takes, checked before anything is written."""
    for option in ("batch_size", "threads"):
        check_count(getattr(args, option), option, 1)
    check_threads(args.threads)
    starts_from = getattr(args, "init_from", None) or getattr(args, "init", None)
    if args.steps < 0 or (args.steps == 0 and not starts_from):  # 0 steps: export what --init-from gave
        raise ArscaleError(f"--steps must be at least 1 (0 only to export --init-from's weights), got {args.steps}")
    if not (math.isfinite(args.lr) and args.lr >= 0):  # 0 is allowed: the weights pass through unchanged
        raise ArscaleError(f"--lr must be >= 0 and finite, got {args.lr}")
    if not (math.isfinite(args.checkpoint_minutes) and args.checkpoint_minutes > 0):
        raise ArscaleError(f"--checkpoint-minutes must be positive, got {args.checkpoint_minutes}")
    if not (math.isfinite(args.time_limit) and args.time_limit >= 0):
        raise ArscaleError(f"--time-limit must be >= 0 minutes (0: none), got {args.time_limit}")
    if not 0 <= args.seed < 2**32:  # numpy refuses a negative seed, torch one past 64 bits (seeds are mixed)
        raise ArscaleError(f"--seed must be in [0, 2**32), got {args.seed}")
    check_count(getattr(args, "data_workers", None), "data_workers", 0, " (0: in the trainer)")


def refuse_another_model(args: argparse.Namespace) -> None:
    """A trainer writes its weights and config into --out: a folder holding another kind of model (or its
    training state) is refused before anything is written, instead of being overwritten or left holding two
    models. Its own kind resumes or goes on training; a transformer shares the folder with its tokenizer.
    A --state-dir must hold this trainer's kind of state."""
    own = getattr(args, "trains", None)
    if own is None or args.out is None or args.replace_shipped:
        return
    state = Path(args.state_dir) if args.state_dir else None
    if state is not None and (state / "state.json").is_file() and holds(state) not in (own, NOTHING_KNOWN):
        raise ArscaleError(f"--state-dir {state} holds the training state of {holds(state)}, not of {own}: "
                           "choose another --state-dir")
    out = Path(args.out)
    if not out.is_dir():
        return
    share = PARTNERS.get(own)
    places = [out, *sorted(p.parent for p in out.glob("train_state/*/state.json")),
              *([out / "train_state"] if (out / "train_state" / "state.json").is_file() else [])]
    for place in places:
        kind = holds(place)
        if kind in (own, share, NOTHING_KNOWN):
            continue
        where = "" if place == out else f" (the training state in {place})"
        company = ("shares a folder only with the model trained on its codes" if own.endswith("tokenizer")
                   else "shares a folder only with its tokenizer" if share else "goes in a folder of its own")
        raise ArscaleError(f"--out {args.out} holds {kind}{where}; {own} {company}: choose another --out")
    writes = ("tokenizer.safetensors", "tokenizer_config.json") if own.endswith("tokenizer") else \
        ("model.safetensors", "config.json")
    clash = [name for name in writes if (out / name).exists()]
    if clash and holds(out) == NOTHING_KNOWN and not (state is not None and holds(state) == own):
        raise ArscaleError(f"--out {args.out} holds {' and '.join(clash)} of {NOTHING_KNOWN}, which training {own} "
                           "there would overwrite: choose another --out")


def check_arguments(args: argparse.Namespace) -> None:
    """Everything about the command line that can be refused before anything is written or loaded: the
    numbers, where the weights and state go, and an --out that holds another kind of model."""
    check_training_args(args)
    resolve_output(args)
    refuse_another_model(args)
    config = getattr(args, "config", None)
    if config and (args.fresh or not TrainState(args.state_dir).exists):  # a resumed run keeps its own config
        read_config(config)  # a bad file fails now; the trainer reads it again, into its config class

