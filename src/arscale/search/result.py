"""What a strategy returns: chosen images, all final candidates, the search tree and the cost."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from arscale.errors import ArscaleError
from arscale.generators.trajectories import SearchTree

PHASES = ("model", "decode", "features", "reward", "selection")


def _drain_gpu() -> None:
    """Wait for the current CUDA device and every other one this process holds memory on (a model loaded from
    Python on cuda:1 leaves cuda:0 current: `pick_device(make_current=False)`)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        if torch.cuda.device_count() == 1:  # the usual machine; the timers run per token, so no allocator stats read
            torch.cuda.synchronize()
            return
        current = torch.cuda.current_device()
        for index in range(torch.cuda.device_count()):
            if index == current or torch.cuda.memory_reserved(index):
                torch.cuda.synchronize(index)
    elif torch.backends.mps.is_available() and torch.mps.current_allocated_memory():  # a Mac's GPU, if in use
        torch.mps.synchronize()


@dataclass
class CostRecord:
    """Compute spent by one search. Transformer FLOPs are analytic (the text encoder's included, once per
    prompt and batch); decode FLOPs too where the generator has `decode_flops`, else counted once with torch's
    FLOP counter; wall time is measured per phase."""

    transformer_flops: float = 0.0
    decode_count: int = 0
    decode_flops: float = 0.0
    scorer_calls: int = 0  # images passed through a scorer (reward or features)
    scorer_flops: float = 0.0  # what those calls cost (`rollout.count_scorer`)
    generated_tokens: int = 0  # image tokens sampled; a CFG pair counts once
    wall: dict[str, float] = field(default_factory=lambda: {p: 0.0 for p in PHASES})
    total_wall: float = 0.0

    @contextmanager
    def timer(self, phase: str) -> Iterator[None]:
        """Time a phase. On a GPU the queue is drained at both ends, so a phase is billed for its own kernels,
        not for whatever an earlier phase left running until something waited on it."""
        if phase not in self.wall:
            raise KeyError(f"unknown phase {phase!r}; phases are {PHASES}")
        _drain_gpu()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            _drain_gpu()
            self.wall[phase] += time.perf_counter() - t0

    @property
    def overhead(self) -> float:
        """Wall time outside model forwards, decodes and scorers."""
        return max(self.total_wall - self.wall["model"] - self.wall["decode"] - self.wall["features"]
                   - self.wall["reward"], 0.0)

    @property
    def total_flops(self) -> float:
        """Transformer, decode and scorer FLOPs together: the compute axis `arscale bench` plots and tabulates."""
        return self.transformer_flops + self.decode_flops + self.scorer_flops

    def add(self, other: CostRecord) -> CostRecord:
        self.transformer_flops += other.transformer_flops
        self.decode_count += other.decode_count
        self.decode_flops += other.decode_flops
        self.scorer_calls += other.scorer_calls
        self.scorer_flops += other.scorer_flops
        self.generated_tokens += other.generated_tokens
        for k, v in other.wall.items():
            self.wall[k] = self.wall.get(k, 0.0) + v
        self.total_wall += other.total_wall
        return self

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON data, with `overhead`."""
        d = asdict(self)
        d["overhead"] = self.overhead
        return d


@dataclass
class Candidate:
    prompt_index: int  # index into SearchResult.prompts
    node: int  # id in the search tree
    image: np.ndarray  # uint8 [H, W, 3]
    score: float | None  # final reward or confidence, whatever the strategy picks by
    chosen: bool = False

    def __repr__(self) -> str:  # the image as its shape: a notebook cell shows a line, not a pixel dump
        return (f"Candidate(prompt_index={self.prompt_index}, node={self.node}, image={_shape(self.image)}, "
                f"score={self.score}, chosen={self.chosen})")

    def __eq__(self, other: object) -> bool:  # the generated __eq__ asks an image array for one truth value
        if not isinstance(other, Candidate):
            return NotImplemented
        return (self.prompt_index, self.node, self.score, self.chosen) == (
            other.prompt_index, other.node, other.score, other.chosen) and np.array_equal(self.image, other.image)


@dataclass
class SearchResult:
    prompts: list[str]
    candidates: list[list[Candidate]]  # per prompt, every final candidate
    tree: SearchTree
    cost: CostRecord
    strategy: str
    config: dict[str, Any]
    telemetry: dict[str, Any] = field(default_factory=dict)  # strategy-specific traces for plots

    def __post_init__(self):
        if len(self.candidates) != len(self.prompts):
            raise ArscaleError(f"a SearchResult holds one list of candidates per prompt: got {len(self.prompts)} "
                               f"prompt(s) and {len(self.candidates)} list(s)")

    def __repr__(self) -> str:  # a summary: the images and telemetry are megabytes of arrays in a notebook cell
        prompts = ", ".join(repr(p) for p in self.prompts[:3]) + (", ..." if len(self.prompts) > 3 else "")
        counts = sorted({len(c) for c in self.candidates})
        per = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}" if counts else "0"
        return (f"SearchResult(strategy={self.strategy!r}, {len(self.prompts)} prompt(s) [{prompts}], {per} final "
                f"candidate(s) each, {len(self.tree)} tree nodes, config={self.config!r})")

    def __eq__(self, other: object) -> bool:  # the generated __eq__ asks the telemetry's preview arrays for one truth
        if not isinstance(other, SearchResult):  # value
            return NotImplemented
        return (self.prompts, self.candidates, self.tree, self.cost, self.strategy, self.config) == (
            other.prompts, other.candidates, other.tree, other.cost, other.strategy, other.config) and \
            _same(self.telemetry, other.telemetry)

    def chosen(self, prompt: int) -> Candidate:
        """Prompt `prompt`'s pick among its final candidates (`.image`, `.score`)."""
        picks = [c for c in self.candidates[prompt] if c.chosen]
        if len(picks) != 1:
            raise RuntimeError(f"prompt {prompt} has {len(picks)} chosen candidates, expected 1")
        return picks[0]

    @property
    def images(self) -> list[np.ndarray]:
        """The chosen image of each prompt, uint8 [H, W, 3], in prompt order."""
        return [self.chosen(i).image for i in range(len(self.prompts))]

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON data: prompts, strategy, config, every candidate's prompt, tree node, score and
        whether it was chosen, the search tree, the cost and the telemetry. Images (the candidates', and the
        partial images some telemetry keeps for plots) are left out: save `images` / `candidates` as files."""
        return {"prompts": list(self.prompts), "strategy": self.strategy, "config": _plain(self.config),
                "candidates": [[{"prompt_index": c.prompt_index, "node": c.node, "score": c.score, "chosen": c.chosen}
                                for c in per] for per in self.candidates],
                "tree": self.tree.to_dict(), "cost": self.cost.to_dict(), "telemetry": self.telemetry_dict()}

    def telemetry_dict(self) -> dict[str, Any]:
        """The strategy's telemetry as plain JSON data, images left out."""
        return _plain(self.telemetry)

    def extend(self, later: SearchResult) -> SearchResult:
        """Append the result of the next chunk of prompts of the same run (its prompt and node indices start
        at 0); costs add up. `later` is consumed: its candidates move here, renumbered. Strategy-specific
        telemetry has no general merge, so only results without any (raw, Best-of-N) are joined here."""
        if (later.strategy, later.config) != (self.strategy, self.config):
            raise ValueError(f"cannot join a {later.strategy} result to a {self.strategy} result of another config")
        if self.telemetry or later.telemetry:
            raise ValueError(f"{self.strategy} results carry telemetry that has no general merge")
        shift = self.tree.extend(later.tree, prompt_shift=len(self.prompts))
        for per_prompt in later.candidates:
            for c in per_prompt:
                c.prompt_index += len(self.prompts)
                c.node += shift
        self.candidates += later.candidates
        self.prompts += later.prompts
        self.cost.add(later.cost)
        return self


