"""The bench runner: strategies × N over a prompt suite, in the GenEval layout, resumable.

Output, per run (a strategy label and a budget N)::

    <out>/<label>/n<N>/<5-digit index>/metadata.jsonl, samples/00000.png   (GenEval layout)
    <out>/<label>/n<N>/<5-digit index>/record.json    verdict, reward, cost share (written last)
    <out>/<label>/n<N>/results.jsonl, summary.json     recomputed from every record.json
    <out>/table.md, score_vs_n.png, score_vs_compute.png   over every run under <out>

A prompt is finished when its record.json (written atomically after its image), metadata and image
are whole (`is_done`; a crash may leave one empty or cut short). Prompts are
batched in fixed blocks of `batch_prompts` consecutive global indices; `resume=True` skips the blocks
whose prompts are all finished and reruns the others whole, because batched forwards are not
bit-identical across batch compositions. Seeds derive from the global prompt index (the
suite position), so a resumed or sharded run reproduces an uninterrupted one. Prompts run in
batches of contiguous indices: rows of many prompts share every forward, selection stays per prompt.
A label is a strategy name, optionally with a suffix after '@' for variants with their own config
(`tts-var@lam1`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from arscale.atomic_files import atomic_write_text
from arscale.bench import geneval_layout as layout
from arscale.bench.metrics import summarize
from arscale.bench.suites import SuitePrompt
from arscale.bench.table import label_order
from arscale.errors import ArscaleError
from arscale.generators.seeding import mix
from arscale.search.base import (
    NOT_IN_FOLDER_NAMES,
    STRATEGIES,
    budget_note,
    check_result,
    make_strategy,
    read_config,
)
from arscale.search.rollout import scoring_prompts, sized_for

RECORD_FILE = "record.json"


@dataclass
class RunSpec:
    label: str
    strategy: str
    config: dict[str, Any] = field(default_factory=dict)

    def folder(self, out: Path, n: int) -> Path:
        return out / self.label / f"n{n}"


def parse_runs(strategies: str, configs: Sequence[str] = ()) -> list[RunSpec]:
    """`raw,tts-var,tts-var@lam1` + configs `LABEL=JSON` → run specs (config JSON may be a file path)."""
    given: dict[str, dict] = {}
    for item in configs:
        label, sep, text = item.partition("=")
        if not sep:
            raise ArscaleError(f"--config expects LABEL=JSON (e.g. tts-var='{{\"lam\": 1}}'), got {item!r}")
        if label.strip() in given:  # one would silently override the other
            raise ArscaleError(f"--config given twice for {label.strip()!r}: one config per label (a variant is "
                               f"another label, e.g. {label.strip()}@b)")
        given[label.strip()] = read_config(text, f"--config {label}")
    specs = []
    labels = [s.strip() for s in strategies.split(",")]
    if "" in labels[:-1] or len({s.casefold() for s in labels}) < len(labels):  # macOS, Windows: one folder
        raise ArscaleError(f"--strategies lists an empty or repeated label (each names a folder, in which macOS "
                           f"and Windows do not tell A from a): {strategies!r}")
    for label in [s for s in labels if s]:
        name, at, variant = label.partition("@")
        if name not in STRATEGIES:
            raise ArscaleError(f"unknown strategy {name!r} in {label!r}; choose from {', '.join(STRATEGIES)}")
        if at and not variant.strip():
            raise ArscaleError(f"{label!r}: name the variant after @ (e.g. {name}@lam1) or drop the @")
        if any(c in variant for c in NOT_IN_FOLDER_NAMES) or len(label.encode()) > 200:  # its runs' folder under --out
            raise ArscaleError(f"{label!r}: a label names a folder under --out: none of / \\ : * ? \" < > | in it, "
                               "and at most 200 bytes")
        if at and label not in given:  # a variant is only a variant with its own --config
            print(f"note: {label} has no --config {label}=...: it runs {name}'s defaults", file=sys.stderr)
        specs.append(RunSpec(label, name, given.get(label, {})))
    unused = sorted(set(given) - {s.label for s in specs})
    if unused:
        raise ArscaleError(f"--config given for {unused}, which are not in --strategies")
    if not specs:
        raise ArscaleError("no strategies given")
    return specs


def parse_ns(text: str) -> list[int]:
    parts = [x.strip() for x in text.split(",")]
    try:
        if "" in parts:
            raise ValueError
        ns = [int(x) for x in parts]
    except ValueError:
        raise ArscaleError(f"--n expects comma-separated integers such as 1,2,4,8, got {text!r}") from None
    if not ns or any(n < 1 for n in ns):
        raise ArscaleError(f"--n values must be at least 1, got {text!r}")
    if len(set(ns)) < len(ns):
        raise ArscaleError(f"--n names a budget twice: {text!r}")
    return ns


def run_config(spec: RunSpec) -> dict[str, Any]:
    config = dict(spec.config)
    fields = make_strategy(spec.strategy, spec.config).config.to_dict()
    if "record_previews" in fields:
        config.setdefault("record_previews", False)  # images for `arscale generate`'s plots: not needed here
    return config


def geneval_metadata(sp: SuitePrompt) -> dict:
    """A prompt's metadata as GenEval's per-prompt folder needs it: with `prompt` and `tag` (its evaluator
    groups by tag), which prompts of other suites lack; a suite's own grouping stands in for the tag."""
    md = sp.metadata or {}
    if "tag" in md and "prompt" in md:
        return md
    tag = md.get("tag") or md.get("category") or md.get("dimension") or "plain"
    return {**md, "tag": tag, "prompt": md.get("prompt", sp.prompt)}


