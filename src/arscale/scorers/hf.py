"""The transformers side of the real scorers and text encoders: lazy import, loading, dtypes, batching.

`transformers` is imported only here and only when a real model is built, so the core package (and
the ShapeWorld path) never needs it. Every failure to find weights becomes one `ArscaleError` that
says what was looked for and how to provide it (a local path, or a hub id while online).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from arscale.errors import ArscaleError

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def require_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise ArscaleError(
            "the real scorers and text encoders need `transformers`; install it with `pip install arscale[real]`"
        ) from exc
    return transformers


def as_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ArscaleError(f"unknown dtype {dtype!r}; choose from {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def dtype_kwarg(dtype: str | torch.dtype | None) -> dict[str, torch.dtype]:
    """`from_pretrained`'s dtype argument: `dtype` from transformers 5, `torch_dtype` before."""
    transformers = require_transformers()
    major = int(transformers.__version__.split(".")[0])
    return {"dtype" if major >= 5 else "torch_dtype": as_dtype(dtype)}


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


def from_pretrained(cls: Any, weights: str | os.PathLike, *, what: str, option: str = "weights=",
                    **kwargs: Any) -> Any:
    """`cls.from_pretrained(weights)` (a local directory or a hub id) with a clear error when it is not there;
    `option` is how the user names the weights (`weights=`, `text_encoder=` ...)."""
    local = Path(weights).expanduser().exists()
    source = str(Path(weights).expanduser()) if local else str(weights)
    network = "Tokenizer" not in cls.__name__  # a model: asked what it could not fill from the files
    try:
        model = cls.from_pretrained(source, **kwargs, **({"output_loading_info": True} if network else {}))
    except Exception as exc:  # not there (OSError, ValueError), cut short (SafetensorError), another shape (RuntimeError)
        # offline, a hub id is looked for in the local cache only; a local folder is simply incomplete
        hint = "HF_HUB_OFFLINE is set, so only the local cache is searched; " if offline() and not local else ""
        raise ArscaleError(
            f"could not load the {what} from {weights!r}: {hint}pass {option} a local directory "
            f"(a `save_pretrained` / hub snapshot) or a hub id reachable online ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    if network and isinstance(model, tuple):  # (model, loading info); a stand-in class may return the model alone
        model, info = model
        missing = sorted(info.get("missing_keys", ()))
        if missing:  # transformers would have filled them with random numbers
            raise ArscaleError(f"the {what} in {str(weights)!r} lacks {len(missing)} of its weights "
                               f"({', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}): another model's "
                               "files, or only partly downloaded?")
    from arscale.generators.loading import recording

    if recording() and not local and HUB_NAME.fullmatch(source):
        record_snapshot(source, revision=kwargs.get("revision"), cache_dir=kwargs.get("cache_dir"))
    return model


# what transformers takes for a hub repository: "owner/repo", or a bare name such as "bert-base-uncased"
HUB_NAME = re.compile(r"[\w.-]+(/[\w.-]+)?")


# what a transformers snapshot holds that decides its outputs: weights, configs, tokenizer vocabularies
SNAPSHOT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt")


def record_snapshot(repo: str, *, revision: str | None = None, cache_dir: str | os.PathLike | None = None) -> None:
    """Note the files of `repo`'s snapshot in the local hub cache for the open `recording_hub_files` blocks.

    transformers does not say which files it read, but the snapshot it loaded from (the commit `revision`,
    default main, points to) holds what it fetched. Only the cache is read, nothing is downloaded; where
    there is no cache entry (or no huggingface_hub) nothing is recorded."""
    from arscale.generators.loading import record_hub_file

    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return
    try:
        folder = Path(snapshot_download(repo, revision=revision, cache_dir=cache_dir, local_files_only=True))
    except (OSError, ValueError) as exc:  # not cached (LocalEntryNotFoundError), a bad id
        # a snapshot the cache's file listing calls incomplete (IncompleteSnapshotError: files transformers never
        # fetched) is still the one it loaded from
        partial = getattr(exc, "snapshot_path", None)
        if partial is None:
            return
        folder = Path(partial)
    for path in sorted(folder.rglob("*")):
        if path.suffix in SNAPSHOT_SUFFIXES and path.is_file():  # is_file: a link to a missing blob is skipped
            record_hub_file(f"{repo}/{path.relative_to(folder).as_posix()}", path)


def hub_file(weights: str | os.PathLike, filename: str, *, what: str) -> Path:
    """A single weight file: a local file, a directory holding `filename`, or a hub id `owner/repo`."""
    from arscale.generators.loading import resolve

    try:
        return resolve(weights, filename)
    except ArscaleError as exc:
        hint = " (HF_HUB_OFFLINE is set: only the local hub cache is searched)" if offline() else ""
        raise ArscaleError(f"{what}: {exc}{hint}") from exc


def check_batching(batch_size: Any, backend: str) -> None:
    """A scorer's `batch_size` and preprocessing `backend`, refused in one line before its weights load (not as a
    ValueError of `range` at the first batch, or only once the first images arrive)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ArscaleError(f"batch_size must be a whole number ≥ 1, got {batch_size!r}")
    if backend not in ("torch", "pil"):
        raise ArscaleError(f"unknown preprocessing backend {backend!r}; choose torch or pil")


def in_chunks(fn: Callable[..., torch.Tensor], batch_size: int, *arrays: Any) -> torch.Tensor:
    """Run `fn` on slices of at most `batch_size` rows of every argument and concatenate the results."""
    n = len(arrays[0])
    if n == 0:
        raise ArscaleError("a scorer was called with an empty batch")
    parts = [fn(*(a[i: i + batch_size] for a in arrays)) for i in range(0, n, batch_size)]
    return torch.cat(parts)


def check_prompts(prompts: Any, count: int, *, texts: bool = True) -> list[Any]:
    """One prompt per image (one string serves a whole batch); `texts=False` for a scorer that reads none, which
    takes a class-conditional model's class indices as they come."""
    if isinstance(prompts, str):
        prompts = [prompts] * count  # one prompt for the whole batch is a common call
    prompts = list(prompts)
    if len(prompts) != count:
        raise ArscaleError(f"got {count} images but {len(prompts)} prompts; give one prompt per image")
    bad = [p for p in prompts if texts and (not isinstance(p, str) or not p.strip())]
    if bad:
        raise ArscaleError(f"prompts must be non-empty strings, got {bad[0]!r}")
    return prompts