def _plain(value: Any) -> Any:
    """JSON data: arrays and tensors of images dropped (a dict loses the key, a list the item), numpy and
    torch scalars as numbers, tuples as lists, NaN and infinities (not JSON) as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if not _is_array(v)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value if not _is_array(v)]
    if isinstance(value, (np.generic, torch.Tensor)) or (isinstance(value, np.ndarray) and value.ndim == 0):
        value = value.item()  # a 0-d array too: what `tensor.numpy()` gives of a scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _same(a: Any, b: Any) -> bool:
    """Telemetry equality: arrays and tensors by dtype, shape and values, containers item by item, and NaN (a step
    that has no value, e.g. ScalingAR's threshold in the warm-up) equal to NaN, so a copy equals its original."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape):
            return False
        a, b = a.detach().cpu(), b.detach().cpu()
        return bool(((a == b) | (a.isnan() & b.isnan())).all())
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    floats = (float, np.floating)  # a numpy scalar too (np.float32 is no float)
    if isinstance(a, floats) and isinstance(b, floats) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _shape(image: Any) -> str:
    shape = getattr(image, "shape", None)
    return f"{getattr(image, 'dtype', type(image).__name__)}{list(shape)}" if shape is not None else repr(image)


def _is_array(value: Any) -> bool:
    return (isinstance(value, np.ndarray) and value.ndim > 0) or (isinstance(value, torch.Tensor) and value.dim() > 0)
