"""A trainer's resumable state folder (`TrainState`): `model.safetensors` (weights), `optimizer.safetensors`
(optimizer state; param groups in its metadata: `save_optimizer` / `load_optimizer`), `state.json` (step, config,
hyperparameters, elapsed time, free-form metrics) and `trainer.safetensors` (what else a trainer carries from step
to step: the AR replay buffer, the tokenizers' code usage, the running loss, a fitted plan). Each file is written
then renamed, a save refuses non-finite weights, and a Ctrl-C waits until the save is whole; `load_strict` names
the keys that do not fit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from arscale.errors import ArscaleError, ArscaleWarning
from arscale.generators.loading import read_json, read_safetensors


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


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or strided storage
    return {k: v.detach().contiguous().clone().cpu() for k, v in state.items()}
