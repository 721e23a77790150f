"""GenEval's output layout, results rows and summary (no torch; numpy + PIL only).

Layout (what ``djghosh13/geneval``'s ``evaluation/evaluate_images.py`` reads)::

    <root>/<5-digit prompt index>/metadata.jsonl    one JSON object (json.load), despite the name
    <root>/<5-digit prompt index>/samples/<5-digit sample index>.png

The official evaluator accepts any all-digit folder name and any sample name matching ``\\d+\\.png``;
we write ``%05d`` for both (like GenEval's reference generator) and read folders whose names are all
digits and samples whose names are exactly digits + ``.png``. Every file is written atomically (a
temporary name in the same folder, then ``os.replace``), so an interrupted run never leaves a partial
file under a final name.

Results (``results.jsonl``) have GenEval's columns: ``filename`` (the sample path, as GenEval builds
it: ``os.path.join(root, folder, "samples", name)``), ``tag``, ``prompt``, ``correct``, ``reason``,
``metadata`` (the record as a JSON *string*, as GenEval writes it, so its ``summary_scores.py`` can
group by it) and ``details`` (a JSON string: per class, the ``[x0, y0, x1, y1, confidence]`` boxes).

Summary (``summary.json``), always recomputed from result rows by `compute_summary`::

    {"overall": <unweighted mean of the per-tag accuracies>,
     "tags": {"<tag>": {"accuracy": a, "correct": c, "total": n}, ...},
     "images": N, "image_accuracy": <mean over images>,
     "prompts": P, "prompt_accuracy": <fraction of prompt folders with at least one correct image>,
     "geneval_prompts": G, "geneval_prompt_accuracy": <the same, grouped by the metadata string>}

GenEval's ``summary_scores.py`` groups prompts by the ``metadata`` column, so suites that repeat a record
(``shapeworld-v1-eval`` does: 600 folders, 182 distinct records) get a different "Total prompts" and
"% correct prompts" there than our per-folder ``prompts`` / ``prompt_accuracy``; ``geneval_prompts`` /
``geneval_prompt_accuracy`` are its numbers. Everything else (overall, tags, images) is identical.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arscale.atomic_files import atomic_write_bytes, atomic_write_text
from arscale.errors import ArscaleError

METADATA_FILE = "metadata.jsonl"
SAMPLES_DIR = "samples"
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
_SAMPLE_RE = re.compile(r"\d+\.png")
_KNOWN_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")


# --------------------------------------------------------------------------------------------------
# writing (`atomic_files`)


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # a PNG's last 12 bytes: its empty IEND chunk


def is_whole(path: str | os.PathLike) -> bool:
    """Whether a written file is whole: a PNG up to its end chunk, else a JSON object. The atomic writes rename
    without an fsync, so a machine that goes down may leave a file renamed into place empty or cut short."""
    path = Path(path)
    try:
        if path.suffix == ".png":
            with open(path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - len(PNG_END)))
                return f.read() == PNG_END
        return isinstance(json.loads(path.read_bytes()), dict)
    except (OSError, ValueError):
        return False


def prompt_dir(root: str | os.PathLike, index: int) -> Path:
    return Path(root) / f"{int(index):05d}"


def sample_path(root: str | os.PathLike, index: int, sample: int) -> Path:
    return prompt_dir(root, index) / SAMPLES_DIR / f"{int(sample):05d}.png"


def _ordered(metadata: dict) -> dict:
    out = {k: metadata[k] for k in ("tag", "include", "exclude", "prompt") if k in metadata}
    out.update({k: v for k, v in metadata.items() if k not in out})
    return out


def write_metadata(root: str | os.PathLike, index: int, metadata: dict) -> Path:
    """Create ``<root>/<index>/samples/`` and write ``<root>/<index>/metadata.jsonl`` (one JSON object)."""
    folder = prompt_dir(root, index)
    (folder / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
    path = folder / METADATA_FILE
    atomic_write_text(path, json.dumps(_ordered(metadata)))
    return path


def encode_png(image) -> bytes:
    """PNG bytes of an RGB ``uint8 [H, W, 3]`` array or a PIL image."""
    import io

    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ArscaleError(f"expected a uint8 [H, W, 3] image, got {image.dtype} {tuple(image.shape)}")
        image = Image.fromarray(np.ascontiguousarray(image))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_sample(root: str | os.PathLike, index: int, sample: int, image) -> Path:
    """Write one sample PNG (the prompt folder must exist: call `write_metadata` first)."""
    path = sample_path(root, index, sample)
    if not path.parent.is_dir():
        raise ArscaleError(f"{path.parent} does not exist: write the prompt's metadata first")
    atomic_write_bytes(path, encode_png(image))
    return path


def write_prompt(root: str | os.PathLike, index: int, metadata: dict, images: Iterable) -> list[Path]:
    """Metadata plus samples ``0, 1, ...`` of one prompt."""
    write_metadata(root, index, metadata)
    return [write_sample(root, index, k, im) for k, im in enumerate(images)]


# --------------------------------------------------------------------------------------------------
# reading


@dataclass(frozen=True)
class PromptFolder:
    index: int
    path: Path
    metadata: dict
    samples: list[Path]


def _read_metadata(path: Path) -> dict:
    if not path.is_file():
        raise ArscaleError(f"{path}: missing (every prompt folder needs a {METADATA_FILE})")
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
    except json.JSONDecodeError as exc:
        raise ArscaleError(
            f"{path}: malformed metadata, not one JSON object ({exc.msg}, line {exc.lineno})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArscaleError(f"{path}: cannot read metadata ({exc})") from None
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("include"), list)
        or not isinstance(metadata.get("tag"), str)
        or "prompt" not in metadata  # GenEval's evaluator reads it
    ):
        raise ArscaleError(
            f"{path}: malformed metadata, expected an object with 'tag' (a string), 'include' and 'prompt'"
        )
    return metadata


def iter_prompts(root: str | os.PathLike) -> Iterator[PromptFolder]:
    """Prompt folders of a GenEval layout in index order, with their metadata and sorted sample paths."""
    root = Path(root)
    if not root.exists():
        raise ArscaleError(f"folder {root} not found")
    if not root.is_dir():
        raise ArscaleError(f"{root} is not a folder (expected a GenEval layout folder)")
    folders = sorted((int(p.name), p) for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    for index, folder in folders:
        metadata = _read_metadata(folder / METADATA_FILE)
        sdir = folder / SAMPLES_DIR
        if not sdir.is_dir():
            raise ArscaleError(f"{sdir}: missing (expected {SAMPLES_DIR}/<n>.png beside {METADATA_FILE})")
        samples = sorted(
            (p for p in sdir.iterdir() if p.is_file() and _SAMPLE_RE.fullmatch(p.name)),
            key=lambda p: int(p.name[:-4]),
        )
        yield PromptFolder(index, folder, metadata, samples)


def read_prompts(root: str | os.PathLike) -> list[PromptFolder]:
    """All prompt folders; raises `ArscaleError` if there are none."""
    folders = list(iter_prompts(root))
    if not folders:
        runs = sorted(p.parent for p in Path(root).glob(f"*/n*/{SUMMARY_FILE}"))  # a bench's root: one layout per run
        hint = f"; this is a bench folder, whose runs each hold one, e.g. {runs[0]}" if runs else ""
        raise ArscaleError(
            f"no prompt folders in {root} (expected {root}/<5-digit index>/{METADATA_FILE} and {SAMPLES_DIR}/){hint}"
        )
    return folders


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB ``uint8 [H, W, 3]``; `ArscaleError` naming the file if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ArscaleError(f"{path}: unreadable image ({exc})") from None


# --------------------------------------------------------------------------------------------------
# results and summary


def result_row(filename: str | os.PathLike, metadata: dict, correct: bool, reason: str, details=None) -> dict:
    """One results row with GenEval's columns (``metadata`` and ``details`` as JSON strings)."""
    return {
        "filename": str(filename),
        "tag": metadata["tag"],
        "prompt": metadata.get("prompt", ""),
        "correct": bool(correct),
        "reason": reason,
        "metadata": json.dumps(_ordered(metadata)),
        "details": json.dumps(details if details is not None else {}),
    }


