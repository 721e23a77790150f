"""How every ShapeWorld trainer starts and what the trainers share besides (multi-scale tokenizer, VAR, VQ
tokenizer, AR, reward):

- `begin(args, recorded)` → (device, TrainState, resume?) and `restore(state, model, opt)` → `Resumed`: how
  every trainer starts (`lr_schedule.rewarm` ramps the learning rate again after a resume without optimizer
  moments); a resume notes the recorded hyperparameters it changes, and a state with nothing left to train.
- `stop_if_diverged(loss, step, args)` stops a run whose loss is no longer finite.
- `tokenizer_folder(args, shipped)`: the tokenizer a transformer trainer works on; `refuse_new_codes_under_a_model`.
- `run_config`, `evaluation_due`, `end_loop`: the same few lines every trainer's main had.

The rest lives in one module per idea, re-exported here for the trainers and tests that use `common.NAME`:
`options` (the shared command-line options, their checks, `--config` files), `checkpoint` (`TrainState`, the
resumable state folder, and the optimizer state in it), `shipping` (the shippable weights and config), `run_control`
(`Timer`, `progress`, `release_trainer`). The data stream is in `scene_stream`, learning rates and
`--fit-time-limit` in `lr_schedule`.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from arscale.devices import pick_device
from arscale.errors import ArscaleError
from arscale.folders import first_missing, output_folder
from arscale.generators.loading import shapeworld_folder_holds as holds
from arscale.train.checkpoint import (  # noqa: F401 (re-exported)
    SAVED_AT_STEP,
    TrainState,
    load_optimizer,
    load_strict,
    refuse_non_finite,
    save_optimizer,
)
from arscale.train.options import (  # noqa: F401 (re-exported)
    AR_MODEL,
    AR_TOKENIZER,
    NOTHING_KNOWN,
    PARTNERS,
    REWARD,
    VAR_MODEL,
    VAR_TOKENIZER,
    add_training_args,
    check_arguments,
    check_config_sizes,
    check_count,
    check_rate,
    check_share,
    check_training_args,
    option_name,
    read_config,
    refuse_another_model,
    resolve_output,
)
from arscale.train.run_control import (  # noqa: F401 (re-exported)
    _MADE_FOLDERS,
    Timer,
    progress,
    release_trainer,
    stopped_by_signal,
)
from arscale.train.shipping import (  # noqa: F401 (re-exported)
    cast_floats,
    check_range,
    complete_with_tokenizer,
    export_weights,
)


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


def run_config(args: argparse.Namespace, state: TrainState, resume: bool, build: Callable[[dict], Any],
               default: Callable[[], Any]) -> Any:
    """A resumed run goes on with the config its state recorded; a new run takes --config's (through `build`),
    else `default()`."""
    if resume:
        return build(state.info()["config"])
    if args.config:
        return read_config(args.config, build)
    return default()


def evaluation_due(step: int, args: argparse.Namespace) -> bool:
    """Every --eval-every steps (0: only at the end), and at the last step."""
    return (args.eval_every > 0 and step % args.eval_every == 0) or step == args.steps


def end_loop(timer: Timer, bar: Any, stream: Any) -> None:
    """The training loop is over: Ctrl-C is what it was before (during the final save, too), the progress bar is
    closed and the data workers stop."""
    timer.close()
    bar.close()
    stream.close()
