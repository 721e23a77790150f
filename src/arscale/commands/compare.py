"""`arscale compare`: paired differences between `arscale bench` runs on the prompts both finished.

    arscale compare OUT                       every run of OUT against its raw-sampling run
    arscale compare OUT --baseline best-of-n  ... against another label
    arscale compare OLD NEW                   each (strategy, N) present in both: NEW − OLD
    arscale compare OUT OUT --match scaling-ar scaling-ar@p30   two labels (two variants, one folder)
    arscale compare OUT --plot compare.png    ... and a picture: each tag's difference with its ±1.96 SE bar

Same suite and seed: a prompt draws the same candidates under every strategy, so the SE of a paired
difference is far smaller than either run's own. The difference is taken per tag and averaged over tags,
like the `overall` column (see `arscale.bench.paired`). Two benches of another model, weights, seed or
strategy config compare too: a note on stderr names each difference (with another seed or model the
candidates are no longer shared, and the paired SE grows to about that of two independent runs)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from arscale.errors import ArscaleError


def register(sub) -> None:
    p = sub.add_parser("compare", help="paired differences between bench runs on the same prompts",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", metavar="A", help="an `arscale bench --out` folder")
    p.add_argument("b", metavar="B", nargs="?", default=None,
                   help="a second one (B − A per strategy and N); without it, every run of A against --baseline")
    p.add_argument("--baseline", default=None, metavar="LABEL",
                   help="with A alone: the label every other run is compared with (default raw)")
    p.add_argument("--match", nargs=2, metavar=("LABEL_A", "LABEL_B"), default=None,
                   help="compare label LABEL_A of A with LABEL_B of B (B defaults to A)")
    p.add_argument("--names", nargs=2, metavar=("NAME_A", "NAME_B"), default=None,
                   help="column names for A and B (default A B; with A alone, the baseline and 'run')")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the rows here (no reward: null)")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="also draw the differences per tag and overall, with ±1.96 paired SE bars (e.g. compare.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from arscale.bench.paired import compare_folders, format_comparison, run_differences

    for folder in (args.a, args.b):
        if folder is not None and not Path(folder).is_dir():
            raise ArscaleError(f"{folder} is not a folder (expected an `arscale bench --out` folder)")
    within = args.b is None and args.match is None
    if args.baseline is not None and not within:
        raise ArscaleError("--baseline compares the runs of one folder; with two folders or --match, name the "
                           "labels with --match LABEL_A LABEL_B")
    baseline = args.baseline or "raw"
    skipped: list[Path] = []
    rows = compare_folders(args.a, args.b, match=tuple(args.match) if args.match else None, baseline=baseline,
                           skipped=skipped)
    if skipped:  # a damaged record would otherwise just shrink the prompt count
        print(f"note: {len(skipped)} record(s) could not be read and are left out, e.g. {skipped[0]}",
              file=sys.stderr)
    names = tuple(args.names) if args.names else ((baseline, "run") if within else ("A", "B"))
    if args.b is not None:
        print(f"{names[0]} = {args.a}, {names[1]} = {args.b}", file=sys.stderr)
        for diff in run_differences(args.a, args.b):  # comparable, but not the same candidates: say so
            print(f"note: the two benches differ in {diff}", file=sys.stderr)
    print(format_comparison(rows, *names), end="")
    if args.plot:
        from arscale.bench.paired_plot import plot_comparison

        written = plot_comparison(rows, args.plot, *names)
        print(f"wrote {written}" if written else "note: no prompt judged in both runs: no plot", file=sys.stderr)
    if args.json:
        plain = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]
        try:
            Path(args.json).write_text(json.dumps(plain, indent=2) + "\n")
        except OSError as exc:
            raise ArscaleError(f"cannot write --json {args.json}: {exc.strerror or exc}") from None
    return 0
