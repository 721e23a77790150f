"""The output folder every command writes to, made before any work starts, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from arscale.errors import ArscaleError


def output_folder(path: str | Path, option: str = "--out") -> Path:
    """Create `path` (and its parents) or say in one line why it cannot be: a file in the way, no permission."""
    if not str(path).strip():
        raise ArscaleError(f"{option} is empty: name a folder (\".\" for this one)")
    out = Path(path)
    try:
        if out.exists() and not out.is_dir():
            raise ArscaleError(f"{option} {out} exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent that is a file, a read-only place
        raise ArscaleError(f"cannot create {option} {out}: {exc.strerror or exc}") from None
    return out


def first_missing(path: str | Path) -> Path | None:
    """The topmost folder `output_folder(path)` would create (None when `path` exists): a failed run removes what
    it made, and no more."""
    missing = None
    try:
        for folder in (Path(path), *Path(path).parents):
            if folder.exists():
                break
            missing = folder
    except OSError:  # a parent that cannot be searched: `output_folder` says so; nothing is claimed
        return None
    return missing


def remove_empty_folders(root: str | Path | None, *, keep_root: bool = False) -> None:
    """Remove the folders under `root` (and `root`, unless kept) that hold no file, deepest first: what a run
    that wrote nothing leaves behind. Folders holding a file stay, and so do their parents."""
    if root is None or not Path(root).is_dir() or Path(root).is_symlink():
        return
    root = Path(root)
    folders = [p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()]  # a link is not ours to remove
    for folder in [*sorted(folders, key=lambda p: len(p.parts), reverse=True), *([] if keep_root else [root])]:
        try:
            if not any(folder.iterdir()):
                folder.rmdir()
        except OSError:  # tidying is best effort: it must never hide the error that ended the run
            pass
