"""Shared training utilities for the shipped ShapeWorld models.

Used by every ShapeWorld trainer (multi-scale tokenizer, VAR, VQ tokenizer, AR, reward):

- `add_training_args(parser, ...)`: the common command-line options (steps, batch size, lr, seed,
  device, threads, --out, --state-dir, --replace-shipped, checkpoint interval, time limit, --fresh,
  --data-workers).
- `pick_device(name)` (from `arscale.devices`): "auto" → CUDA when present, else CPU.
- `check_arguments(args)`: what can be refused before anything is written (the numbers, --out, a folder
  that holds another kind of model); `check_share` / `check_count` / `check_rate` for a trainer's own options.
- `read_config(path, build)`: a `--config` file, its sizes checked (`check_config_sizes`).
- `begin(args, recorded)` → (device, TrainState, resume?) and `restore(state, model, opt)` → `Resumed`: how
  every trainer starts (`lr_schedule.rewarm` ramps the learning rate again after a resume without optimizer
  moments); a resume notes the recorded hyperparameters it changes, and a state with nothing left to train.
- `TrainState`: resumable checkpoints in a directory — `model.safetensors` (weights),
  `optimizer.safetensors` (optimizer state; param groups in its metadata), `state.json` (step, config,
  hyperparameters, elapsed time, free-form metrics), `trainer.safetensors` (what else a trainer carries from
  step to step: the AR replay buffer, the tokenizers' code usage, the running loss, a fitted plan). `save` is
  atomic (write then rename) and refuses non-finite weights; `stop_if_diverged(loss, step, args)` stops a run whose
  loss is no longer finite.
- `export_weights(state_dict, config, out_dir, filename)`: the shippable files (safetensors + config.json).
- `progress(total, initial, desc)`: the tqdm bar every trainer shows.
- `Timer`: elapsed wall time across resumes, and "time to checkpoint?" checks.

The data stream is in `scene_stream`, learning rates and `--fit-time-limit` in `lr_schedule`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tqdm import tqdm

from arscale.devices import check_threads, pick_device
from arscale.errors import ArscaleError, ArscaleWarning
from arscale.folders import first_missing, output_folder, remove_empty_folders
from arscale.generators.loading import read_json, read_safetensors
from arscale.generators.loading import shapeworld_folder_holds as holds

_LIVE_TIMERS: weakref.WeakSet = weakref.WeakSet()  # see `release_trainer`
_LIVE_BARS: weakref.WeakSet = weakref.WeakSet()  # likewise
_MADE_FOLDERS: list[Path] = []  # the --out folders trainers of this process made: see `release_trainer`
_STOPPED_BY_SIGNAL: list[int] = []  # a Ctrl-C (or a SIGTERM, which the CLI turns into one) stopped a trainer's loop


# What a trainer may share its --out with: a transformer and the tokenizer whose codes it is trained on
# (`tokenizer_folder`, `refuse_new_codes_under_a_model`). Names as `shapeworld_folder_holds` gives them.
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


def begin(args: argparse.Namespace, recorded: tuple[str, ...] = ()) -> tuple[torch.device, TrainState, bool]:
    """The start of every trainer: torch threads, the device, the state directory, whether to resume it.

    The state records --batch-size, --lr, --seed and the trainer's `recorded` options; a resume notes the ones
    this command changes (a note: a new learning rate for the rest of a run is legitimate), and a state that is
    already at --steps notes that there is nothing to train."""
    check_arguments(args)
    device = pick_device(args.device)  # before --out is made: a machine without the device leaves nothing behind
    made = first_missing(args.out)
    output_folder(args.out)  # before training: a bad --out fails at once, not at the first checkpoint
    if made is not None:
        _MADE_FOLDERS.append(made)
    torch.set_num_threads(max(1, args.threads))
    names = ("batch_size", "lr", "seed", *recorded)
    state = TrainState(args.state_dir, hyperparameters={name: getattr(args, name) for name in names})
    if state.exists and args.fresh:
        print(f"--fresh: starting over; the state in {state.dir} (step {state.info().get('step')}) will be replaced")
    elif state.exists:
        if getattr(args, "config", None):
            print(f"note: --config {args.config} is ignored: the run in {state.dir} resumes with its own config "
                  "(--fresh starts over with yours)")
        info = state.info()
        before = info.get("hyperparameters") or {}
        fitted = state.extra()[0].get("fitted") if getattr(args, "fit_time_limit", False) else None
        if fitted is not None and int(fitted[0]) < args.steps:  # what --fit-time-limit lowered this run to
            args.steps, args.cooldown, args.fitted = int(fitted[0]), int(fitted[1]), True
            print(f"note: --fit-time-limit fitted this run to --steps {args.steps} (cooldown {args.cooldown}): it "
                  "resumes that plan (without --fit-time-limit, --steps as given)")
        if info.get("step", 0) >= args.steps:
            print(f"note: the state in {state.dir} is already at step {info.get('step')} (--steps {args.steps}): "
                  f"nothing to train; its weights are exported again to {args.out}")
            state.hyperparameters = dict(before)  # it trains nothing with this command's settings
        else:
            changed = [f"{option_name(k)} {_shown(v)} (was {_shown(before[k])})"
                       for k, v in state.hyperparameters.items() if k in before and before[k] != v]
            if changed:
                print(f"note: resuming {state.dir} with settings it was not trained with: {', '.join(changed)}")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # training only; inference and parity tests stay fp32
        torch.backends.cudnn.allow_tf32 = True
    return device, state, state.exists and not args.fresh


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


def stop_if_diverged(loss: float, step: int, args: argparse.Namespace, rate: str = "lr") -> None:
    """A loss that is no longer finite stops the run before anything from it is saved (its weights are NaN or
    about to be): the last checkpoint stays as it was. `rate`: the learning-rate option that drove this loss."""
    if not math.isfinite(loss):
        raise ArscaleError(f"the training loss became {loss} at step {step}: stopped without saving (the state in "
                           f"{args.state_dir}, if any, keeps its last checkpoint); {option_name(rate)} "
                           f"{getattr(args, rate):g} is probably too high: resume with a lower one, or start over "
                           "with --fresh")


@dataclass
class Resumed:
    """Where a run picks up: step, training time so far, last metrics, and the step a resume without
    optimizer moments started at (the learning rate is warmed up again from there, see `rewarm`)."""

    step: int = 0
    elapsed: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    rewarm_from: int | None = None


def restore(state: TrainState, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> Resumed:
    """Load a training state into model and optimizer and say so."""
    info = state.load(model, optimizer)
    fresh_moments = optimizer is not None and not info["optimizer_restored"]
    run = Resumed(info["step"], info["elapsed_seconds"], info.get("metrics", {}), info["step"] if fresh_moments else None)
    print(f"resuming {state.dir} at step {run.step}"
          + (" (no optimizer state: warming the learning rate up again)" if fresh_moments else ""))
    return run


class TrainState:
    """A resumable training state directory (weights, optimizer, step, config, and the hyperparameters the
    run was started or last resumed with)."""

    def __init__(self, directory: str | os.PathLike, hyperparameters: dict[str, Any] | None = None):
        self.dir = Path(directory)
        self.hyperparameters = hyperparameters

    @property
    def exists(self) -> bool:
        return (self.dir / "state.json").exists()

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, *, step: int,
             config: dict[str, Any], elapsed: float, metrics: dict[str, Any] | None = None,
             extra: dict[str, torch.Tensor] | None = None, extra_metadata: dict[str, str] | None = None) -> None:
        """`extra` (with `extra_metadata`): what else a trainer carries from step to step (a replay buffer, code
        usage, a running loss), in trainer.safetensors, so that a resume continues the uninterrupted run."""
        refuse_non_finite(model, step)
        self.dir.mkdir(parents=True, exist_ok=True)
        with _holding_ctrl_c():  # a second Ctrl-C lands after the files: one checkpoint or the next, never a mix
            self._write(model, optimizer, step, config, elapsed, metrics, extra, extra_metadata)

    def _write(self, model, optimizer, step, config, elapsed, metrics, extra, extra_metadata) -> None:
        stamp = {SAVED_AT_STEP: str(step)}  # each file is replaced atomically, the set of them is not (`torn`)
        written = ["model.safetensors"] + ["optimizer.safetensors"] * (optimizer is not None) \
            + ["trainer.safetensors"] * (extra is not None)
        if extra is not None:
            save_file(_contiguous(extra), str(self.dir / "trainer.safetensors.tmp"),
                      metadata={**(extra_metadata or {}), **stamp})
            os.replace(self.dir / "trainer.safetensors.tmp", self.dir / "trainer.safetensors")
        save_file(_contiguous(model.state_dict()), str(self.dir / "model.safetensors.tmp"), metadata=stamp)
        os.replace(self.dir / "model.safetensors.tmp", self.dir / "model.safetensors")
        if optimizer is not None:
            save_optimizer(optimizer, self.dir / "optimizer.safetensors", stamp)
        info = {"step": step, "config": config, "elapsed_seconds": elapsed, "metrics": metrics or {},
                **({"hyperparameters": self.hyperparameters} if self.hyperparameters is not None else {}),
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": written,
                "device": str(next(model.parameters()).device)}
        (self.dir / "state.json.tmp").write_text(json.dumps(info, indent=2), encoding="utf-8")
        os.replace(self.dir / "state.json.tmp", self.dir / "state.json")

    def info(self) -> dict[str, Any]:
        return read_json(self.dir / "state.json")

    def _written(self, name: str) -> bool:
        """Whether the latest whole save wrote `name`: a file an earlier save left beside it (a save with trainer
        extras before one without) is not part of this state. A state.json without the list counts every file."""
        return name in self.info().get("files", CHECKPOINT_FILES)

    def extra(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """What the latest `save(extra=..., extra_metadata=...)` wrote; empty for a state without it (an older one, or
        one whose latest save carried none)."""
        path = self.dir / "trainer.safetensors"
        if not path.exists() or not self._written(path.name):
            return {}, {}
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            # copies: tensors that map the file would keep Windows from replacing it at the next save
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}  # noqa: SIM118
            metadata = dict(f.metadata() or {})
        metadata.pop(SAVED_AT_STEP, None)
        return tensors, metadata

    def torn(self) -> list[str]:
        """The files of the latest save (state.json lists them) saved at another step than state.json's, in words:
        what a machine that went down between the writes of one save leaves (state.json is written last). Files
        without a step (saved before 2026-12-07) count as whole."""
        step = str(self.info()["step"])
        torn = []
        for name in filter(self._written, CHECKPOINT_FILES):
            saved = _saved_at_step(self.dir / name)
            if saved is not None and saved != step:
                torn.append(f"{name} is from step {saved}")
        return torn

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
        """Load weights (strict) and optimizer state; returns state.json's content."""
        if not self.exists:
            raise ArscaleError(f"no training state in {self.dir}")
        torn = self.torn()
        if torn:  # the run goes on from the newer files: hours of training are worth more than an exact replay
            warnings.warn(f"{self.dir}: a save was cut short ({', '.join(torn)}, state.json from step "
                          f"{self.info()['step']}); resuming with these files: training goes on, but not exactly "
                          "as the uninterrupted run would", ArscaleWarning, stacklevel=2)
        device = next(model.parameters()).device
        load_strict(model, read_safetensors(self.dir / "model.safetensors", device), str(self.dir))
        restored = load_optimizer(optimizer, self.dir) if optimizer is not None and self._written(
            "optimizer.safetensors") else False
        return dict(self.info(), optimizer_restored=restored)


