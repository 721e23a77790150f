"""The shippable files of a trained model: its weights as safetensors (optionally cast to fp16, each value checked
to fit) beside its config.json, and the tokenizer files a transformer's folder needs to load on its own."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from arscale.errors import ArscaleError
from arscale.train.checkpoint import _contiguous


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

def complete_with_tokenizer(out: str | os.PathLike, tokenizer: str | os.PathLike) -> None:
    """Copy the tokenizer files beside exported weights, so the folder loads on its own."""
    for name in ("tokenizer.safetensors", "tokenizer_config.json"):
        source, target = Path(tokenizer) / name, Path(out) / name
        if source.exists() and not target.exists():
            shutil.copyfile(source, target)