def manifest_strategies(specs: Sequence[RunSpec], scorer: str | None = None) -> dict[str, dict]:
    """Per label: the strategy, the config as given, the full resolved config (defaults filled in) and, for a
    strategy with a reward, the reward it used: the run's `--scorer`, which replaces the config's own."""
    out = {}
    for s in specs:
        resolved = make_strategy(s.strategy, run_config(s)).config.to_dict()
        entry = {"strategy": s.strategy, "config": s.config, "resolved": resolved}
        if "reward" in resolved:
            entry["reward_used"] = scorer or resolved["reward"]
        out[s.label] = entry
    return out


def scorers_named(strategies: dict[str, dict]) -> set[str]:
    """The scorers `manifest_strategies`' entries load by name: each reward used and each feature scorer (not
    TTS-VAR's "latent", which is no scorer)."""
    names = {entry.get("reward_used") for entry in strategies.values()}
    names |= {entry["resolved"].get("features") for entry in strategies.values()}
    return {name for name in names if name and name != "latent"}


def blocks(prompts: Sequence[SuitePrompt], size: int) -> list[list[SuitePrompt]]:
    """Prompts grouped by block `index // size`: the unit that shares a forward pass.

    Batched forwards are not bit-identical across batch compositions (CPU kernels block differently),
    so which prompts share a batch must depend only on their global indices: a resumed block is rerun
    whole and shards own whole blocks, never a batch made of whatever happened to be left.
    """
    grouped: dict[int, list[SuitePrompt]] = {}
    for sp in prompts:
        grouped.setdefault(sp.index // size, []).append(sp)
    return [grouped[k] for k in sorted(grouped)]


def contiguous_batches(prompts: Sequence[SuitePrompt], size: int) -> list[list[SuitePrompt]]:
    """Batches of at most `size` prompts with consecutive indices (the seeding needs an offset + i layout)."""
    batches: list[list[SuitePrompt]] = []
    for sp in prompts:
        if batches and len(batches[-1]) < size and batches[-1][-1].index + 1 == sp.index:
            batches[-1].append(sp)
        else:
            batches.append([sp])
    return batches


def record_path(root: Path, index: int) -> Path:
    return layout.prompt_dir(root, index) / RECORD_FILE


OFFICIAL_LAYOUTS = ("geneval", "compbench", "dpg", "tiif")
# T2I-CompBench scores 10 images per prompt (3_in_1.py: num=10; 3000 images per category); DPG-Bench a 2x2 grid
IMAGES_PER_PROMPT = {"geneval": 1, "compbench": 10, "dpg": 4, "tiif": 1}


def official_layout(name: str, root: Path, model: str) -> Any:
    """The evaluator layout written next to the GenEval folders (`<root>/<name>/`); None for GenEval itself."""
    from arscale.bench import layouts

    if name == "geneval":
        return None
    if name == "compbench":
        return layouts.CompBenchLayout(root / name, IMAGES_PER_PROMPT[name])
    if name == "dpg":
        return layouts.DPGLayout(root / name, IMAGES_PER_PROMPT[name])
    if name == "tiif":
        return layouts.TIIFLayout(root / name, model)
    raise ArscaleError(f"unknown --layout {name!r}; choose from {', '.join(OFFICIAL_LAYOUTS)}")


def is_done(root: Path, sp: SuitePrompt, official: Any = None) -> bool:
    """Record, metadata and image whole (`layout.is_whole`): a prompt a crash damaged is rerun, its block with it."""
    folder = layout.prompt_dir(root, sp.index)
    return (all(layout.is_whole(path) for path in (folder / RECORD_FILE, folder / layout.METADATA_FILE,
                                                    layout.sample_path(root, sp.index, 0)))
            and (official is None or official.is_complete(sp)))


class Bench:
    def __init__(self, generator: Any, reward_scorer: Any, *, kind: str, seed: int = 0, batch_prompts: int = 8,
                 quiet: bool = False, layout: str = "geneval"):
        from arscale.bench.suites import SUITE_KINDS

        if kind not in (*SUITE_KINDS, "plain"):  # only "shapeworld" is judged here: a misspelt kind would judge
            # nothing ("plain": a bare .txt file, one prompt per line)
            raise ArscaleError(f"unknown suite kind {kind!r}; choose from {', '.join(SUITE_KINDS)}")
        self.generator = generator
        self.reward = reward_scorer
        self.kind = kind
        if layout not in OFFICIAL_LAYOUTS:
            raise ArscaleError(f"unknown --layout {layout!r}; choose from {', '.join(OFFICIAL_LAYOUTS)}")
        self.layout = layout
        self.seed = seed
        self.batch_prompts = max(1, int(batch_prompts))
        self.quiet = quiet

    def run(self, specs: Sequence[RunSpec], ns: Sequence[int], prompts: Sequence[SuitePrompt], out: str | Path,
            *, resume: bool = False, shard: Any = None, write_summaries: bool = True) -> list[dict]:
        """Run this process's share of `prompts` (the whole suite; `shard` picks by global index).

        From Python, `specs` may be labels ("raw", "tts-var") as well as `parse_runs` specs, and `prompts` plain
        strings as well as `SuitePrompt`s (`suites.load_prompts` reads a suite with its metadata)."""
        out = Path(out)
        specs = [parse_runs(s)[0] if isinstance(s, str) else s for s in specs]
        prompts = [self._suite_prompt(i, p) if isinstance(p, str) else p for i, p in enumerate(prompts)]
        mine = shard.select(prompts, self.batch_prompts) if shard is not None else list(prompts)
        plan = []
        for spec in specs:
            for n in ns:
                root = spec.folder(out, n)
                official = self._official(root)
                for sp in mine if official is not None else ():  # a name the layout refuses: before any search
                    official.is_complete(sp)
                todo = [sp for block in blocks(mine, self.batch_prompts)
                        if not (resume and all(is_done(root, sp, official) for sp in block)) for sp in block]
                plan.append((spec, make_strategy(spec.strategy, run_config(spec)), n, root, todo))
        for _, strategy, *_ in plan:  # a label the model cannot run is refused before any label spends budget
            check = getattr(strategy, "check_generator", None)
            if callable(check):
                check(self.generator)
        total = sum(len(t) for *_, t in plan)
        for spec, strategy, n, _, todo in plan:
            note = budget_note(strategy, self.generator, n) if todo else None
            if note:
                print(f"note: {spec.label}: {note}", file=sys.stderr)
        summaries = []
        with tqdm(total=total, desc="bench", dynamic_ncols=True, disable=self.quiet, mininterval=2.0) as bar:
            for spec, strategy, n, root, todo in plan:
                bar.set_postfix_str(f"{spec.label} N={n}")
                for batch in (b for block in blocks(todo, self.batch_prompts)
                              for b in contiguous_batches(block, self.batch_prompts)):
                    self._run_batch(strategy, spec, n, root, batch)
                    bar.update(len(batch))
                if write_summaries:
                    summaries.append(self.summarize(spec, n, root, prompts))
        return summaries

    def _suite_prompt(self, index: int, prompt: str) -> SuitePrompt:
        """A bare prompt: a ShapeWorld suite judges it by its parse (a prompt outside the grammar is refused)."""
        if self.kind != "shapeworld":
            return SuitePrompt(index, prompt)
        from arscale.shapeworld import metadata_from_prompt

        return SuitePrompt(index, prompt, metadata_from_prompt(prompt))

    def _official(self, root: Path) -> Any:
        return official_layout(self.layout, root, getattr(self.generator, "name", "model"))

    def _extra_images(self, strategy: Any, n: int, batch: list[SuitePrompt]) -> list[list[np.ndarray]]:
        """More images per prompt for layouts that want several (CompBench: 10, DPG: 4): independent
        searches whose seeds derive from (seed, draw), so draw 0 is the run's own image and any split
        reproduces them."""
        draws = IMAGES_PER_PROMPT[self.layout]
        extra: list[list[np.ndarray]] = [[] for _ in batch]
        for draw in range(1, draws):
            result = check_result(strategy.run(self.generator, [sp.prompt for sp in batch], n,
                                               seed=mix(self.seed, draw), prompt_offset=batch[0].index,
                                               scorer=self.reward), str(getattr(strategy, "name", "")), len(batch))
            for i in range(len(batch)):
                extra[i].append(result.chosen(i).image)
        return extra

    def _run_batch(self, strategy: Any, spec: RunSpec, n: int, root: Path, batch: list[SuitePrompt]) -> None:
        result = check_result(strategy.run(self.generator, [sp.prompt for sp in batch], n, seed=self.seed,
                                           prompt_offset=batch[0].index, scorer=self.reward), spec.label, len(batch))
        official = self._official(root)
        extra = self._extra_images(strategy, n, batch) if official is not None else None
        share = _cost_share(result.cost.to_dict(), len(batch))
        own_costs = (result.telemetry or {}).get("cost_per_prompt")  # strategies that stop candidates per prompt
        chosen = [result.chosen(i) for i in range(len(batch))]
        # The reward column scores every strategy's written image the same way (evaluation, not the strategy's
        # cost): a strategy's own scores are of its float decode, or not rewards at all (ScalingAR's confidence).
        # Without a bench scorer a reward strategy's own reward of its pick is all there is.
        by_reward = getattr(strategy, "uses_reward", True)
        if self.reward is not None:
            images = torch.from_numpy(np.stack([c.image for c in chosen])).permute(0, 3, 1, 2).float() / 255
            if getattr(self.reward, "input_size", None):
                images = sized_for(self.reward, images)
            values = self.reward.reward(images, scoring_prompts(self.generator, [sp.prompt for sp in batch], self.reward))
            rewards = {i: float(v) for i, v in enumerate(values)}
        else:
            rewards = {i: c.score for i, c in enumerate(chosen) if c.score is not None} if by_reward else {}
        for i, sp in enumerate(batch):
            metadata = geneval_metadata(sp)
            layout.write_prompt(root, sp.index, metadata, [chosen[i].image])
            if official is not None:
                official.write(sp, [chosen[i].image, *extra[i]])
            correct, reason, found = None, None, None
            if self.kind == "shapeworld":
                from arscale.shapeworld.evaluate import details, evaluate

                verdict = evaluate(chosen[i].image, metadata)
                correct, reason, found = bool(verdict.correct), verdict.reason, details(verdict.detections)
            record = {"index": sp.index, "prompt": sp.prompt, "tag": metadata.get("tag"), "label": spec.label,
                      "strategy": spec.strategy, "n": n, "seed": self.seed, "correct": correct, "reason": reason,
                      "details": found,
                      "reward": rewards.get(i),
                      "candidate_scores": [c.score for c in result.candidates[i]],
                      "scores_are_rewards": bool(by_reward),
                      "cost": share if own_costs is None else {**share, **own_costs[i]}}
            atomic_write_text(record_path(root, sp.index), layout.strict_json(record) + "\n")

    def summarize(self, spec: RunSpec, n: int, root: Path, prompts: Sequence[SuitePrompt]) -> dict:
        return summarize_run(spec, n, root, prompts, seed=self.seed, model=getattr(self.generator, "name", "?"))


def summarize_run(spec: RunSpec, n: int, root: Path, prompts: Sequence[SuitePrompt], *, seed: int, model: str,
                  prompts_total: int | None = None) -> dict:
    """Recompute results.jsonl and summary.json from every finished prompt's record."""
    records, rows = [], []
    for sp in prompts:
        path = record_path(root, sp.index)
        if not path.is_file():
            continue
        try:
            rec = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:  # a record a crash left empty or cut short
            raise ArscaleError(f"{path}: unreadable record ({exc}); `arscale bench --resume` into its folder reruns "
                               "that prompt") from None
        records.append(rec)
        if rec.get("correct") is not None:
            md = geneval_metadata(sp)
            rows.append(layout.result_row(layout.sample_path(root, sp.index, 0), md, rec["correct"],
                                          rec.get("reason") or "", rec.get("details")))  # None in older records
    if rows:
        layout.write_results(root / layout.RESULTS_FILE, rows)
    summary = summarize(records, rows)
    summary.update(label=spec.label, strategy=spec.strategy, n=n, config=spec.config, seed=seed, model=model,
                   prompts_total=len(prompts) if prompts_total is None else prompts_total)
    layout.write_summary(root / layout.SUMMARY_FILE, summary)
    return summary


def _cost_share(cost: dict, prompts: int) -> dict:
    """A batch's cost split evenly over its prompts: exact for strategies that run every prompt on the same
    schedule. Those that stop candidates per prompt report their own `cost_per_prompt` (ScalingAR), which
    replaces these shares key by key; wall time stays a batch mean, as batched rows share every forward."""
    out = {}
    for k, v in cost.items():
        if isinstance(v, dict):
            out[k] = {kk: vv / prompts for kk, vv in v.items()}
        else:
            out[k] = v / prompts
    return out


def collect_summaries(out: str | Path) -> list[dict]:
    """Every run summary under `out` (also from earlier invocations), raw sampling first (`table.label_order`),
    then by N."""
    found = []
    for path in sorted(Path(out).glob(f"*/n*/{layout.SUMMARY_FILE}")):
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:  # not JSON, or not UTF-8: a summary being rewritten or damaged
            continue
    return sorted(found, key=lambda s: (label_order(s.get("label", "")), s.get("n", 0)))