SAVED_AT_STEP = "arscale_saved_at_step"  # a checkpoint file's metadata key: the step of the save that wrote it
CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "trainer.safetensors")


def _saved_at_step(path: Path) -> str | None:
    """The step a checkpoint file was saved at (None: no such file, none recorded, or unreadable, which loading
    reports)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get(SAVED_AT_STEP)
    except Exception:  # noqa: BLE001 (a missing or damaged file: `load` names it where it reads the tensors)
        return None


@contextlib.contextmanager
def _holding_ctrl_c():
    """SIGINT (and the SIGTERM the CLI turns into one) waits until the block is done, then acts as it would have."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        # None: a handler not installed from Python, which cannot be put back; the default then stands in
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
    if caught:
        if callable(previous):
            previous(signal.SIGINT, caught[0])
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt


def refuse_non_finite(model: torch.nn.Module, step: int) -> None:
    """Weights that are NaN or infinite (a learning rate far too high) are not saved over a good checkpoint."""
    bad = next((name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())), None)
    if bad is not None:
        raise ArscaleError(f"the weights are no longer finite at step {step} ({bad}): not saving them (the last "
                           "checkpoint stays); the learning rate is probably too high: resume with a lower --lr, "
                           "or start over with --fresh")


def save_optimizer(optimizer: torch.optim.Optimizer, path: str | os.PathLike,
                   metadata: dict[str, str] | None = None) -> None:
    """Optimizer state as safetensors: per-parameter tensors flat, param groups (and `metadata`) as metadata."""
    sd = optimizer.state_dict()
    tensors = {f"state.{i}.{k}": (v if torch.is_tensor(v) else torch.tensor(v)).detach().contiguous()
               for i, slots in sd["state"].items() for k, v in slots.items()}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={**(metadata or {}), "param_groups": json.dumps(sd["param_groups"])})
    os.replace(tmp, path)


