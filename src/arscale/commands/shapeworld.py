"""`arscale shapeworld ...`: build prompt suites and write ground-truth renders in the GenEval layout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arscale.errors import ArscaleError
from arscale.folders import output_folder


def register(subparsers) -> None:
    from arscale.shapeworld.suite import PUBLIC_SUITE, PUBLIC_SUITE_PER_TAG, PUBLIC_SUITE_SEED

    p = subparsers.add_parser(
        "shapeworld",
        help="ShapeWorld prompt suites and ground-truth renders",
        description="ShapeWorld v1: the embedded GenEval-shaped test world.",
    )
    sub = p.add_subparsers(dest="shapeworld_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _no_subcommand(p))

    s = sub.add_parser(
        "suite",
        help="draw a GenEval-format prompt suite",
        description=f"Draw K prompts per tag uniformly from the grammar (the public suite {PUBLIC_SUITE} is "
        f"--per-tag {PUBLIC_SUITE_PER_TAG} --seed {PUBLIC_SUITE_SEED}).",
    )
    s.add_argument("--per-tag", type=int, default=PUBLIC_SUITE_PER_TAG, metavar="K", help="prompts per tag (default %(default)s)")
    s.add_argument("--seed", type=int, default=PUBLIC_SUITE_SEED, metavar="S",
                   help=f"suite seed (default {PUBLIC_SUITE_SEED}, the public suite's: give another for fresh prompts)")
    s.add_argument("--out", required=True, metavar="FILE", help="jsonl file to write")
    s.set_defaults(func=cmd_suite)

    r = sub.add_parser(
        "render",
        help="ground-truth renders of a suite in the GenEval layout",
        description="Render K random scenes per prompt (seeded by (seed, prompt index, sample index)) into "
        "OUT/<5-digit index>/{metadata.jsonl, samples/<5-digit>.png}.",
    )
    r.add_argument(
        "--prompts", required=True, metavar="FILE",
        help=f"jsonl suite file, the name {PUBLIC_SUITE}, or draw:PER_TAG:SEED (the prompts bench draws with it)"
    )
    r.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    r.add_argument("--per-prompt", type=int, default=4, metavar="K", help="samples per prompt (default 4)")
    r.add_argument("--seed", type=int, default=0, metavar="S", help="render seed (default 0)")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    r.set_defaults(func=cmd_render)


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def cmd_suite(args) -> int:
    from arscale.shapeworld.suite import PUBLIC_SUITE, PUBLIC_SUITE_SEED, build_suite, write_suite

    out = Path(args.out)
    if out.is_dir():
        raise ArscaleError(f"--out {out} is a folder; give a file name such as {out / 'suite.jsonl'}")
    if args.per_tag < 1 or args.seed < 0:
        raise ArscaleError(f"--per-tag must be at least 1 and --seed at least 0, got {args.per_tag} and {args.seed}")
    records = build_suite(args.per_tag, args.seed)
    try:
        write_suite(records, out)
    except OSError as exc:
        raise ArscaleError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    print(f"wrote {len(records)} prompts ({args.per_tag} per tag, seed {args.seed}) to {out}")
    if args.seed == PUBLIC_SUITE_SEED:  # tuning on these would tune on the evaluation
        print(f"note: seed {args.seed} draws the public suite's prompts ({PUBLIC_SUITE}); pass --seed with "
              "another value for fresh ones", file=sys.stderr)
    return 0


def cmd_render(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from arscale.bench.geneval_layout import write_metadata, write_sample
    from arscale.shapeworld import render, sample_scene

    if args.per_prompt < 1:
        raise ArscaleError(f"--per-prompt must be at least 1, got {args.per_prompt}")
    if args.seed < 0:
        raise ArscaleError(f"--seed must be non-negative, got {args.seed}")
    records = _suite_records(args.prompts)
    out = output_folder(args.out)
    total = len(records) * args.per_prompt
    with tqdm(total=total, desc="render", unit="img", disable=args.no_progress or None) as bar:
        for i, record in enumerate(records):
            try:
                write_metadata(out, i, record)
                for k in range(args.per_prompt):
                    scene = sample_scene(record, np.random.default_rng([args.seed, i, k]))
                    write_sample(out, i, k, render(scene))
                    bar.update(1)
            except OSError as exc:  # a file where a prompt folder goes, a read-only or full disk
                raise ArscaleError(f"cannot write {out / f'{i:05d}'}: {exc.strerror or exc}") from None
    print(f"wrote {total} images for {len(records)} prompts to {out}")
    stale = [d for d in out.iterdir() if d.is_dir() and d.name.isdigit() and int(d.name) >= len(records)]
    stale += [png for i in range(len(records)) for png in (out / f"{i:05d}" / "samples").glob("*.png")
              if png.stem.isdigit() and int(png.stem) >= args.per_prompt]
    if stale:  # an earlier render's prompts or samples: `arscale eval` would score them with these
        print(f"note: {out} also holds {len(stale)} prompt folder(s) or sample(s) of an earlier render (e.g. "
              f"{stale[0]}) that `arscale eval` would score too: render into an empty folder", file=sys.stderr)
    return 0


def _suite_records(spec: str) -> list[dict]:
    """A suite file or name, or `draw:PER_TAG:SEED` as `arscale bench --prompts` reads it (the ground truth of a
    fresh draw)."""
    if spec.startswith("draw:"):
        from arscale.bench.suites import load_prompts

        return [sp.metadata for sp in load_prompts(spec)[1]]
    from arscale.shapeworld.suite import load_suite

    return load_suite(spec)
