"""`arscale eval ...`: score image folders. `arscale eval shapeworld DIR` runs the exact ShapeWorld
evaluator over a GenEval layout and writes GenEval-style ``results.jsonl`` and ``summary.json``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from arscale.errors import ArscaleError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate generated images", description="Evaluate generated images."
    )
    sub = p.add_subparsers(dest="eval_command", metavar="BENCHMARK")
    p.set_defaults(func=lambda args: _no_subcommand(p))

    s = sub.add_parser(
        "shapeworld",
        help="exact ShapeWorld evaluation of a GenEval-layout folder",
        description="Evaluate DIR/<index>/samples/*.png against DIR/<index>/metadata.jsonl with the exact "
        "ShapeWorld evaluator; print a per-tag table and write DIR/results.jsonl and DIR/summary.json.",
    )
    s.add_argument("dir", metavar="DIR", help="GenEval layout folder")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    s.set_defaults(func=cmd_eval_shapeworld)


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def evaluate_folder(root, progress: bool = True) -> list[dict]:
    """Result rows for every sample of a GenEval-layout folder (ShapeWorld evaluator)."""
    import os

    from tqdm import tqdm

    from arscale.bench.geneval_layout import read_image, read_prompts, result_row
    from arscale.shapeworld.evaluate import details, evaluate

    folders = read_prompts(root)
    total = sum(len(f.samples) for f in folders)
    if total == 0:
        raise ArscaleError(f"no samples found under {root} (expected {root}/<index>/samples/<n>.png)")
    from arscale.shapeworld.grammar import IMAGE_SIZE

    rows, other_sizes = [], []
    with tqdm(total=total, desc="eval", unit="img", disable=(not progress) or None) as bar:
        for f in folders:
            for path in f.samples:
                image = read_image(path)
                if image.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
                    other_sizes.append((path, image.shape[1], image.shape[0]))
                try:
                    verdict = evaluate(image, f.metadata)
                except ArscaleError as exc:
                    raise ArscaleError(f"{f.path / 'metadata.jsonl'}: {exc}") from None
                # The filename as GenEval builds it: join(imagedir, subfolder, "samples", name).
                filename = os.path.join(str(root), f.path.name, "samples", path.name)
                rows.append(
                    result_row(
                        filename, f.metadata, verdict.correct, verdict.reason, details(verdict.detections)
                    )
                )
                bar.update(1)
    if other_sizes:  # judged all the same, but a ShapeWorld model draws 64 x 64: say what was not
        path, w, h = other_sizes[0]
        print(f"note: {len(other_sizes)} of {total} images are not {IMAGE_SIZE}x{IMAGE_SIZE} (e.g. {path}, {w}x{h}); "
              "the evaluator judged them at their own size", file=sys.stderr)
    return rows


def cmd_eval_shapeworld(args) -> int:
    from arscale.bench.geneval_layout import (
        RESULTS_FILE,
        SUMMARY_FILE,
        compute_summary,
        format_summary,
        write_results,
        write_summary,
    )

    if not args.dir.strip():  # an unset shell variable: not the working folder
        raise ArscaleError("DIR is empty: name a GenEval layout folder (\".\" for this one)")
    root = Path(args.dir)
    rows = evaluate_folder(args.dir, progress=not args.no_progress)
    summary = compute_summary(rows)
    try:
        write_results(root / RESULTS_FILE, rows)
    except OSError as exc:  # a read-only folder, a folder in the way
        raise ArscaleError(f"cannot write {root / RESULTS_FILE}: {exc.strerror or exc}") from None
    try:  # an `arscale bench` folder keeps its run fields (label, cost, config, ...): only the verdicts are new
        earlier = json.loads((root / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8 at all
        earlier = None
    if isinstance(earlier, dict):  # the bench's standard errors go with the fresh verdicts
        from arscale.bench.metrics import binomial_se, standard_error_of_overall

        summary = {**earlier, **summary, "overall_se": standard_error_of_overall(summary["tags"])}
        for tag in summary["tags"].values():
            tag["se"] = binomial_se(tag["accuracy"], tag["total"])
    try:
        write_summary(root / SUMMARY_FILE, summary)
    except OSError as exc:
        raise ArscaleError(f"cannot write {root / SUMMARY_FILE}: {exc.strerror or exc}") from None
    print(format_summary(summary))
    print(f"wrote {root / RESULTS_FILE} and {root / SUMMARY_FILE}")
    return 0