def load_optimizer(optimizer: torch.optim.Optimizer, directory: str | os.PathLike) -> bool:
    """Restore `optimizer.safetensors` (or a legacy `optimizer.pt`, read with weights_only) if present.

    Every slot is read on the CPU, whatever device the parameters are on: `load_state_dict` moves each slot to
    its parameter's device but keeps Adam's `step` where it was given, and torch hosts it on the CPU (a GPU `step`
    costs two device syncs per parameter and step, so a resumed GPU run would train slower than a fresh one)."""
    directory = Path(directory)
    st, legacy = directory / "optimizer.safetensors", directory / "optimizer.pt"
    if st.exists():
        from safetensors import safe_open

        with safe_open(str(st), framework="pt", device="cpu") as f:
            groups = json.loads(f.metadata()["param_groups"])
            for group, current in zip(groups, optimizer.param_groups):  # JSON turned tuples (betas) into lists
                for k, v in group.items():
                    if isinstance(current.get(k), tuple) and isinstance(v, list):
                        group[k] = tuple(v)
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key in f.keys():  # noqa: SIM118 - safe_open is not a dict
                _, idx, slot = key.split(".", 2)
                state.setdefault(int(idx), {})[slot] = f.get_tensor(key).clone()  # a copy, as in `extra`
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        return True
    if legacy.exists():
        optimizer.load_state_dict(torch.load(legacy, map_location="cpu", weights_only=True))
        return True
    return False


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict, naming missing and leftover keys in a user-facing error."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or bad:
        raise ArscaleError(f"weights in {source} do not fit the model: missing {missing[:5]}, leftover {extra[:5]}, "
                           f"wrong shape {bad[:5]}")
    model.load_state_dict(state)


