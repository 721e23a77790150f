"""The output folder every command writes to, made before any work starts, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from arscale.errors import ArscaleError


def output_folder(path: str | Path, option: str = "--out") -> Path:
    """Create `path` (and its parents) or say in one line why it cannot be: a file in the way, no permission."""
    if not str(path).strip():
        raise ArscaleError(f"{option} is empty: name a folder (\".\" for this one)")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ArscaleError(f"{option} {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent that is a file, a read-only place
        raise ArscaleError(f"cannot create {option} {out}: {exc.strerror or exc}") from None
    return out
