"""The torch device a command runs on, checked before any work starts (one-line errors, not tracebacks)."""

from __future__ import annotations

import os

import torch

from arscale.errors import ArscaleError

MAX_THREADS = 1024  # torch's OpenMP pool hangs at some thousands of threads and crashes (a segfault) beyond


def check_threads(threads: int) -> None:
    """--threads at most MAX_THREADS: torch is never asked for a pool it hangs or crashes on."""
    if threads > MAX_THREADS:
        raise ArscaleError(f"--threads {threads} is more than {MAX_THREADS} CPU threads (this machine has "
                           f"{os.cpu_count()} CPUs)")


def pick_device(name: str = "auto", *, make_current: bool = True) -> torch.device:
    """`auto` (CUDA when present), `cpu`, `cuda`, `cuda:N`, ...: a device this machine has. `make_current`: a
    `cuda:N` becomes torch's current device (the commands; the Python loaders only check)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArscaleError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ArscaleError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ArscaleError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        if device.index is not None and make_current:  # the current device is what the cost record's phase timers wait on
            torch.cuda.set_device(device.index)
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ArscaleError(f"device {name!r} requested but this machine has no MPS backend; use --device cpu")
    elif device.type != "cpu":
        raise ArscaleError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def device_key(device: str | torch.device) -> str:
    """One spelling per device, for caches of loaded models: `cuda` is the current GPU, so it and `cuda:N` name
    the same one (a command's `--device cuda` and its model's `cuda:0` would else load a scorer twice)."""
    try:
        device = torch.device(device)
    except (TypeError, RuntimeError):  # no device at all (a plugin generator's None): its own spelling
        return str(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():  # else the loader says so
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)