def export_weights(state_dict: dict[str, torch.Tensor], config: dict[str, Any], out_dir: str | os.PathLike,
                   filename: str = "model.safetensors", config_name: str = "config.json",
                   dtype: torch.dtype | None = None) -> Path:
    """Write shippable weights; `dtype` (e.g. float16) casts floating tensors to halve the package size.
    Loading casts back to the model's dtype (`load_state_dict` copies into the fp32 parameters)."""
    state = _contiguous(state_dict)
    if dtype is not None:
        state = cast_floats(state, dtype, f"{filename} in {out_dir}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / filename))
    (out / config_name).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    # safetensors writes 0600; shared weights should read like the config beside them (the umask decides)
    (out / filename).chmod((out / config_name).stat().st_mode & 0o777)
    return out / filename


def check_range(state: dict[str, torch.Tensor], dtype: torch.dtype, what: str) -> None:
    """Refuse, in one line, floating tensors that `dtype` cannot hold: a finite value beyond its range (65504 in
    fp16) would turn into inf in the file (and NaN or inf are refused too)."""
    limit = torch.finfo(dtype).max
    for name, tensor in state.items():
        if tensor.is_floating_point() and tensor.numel():
            low, high = torch.aminmax(tensor.detach())  # one pass, no |tensor| copy
            largest = max(-float(low), float(high))  # nan (aminmax propagates it) fails the test below too
            if not largest <= limit:
                raise ArscaleError(f"cannot write {what} as {str(dtype).removeprefix('torch.')}: {name} holds "
                                   f"{largest:.4g}, beyond its largest value {limit:.6g}; nothing was exported. "
                                   "A weight this large usually means the learning rate is too high: --fresh with "
                                   "a lower --lr starts over")


def cast_floats(state: dict[str, torch.Tensor], dtype: torch.dtype, what: str) -> dict[str, torch.Tensor]:
    """Floating tensors cast to `dtype` for shipping (after `check_range`); other tensors as they are."""
    check_range(state, dtype, what)
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def tokenizer_folder(args: argparse.Namespace, shipped: str | os.PathLike) -> str:
    """The tokenizer a transformer trainer works on: --tokenizer, else the one beside --out (a tokenizer and
    its transformer share a folder), else the shipped one, which a model of one's own is told about."""
    out = Path(args.out) if args.out else Path(shipped)
    if args.tokenizer:
        given, there = Path(args.tokenizer) / "tokenizer.safetensors", out / "tokenizer.safetensors"
        if there.is_file() and given.is_file() and given.resolve() != there.resolve() \
                and given.read_bytes() != there.read_bytes():
            raise ArscaleError(f"--out {out} already holds another tokenizer: the model would lie beside codes it "
                               "was not trained on; choose another --out, or drop --tokenizer to use the one there")
        return str(args.tokenizer)
    if (out / "tokenizer_config.json").is_file():
        return str(out)
    print(f"note: no tokenizer in {out}: training on the shipped tokenizer's codes (--tokenizer DIR for another)")
    return str(shipped)


def refuse_new_codes_under_a_model(args: argparse.Namespace, resume: bool) -> None:
    """A tokenizer trained anew beside a transformer, or resumed with steps left, would change the codes that
    transformer was trained on."""
    if getattr(args, "decoder_only", None) or args.replace_shipped:
        return
    if resume and TrainState(args.state_dir).info().get("step", 0) >= args.steps:
        return  # nothing left to train: the same weights are exported again
    if (Path(args.out) / "model.safetensors").is_file():
        kind, own = holds(args.out), getattr(args, "trains", None)
        if kind == PARTNERS.get(own) or (own is None and kind in (VAR_MODEL, AR_MODEL)):
            raise ArscaleError(f"--out {args.out} holds {kind} trained on its tokenizer's codes; new codes would "
                               "invalidate it: fine-tune the decoder only (--decoder-only), or choose another --out")
        raise ArscaleError(f"--out {args.out} holds {kind}, not the model trained on this tokenizer's codes: "
                           "choose another --out")


def complete_with_tokenizer(out: str | os.PathLike, tokenizer: str | os.PathLike) -> None:
    """Copy the tokenizer files beside exported weights, so the folder loads on its own."""
    for name in ("tokenizer.safetensors", "tokenizer_config.json"):
        source, target = Path(tokenizer) / name, Path(out) / name
        if source.exists() and not target.exists():
            shutil.copyfile(source, target)


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or strided storage
    return {k: v.detach().contiguous().clone().cpu() for k, v in state.items()}


def progress(total: int, initial: int = 0, desc: str = "train") -> tqdm:
    bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, mininterval=5.0)
    _LIVE_BARS.add(bar)
    return bar


