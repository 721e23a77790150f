"""`arscale bench`: strategies × N over a prompt suite → GenEval-layout images, verdicts, summaries,
`table.md` and the score-vs-N / score-vs-compute plots (see `arscale.bench.runner`).

Large runs: `--num-shards N --shard-index i` runs every N-th block of --batch-prompts prompts (job arrays);
under torchrun / accelerate launch each rank takes its own slice automatically. Shards write
per-prompt outputs and a manifest; `arscale bench merge DIR [DIR...] --out OUT` combines them and
recomputes summaries, table and plots. Every run folder carries manifest.json (versions, model and
weights hash, configs, seeds, hardware, timings); resuming with different settings is refused."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arscale.commands.precision import add_precision_arguments, precision_options
from arscale.devices import check_threads, pick_device
from arscale.errors import ArscaleError
from arscale.folders import output_folder
from arscale.generators.class_names import use_class_names
from arscale.generators.registry import model_kind

DEFAULT_STRATEGIES = {"scale": "raw,best-of-n,importance,tts-var", "token": "raw,best-of-n,importance,scaling-ar"}


def register(sub) -> None:
    p = sub.add_parser("bench", help="compare search strategies × N on a prompt suite",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="*", metavar="merge DIR",
                   help="`merge DIR [DIR...]`: combine shard folders into --out (no other options needed)")
    p.add_argument("--model", default="shapeworld-var", help="generator name (default %(default)s)")
    p.add_argument("--model-weights", default=None, metavar="WEIGHTS",
                   help="model weights (a file, a folder or a hub id) instead of the shipped or default ones, as "
                        "generate's --weights")
    p.add_argument("--strategies", default=None,
                   help="comma-separated labels: a strategy name, optionally with @suffix for a variant "
                        f"configured by --config (default {DEFAULT_STRATEGIES['scale']} for a next-scale model, "
                        f"{DEFAULT_STRATEGIES['token']} for a next-token one)")
    p.add_argument("--n", default="1,2,4,8", help="comma-separated budgets N (default %(default)s)")
    p.add_argument("--cfg", type=float, default=None,
                   help="guidance scale of the model (default: its own; see `arscale generate --help`); part of the "
                        "run's identity, so naming the model's default starts another run than leaving it out")
    add_precision_arguments(p)  # the run's identity as --cfg, but float32 named is the same run as left out
    p.add_argument("--prompts", default="shapeworld-v1-eval",
                   help="suite: shapeworld-v1-eval, a GenEval-format jsonl, KIND:PATH, or draw:PER_TAG:SEED for "
                        "a new ShapeWorld suite drawn with SEED (the grammar is small: short prompts such as "
                        "single objects recur across draws and the public suite, and within a draw) "
                        "(default %(default)s)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="default %(default)s")
    p.add_argument("--limit", type=int, default=0, help="only the first K prompts (0 = all)")
    p.add_argument("--resume", action="store_true", help="skip prompts whose outputs are complete")
    p.add_argument("--config", action="append", default=[], metavar="LABEL=JSON",
                   help="strategy config for a label, as JSON or a JSON file (repeatable)")
    p.add_argument("--scorer", default=None,
                   help="reward scorer: for search and for the table's reward column (default: shapeworld-reward for "
                        "the ShapeWorld models; name one for any other model, or '' for none)")
    p.add_argument("--class-names", default=None, metavar="FILE",
                   help="class-conditional models (var-d*, llamagen-c2i-*): one class name per line, in index order, "
                        "for a scorer that reads text")
    p.add_argument("--scorer-weights", default=None, metavar="DIR",
                   help="load the ShapeWorld reward and features (one model) from this folder instead of the "
                        "shipped one, e.g. a reward trained by `arscale train shapeworld-reward --out DIR`")
    p.add_argument("--batch-prompts", type=int, default=8, help="prompts per batched search (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default %(default)s)")
    p.add_argument("--num-shards", type=int, default=1, help="split the suite into this many shards (job arrays)")
    p.add_argument("--shard-index", type=int, default=0, help="which shard this invocation runs (0-based)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--layout", default="geneval", choices=("geneval", "compbench", "dpg", "tiif"),
                   help="official evaluator layout written under <label>/n<N>/<layout>/ besides the GenEval "
                        "folders (compbench: 10 and dpg: 4 independent searches per prompt, dpg as a 2x2 grid; "
                        "default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action:
        if args.action == ["merge"]:
            raise ArscaleError("`arscale bench merge` needs at least one shard folder: merge DIR [DIR...] --out OUT")
        if args.action[0] != "merge":
            raise ArscaleError(f"unexpected arguments {' '.join(args.action)!r}; did you mean "
                               "`arscale bench merge DIR [DIR...] --out OUT`?")
        return run_merge(args.action[1:], args.out)
    return run_bench(args)


def remove_bench_traces(out: Path, manifest_path: Path) -> None:
    """A bench's manifest and the empty folders it made, after a first run that wrote nothing else."""
    from arscale.folders import remove_empty_folders

    manifest_path.unlink(missing_ok=True)
    remove_empty_folders(out, keep_root=True)