def write_results(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_results(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ArscaleError(f"results file {path} not found")
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # as a file iterates: only "\n" ends a line
    except (OSError, UnicodeDecodeError) as exc:
        raise ArscaleError(f"cannot read results file {path}: {exc}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ArscaleError(f"{path}, line {n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ArscaleError(f"{path}, line {n}: not a JSON object (one results row per line)")
        missing = [k for k in ("filename", "tag", "correct") if k not in row]
        if missing:
            raise ArscaleError(f"{path}, line {n}: missing {', '.join(missing)}")
        rows.append(row)
    return rows


def _prompt_key(row: dict) -> str:
    """The prompt a row belongs to: its prompt folder (two levels above the sample), else its metadata."""
    fn = str(row.get("filename", ""))
    parent = os.path.dirname(os.path.dirname(fn))
    if parent:
        return parent
    md = row.get("metadata")
    return md if isinstance(md, str) else json.dumps(md, sort_keys=True)


def compute_summary(rows: Iterable[dict]) -> dict:
    """Summary of result rows (see the module docs). Tags appear in GenEval's order, unknown tags after,
    in order of first appearance. ``overall`` is the unweighted mean of the per-tag accuracies."""
    rows = list(rows)
    per_tag: dict[str, list[int]] = {}
    per_prompt: dict[str, bool] = {}
    per_metadata: dict[str, bool] = {}  # GenEval's summary_scores.py: df.groupby('metadata')
    for r in rows:
        c = bool(r["correct"])
        per_tag.setdefault(r["tag"], [0, 0])
        per_tag[r["tag"]][0] += int(c)
        per_tag[r["tag"]][1] += 1
        key = _prompt_key(r)
        per_prompt[key] = per_prompt.get(key, False) or c
        md = r.get("metadata")
        md_key = md if isinstance(md, str) else json.dumps(md)
        per_metadata[md_key] = per_metadata.get(md_key, False) or c
    order = [t for t in _KNOWN_TAGS if t in per_tag] + [t for t in per_tag if t not in _KNOWN_TAGS]
    tags = {
        t: {"accuracy": per_tag[t][0] / per_tag[t][1], "correct": per_tag[t][0], "total": per_tag[t][1]}
        for t in order
    }
    n = len(rows)
    return {
        "overall": float(np.mean([v["accuracy"] for v in tags.values()])) if tags else 0.0,
        "tags": tags,
        "images": n,
        "image_accuracy": sum(bool(r["correct"]) for r in rows) / n if n else 0.0,
        "prompts": len(per_prompt),
        "prompt_accuracy": sum(per_prompt.values()) / len(per_prompt) if per_prompt else 0.0,
        "geneval_prompts": len(per_metadata),
        "geneval_prompt_accuracy": sum(per_metadata.values()) / len(per_metadata) if per_metadata else 0.0,
    }


def write_summary(path: str | os.PathLike, summary: dict) -> None:
    atomic_write_text(path, strict_json(summary, indent=2) + "\n")


def strict_json(obj: Any, **options: Any) -> str:
    """JSON that strict readers (jq, JavaScript) accept: NaN and infinities, which Python would write bare, become
    null (a mean over no rewards, say)."""
    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(obj), allow_nan=False, **options)


def format_summary(summary: dict) -> str:
    """A per-tag table of a summary, as text (no trailing newline)."""
    lines = [f"{'tag':<16}{'accuracy':>10}{'correct':>10}{'total':>8}"]
    for tag, v in summary["tags"].items():
        lines.append(f"{tag:<16}{v['accuracy']:>10.2%}{v['correct']:>10}{v['total']:>8}")
    lines.append("-" * 44)
    lines.append(
        f"{'overall':<16}{summary['overall']:>10.2%}   (unweighted mean of {len(summary['tags'])} tags)"
    )
    lines.append(
        f"{'images':<16}{summary['image_accuracy']:>10.2%}{round(summary['image_accuracy'] * summary['images']):>10}"
        f"{summary['images']:>8}"
    )
    lines.append(
        f"{'prompts (any)':<16}{summary['prompt_accuracy']:>10.2%}"
        f"{round(summary['prompt_accuracy'] * summary['prompts']):>10}{summary['prompts']:>8}"
    )
    return "\n".join(lines)
