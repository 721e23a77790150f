"""The torch device a command runs on, checked before any work starts (one-line errors, not tracebacks)."""

from __future__ import annotations

import torch

from arscale.errors import ArscaleError


def pick_device(name: str = "auto") -> torch.device:
    """`auto` (CUDA when present), `cpu`, `cuda`, `cuda:N`, ...: a device this machine has."""
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
        if device.index is not None:  # the current device is what the cost record's phase timers wait on
            torch.cuda.set_device(device.index)
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ArscaleError(f"device {name!r} requested but this machine has no MPS backend; use --device cpu")
    elif device.type != "cpu":
        raise ArscaleError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device