def stopped_by_signal() -> bool:
    """Whether a Ctrl-C or SIGTERM stopped the trainer's loop (it saved, but did not reach --steps)."""
    return bool(_STOPPED_BY_SIGNAL)


def release_trainer(failed: bool = False) -> None:
    """What a trainer that ended by an exception never reached: close every timer still holding Ctrl-C, its
    progress bars (so that the error comes on a line of its own) and its data workers; after a failure, remove
    an --out the run made and left without a file."""
    from arscale.train.scene_stream import close_live_streams

    for timer in list(_LIVE_TIMERS):
        timer.close()
    for bar in list(_LIVE_BARS):
        bar.close()
    close_live_streams()
    _STOPPED_BY_SIGNAL.clear()
    if failed:
        for folder in _MADE_FOLDERS:
            remove_empty_folders(folder)
    _MADE_FOLDERS.clear()


class Timer:
    """Elapsed wall time including earlier runs (from the resumed state), and checkpoint cadence.

    A trainer stops when `out_of_time()`: at the time limit, or after a Ctrl-C, which finishes the step and
    then saves the state and weights like the time limit does (a second Ctrl-C stops at once, unsaved)."""

    def __init__(self, already: float = 0.0, checkpoint_minutes: float = 5.0, limit_minutes: float = 0.0):
        _LIVE_TIMERS.add(self)
        self.start = time.monotonic()
        self.already = already
        self.last_save = self.start
        self.every = checkpoint_minutes * 60
        self.limit = limit_minutes * 60
        self.said_so = False
        self.interrupted = False
        self.closed = False
        self._restore: Callable[[], Any] = lambda: None
        self._catch_interrupt()

    def _catch_interrupt(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)
        if previous is None:  # installed outside Python: put Python's own back afterwards
            previous = signal.default_int_handler
        alive = weakref.ref(self)  # once the trainer is done with this timer, Ctrl-C is what it was before

        def on_interrupt(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGINT, previous)
            timer = alive()
            if timer is None or timer.closed:
                if callable(previous):
                    previous(signum, frame)
                elif previous != signal.SIG_IGN:
                    raise KeyboardInterrupt
                return
            timer.interrupted = True
            _STOPPED_BY_SIGNAL.append(signum)
            tqdm.write("interrupted: saving the state after this step; the same command (without --fresh) resumes "
                       "it (Ctrl-C again stops without saving)", file=sys.stderr)

        def restore() -> None:
            if signal.getsignal(signal.SIGINT) is on_interrupt:
                signal.signal(signal.SIGINT, previous)

        signal.signal(signal.SIGINT, on_interrupt)
        self._restore = restore

    def close(self) -> None:
        """The training loop is over: Ctrl-C is what it was before (during the final save, too)."""
        self.closed = True
        self._restore()

    @property
    def elapsed(self) -> float:
        return self.already + time.monotonic() - self.start

    def should_save(self) -> bool:
        if time.monotonic() - self.last_save >= self.every:
            self.last_save = time.monotonic()
            return True
        return False

    def out_of_time(self) -> bool:
        if self.interrupted:
            return True
        over = self.limit > 0 and time.monotonic() - self.start >= self.limit
        if over and not self.said_so:  # a run cut short should say so, and how to go on
            self.said_so = True
            tqdm.write(f"time limit of {self.limit / 60:g} min reached: stopping before --steps; the state is saved, "
                       "the same command (without --fresh) resumes it", file=sys.stderr)  # not into an open bar
        return over

    def seconds_left(self) -> float:
        return self.limit - (time.monotonic() - self.start)
