"""`arscale bench`: strategies × N over a prompt suite → GenEval-layout images, verdicts, summaries,
`table.md` and the score-vs-N / score-vs-compute plots (see `arscale.bench.runner`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from arscale.errors import ArscaleError


def register(sub) -> None:
    p = sub.add_parser("bench", help="compare search strategies × N on a prompt suite",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="shapeworld-var", help="generator name (default %(default)s)")
    p.add_argument("--model-weights", default=None, metavar="DIR",
                   help="load the model from this weights directory instead of the shipped one")
    p.add_argument("--strategies", default="raw,best-of-n,importance,tts-var",
                   help="comma-separated labels: a strategy name, optionally with @suffix for a variant "
                        "configured by --config (default %(default)s)")
    p.add_argument("--n", default="1,2,4,8", help="comma-separated budgets N (default %(default)s)")
    p.add_argument("--prompts", default="shapeworld-v1-eval",
                   help="suite: shapeworld-v1-eval, a GenEval-format jsonl, KIND:PATH, or draw:PER_TAG:SEED for "
                        "fresh ShapeWorld prompts not in the public suite (default %(default)s)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="default %(default)s")
    p.add_argument("--limit", type=int, default=0, help="only the first K prompts (0 = all)")
    p.add_argument("--resume", action="store_true", help="skip prompts whose outputs are complete")
    p.add_argument("--config", action="append", default=[], metavar="LABEL=JSON",
                   help="strategy config for a label, as JSON or a JSON file (repeatable)")
    p.add_argument("--scorer", default="shapeworld-reward", help="reward scorer (default %(default)s)")
    p.add_argument("--batch-prompts", type=int, default=8, help="prompts per batched search (default %(default)s)")
    p.add_argument("--device", default="cpu", help="default %(default)s")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default %(default)s)")
    p.set_defaults(func=run)


def load_suite_prompts(spec: str):
    from arscale.bench.suites import SuitePrompt, load_prompts

    if spec.startswith("draw:"):
        from arscale.shapeworld import build_suite

        try:
            _, per_tag, seed = spec.split(":")
            records = build_suite(int(per_tag), int(seed))
        except ValueError:
            raise ArscaleError(f"--prompts draw:PER_TAG:SEED expects two integers, got {spec!r}") from None
        return "shapeworld", [SuitePrompt(i, md["prompt"], md) for i, md in enumerate(records)]
    return load_prompts(spec)


def run(args: argparse.Namespace) -> int:
    import torch

    from arscale.bench.plots import plot_all
    from arscale.bench.runner import Bench, collect_summaries, parse_ns, parse_runs
    from arscale.bench.table import format_table
    from arscale.generators.registry import load_generator
    from arscale.search.rollout import cached_scorer

    torch.set_num_threads(max(1, args.threads))
    specs = parse_runs(args.strategies, args.config)
    ns = parse_ns(args.n)
    kind, prompts = load_suite_prompts(args.prompts)
    if args.limit < 0:
        raise ArscaleError(f"--limit must be ≥ 0, got {args.limit}")
    if args.limit:
        prompts = prompts[: args.limit]
    if not prompts:
        raise ArscaleError("the prompt suite is empty")
    options = {"device": args.device}
    if args.model_weights:
        options["weights"] = args.model_weights
    generator = load_generator(args.model, **options)
    reward = cached_scorer(args.scorer, args.device) if args.scorer else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        Bench(generator, reward, kind=kind, seed=args.seed, batch_prompts=args.batch_prompts).run(
            specs, ns, prompts, out, resume=args.resume)
    summaries = collect_summaries(out)
    table = format_table(summaries)
    (out / "table.md").write_text(table)
    plot_all(summaries, out)
    print(table)
    print(f"wrote {out / 'table.md'}, score_vs_n.png, score_vs_compute.png")
    return 0
