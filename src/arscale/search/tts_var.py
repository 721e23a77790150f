"""TTS-VAR (arXiv 2507.18537) for next-scale generators.

Per prompt, a descending batch schedule (`schedule.py`: `batch[k]` rows generate scale k):
- after each clustering scale, the partial decodes' features (`shapeworld-features` here, DINOv2
  in the paper; or, with `features="latent"`, the accumulated latent f̂ itself, which needs no
  decode — our option for models whose decoder costs as much as their transformer) are reduced (`pca` per image as the official code, `pca-joint` without its sign
  ambiguity, or `pool`), clustered by K-Means++ into `batch[k+1]` clusters, and the member nearest
  each centre survives — diversity, not reward, because coarse rewards are unreliable;
- after each resampling scale, the partial decodes are scored, the reward is recorded in the row's
  history, and `batch[k+1]` rows are drawn with replacement ∝ exp(λ·potential) (VALUE, DIFF,
  MAX or SUM, through log-sum-exp); by default (`history="resample"`, ours) a row's history holds
  only its rewards at earlier resampling scales, so DIFF at scale 9 is r9 − r6 and MAX/SUM run over
  {r6, r9}; the paper's DIFF/MAX/SUM are defined over every scale (r_k − r_{k−1}, max/Σ over
  r_0..r_k, "MAX requires score calculations at each scale"): `history="all"` scores every scale up
  to the last resampling scale (for potentials other than VALUE), which makes `potentials.py` compute
  exactly the paper's formulas, at the cost of a decode and a reward per row and scale;
- at the end, the row with the best final reward is the answer.
Rows of many prompts share every forward; every selection is per prompt. Decodes happen only at
operation scales and at the end, at the consuming scorer's input size.

`write_extras(result, out_dir)` draws `search_tree.png`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from arscale.errors import ArscaleError
from arscale.search.base import StrategyConfig, strategy_repr
from arscale.search.clustering import REDUCTIONS, select_diverse
from arscale.search.importance import resample_per_prompt
from arscale.search.potentials import POTENTIALS
from arscale.search.result import SearchResult
from arscale.search.rollout import Search, cached_scorer, check_n, generator_kind, make_search, to_uint8
from arscale.search.schedule import N_COUNTS, Schedule, build_schedule

LATENT = "latent"
HISTORIES = ("resample", "all")


@dataclass
class TTSVARConfig(StrategyConfig):
    batch: list[int] | None = None  # pattern of rows generating each scale; None = derived (schedule.py)
    n_counts: str = "initial"  # N = rows at the start (official code) | "final": rows at the end (paper text)
    cluster_at: list[int] | None = None  # 0-based scales; None = the paper's 2, 5 mapped onto the model
    resample_at: list[int] | None = None  # 0-based scales; None = the paper's 6, 9 mapped onto the model
    potential: str = "value"
    lam: float = 10.0
    history: str = "resample"  # rewards recorded for DIFF/MAX/SUM: "resample" (ours) | "all" scales (paper)
    reduction: str = "pca"  # pca (official) | pca-joint | pool
    reward: str = "shapeworld-reward"
    features: str = "shapeworld-features"  # a feature scorer, or "latent": cluster f̂ itself (no decode; ours)
    record_previews: bool = True  # partial images of every scale in telemetry (not counted as cost)
    preview_size: int = 64

    symbols: ClassVar[dict[str, str]] = {"λ": "lam", "lambda": "lam"}  # the paper's symbols, for error hints

    def __post_init__(self):
        if self.potential not in POTENTIALS:
            raise ArscaleError(f"unknown potential {self.potential!r}; choose from {', '.join(POTENTIALS)}")
        if self.reduction not in REDUCTIONS:
            raise ArscaleError(f"unknown feature reduction {self.reduction!r}; choose from {', '.join(REDUCTIONS)}")
        if self.n_counts not in N_COUNTS:
            raise ArscaleError(f"n_counts must be one of {', '.join(N_COUNTS)}, got {self.n_counts!r}")
        if self.history not in HISTORIES:
            raise ArscaleError(f"history must be one of {', '.join(HISTORIES)}, got {self.history!r}")
        if not 0 <= self.lam < math.inf:  # NaN too
            raise ArscaleError(f"lam (λ) must be a finite number ≥ 0, got {self.lam}")
        if self.preview_size < 1:  # else VAR keeps empty previews and other generators fail in torch mid-run
            raise ArscaleError(f"preview_size (the side of the telemetry previews) must be at least 1, got "
                               f"{self.preview_size}")


class TTSVAR:
    """TTS-VAR on a next-scale model: clustering at coarse scales, resampling at fine ones, the best final reward
    chosen (settings: `TTSVARConfig`, docs/strategies.md)."""

    name = "tts-var"
    Config = TTSVARConfig

    def __init__(self, config: TTSVARConfig | None = None, *, feature_scorer: Any = None):
        self.config = config or TTSVARConfig()
        self.feature_scorer = feature_scorer  # overrides config.features (a Scorer object, e.g. in tests)

    __repr__ = strategy_repr

    def schedule(self, num_scales: int, n: int) -> Schedule:
        c = self.config
        return build_schedule(num_scales, n, batch=c.batch, cluster_at=c.cluster_at, resample_at=c.resample_at,
                              n_counts=c.n_counts)

    def budget_note(self, generator: Any, n: int) -> str | None:
        """Below N = 4 the default schedule never resamples and ends with one row: the reward only scores the
        result, so the budget buys clustering alone (at N = 2 a tie that returns raw sampling's image)."""
        if generator_kind(generator) != "scale":
            return None
        plan = self.schedule(int(generator.num_scales), check_n(n))
        if plan.resample_at or plan.batch[-1] > 1:
            return None
        return (f"{self.name} at N={n} consults no reward: its schedule ({', '.join(map(str, plan.batch))} rows) "
                "never resamples and ends with one row, so the reward only scores the result (docs/strategies.md)")

    def check_generator(self, generator: Any) -> None:
        """A next-scale model, refused in one line otherwise (`bench` asks before any label runs)."""
        if generator_kind(generator) != "scale":
            raise ArscaleError("tts-var searches over scales: it needs a next-scale generator (VAR, Infinity, "
                               "shapeworld-var); use scaling-ar, importance or best-of-n for next-token models")

    def run(self, generator: Any, prompts: Sequence[str], n: int, *, seed: int = 0, prompt_offset: int = 0,
            scorer: Any = None) -> SearchResult:
        """TTS-VAR on a next-scale model. `n` is the budget as `n_counts` says (default: the rows that start, the
        official code's N); the schedule (`schedule(num_scales, n)`) shrinks them scale by scale, clustering at
        coarse scales and resampling by potential at fine ones. The final candidates are the rows left at the
        last scale (one at N = 8 with the defaults), scored by the reward; `telemetry["operations"]` traces
        each step."""
        n = check_n(n)
        self.config.check()
        c = self.config
        self.check_generator(generator)
        plan = self.schedule(int(generator.num_scales), n)
        features = None  # loaded before the search's clock starts, as its reward is
        if plan.cluster_at and c.features != LATENT:
            features = self.feature_scorer or cached_scorer(c.features, getattr(generator, "device", "cpu"))
        search = make_search(generator, seed=seed, prompt_offset=prompt_offset, scorer=scorer, reward_name=c.reward,
                             features=features)
        search.telemetry.update(schedule={"batch": list(plan.batch), "cluster_at": list(plan.cluster_at),
                                          "resample_at": list(plan.resample_at)}, operations=[], previews=[],
                                token_maps=[list(hw) for hw in getattr(generator, "scales", [])])  # (h, w) per scale
        traj = search.start(prompts, plan.batch[0], unconditional=False)  # it guides through `step` only
        for k in range(plan.num_scales):
            search.advance(traj)
            op = plan.operation(k)
            scored = None  # the decode the history's reward read: a clustering at the same size reuses it
            if op != "resample" and self._records_history(plan, k):
                scored = search.decode(traj, int(search.reward_scorer.input_size))
                traj.record("reward", k, search.rewards(traj, scored))  # before a clustering: the kept rows carry it
            if c.record_previews and k < plan.num_scales - 1:
                search.telemetry["previews"].append(
                    {"scale": k, "nodes": traj.node.tolist(), "prompt": traj.prompt_index.tolist(),
                     "images": search.diagnostic_previews(traj, c.preview_size)})
            if op == "cluster":
                self._cluster(search, traj, k, plan.after(k), scored)
            elif op == "resample":
                search.score_now(traj, k)
                with search.cost.timer("selection"):
                    rows, trace = resample_per_prompt(search, traj, k, c.potential, c.lam, keep=plan.after(k),
                                                      purpose=k)
                    traj.select(torch.tensor(rows), "resample")
                    trace.update(scale=k, kept_nodes=traj.node.tolist())
                    search.telemetry["operations"].append(trace)
        images = search.finish(traj)
        rewards = search.final_rewards(traj, images)
        if c.record_previews:
            search.telemetry["previews"].append({"scale": plan.num_scales - 1, "nodes": traj.node.tolist(),
                                                 "prompt": traj.prompt_index.tolist(), "images": to_uint8(images)})
        return search.result(traj, images, rewards, self.name, c.to_dict())

    def _records_history(self, plan: Schedule, k: int) -> bool:
        """Whether scale k is scored only for the reward history (`history="all"`, DIFF/MAX/SUM)."""
        c = self.config
        return (c.history == "all" and c.potential != "value" and bool(plan.resample_at)
                and k < max(plan.resample_at))

    def _cluster(self, search: Search, traj, k: int, keep: int, decoded: torch.Tensor | None = None) -> None:
        if self.config.features == LATENT:
            feats = latent_tokens(search, traj)
        else:
            size = int(search.feature_scorer.input_size)
            images = decoded if decoded is not None and decoded.shape[-1] == size else search.decode(traj, size)
            feats = search.features(images)
        with search.cost.timer("selection"):
            chosen: list[int] = []
            for p, rows in search.groups(traj):
                picks = select_diverse(feats[rows], keep, search.rng(p, 1000 + k), self.config.reduction)
                chosen += sorted(rows[picks].tolist())
            record = {"scale": k, "op": "cluster", "nodes": traj.node.tolist(), "prompt": traj.prompt_index.tolist(),
                      "kept": chosen}
            traj.select(torch.tensor(chosen), "cluster")
            record["kept_nodes"] = traj.node.tolist()
            search.telemetry["operations"].append(record)


def latent_tokens(search: Search, traj) -> torch.Tensor:
    """The generator's accumulated latent as [R, positions, channels] tokens (the `latent` features)."""
    latent = getattr(search.generator, "latent", None)
    if latent is None:
        raise ArscaleError(f"features='latent' needs a generator with a `latent(traj)` method; "
                           f"{getattr(search.generator, 'name', 'this generator')} has none")
    with search.cost.timer("features"):
        f = latent(traj).detach().float()
        return f.reshape(len(f), f.shape[1], -1).transpose(1, 2).cpu()


def write_extras(result: SearchResult, out_dir: str | Path) -> list[Path]:
    """`search_tree.png` (prompt 0) and `search_tree_<i>.png` (further prompts) into out_dir."""
    from arscale.search.tree_plot import draw_search_tree

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in range(len(result.prompts)):
        path = out / ("search_tree.png" if p == 0 else f"search_tree_{p}.png")
        if draw_search_tree(result, p, path):
            paths.append(path)
    return paths
