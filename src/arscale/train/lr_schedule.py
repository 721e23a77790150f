"""Learning rates of the ShapeWorld trainers: a warm-up + cosine schedule to a 10 % floor, an optional linear
cooldown to zero (`--cooldown`), a re-warm after resuming without optimizer moments, and `--fit-time-limit`,
which shortens the schedule after timing a few steps so a run with a `--time-limit` still ends with its cooldown.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from arscale.errors import ArscaleError

if TYPE_CHECKING:
    from arscale.train.run_control import Timer


def cosine_lr(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return float(peak * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t))))


def add_cooldown_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cooldown", type=int, default=0, metavar="STEPS",
                        help="decay the learning rate linearly to zero over the last STEPS steps, from the "
                             "schedule's value where the decay starts (a WSD-style anneal; to anneal a trained "
                             "state, resume it with --steps STEP+STEPS --cooldown STEPS); default 0 = none")


def check_cooldown_arg(args: argparse.Namespace) -> None:
    """--cooldown against --steps before anything is written (`cooled` checks it again as the run goes)."""
    if not 0 <= args.cooldown <= args.steps:
        raise ArscaleError(f"--cooldown must be between 0 and --steps ({args.steps}), got {args.cooldown}")


FIT_PROBE_STEPS = 50


def add_fit_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fit-time-limit", action="store_true",
                        help=f"after timing {FIT_PROBE_STEPS} of this run's first steps, lower --steps (and "
                             "--cooldown in proportion) to what --time-limit allows at the measured speed, so a "
                             "run that must end in one sitting (a lent GPU) still finishes its schedule and cooldown")


def check_fit_arg(args: argparse.Namespace) -> None:
    if args.fit_time_limit and args.time_limit <= 0:
        raise ArscaleError("--fit-time-limit needs a --time-limit in minutes")


def fitted_plan(args: argparse.Namespace) -> dict[str, torch.Tensor]:
    """What a state records of `--fit-time-limit`'s plan (steps, cooldown), so a resume keeps to it."""
    fitted = args.fit_time_limit and getattr(args, "fitted", False)  # set once `StepFitter` lowered the plan
    return {"fitted": torch.tensor([args.steps, args.cooldown])} if fitted else {}


def fitted_steps(steps: int, cooldown: int, step: int, probe_steps: int, probe_seconds: float,
                 seconds_left: float, reserve: float = 0.05) -> tuple[int, int]:
    """(steps, cooldown) for a run at `step` that took `probe_seconds` for its last `probe_steps` steps and
    has `seconds_left`: the steps that fit in all but `reserve` of the time left (the final save, evaluation
    and export), never more than planned; the cooldown keeps its share of the schedule."""
    affordable = seconds_left * (1 - reserve) * probe_steps / max(probe_seconds, 1e-9)
    fit = max(step + 1, min(steps, step + int(min(affordable, steps))))  # --time-limit 1e308 (min) leaves inf s
    return fit, min(fit, round(cooldown * fit / steps))


class StepFitter:
    """`--fit-time-limit` in a training loop: times this run's steps FIT_SKIP_STEPS + 1 to
    FIT_SKIP_STEPS + FIT_PROBE_STEPS (the first ones pay for start-up), then lowers `args.steps` and
    `args.cooldown` once with `fitted_steps`; the loop's learning-rate schedule reads them each step."""

    FIT_SKIP_STEPS = 5

    def __init__(self, args: argparse.Namespace, timer: Timer, first_step: int):
        self.args, self.timer = args, timer
        self.start_at = first_step + self.FIT_SKIP_STEPS
        self.fit_at = self.start_at + FIT_PROBE_STEPS
        self.started: float | None = None

    def after_step(self, step: int) -> str | None:
        """Call after each optimizer step; returns a message the one time it fits the plan."""
        if not self.args.fit_time_limit or step > self.fit_at:
            return None
        if step == self.start_at:
            self.started = time.monotonic()
        if step < self.fit_at or self.started is None:
            return None
        probe = time.monotonic() - self.started
        planned = self.args.steps, self.args.cooldown
        self.args.fitted = True
        self.args.steps, self.args.cooldown = fitted_steps(*planned, step, FIT_PROBE_STEPS, probe,
                                                           self.timer.seconds_left())
        speed = f"--fit-time-limit: {probe / FIT_PROBE_STEPS:.3f} s/step"
        if (self.args.steps, self.args.cooldown) == planned:
            return f"{speed}, the planned {planned[0]} steps fit"
        return (f"{speed}, so {self.args.steps} steps (cooldown {self.args.cooldown}) instead of {planned[0]} "
                f"(cooldown {planned[1]})")


def cooled(schedule: Callable[[int], float], step: int, total: int, cooldown: int) -> float:
    """`schedule(step)`, except over the last `cooldown` steps, which fall linearly from the schedule's
    value at the start of the cooldown to zero at `total` (the final step trains at 1/cooldown of it)."""
    if not 0 <= cooldown <= total:
        raise ArscaleError(f"--cooldown must be between 0 and --steps ({total}), got {cooldown}")
    start = total - cooldown
    if cooldown == 0 or step < start:
        return schedule(step)
    return schedule(start) * (total - step) / cooldown


def rewarm(lr: float, step: int, resumed_at: int | None, steps: int = 200) -> float:
    """Ramp the learning rate again after resuming without optimizer moments (fresh Adam steps are
    full-size, which at mid-schedule learning rates knocks a trained model off its minimum)."""
    if resumed_at is None:
        return lr
    return lr * min(1.0, (step - resumed_at + 1) / steps)


def transformer_lr(step: int, args: argparse.Namespace, rewarm_from: int | None) -> float:
    """The learning rate of the transformer trainers (ShapeWorld-VAR, -AR) at `step`: 300 warm-up steps, the cosine
    to --steps, the --cooldown, re-warmed after a resume without optimizer moments. --steps and --cooldown are read
    at each call: `--fit-time-limit` may shorten both during the run."""
    scheduled = cooled(lambda i: cosine_lr(i, args.steps, args.lr, 300), step, args.steps, args.cooldown)
    return rewarm(scheduled, step, rewarm_from)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr
