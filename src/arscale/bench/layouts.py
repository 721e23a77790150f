"""Output layouts that the official evaluators read unchanged (GenEval's lives in geneval_layout.py).

- T2I-CompBench: one folder per category (its scorers are run on each category separately), each
  with a flat `samples/` folder of `<prompt>_<6-digit image index>.png`; the evaluators read the
  prompt before the first `_` and the index after the last. The index runs within the category:
  `position in <category>_val.txt * images_per_prompt + sample` (3_in_1.py aligns scores by it).
- DPG-Bench: one image per prompt file, named like the prompt file, holding a 2×2 grid of four
  samples (the evaluator crops it into tiles).
- TIIF-Bench: `<dimension>/<model>/<short|long>_description/<line index>.png`.

Every file is written atomically (temporary name in the same folder, then rename), so a run killed
at any moment never leaves a half-written image that a resumed run would count.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arscale.atomic_files import atomic_write_bytes, remove_leftover_temporaries
from arscale.bench.geneval_layout import encode_png, is_whole
from arscale.bench.suites import SuitePrompt
from arscale.errors import ArscaleError


def atomic_save_png(image: np.ndarray, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, encode_png(np.asarray(image, dtype=np.uint8)))


def grid(images: Sequence[np.ndarray], columns: int | None = None) -> np.ndarray:
    """Tile equally sized uint8 HWC images row by row."""
    if not images:
        raise ValueError("grid needs at least one image")
    h, w, c = images[0].shape
    cols = columns or int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / cols))
    out = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i, im in enumerate(images):
        r, q = divmod(i, cols)
        out[r * h:(r + 1) * h, q * w:(q + 1) * w] = im
    return out


MAX_NAME_BYTES = 240  # a file name's limit is 255 bytes; `atomic_write_bytes` adds ".", ".tmp" and a pid


def file_name(value: object, what: str) -> str:
    """A folder or file name taken from a suite (its text or its metadata), refused in one line unless it is one
    plain name: a string with no / or \\ or NUL, not . or .., that fits a file system's 255 bytes."""
    if (not isinstance(value, str) or value in ("", ".", "..") or any(c in value for c in "/\\\0")
            or len(value.encode()) > MAX_NAME_BYTES):
        raise ArscaleError(f"{what} {str(value)[:80]!r} names a file or folder of the layout: it must be one plain "
                           f"name (no / or \\, not . or .., at most {MAX_NAME_BYTES} bytes)")
    return value


def compbench_name(prompt: str, image_index: int) -> str:
    # The evaluators take the prompt before the first "_" and the index after it (UniDet: split("_")[1]),
    # so the prompt must hold no "_"; "/" cannot appear in a file name.
    name = f"{prompt.replace('/', ' ').replace('_', ' ')}_{image_index:06d}.png"
    return file_name(name, "T2I-CompBench: the prompt's file name")


class CompBenchLayout:
    def __init__(self, root: str | Path, images_per_prompt: int):
        self.root = Path(root)
        self.k = images_per_prompt

    def folder(self, sp: SuitePrompt) -> Path:
        """The `--out_dir` of the scorers: `<category>/` for CompBench prompts, else the root."""
        category = sp.metadata.get("category")
        return self.root / file_name(category, "T2I-CompBench: category") if category else self.root

    def paths(self, sp: SuitePrompt) -> list[Path]:
        first = sp.metadata.get("category_index", sp.index) * self.k
        return [self.folder(sp) / "samples" / compbench_name(sp.prompt, first + j) for j in range(self.k)]

    def is_complete(self, sp: SuitePrompt) -> bool:
        return all(is_whole(p) for p in self.paths(sp))

    def write(self, sp: SuitePrompt, images: Sequence[np.ndarray]) -> list[Path]:
        if len(images) != self.k:
            raise ArscaleError(f"T2I-CompBench layout expects {self.k} images per prompt, got {len(images)}")
        paths = self.paths(sp)
        remove_leftover_temporaries(paths[0].parent, [p.name for p in paths])  # a killed run's: scorers list samples/
        for im, p in zip(images, paths):
            atomic_save_png(im, p)
        return paths


class DPGLayout:
    """Four samples per prompt as one 2×2 grid named after the prompt file."""

    def __init__(self, root: str | Path, images_per_prompt: int = 4):
        if images_per_prompt != 4:
            raise ArscaleError(f"DPG-Bench expects a 2x2 grid of 4 samples per prompt, got {images_per_prompt} "
                               "(`--layout dpg` searches 4 times per prompt)")
        self.root = Path(root)

    def path(self, sp: SuitePrompt) -> Path:
        return self.root / file_name(f"{sp.metadata.get('file', f'{sp.index:05d}')}.png", "DPG-Bench: prompt file")

    def is_complete(self, sp: SuitePrompt) -> bool:
        return is_whole(self.path(sp))

    def write(self, sp: SuitePrompt, images: Sequence[np.ndarray]) -> list[Path]:
        if len(images) != 4:
            raise ArscaleError(f"DPG-Bench needs 4 images per prompt, got {len(images)}")
        atomic_save_png(grid(images, columns=2), self.path(sp))
        return [self.path(sp)]


class TIIFLayout:
    def __init__(self, root: str | Path, model_name: str, images_per_prompt: int = 1):
        if images_per_prompt != 1:
            raise ArscaleError("TIIF-Bench takes one image per prompt")
        self.root, self.model = Path(root), model_name

    def path(self, sp: SuitePrompt) -> Path:
        m = sp.metadata
        return (self.root / file_name(m["dimension"], "TIIF-Bench: type") / self.model
                / file_name(m["description"], "TIIF-Bench: description")
                / file_name(f"{m['line']}.png", "TIIF-Bench: line"))

    def is_complete(self, sp: SuitePrompt) -> bool:
        return is_whole(self.path(sp))

    def write(self, sp: SuitePrompt, images: Sequence[np.ndarray]) -> list[Path]:
        atomic_save_png(images[0], self.path(sp))
        return [self.path(sp)]
