"""`arscale bench merge`: combine shard folders into one run folder with recomputed summaries.

Every finished prompt (its record.json present) is copied into OUT with atomic writes, record last, so
an interrupted merge is simply run again. Summaries, table and plots are recomputed from the records,
never copied. Shards whose manifests disagree on their identity (model, weights, strategy configs,
scorer, seed, suite, batch_prompts, layout; `manifest.differences`) are refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from arscale.atomic_files import atomic_write_bytes, atomic_write_text
from arscale.bench import geneval_layout as layout
from arscale.bench import manifest as mf
from arscale.bench.runner import OFFICIAL_LAYOUTS, RECORD_FILE, RunSpec, collect_summaries, summarize_run
from arscale.bench.suites import SuitePrompt
from arscale.errors import ArscaleError
from arscale.folders import output_folder


def manifests_in(folder: Path) -> list[tuple[Path, dict]]:
    paths = sorted(folder.glob(mf.MANIFEST_FILE)) + sorted(folder.glob(mf.SHARD_MANIFEST_GLOB))
    return [(p, mf.read_manifest(p)) for p in paths]


def _write_if_changed(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not (target.is_file() and target.read_bytes() == data):
        atomic_write_bytes(target, data)


def _copy_prompt(src: Path, dst: Path, record: bytes) -> None:
    """Copy one finished prompt folder; the record goes last, as the bytes `read_record` checked (a record
    rewritten meanwhile is not copied unchecked), so a half-copied prompt never counts."""
    files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != RECORD_FILE)
    for path in files:
        _write_if_changed(dst / path.relative_to(src), path.read_bytes())
    _write_if_changed(dst / RECORD_FILE, record)


def _copy_tree(src: Path, dst: Path) -> None:
    """An official-layout folder (flat or nested images; shards write disjoint file names)."""
    for path in sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith(".")):
        check_whole(path)
        _write_if_changed(dst / path.relative_to(src), path.read_bytes())


def _run_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*/n*") if p.is_dir() and p.name[1:].isdigit())


def merge(inputs: Sequence[str | Path], out: str | Path) -> list[dict]:
    if not str(out).strip():  # Path("") is the working folder: refused as `bench --out ''` is
        raise ArscaleError("--out is empty: name a folder (\".\" for this one)")
    if any(not str(folder).strip() for folder in inputs):  # an unset shell variable: not the working folder
        raise ArscaleError("a merge input is empty: name a shard folder (\".\" for this one)")
    out = Path(out)
    found: list[tuple[Path, dict]] = []
    for folder in map(Path, inputs):
        if not folder.is_dir():
            raise ArscaleError(f"merge input {folder} is not a directory")
        here = manifests_in(folder)
        if not here:
            raise ArscaleError(f"merge input {folder} has no manifest.json (was it written by `arscale bench`?)")
        found += here
    if (out / mf.MANIFEST_FILE).is_file():
        found.append((out / mf.MANIFEST_FILE, mf.read_manifest(out / mf.MANIFEST_FILE)))
    reference_path, reference = found[0]
    merged = dict(reference)
    for path, other in found[1:]:
        # against what the shards before it gathered: a scorer file one of them lacks is no difference, so
        # pairwise checks with the first alone would miss two later shards that disagree
        diffs = mf.differences(merged, other)
        if diffs:
            raise ArscaleError(f"cannot merge {path} with {reference_path} (and the inputs before it): they come "
                               f"from different runs ({'; '.join(diffs)})")
        merged = mf.combine(merged, other)
    output_folder(out)
    for folder in map(Path, inputs):
        if folder.resolve() == out.resolve():
            continue  # already in place: only its summaries are recomputed
        for run in _run_folders(folder):
            target = out / run.relative_to(folder)
            for prompt in sorted(run.iterdir()):
                if prompt.is_dir() and prompt.name.isdigit() and (prompt / RECORD_FILE).is_file():
                    record = _read(prompt / RECORD_FILE)
                    read_record(prompt, record)  # a damaged file is named at its source, before anything is copied
                    read_json(prompt / layout.METADATA_FILE)
                    check_whole(layout.sample_path(run, int(prompt.name), 0))
                    _copy_prompt(prompt, target / prompt.name, record)
                elif prompt.is_dir() and prompt.name in OFFICIAL_LAYOUTS:
                    _copy_tree(prompt, target / prompt.name)
    merged["shard"] = {"merged_from": sorted({str(p) for p, _ in found if p.parent.resolve() != out.resolve()}
                                             | set(merged.get("shard", {}).get("merged_from", [])))}
    merged["timings"] = mf.shard_timings(found)
    summaries = summarize_folder(out, merged)
    mf.write_manifest(out / mf.MANIFEST_FILE, merged)
    return summaries


def _unreadable(path: Path, exc: Exception) -> ArscaleError:
    return ArscaleError(f"{path}: unreadable ({exc}); `arscale bench --resume` into the folder it came from reruns "
                        "that prompt, then merge again")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None


def read_json(path: Path, data: bytes | None = None) -> dict:
    """A finished prompt's record or metadata (its bytes `data` where they were read already); one that is
    missing, cut short or empty is refused, naming it."""
    try:
        value = json.loads(_read(path) if data is None else data)
    except ValueError as exc:
        raise _unreadable(path, exc) from None
    if not isinstance(value, dict):
        raise ArscaleError(f"{path}: not a JSON object")
    return value


def check_whole(path: Path) -> None:
    """An image a crash left empty or cut short is refused, naming it (`layout.is_whole`), as a record is."""
    if path.suffix == ".png" and path.is_file() and not layout.is_whole(path):
        raise ArscaleError(f"{path}: empty or cut short; `arscale bench --resume` into the folder it came "
                           "from reruns that prompt, then merge again")


def read_record(folder: Path, data: bytes | None = None) -> dict:
    """A finished prompt folder's record (`read_json`), refused unless it is that prompt's: its index the folder's,
    a prompt and a cost record (what the summaries read)."""
    record = read_json(folder / RECORD_FILE, data)
    index = record.get("index")
    if (isinstance(index, bool) or index != int(folder.name) or not isinstance(record.get("prompt"), str)
            or not isinstance(record.get("cost"), dict)):
        raise ArscaleError(f"{folder / RECORD_FILE}: not the record of prompt {int(folder.name)} (index {index!r}, "
                           "with a 'prompt' and a 'cost'): remove that prompt's folder, `arscale bench --resume` "
                           "into the folder it came from reruns it, then merge again")
    return record


def prompts_of_run(root: Path) -> list[SuitePrompt]:
    prompts = []
    for prompt in sorted(root.iterdir()):
        if prompt.is_dir() and prompt.name.isdigit() and (prompt / RECORD_FILE).is_file():
            record, metadata = read_record(prompt), read_json(prompt / layout.METADATA_FILE)
            prompts.append(SuitePrompt(int(prompt.name), record["prompt"], metadata))
    return prompts


def summarize_folder(out: Path, manifest: dict) -> list[dict]:
    """Recompute every (label, N) summary under `out` from its records, using the manifest's configs."""
    strategies = manifest.get("strategies", {})
    total = manifest.get("suite", {}).get("size")
    summaries = []
    for root in _run_folders(out):
        label, n = root.parent.name, int(root.name[1:])
        if label not in strategies:
            raise ArscaleError(f"{root} holds label {label!r}, which no manifest describes")
        spec = RunSpec(label, strategies[label]["strategy"], strategies[label]["config"])
        prompts = prompts_of_run(root)
        # as `bench` counts: the suite's first `size` prompts, and those an earlier, longer --limit finished
        extra = 0 if total is None else sum(sp.index >= total for sp in prompts)
        summaries.append(summarize_run(spec, n, root, prompts, seed=manifest["seed"], model=manifest["model"]["id"],
                                       prompts_total=None if total is None else total + extra))
    return summaries


def write_reports(out: Path) -> tuple[str, list[Path]]:
    """table.md (with each run's paired difference from raw sampling) and the plots, over every run in `out`:
    the table's text and the plots written (none where no run has an accuracy, e.g. a DPG suite)."""
    from arscale.bench.paired import against_baseline, load_records
    from arscale.bench.plots import PLOT_FILES, plot_all
    from arscale.bench.table import format_table

    summaries = collect_summaries(out)
    table = format_table(summaries, against_baseline(load_records(out)))
    atomic_write_text(out / "table.md", table)
    plots = plot_all(summaries, out)
    for stale in {out / name for name in PLOT_FILES} - set(plots):  # an earlier bench's, no longer this table's
        stale.unlink(missing_ok=True)
    return table, plots


def written_line(out: Path, plots: list[Path]) -> str:
    """What `write_reports` wrote, in words."""
    if plots:
        return f"wrote {out / 'table.md'}, {', '.join(p.name for p in plots)}"
    return f"wrote {out / 'table.md'} (no plots: no run has an accuracy; this suite is judged by its official evaluator)"
