"""Prompt suites: building, writing and loading GenEval-format jsonl files.

The public suite `PUBLIC_SUITE` (``shapeworld-v1-eval``) is ``build_suite(per_tag=100,
seed=PUBLIC_SUITE_SEED)``, shipped as ``data/shapeworld-v1-eval.jsonl``: 600 records, 100 per tag in
`TAGS` order. Each tag draws from its own generator ``np.random.default_rng([seed, tag_index])``, so a
suite with fewer prompts per tag is a per-tag prefix of a larger one with the same seed. Prompts are
drawn uniformly from each tag's grammar *with* repetition (``single_object`` has only 4 distinct
prompts), so unlike GenEval's builder there is no de-duplication.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from arscale.atomic_files import atomic_write_text
from arscale.errors import ArscaleError
from arscale.shapeworld.grammar import (
    TAGS,
    GrammarError,
    _comparable,
    metadata_from_prompt,
    prompt_from_metadata,
    random_metadata,
)

PUBLIC_SUITE = "shapeworld-v1-eval"
PUBLIC_SUITE_SEED = 20261122
PUBLIC_SUITE_PER_TAG = 100


def build_suite(per_tag: int, seed: int) -> list[dict]:
    """``per_tag`` records for each tag in `TAGS` order, drawn uniformly from the grammar (seeded)."""
    if not isinstance(per_tag, int) or per_tag < 1:
        raise ArscaleError(f"per_tag must be a positive integer, got {per_tag!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ArscaleError(f"seed must be a non-negative integer, got {seed!r}")
    records = []
    for ti, tag in enumerate(TAGS):
        rng = np.random.default_rng([seed, ti])
        records.extend(random_metadata(rng, tag) for _ in range(per_tag))
    return records


def dumps_record(record: dict) -> str:
    """One jsonl line in GenEval's key order (tag, include, exclude, prompt)."""
    ordered = {k: record[k] for k in ("tag", "include", "exclude", "prompt") if k in record}
    ordered.update({k: v for k, v in record.items() if k not in ordered})
    return json.dumps(ordered)


def write_suite(records: list[dict], path: str | os.PathLike) -> None:
    """Write records as GenEval-format jsonl (atomically)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise ArscaleError(f"cannot write {path}: folder {path.parent} does not exist")
    atomic_write_text(path, "".join(dumps_record(r) + "\n" for r in records))


def _parse_lines(lines, source: str) -> list[dict]:
    records = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ArscaleError(f"{source}, line {n}: not valid JSON ({exc.msg})") from None
        if not isinstance(rec, dict) or "prompt" not in rec:
            raise ArscaleError(f"{source}, line {n}: expected a GenEval metadata object with a 'prompt'")
        try:
            parsed = metadata_from_prompt(rec["prompt"])  # names the offending word of a bad prompt
            prompt_from_metadata(rec)  # names what is wrong with the metadata
            if _comparable(parsed) != _comparable(rec):
                exp = {k: v for k, v in parsed.items() if k != "prompt"}
                raise GrammarError(f"metadata does not match its prompt {rec['prompt']!r}: expected {exp}")
        except GrammarError as exc:
            raise ArscaleError(f"{source}, line {n}: {exc}") from None
        records.append(rec)
    if not records:
        raise ArscaleError(f"{source}: no prompts found (expected GenEval-format jsonl, one record per line)")
    return records


def load_suite(path_or_name: str | os.PathLike) -> list[dict]:
    """Load a suite: the name ``shapeworld-v1-eval`` (the shipped public suite) or a jsonl path.

    Every record is checked against the grammar; errors name the file and line.
    """
    if str(path_or_name) == PUBLIC_SUITE:
        text = (
            resources.files("arscale.shapeworld").joinpath("data", f"{PUBLIC_SUITE}.jsonl").read_text("utf-8")
        )
        return _parse_lines(text.splitlines(), PUBLIC_SUITE)
    path = Path(path_or_name)
    if not path.is_file():
        what = "is a folder, not a prompt file" if path.is_dir() else "not found"
        raise ArscaleError(f"prompt file {path} {what} (give a jsonl path or the name {PUBLIC_SUITE!r})")
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArscaleError(f"cannot read prompt file {path}: {exc}") from None
    return _parse_lines(text.splitlines(), str(path))
