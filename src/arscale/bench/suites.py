"""Prompt suites: every loader returns `SuitePrompt(index, prompt, metadata)` in a fixed order.

The index is the prompt's global position in the suite; seeds and output names derive from it, so
a shard or a resumed run produces exactly what an uninterrupted run would.

Suites and where their prompts come from:
- `shapeworld-v1-eval` (shipped) or any GenEval-format jsonl of ShapeWorld prompts;
- GenEval: `evaluation_metadata.jsonl` (553 records) from djghosh13/geneval, given as a path;
- T2I-CompBench: `<category>_val.txt` files (one prompt per line), a file or their directory; each
  prompt keeps its category and its position within it (the evaluators score one category at a time);
- DPG-Bench: the `prompts/` directory of `.txt` files (one prompt per file, named by file stem);
- TIIF-Bench: its `*.jsonl` prompt files (licence does not allow shipping): a file or directory;
  each line yields a short and a long description; its `type` names the dimension folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arscale.errors import ArscaleError

SUITE_KINDS = ("shapeworld", "geneval", "compbench", "dpg", "tiif")


@dataclass(frozen=True)
class SuitePrompt:
    index: int
    prompt: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _existing(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise ArscaleError(f"{what} not found: {p}")
    return p


def _read_text(path: Path) -> str:
    """A prompt file's text, or one line saying why it cannot be: a folder, not UTF-8."""
    if path.is_dir():
        raise ArscaleError(f"{path} is a folder, not a prompt file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ArscaleError(f"{path} is not UTF-8 text (byte {exc.start}): save the prompts as UTF-8") from None


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for each non-blank line, so messages can point into the file."""
    rows = []
    text = _read_text(path)
    for n, line in enumerate(text.split("\n"), 1):  # as a file iterates: only "\n" ends a line, not U+2028
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ArscaleError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; lists nested too deep
            raise ArscaleError(f"{path}:{n}: not a prompt record ({exc})") from None
        if not isinstance(row, dict):
            raise ArscaleError(f"{path}:{n}: expected a JSON object per line")
        rows.append((n, row))
    return rows


def load_geneval(path: str | Path) -> list[SuitePrompt]:
    """GenEval-format metadata jsonl (GenEval's own file or a ShapeWorld suite)."""
    p = _existing(path, "GenEval metadata file")
    out = []
    for i, (_, row) in enumerate(_read_jsonl(p)):
        missing = [key for key in ("prompt", "tag", "include") if key not in row]
        if missing:
            raise ArscaleError(f"{p}: record {i} lacks {', '.join(map(repr, missing))}; GenEval metadata has "
                               "'prompt', 'tag' and 'include' on every line")
        out.append(SuitePrompt(i, row["prompt"], row))
    return out


def load_shapeworld(name_or_path: str | Path = "shapeworld-v1-eval") -> list[SuitePrompt]:
    from arscale.shapeworld import load_suite

    return [SuitePrompt(i, md["prompt"], md) for i, md in enumerate(load_suite(str(name_or_path)))]


def load_compbench(path: str | Path) -> list[SuitePrompt]:
    """One `<category>_val.txt`, or a directory of them (categories in sorted order)."""
    p = _existing(path, "T2I-CompBench prompt file or directory")
    files = sorted(p.glob("*_val.txt")) if p.is_dir() else [p]
    if not files:
        raise ArscaleError(f"no '*_val.txt' prompt files in {p}")
    out: list[SuitePrompt] = []
    for f in files:
        category = f.name.removesuffix("_val.txt").removesuffix(".txt")
        lines = [(n, s.strip()) for n, s in enumerate(_read_text(f).split("\n")) if s.strip()]  # 3_in_1's readlines
        for rank, (line_no, text) in enumerate(lines):
            meta = {"category": category, "line": line_no, "category_index": rank}
            out.append(SuitePrompt(len(out), text, meta))
    return out


def load_dpg(path: str | Path) -> list[SuitePrompt]:
    """DPG-Bench's prompt directory: one prompt per `.txt` file; the output keeps the file's stem."""
    p = _existing(path, "DPG-Bench prompt directory")
    files = sorted(p.glob("*.txt")) if p.is_dir() else [p]
    if not files:
        raise ArscaleError(f"no '.txt' prompt files in {p}")
    if files[0].suffix != ".txt":
        raise ArscaleError(f"{p}: DPG-Bench prompts are the .txt files of dpg_bench/prompts/ (give that folder)")
    return [SuitePrompt(i, _read_text(f).strip(), {"file": f.stem}) for i, f in enumerate(files)]


def load_tiif(path: str | Path) -> list[SuitePrompt]:
    """TIIF-Bench prompt jsonl file(s); each line gives its short and its long description."""
    p = _existing(path, "TIIF-Bench prompt file or directory")
    files = sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
    if not files:
        raise ArscaleError(f"no '.jsonl' prompt files in {p}")
    out: list[SuitePrompt] = []
    for f in files:
        for i, (line_no, row) in enumerate(_read_jsonl(f)):
            for which in ("short_description", "long_description"):
                if which not in row:
                    raise ArscaleError(f"{f}:{line_no}: lacks {which!r}")
                # the evaluator looks in <type>/<model>/<short|long>_description/ (eval_with_vlm.py)
                dimension = row.get("type") or f.stem.removesuffix("_prompts")
                meta = {"dimension": dimension, "type": row.get("type"), "description": which, "line": i}
                out.append(SuitePrompt(len(out), row[which], meta))
    return out


_LOADERS = {
    "shapeworld": load_shapeworld,
    "geneval": load_geneval,
    "compbench": load_compbench,
    "dpg": load_dpg,
    "tiif": load_tiif,
}


def draw_shapeworld(per_tag: int, seed: int) -> list[SuitePrompt]:
    """A new ShapeWorld suite: `per_tag` prompts of each tag drawn with `seed` (what `draw:PER_TAG:SEED` gives).
    The grammar is small, so short prompts (single objects, colours) recur within a draw and in other suites; what
    is new is the draw of records, and with them which prompt index (and so which seeds) each prompt runs under."""
    from arscale.shapeworld import build_suite

    return [SuitePrompt(i, md["prompt"], md) for i, md in enumerate(build_suite(per_tag, seed))]


def load_prompts(spec: str) -> tuple[str, list[SuitePrompt]]:
    """`KIND:PATH` (e.g. `geneval:/data/evaluation_metadata.jsonl`), a shipped suite name, `draw:PER_TAG:SEED`
    (fresh ShapeWorld prompts), or a path.

    A bare `.jsonl` path is read as GenEval metadata; a bare `.txt` path as one prompt per line.
    Returns (kind, prompts).
    """
    if spec.startswith("draw:"):
        try:
            _, per_tag, seed = spec.split(":")
            per_tag, seed = int(per_tag), int(seed)
        except ValueError:
            raise ArscaleError(f"draw:PER_TAG:SEED expects two integers, got {spec!r}") from None
        if per_tag < 1 or seed < 0:
            raise ArscaleError(f"draw:PER_TAG:SEED takes PER_TAG ≥ 1 prompts per tag and a SEED ≥ 0, got {spec!r}")
        return "shapeworld", draw_shapeworld(per_tag, seed)
    kind, sep, rest = spec.partition(":")
    if sep and kind in _LOADERS:
        return kind, _LOADERS[kind](rest)
    if spec.startswith("shapeworld-"):
        return "shapeworld", load_shapeworld(spec)
    p = _existing(spec, "prompt file")
    if p.suffix == ".jsonl":
        prompts = load_geneval(p)
        return ("shapeworld" if _all_shapeworld(prompts) else "geneval"), prompts
    if p.suffix == ".txt":
        lines = [s.strip() for s in _read_text(p).split("\n") if s.strip()]
        return "plain", [SuitePrompt(i, s, {}) for i, s in enumerate(lines)]
    raise ArscaleError(f"cannot tell the suite kind of {p}; write KIND:PATH with KIND in {', '.join(SUITE_KINDS)}")


def _all_shapeworld(prompts: list[SuitePrompt]) -> bool:
    from arscale.shapeworld import GrammarError, metadata_from_prompt

    try:
        for sp in prompts:
            metadata_from_prompt(sp.prompt)
    except GrammarError:
        return False
    return True
