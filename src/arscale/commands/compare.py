"""`arscale compare`: paired differences between `arscale bench` runs on the prompts both finished.

    arscale compare OUT                       every run of OUT against its raw-sampling run
    arscale compare OUT --baseline best-of-n  ... against another label
    arscale compare OLD NEW                   each (strategy, N) present in both: NEW − OLD
    arscale compare OUT --match scaling-ar scaling-ar@p30       two labels (two variants, one folder)
    arscale compare OUT --plot compare.png    ... and a picture: each tag's difference with its ±1.96 SE bar
    arscale compare D1 D2 D3 --pooled         benches of independent prompt draws: each against raw, and pooled

Same suite and seed: a prompt draws the same candidates under every strategy, so the SE of a paired
difference is far smaller than either run's own. The difference is taken per tag and averaged over tags,
like the `overall` column (see `arscale.bench.paired`). Two benches of another model, weights, seed or
strategy config compare too: a note on stderr names each difference (with another seed or model the
candidates are no longer shared, and the paired SE grows to about that of two independent runs).

A gain of a few points needs more prompts than one draw holds: bench several draws (`--prompts
draw:40:SEED`, a new SEED each) and pool them with `--pooled`, which weights each draw by its prompts and
gives the gain relative to the baseline too (see `arscale.bench.pooled`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arscale.errors import ArscaleError


def register(sub) -> None:
    p = sub.add_parser("compare", help="paired differences between bench runs on the same prompts",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", metavar="A", help="an `arscale bench --out` folder")
    p.add_argument("b", metavar="B", nargs="?", default=None,
                   help="a second one (B − A per strategy and N); without it, every run of A against --baseline")
    p.add_argument("more", metavar="C", nargs="*", default=[], help="with --pooled: further draws")
    p.add_argument("--pooled", action="store_true",
                   help="the folders are benches of independent prompt draws: every run of each against "
                        "--baseline, then each difference pooled over the draws")
    p.add_argument("--baseline", default=None, metavar="LABEL",
                   help="with A alone (or --pooled): the label every other run is compared with (default raw)")
    p.add_argument("--match", nargs=2, metavar=("LABEL_A", "LABEL_B"), default=None,
                   help="compare label LABEL_A of A with LABEL_B of B (B defaults to A)")
    p.add_argument("--names", nargs=2, metavar=("NAME_A", "NAME_B"), default=None,
                   help="column names for A and B (default: the folders' names, or with A alone the two --match "
                        "labels; with A alone or --pooled, the baseline and 'run')")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the rows here (no reward: null)")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="also draw the differences per tag and overall (--pooled: per draw and pooled), with ±1.96 "
                        "paired SE bars (e.g. compare.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from arscale.bench.paired import compare_folders, format_comparison, run_differences

    for folder in (args.a, args.b, *args.more):
        if folder is not None and not folder.strip():  # an unset shell variable: not the working folder
            raise ArscaleError("a folder argument is empty: name an `arscale bench --out` folder (\".\" for this one)")
        if folder is not None and not Path(folder).is_dir():
            raise ArscaleError(f"{folder} is not a folder (expected an `arscale bench --out` folder)")
    _check_outputs(args)
    if args.pooled:
        return _run_pooled(args)
    if args.more:
        raise ArscaleError(f"{len(args.more) + 2} folders: compare takes one or two, or any number of independent "
                           "draws with --pooled")
    within = args.b is None and args.match is None
    if args.baseline is not None and not within:
        raise ArscaleError("--baseline compares the runs of one folder; with two folders or --match, name the "
                           "labels with --match LABEL_A LABEL_B")
    baseline = args.baseline or "raw"
    skipped: list[Path] = []
    rows = compare_folders(args.a, args.b, match=tuple(args.match) if args.match else None, baseline=baseline,
                           skipped=skipped)
    _note_skipped(skipped)
    names = tuple(args.names) if args.names else ((baseline, "run") if within else _names(args))
    if args.b is not None:
        print(f"{names[0]} = {args.a}, {names[1]} = {args.b}", file=sys.stderr)
        if Path(args.a).resolve() == Path(args.b).resolve() and args.match is None:
            print("note: a folder against itself differs in nothing; --match LABEL_A LABEL_B compares two of its runs",
                  file=sys.stderr)
        for diff in run_differences(args.a, args.b):  # comparable, but not the same candidates: say so
            print(f"note: the two benches differ in {diff}", file=sys.stderr)
    print(format_comparison(rows, *names), end="")
    if args.plot:
        from arscale.bench.paired_plot import plot_comparison

        folders = [args.a] if args.b is None else [args.a, args.b]
        written = plot_comparison(rows, args.plot, *names, context=_context(folders))
        print(f"wrote {written}" if written else "note: no prompt judged in both runs: no plot", file=sys.stderr)
    if args.json:
        _write_json(args.json, rows)
    return 0


def _run_pooled(args: argparse.Namespace) -> int:
    from arscale.bench.paired import folder_manifest, run_differences
    from arscale.bench.pooled import draw_names, format_pooled, pool_draws, same_prompts

    if args.match is not None:
        raise ArscaleError("--pooled compares the runs of each draw with --baseline; --match is for two folders")
    folders = [f for f in (args.a, args.b, *args.more) if f is not None]
    baseline = args.baseline or "raw"
    skipped: list[Path] = []
    per_draw, pooled = pool_draws(folders, baseline, skipped)
    _note_skipped(skipped)
    names = draw_names(folders)
    described = [i for i, folder in enumerate(folders) if folder_manifest(folder) is not None]
    if not described:
        print("note: no draw has a manifest, so nothing says they are benches of one setup", file=sys.stderr)
    for i in sorted(set(range(len(folders))) - set(described)) if described else []:
        print(f"note: draw {names[i]} has no manifest, so nothing says it is a bench of the same setup",
              file=sys.stderr)
    for i in described[1:]:  # pooled draws should differ in their prompts only
        first = described[0]
        diffs = run_differences(folders[first], folders[i])
        # another seed, device type or thread count draws other candidates (or rounds them otherwise), another
        # arscale counted cost otherwise: none moves accuracy
        unlike = [d for d in diffs if not d.startswith(("seed:", "cost_accounting:", "device:", "threads:"))]
        if unlike:
            raise ArscaleError(f"draw {names[i]} is not a bench of the same setup as {names[first]} "
                               f"({'; '.join(unlike)}): pooling averages one setup over new prompts")
        for diff in diffs:
            print(f"note: draw {names[i]} differs from {names[first]} in {diff.split(' (')[0]}", file=sys.stderr)
    for a, b in same_prompts(folders):
        print(f"note: draws {a} and {b} hold the same prompts, so they are not independent and the pooled SE is "
              "too small", file=sys.stderr)
    for row in pooled:
        if 0 < row["draws"] < len(folders):
            print(f"note: {row['label']} N={row['n']} was compared in {row['draws']} of the {len(folders)} draws: "
                  "pooled over those alone", file=sys.stderr)
    columns = tuple(args.names) if args.names else (baseline, "run")
    print(format_pooled(per_draw, pooled, *columns), end="")
    if args.plot:
        from arscale.bench.paired_plot import plot_comparison

        overall = "pooled" if "pooled" not in names else "all draws pooled"  # not a draw's folder name
        written = plot_comparison(pooled, args.plot, *columns, overall=overall, order=names,
                                  context=_context(folders, pooled=True))
        print(f"wrote {written}" if written else "note: no prompt judged in both runs: no plot", file=sys.stderr)
    if args.json:  # a pooled row's "tags" are its draws (what the plot reads as rows): named so here
        rows = [{("per_draw" if k == "tags" else k): v for k, v in r.items()} for r in pooled]
        _write_json(args.json, {"draws": per_draw, "pooled": rows})
    return 0


def _names(args: argparse.Namespace) -> tuple[str, str]:
    """What A and B are called where --names is not given: the two labels --match compares in one folder; the
    folders' names (with the labels where those differ too); A and B where neither tells them apart."""
    folders = (Path(args.a).resolve().name, Path(args.b or args.a).resolve().name)
    labels = tuple(args.match) if args.match else ("", "")
    if args.b is None or folders[0] == folders[1]:
        return labels if labels[0] != labels[1] else ("A", "B")
    if labels[0] != labels[1]:
        return f"{folders[0]} {labels[0]}", f"{folders[1]} {labels[1]}"
    return folders


