"""Atomic file writes: a temporary name in the same folder, then ``os.replace``, so that a killed process never
leaves a partial file under a final name; and the removal of the temporaries such a kill can leave behind."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def temporary_path(path: Path) -> Path:
    """`.<name>.tmp<pid>` beside `path`: hidden, so folder listings (GenEval's, T2I-CompBench's) skip it, and
    one per process, so two writers of the same file never share one."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through `temporary_path` and ``os.replace``."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:  # a full disk, Ctrl-C: no hidden half-written file left behind
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_leftover_temporaries(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """The temporaries (`temporary_path`) that a process killed inside `atomic_write_bytes` left in `folder` for
    any of `names`: an evaluator that lists the folder (T2I-CompBench's scorers) would count them as images."""
    wanted = set(names)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        name, _, pid = entry.name.rpartition(".tmp")
        if name.startswith(".") and name[1:] in wanted and pid.isdigit():
            Path(entry.path).unlink(missing_ok=True)