def run_merge(inputs: list[str], out: str) -> int:
    from arscale.bench.merge import merge, write_reports, written_line
    from arscale.folders import first_missing, remove_empty_folders

    made = first_missing(out)
    try:
        summaries = merge(inputs, out)
    except BaseException:
        remove_empty_folders(made)  # a refused merge (a damaged shard) leaves no empty --out behind
        raise
    table, plots = write_reports(Path(out))
    print(table)
    print(written_line(Path(out), plots))
    incomplete = [f"{s['label']} N={s['n']}: {s['prompts_done']}/{s['prompts_total']}" for s in summaries
                  if s.get("prompts_total") is not None and s["prompts_done"] < s["prompts_total"]]
    if incomplete:
        print("note: incomplete runs (missing shards?): " + ", ".join(incomplete))
    print(f"merged {len(inputs)} folder(s) into {out}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from arscale.folders import first_missing, remove_empty_folders
    from arscale.scorers.shapeworld import restoring_weights

    made = first_missing(args.out)
    try:
        with restoring_weights():  # --scorer-weights holds for this run only
            return _bench(args)
    except BaseException:
        remove_empty_folders(made)  # an --out this run made and wrote nothing into (e.g. the model failed to load)
        raise


def _not_a_bench_folder(out: Path) -> ArscaleError:
    """Results would mix with what is there."""
    return ArscaleError(f"--out {out} holds other files and no bench manifest: give a new or empty folder, or one an "
                        "earlier `arscale bench` wrote")


def _bench(args: argparse.Namespace) -> int:
    from arscale.bench import manifest as mf
    from arscale.bench.merge import manifests_in
    from arscale.bench.runner import manifest_strategies, parse_ns, parse_runs
    from arscale.bench.sharding import launcher_device, resolve_shard
    from arscale.commands.generate import model_options
    from arscale.generators.loading import recording_hub_files
    from arscale.generators.registry import load_generator

    precision = _check_options(args)
    # before anything is written or a plugin's model loaded below; under torchrun, this rank's own GPU
    args.device = str(pick_device(launcher_device(args.device)))
    options = model_options(args.device, args.cfg, args.model_weights)
    shard = resolve_shard(args.num_shards, args.shard_index)
    out = output_folder(args.out)
    found = manifests_in(out)
    if not found and not shard.distributed and any(out.iterdir()):  # before a plugin's model is loaded below
        raise _not_a_bench_folder(out)
    preloaded, preloaded_files = None, {}
    if args.strategies is None:  # the method of the model's own kind beside the baselines
        family = model_kind(args.model)
        if family is None:  # a plugin's model shows its kind once loaded: load it now, once
            from arscale.search.rollout import generator_kind

            with recording_hub_files() as preloaded_files:
                preloaded = load_generator(args.model, **options, **precision)
            family = generator_kind(preloaded)
        args.strategies = DEFAULT_STRATEGIES[family]
    specs = parse_runs(args.strategies, args.config)
    ns = parse_ns(args.n)
    kind, suite, prompts = _suite(args, specs, ns)
    if args.scorer_weights:  # before the manifest hashes them: a wrong folder fails here, clearly
        from arscale.scorers.shapeworld import use_weights

        use_weights(args.scorer_weights)
    if args.layout == "tiif" and not all("dimension" in (sp.metadata or {}) for sp in prompts):
        raise ArscaleError("--layout tiif needs TIIF-Bench prompts (--prompts tiif:PATH): its folders are named "
                           "by each prompt's type and description")
    # ranks started by hand do not wait for rank 0's manifest: another rank's label folders are this run's
    labels = {spec.label for spec in specs} if shard.distributed else set()
    if not found and any(not (entry.is_dir() and entry.name in labels) for entry in out.iterdir()):
        raise _not_a_bench_folder(out)
    manifest = mf.build_manifest(
        model=mf.model_entry(args.model, args.model_weights, cfg=args.cfg, **precision),
        strategies=manifest_strategies(specs, args.scorer),
        scorer=args.scorer or None, scorer_weights=mf.scorer_weights_entry(args.scorer_weights),
        seed=args.seed, ns=ns, kind=kind, shard=shard.to_dict(),
        batch_prompts=args.batch_prompts, layout=args.layout, device=args.device, threads=args.threads,
        suite={"spec": args.prompts, "limit": args.limit, "size": len(prompts), "sha256": mf.suite_hash(suite)})
    manifest_path = out / mf.manifest_name(shard.array_shards, shard.array_index)
    for path, old in found:
        mf.check_compatible(old, manifest, f"{out} ({path.name})")
    _refuse_a_second_reward(manifest, args.scorer)
    if manifest_path.is_file():
        manifest = mf.combine(mf.read_manifest(manifest_path), manifest)
    with recording_hub_files() as hub_files:
        generator = preloaded if preloaded is not None else load_generator(args.model, **options, **precision)
    hub_files.update(preloaded_files)
    mf.add_hub_hashes(manifest, hub_files, found, str(out))
    use_class_names(generator, args.class_names)
    reward = _load_scorers(args, generator, manifest, found, out, prompts)
    bench, synchronised = _run_and_time(args, generator, reward, kind, specs, ns, prompts, out, shard, manifest,
                                        manifest_path, first_run=not found)
    if not shard.is_main:
        return 0
    if shard.array_shards > 1:
        print(f"shard {shard.array_index}/{shard.array_shards} done in {out}; combine the shards with "
              "`arscale bench merge DIR [DIR...] --out OUT`")
        return 0
    _summarize_and_report(bench, specs, ns, suite, prompts, out)
    if not synchronised:  # WORLD_SIZE without MASTER_ADDR: no barrier, other ranks may still be writing
        print(f"note: ranks were not synchronised; once all have finished run `arscale bench merge {out} --out {out}`")
    return 0


def _check_options(args: argparse.Namespace) -> dict:
    """The options that can be refused before anything is written, and the default --scorer; returns the model's
    precision options. Sets torch's thread count."""
    import torch

    from arscale.commands.generate import check_cfg
    from arscale.generators.registry import MODELS
    from arscale.generators.seeding import check_seed

    check_seed(args.seed)
    check_cfg(args.cfg)
    for option in ("threads", "batch_prompts"):
        if getattr(args, option) < 1:
            raise ArscaleError(f"--{option.replace('_', '-')} must be at least 1, got {getattr(args, option)}")
    check_threads(args.threads)
    torch.set_num_threads(args.threads)
    if args.model not in MODELS:
        raise ArscaleError(f"unknown model {args.model!r}; choose from {', '.join(MODELS)}")
    precision = precision_options(args.model, args.dtype, args.text_dtype)
    if args.scorer is None:  # the ShapeWorld reward knows only ShapeWorld: another model's images need another
        if not args.model.startswith("shapeworld-"):
            raise ArscaleError(f"--scorer: name the reward for {args.model}'s images (imagereward, pickscore, hpsv2, "
                               "clip, aesthetic), or --scorer '' for none; the default shapeworld-reward knows only "
                               "ShapeWorld")
        args.scorer = "shapeworld-reward"
    return precision


def _suite(args: argparse.Namespace, specs: list, ns: list[int]) -> tuple[str, list, list]:
    """(kind, the whole suite, the prompts this call runs: its first --limit ones); a --limit that leaves out
    whole tags says so."""
    from arscale.bench.runner import record_path
    from arscale.bench.suites import load_prompts

    kind, suite = load_prompts(args.prompts)
    if args.limit < 0:
        raise ArscaleError(f"--limit must be ≥ 0, got {args.limit}")
    prompts = suite
    if args.limit:
        tags = {sp.metadata.get("tag") for sp in suite}
        prompts = suite[: args.limit]
        kept = {sp.metadata.get("tag") for sp in prompts}
        # and the tags of prompts an earlier, longer --limit finished: the summaries keep those prompts
        kept |= {sp.metadata.get("tag") for sp in suite[len(prompts):] for spec in specs for n in ns
                 if record_path(spec.folder(Path(args.out), n), sp.index).is_file()}
        left_out = sorted(str(tag) for tag in tags - kept if tag is not None)
        if left_out:  # suites are ordered by tag: a short prefix is a few tags, and "overall" averages only those
            print(f"note: --limit {args.limit} takes the first prompts in suite order, which leaves out the tags "
                  f"{', '.join(left_out)}: 'overall' averages the tags it keeps", file=sys.stderr)
    if not prompts:
        raise ArscaleError("the prompt suite is empty")
    return kind, suite, prompts


def _refuse_a_second_reward(manifest: dict, scorer: str) -> None:
    """--scorer replaces a config's reward: say so, not ignore it."""
    for label, entry in manifest["strategies"].items():
        own = entry["config"].get("reward")
        if scorer and own is not None and own != scorer:
            raise ArscaleError(f"--config {label} sets reward {own!r}, but a bench's --scorer {scorer!r} is the "
                               "reward of every strategy (search and reward column): drop the field, or bench with "
                               f"--scorer {own}")


def _load_scorers(args: argparse.Namespace, generator, manifest: dict, found: list, out: Path, prompts: list):
    """The reward (None without --scorer) and every scorer the strategy configs name, loaded once, their hub files
    hashed into the manifest; returns the reward."""
    from arscale.bench import manifest as mf
    from arscale.bench.runner import scorers_named
    from arscale.search.rollout import cached_scorer_and_files, scoring_prompts

    # recorded apart from the model's: the scorer's files are not the model's weights (`add_hub_hashes`)
    reward, scorer_files = cached_scorer_and_files(args.scorer, args.device) if args.scorer else (None, {})
    # the scorers strategy configs name (TTS-VAR's features, a config's reward without --scorer) load now, once,
    # so their hub files are hashed too; the runs take them from the same cache
    for name in sorted(scorers_named(manifest["strategies"]) - {args.scorer}):
        # on the generator's device, as the strategies ask for them (`make_search`), so they hit this cache entry
        scorer_files.update(cached_scorer_and_files(name, getattr(generator, "device", args.device))[1])
    mf.add_scorer_hub_hashes(manifest, scorer_files, found, str(out))
    if reward is not None:  # the reward column reads text: a class-conditional model needs names, said up front
        scoring_prompts(generator, [sp.prompt for sp in prompts], reward)
    return reward


def _run_and_time(args: argparse.Namespace, generator, reward, kind: str, specs: list, ns: list[int], prompts: list,
                  out: Path, shard, manifest: dict, manifest_path: Path, first_run: bool):
    """Write the manifest, run every label and N on this shard's prompts, and add the run's wall time to the
    manifest however it ends (an interrupted run's prompts resume). Returns (the Bench, whether the ranks were
    synchronised)."""
    import time

    import torch

    from arscale.bench import manifest as mf
    from arscale.bench.runner import Bench
    from arscale.bench.sharding import ProcessGroup

    if shard.is_main:
        mf.write_manifest(manifest_path, manifest)
    start = time.time()
    bench = Bench(generator, reward, kind=kind, seed=args.seed, batch_prompts=args.batch_prompts,
                  quiet=args.quiet or not shard.is_main, layout=args.layout)
    # started here, next to the `try` that closes it: a setup error above leaves no group in a caller's process
    group = ProcessGroup(shard)
    synchronised = group.active or not shard.distributed
    finished = False
    try:
        with torch.no_grad():
            bench.run(specs, ns, prompts, out, resume=args.resume, shard=shard, write_summaries=False)
        group.barrier()  # every rank's prompts are on disk before rank 0 summarises
        finished = True
    except ArscaleError:
        if shard.is_main and first_run and all(f == manifest_path for f in out.rglob("*") if f.is_file()):
            remove_bench_traces(out, manifest_path)  # nothing to resume: the same command, mended, starts afresh
            finished = None
        raise
    finally:
        group.close()
        if shard.is_main and finished is not None:  # an interrupted run's time counts too: its prompts resume
            if manifest_path.is_file():  # another bench into this --out meanwhile: keep the labels, N and time it added
                on_disk = mf.read_manifest(manifest_path)
                manifest = mf.combine(on_disk, manifest) | {"timings": on_disk.get("timings", manifest["timings"])}
            timings = manifest["timings"]
            timings["wall_seconds"] = timings.get("wall_seconds", 0.0) + time.time() - start
            if finished:
                timings["finished"] = time.time()
            mf.write_manifest(manifest_path, manifest)
    return bench, synchronised


def _summarize_and_report(bench, specs: list, ns: list[int], suite: list, prompts: list, out: Path) -> None:
    """Every label and N's summaries, table.md and the plots, and the table printed."""
    from arscale.bench.merge import write_reports, written_line

    for spec in specs:
        for n in ns:  # every finished prompt, as `bench merge` summarises: those a longer --limit ran before too
            root = spec.folder(out, n)
            before = [sp for sp in suite[len(prompts):] if (root / f"{sp.index:05d}" / "record.json").is_file()]
            bench.summarize(spec, n, root, prompts + before)
    table, plots = write_reports(out)
    print(table)
    print(written_line(out, plots))