def _context(folders: list, pooled: bool = False) -> str:
    """What the compared benches ran, for the plot's title: model, prompts and seed (each "X vs Y" where the
    folders differ), from their manifests; empty without any."""
    from arscale.bench.paired import folder_manifest

    manifests = [m for m in (folder_manifest(f) for f in folders) if m]
    if not manifests:
        return ""

    def values(get) -> list[str]:
        return list(dict.fromkeys(str(get(m)) for m in manifests if get(m) is not None))

    models = values(lambda m: (m.get("model") or {}).get("id"))
    suites = values(lambda m: (m.get("suite") or {}).get("spec"))
    seeds = values(lambda m: m.get("seed"))
    parts = [" vs ".join(models),
             f"{len(suites)} draws" if pooled and len(suites) > 1 else " vs ".join(suites),
             f"seed{'s' if pooled and len(seeds) > 1 else ''} {(', ' if pooled else ' vs ').join(seeds)}" if seeds
             else ""]
    return " · ".join(p for p in parts if p)


def _check_outputs(args: argparse.Namespace) -> None:
    """--json and --plot fail before any work, not after the table."""
    if args.json and (Path(args.json).is_dir() or not Path(args.json).resolve().parent.is_dir()):
        raise ArscaleError(f"cannot write --json {args.json}: "
                           + ("it is a folder" if Path(args.json).is_dir() else "its folder does not exist"))
    if args.plot and Path(args.plot).is_dir():  # matplotlib would write PLOT.png beside the folder
        raise ArscaleError(f"cannot write --plot {args.plot}: it is a folder")
    if args.plot:
        from matplotlib.backend_bases import FigureCanvasBase

        kinds = FigureCanvasBase.get_supported_filetypes()
        suffix = Path(args.plot).suffix.lstrip(".").lower()
        if suffix and suffix not in kinds:  # no suffix: matplotlib's default, PNG
            raise ArscaleError(f"--plot {args.plot}: name a picture file ({', '.join('.' + k for k in sorted(kinds))})")


def _note_skipped(skipped: list[Path]) -> None:
    if skipped:  # a damaged record would otherwise just shrink the prompt count
        print(f"note: {len(skipped)} record(s) could not be read and are left out, e.g. {skipped[0]}",
              file=sys.stderr)


def _write_json(path: str, data) -> None:
    """Strict JSON: NaN (no reward, fewer than two draws) as null."""
    from arscale.bench.geneval_layout import strict_json

    try:
        Path(path).write_text(strict_json(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ArscaleError(f"cannot write --json {path}: {exc.strerror or exc}") from None
