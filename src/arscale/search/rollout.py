"""The loops every strategy shares: advance a batch, decode what a consumer needs, score, pick, account.

`Search` bundles a generator, the scorers and the `CostRecord` of one `Strategy.run`. Every model
forward, decode and scorer call of a strategy goes through it, so the cost record is complete by
construction: transformer FLOPs from the generator's analytic counts, decodes (count, FLOPs) and
scorer calls, generated tokens, and wall time per phase. Strategies time their own selection
logic with `search.cost.timer("selection")`.

Works for both generator kinds:
- next-scale: `advance()` runs `generator.step` (one whole scale for every row);
- next-token: `advance()` draws with the generator's own `sample` when it has one, else runs
  `next_logits`, classifier-free guidance and per-row sampling (seeded by each row's key and the
  token index); then `generator.advance`.
`start(..., unconditional=False)` (raw, Best-of-N, importance sampling, TTS-VAR) asks for no unconditional
logits where the generator's `start` names that keyword: where its guidance needs none (cfg 1; VAR's ramp at
cfg 0) it then runs only the conditional half.
"""

from __future__ import annotations

import inspect
import numbers
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from arscale.devices import device_key
from arscale.errors import ArscaleError
from arscale.generators.class_names import class_index
from arscale.generators.sampling import cfg_mix, sample_per_row
from arscale.generators.seeding import generator_for, mix
from arscale.generators.trajectories import Trajectories
from arscale.scorers.base import SCORERS, load_scorer, sized_for
from arscale.search.potentials import check_finite
from arscale.search.result import Candidate, CostRecord, SearchResult

# (name, device) -> registration, scorer, hub files read, and the ShapeWorld reward folder and its `weights_stamp`
# when it loaded: one scorer per name and device, so a sweep over reward folders keeps only the last one's
_SCORERS: dict[tuple[str, str], tuple[Any, Any, dict[str, Path], tuple]] = {}


class _PerObject:
    """A dict of values per object, held weakly: an entry dies with its object, so a new object at a freed
    address never inherits it. Objects that cannot be weakly referenced are kept, the last 8, with their values."""

    def __init__(self):
        self._weak: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._by_id: dict[int, tuple[Any, dict]] = {}

    def of(self, obj: Any) -> dict:
        try:
            return self._weak.setdefault(obj, {})
        except TypeError:  # held with its values (the last 8), so no later object takes its address meanwhile
            entry = self._by_id.pop(id(obj), (obj, {}))
            self._by_id[id(obj)] = entry
            while len(self._by_id) > 8:
                del self._by_id[next(iter(self._by_id))]
            return entry[1]


_DECODE_FLOPS_PER_ROW = _PerObject()  # per generator: decode FLOPs per row, by size
_SCORER_FLOPS_PER_IMAGE = _PerObject()  # per scorer: FLOPs per image, by (method, size)


def _takes_keyword(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters  # named, not merely swallowed by **kwargs: a plugin must mean to honour it


def cached_scorer(name: str, device: Any) -> Any:
    """Load a scorer once per process, device and registration (bench runs call strategies many times)."""
    return cached_scorer_and_files(name, device)[0]


def cached_scorer_and_files(name: str, device: Any) -> tuple[Any, dict[str, Path]]:
    """`cached_scorer`, and the hub files it read when it loaded ({"owner/repo/file": local copy}, for a bench's
    manifest): a later call in the process reads nothing, but returns the same files."""
    from arscale.generators.loading import recording_hub_files
    from arscale.scorers.shapeworld import weights_in_use, weights_stamp

    # a name registered anew loads anew (the entry keeps its registration: an identity, never reused while held),
    # and so do the ShapeWorld scorers after `use_weights` moved them or a training run rewrote their folder
    key, stamp = (name, device_key(device)), (str(weights_in_use()), weights_stamp())
    target = SCORERS.get(name)
    if key not in _SCORERS or _SCORERS[key][0] is not target or _SCORERS[key][3] != stamp:
        with recording_hub_files() as files:
            scorer = load_scorer(name, device=device)
        _SCORERS[key] = target, scorer, dict(files), stamp
    _, scorer, files, _ = _SCORERS[key]
    return scorer, dict(files)


def generator_kind(generator: Any) -> str:
    if hasattr(generator, "step") and hasattr(generator, "num_scales"):
        return "scale"
    if hasattr(generator, "next_logits") and hasattr(generator, "num_tokens"):
        return "token"
    raise ArscaleError(f"{type(generator).__name__} is neither a next-scale nor a next-token generator")


def _call_optional(obj: Any, names: Sequence[str], *args: Any) -> float:
    for name in names:
        fn = getattr(obj, name, None)
        if callable(fn):
            return float(fn(*args))
    return 0.0


def token_forward_flops(generator: Any, traj: Any, position: int) -> float:
    """The forward that fed `traj`'s rows for token `position` (0: the prefill), from the generator's optional
    `flops_per_token`, which counts a CFG pair (a generator that runs no unconditional half sets traj.halves = 1)."""
    return _call_optional(generator, ("flops_per_token",), len(traj), position) * getattr(traj, "halves", 2) / 2


def check_step_advanced(generator: Any, traj: Any, position: int, verb: str) -> None:
    """The search tree and the selections read `traj.step`: a generator (a plugin's) must have advanced it."""
    if traj.step != position + 1:
        raise ArscaleError(f"{type(generator).__name__}.{verb} left traj.step at {traj.step} after generating step "
                           f"{position}: `start` sets it to 0 and each {verb} adds one (generators/protocol.py)")


def scorer_name(scorer: Any) -> str:
    """A scorer's `name`, else its class's name (a third-party scorer need not have one)."""
    return str(getattr(scorer, "name", type(scorer).__name__))


def _require_method(scorer: Any, method: str) -> None:
    if not callable(getattr(scorer, method, None)):
        name = scorer_name(scorer)
        raise ArscaleError(f"scorer {name!r} has no {method}(), which this strategy needs")


def scorer_output(out: Any, scorer: Any, what: str, rows: int) -> torch.Tensor:
    """A scorer's output as a float CPU tensor: `reward` one score per image ([B]), `features` one vector or map
    per image ([B, ...]). A third-party scorer that breaks this contract gets a one-line error naming it."""
    name = scorer_name(scorer)
    try:
        t = torch.as_tensor(out).detach().float().cpu()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ArscaleError(f"scorer {name!r}: {what}() must return a tensor, got {type(out).__name__} ({exc})") from exc
    if what == "reward" and t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if what == "reward" and t.dim() == 0 and rows == 1:
        t = t.reshape(1)
    wanted = f"[{rows}]" if what == "reward" else f"[{rows}, ...]"
    if (t.dim() != 1 if what == "reward" else t.dim() < 1) or t.shape[0] != rows:
        raise ArscaleError(f"scorer {name!r}: {what}() returned shape {list(t.shape)} for {rows} images; "
                           f"it must be {wanted}")
    return t


@contextmanager
def flop_counter() -> Iterator[Any]:
    """torch's FLOP counter, made to see what it misses (torch 2.13): the fused attention kernel a CPU runs
    (mapped to torch's own attention formula) and the fused layers of `nn.MultiheadAttention` /
    `nn.TransformerEncoderLayer` in inference, whose fast path is switched off while counting (same outputs)."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    cpu_attention = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)

    def attention(query, key, value, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return sdpa_flop_count(query, key, value)

    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with FlopCounterMode(display=False,
                             custom_mapping={} if cpu_attention is None else {cpu_attention: attention}) as counter:
            yield counter
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)


def _flops(obj: Any, analytic: str, cache: _PerObject, key: Any, rows: int, size: int,
           repeat: Callable[[], Any]) -> tuple[float, float]:
    """(FLOPs of `rows` items, seconds spent counting): `obj.<analytic>(rows, size)` when it has one, else torch's
    FLOP counter on one repeat of the call per (object, key), cached per item. Either is kept out of the method's
    wall time by the caller (an analytic count may run a model on the meta device the first time)."""
    fn = getattr(obj, analytic, None)
    if callable(fn):
        t0 = time.perf_counter()
        flops = float(fn(rows, size))
        return flops, time.perf_counter() - t0
    per_item, spent = cache.of(obj), 0.0
    if key not in per_item:
        t0 = time.perf_counter()
        with torch.no_grad(), flop_counter() as counter:
            repeat()
        per_item[key] = counter.get_total_flops() / max(rows, 1)
        spent = time.perf_counter() - t0
    return per_item[key] * rows, spent


def count_decode(cost: CostRecord, generator: Any, rows: int, size: int, decode: Callable[[], torch.Tensor]) -> float:
    """Add `rows` decodes at `size` to `cost` (FLOPs: the generator's `decode_flops(rows, size)`, else counted on a
    repeat of `decode`); returns the seconds that repeat took (not part of the method's wall time)."""
    flops, spent = _flops(generator, "decode_flops", _DECODE_FLOPS_PER_ROW, size, rows, size, decode)
    cost.decode_count += rows
    cost.decode_flops += flops
    return spent


def count_scorer(cost: CostRecord, scorer: Any, method: str, rows: int, size: int, call: Callable[[], Any]) -> float:
    """Add the FLOPs of a scorer call on `rows` images of side `size` to `cost` (the scorer's `<method>_flops(rows,
    size)`, else counted on a repeat of `call`); returns the seconds that repeat took. Approximate where a
    scorer's cost depends on the prompt's length, and torch's counter does not see fused attention on a CPU."""
    flops, spent = _flops(scorer, f"{method}_flops", _SCORER_FLOPS_PER_IMAGE, (method, size), rows, size, call)
    cost.scorer_flops += flops
    return spent


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[R,3,H,W] in [0,1] → uint8 [R,H,W,3] (rounded)."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class Search:
    """One strategy run's generator, scorers, seeds and cost record."""

    def __init__(self, generator: Any, *, seed: int, prompt_offset: int, reward: Any = None,
                 features: Any = None):
        self.generator = generator
        self.kind = generator_kind(generator)
        self.seed = seed
        self.prompt_offset = check_prompt_offset(prompt_offset)
        self.reward_scorer = reward
        self.feature_scorer = features
        self.cost = CostRecord()
        self.telemetry: dict[str, Any] = {}
        self._t0 = time.perf_counter()
        self.position = 0  # scales or tokens generated so far
        self.diagnostic_wall = 0.0  # time spent on telemetry only (previews for plots); not part of the cost

    # -- generation ------------------------------------------------------------------------------
    def start(self, prompts: Sequence[str], rows_per_prompt: int | Sequence[int], *,
              unconditional: bool = True) -> Trajectories:
        """The rows of every prompt. `unconditional=False`: the strategy reads no unconditional logits and sets
        no guidance (it samples with `advance`), so a model whose guidance needs none (cfg 1) may run only its
        conditional half, where its `start` names that keyword."""
        prompts = check_prompt_list(prompts)
        if self.reward_scorer is not None:  # a class-conditional model without class names fails now, not later
            scoring_prompts(self.generator, prompts, self.reward_scorer)
        options = {"unconditional": False} if not unconditional and _takes_keyword(
            self.generator.start, "unconditional") else {}
        with self.cost.timer("model"):
            traj = self.generator.start(prompts, rows_per_prompt, self.seed, prompt_offset=self.prompt_offset,
                                        **options)
        self.cost.transformer_flops += float(traj.extra.get("text_flops", 0.0))  # the text encoder's, once per call
        if self.kind == "token":  # the prefill ran now, for the rows started (a selection before token 0 cuts later)
            self.cost.transformer_flops += token_forward_flops(self.generator, traj, 0)
        self.position = 0
        return traj

    @property
    def length(self) -> int:
        """Number of scales (next-scale) or tokens (next-token) to generate."""
        return int(self.generator.num_scales if self.kind == "scale" else self.generator.num_tokens)

    def advance(self, traj: Trajectories) -> None:
        """Generate the next scale / token for every row."""
        rows = len(traj)
        g = self.generator
        with self.cost.timer("model"):
            if self.kind == "scale":
                g.step(traj)
            elif callable(getattr(g, "sample", None)):  # the generator's own guidance and sampler settings
                g.advance(traj, g.sample(traj))
            else:
                cond, uncond = g.next_logits(traj)
                scale = float(getattr(g, "cfg", 1.0))
                logits = cfg_mix(cond, uncond, scale) if scale != 1.0 else cond
                tokens = sample_per_row(logits, traj.seed_key, self.position,
                                        temperature=float(getattr(g, "temperature", 1.0)),
                                        top_k=int(getattr(g, "top_k", 0) or 0),
                                        top_p=float(getattr(g, "top_p", 0.0) or 0.0))
                g.advance(traj, tokens, torch.full((rows,), scale))
        check_step_advanced(g, traj, self.position, "step" if self.kind == "scale" else "advance")
        if self.kind == "scale":
            own = getattr(g, "scale_flops", None)  # a count that depends on the rows' prompts (Infinity's text)
            flops = own(traj, self.position) if callable(own) else \
                g.flops_per_scale(rows)[self.position] * getattr(traj, "halves", 2) / 2  # counted for the pair
            self.cost.transformer_flops += float(flops)
            self.cost.generated_tokens += rows * self._scale_tokens(self.position)
        else:
            if self.position + 1 < self.length:  # feeding this token gave the next one's logits, for these rows
                self.cost.transformer_flops += token_forward_flops(g, traj, self.position + 1)
            self.cost.generated_tokens += rows
        self.position += 1

    def _scale_tokens(self, k: int) -> int:
        g = self.generator
        pn = getattr(g, "patch_nums", None)
        if pn is not None:
            side = pn[k]
            return int(side[0] * side[1]) if isinstance(side, (tuple, list)) else int(side) ** 2
        if not callable(getattr(g, "tokens_in_scale", None)):  # else every token would go uncounted
            raise ArscaleError(f"{type(g).__name__} says neither `patch_nums` nor `tokens_in_scale(k)`: the "
                               "generated-token count needs one of them (arscale/generators/protocol.py)")
        return int(g.tokens_in_scale(k))

    def run_to(self, traj: Trajectories, position: int, hook: Callable[[int], None] | None = None) -> None:
        """Advance until `position` scales/tokens are generated, calling hook(position) after each."""
        while self.position < position:
            self.advance(traj)
            if hook is not None:
                hook(self.position)

    # -- decoding and scoring ---------------------------------------------------------------------
    def decode(self, traj: Trajectories, size: int) -> torch.Tensor:
        """Partial decode of every row at `size` (what a consumer with that input size needs)."""
        with self.cost.timer("decode"):
            images = self.generator.preview(traj, size)
        self._count_decode(len(traj), size, lambda: self.generator.preview(traj, size))
        return images

    def finish(self, traj: Trajectories) -> torch.Tensor:
        """Final images of every row, [R, 3, H, W] in [0, 1] at the generator's `image_size` (counted as decodes)."""
        with self.cost.timer("decode"):
            images = self.generator.finish(traj)
        self._count_decode(len(traj), int(self.generator.image_size), lambda: self.generator.finish(traj))
        return images

    def _count_decode(self, rows: int, size: int, decode: Callable[[], torch.Tensor]) -> None:
        self.diagnostic_wall += count_decode(self.cost, self.generator, rows, size, decode)

    def diagnostic_previews(self, traj: Trajectories, size: int) -> np.ndarray:
        """Partial images for telemetry (search-tree plots), kept out of the cost record."""
        t0 = time.perf_counter()
        with torch.no_grad():
            pixels = to_uint8(self.generator.preview(traj, size))
        self.diagnostic_wall += time.perf_counter() - t0
        return pixels

    def final_rewards(self, traj: Trajectories, images: torch.Tensor) -> torch.Tensor:
        """Rewards of the finished images (not decoded again: `sized_for` the scorer), recorded in the reward
        history's last column."""
        with self.cost.timer("reward"):  # the scorer's preprocessing: its time, not overhead
            images = sized_for(self._reward_scorer(), images)
        r = self.rewards(traj, images)
        traj.record("reward", self.length - 1, r)
        return r

    def _reward_scorer(self) -> Any:
        if self.reward_scorer is None:  # one line, before anything reads its input size
            raise ArscaleError("this strategy needs a reward scorer")
        return self.reward_scorer

    def rewards(self, traj: Trajectories, images: torch.Tensor) -> torch.Tensor:
        """The reward scorer's [R] scores of `images` (one per row of `traj`, read with its prompt); not recorded."""
        scorer = self._reward_scorer()
        _require_method(scorer, "reward")
        prompts = scoring_prompts(self.generator, [traj.prompts[int(p)] for p in traj.prompt_index], scorer)
        with self.cost.timer("reward"):
            r = scorer_output(scorer.reward(images, prompts), scorer, "reward", len(images))
        self.cost.scorer_calls += len(images)
        self.diagnostic_wall += count_scorer(self.cost, scorer, "reward", len(images), int(images.shape[-1]),
                                             lambda: scorer.reward(images, prompts))
        check_finite(r, f"{scorer_name(scorer)} reward")
        return r

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The feature scorer's [R, ...] vectors or maps of `images`."""
        if self.feature_scorer is None:
            raise ArscaleError("this strategy needs a feature scorer")
        _require_method(self.feature_scorer, "features")
        with self.cost.timer("features"):
            f = scorer_output(self.feature_scorer.features(images), self.feature_scorer, "features", len(images))
        self.cost.scorer_calls += len(images)
        self.diagnostic_wall += count_scorer(self.cost, self.feature_scorer, "features", len(images),
                                             int(images.shape[-1]), lambda: self.feature_scorer.features(images))
        return f

    def score_now(self, traj: Trajectories, column: int) -> torch.Tensor:
        """Decode at the reward's input size, score, and record in the row's reward history."""
        r = self.rewards(traj, self.decode(traj, int(self._reward_scorer().input_size)))
        traj.record("reward", column, r)
        return r

    # -- per-prompt helpers -----------------------------------------------------------------------
    def groups(self, traj: Trajectories) -> Iterator[tuple[int, torch.Tensor]]:
        """(prompt, its rows) for every prompt with rows, in prompt order."""
        for p in range(traj.num_prompts):
            rows = traj.rows_of(p)
            if len(rows):
                yield p, rows

    def rng(self, prompt: int, purpose: int) -> torch.Generator:
        """Selection randomness of one prompt, from the global prompt index (not the batch layout)."""
        if not isinstance(purpose, numbers.Integral):
            raise ArscaleError(f"Search.rng: purpose must be an int that tells a prompt's draws apart, got {purpose!r}")
        return generator_for(mix(self.seed, self.prompt_offset + prompt, 0x5E1EC7), purpose)

    # -- the end ----------------------------------------------------------------------------------
    def result(self, traj: Trajectories, images: torch.Tensor, scores: torch.Tensor | None, strategy: str,
               config: dict[str, Any]) -> SearchResult:
        """Candidates per prompt, the best-scored (or, unscored, the first) chosen; closes the cost record."""
        with self.cost.timer("selection"):
            if scores is not None:
                check_finite(scores, "final reward")
            traj.finish_tree()
            pixels = to_uint8(images)
            candidates: list[list[Candidate]] = [[] for _ in range(traj.num_prompts)]
            for p, rows in self.groups(traj):
                best = int(rows[int(torch.argmax(scores[rows]))]) if scores is not None else int(rows[0])
                for r in rows.tolist():
                    candidates[p].append(Candidate(p, int(traj.node[r]), pixels[r],
                                                   None if scores is None else float(scores[r]), r == best))
        missing = [p for p, c in enumerate(candidates) if not c]
        if missing:
            raise RuntimeError(f"prompts {missing} lost all their rows")
        self.cost.total_wall = time.perf_counter() - self._t0 - self.diagnostic_wall
        config = dict(config)
        for key, scorer in (("reward", self.reward_scorer), ("features", self.feature_scorer)):
            if key in config and scorer is not None:  # the scorer used, where run() was given one over the config's
                config[key] = scorer_name(scorer)
        return SearchResult(list(traj.prompts), candidates, traj.tree, self.cost, strategy, config, self.telemetry)


def make_search(generator: Any, *, seed: int, prompt_offset: int, scorer: Any = None,
                reward_name: str | None = None, features: Any = None, feature_name: str | None = None) -> Search:
    """A `Search` with the reward scorer given (or loaded by name) and the feature scorer given (or loaded by
    name). Scorers load before the search's clock starts: loading is not the method's cost."""
    check_scorer_argument(scorer, "scorer")
    check_scorer_argument(features, "features")
    device = getattr(generator, "device", "cpu")
    reward = cached_scorer(scorer, device) if isinstance(scorer, str) else scorer  # a name works too
    if reward is None and reward_name is not None:  # "" names no scorer: refused by name, not taken as none
        reward = cached_scorer(reward_name, device)
    if isinstance(features, str):
        features = cached_scorer(features, device)
    if features is None and feature_name is not None:
        features = cached_scorer(feature_name, device)
    return Search(generator, seed=seed, prompt_offset=prompt_offset, reward=reward, features=features)


def check_scorer_argument(scorer: Any, what: str) -> None:
    """None, a registered name, or an object with `reward` or `features` (what a strategy's `scorer=` takes)."""
    if scorer is None or isinstance(scorer, str):
        return
    if not (callable(getattr(scorer, "reward", None)) or callable(getattr(scorer, "features", None))):
        raise ArscaleError(f"{what} must be a scorer object or a registered name, got {scorer!r:.80} "
                           f"({type(scorer).__name__})")
    size = getattr(scorer, "input_size", None)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ArscaleError(f"scorer {scorer_name(scorer)!r} needs an `input_size`, the side of the square images it "
                           f"reads (images are decoded or resized to it), got {size!r}")


def _whole_number(value: Any, what: str, least: int, bound: str) -> int:
    """`value` as an int: a whole number (numpy ints too, bools not) no smaller than `least`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArscaleError(f"{what} must be a whole number, got {value!r}")
    if int(value) < least:
        raise ArscaleError(f"{what} must be {bound}, got {value}")
    return int(value)


def check_prompt_offset(prompt_offset: int) -> int:
    """The global index of a run's first prompt (seeds follow it), checked as the seed is: a whole number ≥ 0."""
    return _whole_number(prompt_offset, "prompt_offset", 0, "≥ 0")


def check_n(n: int) -> int:
    """A strategy's budget `n` as an int: a whole number ≥ 1, else one line."""
    return _whole_number(n, "N (candidates per prompt)", 1, "at least 1")


def scoring_prompts(generator: Any, prompts: Sequence[Any], scorer: Any = None) -> list[Any]:
    """What a reward scorer reads for each prompt: the generator's `prompt_text` (a class-conditional model's
    class names), else the prompt itself; a scorer with `reads_prompts = False` (image-only) gets them as is."""
    text = getattr(generator, "prompt_text", None)
    if not callable(text) or not getattr(scorer, "reads_prompts", True):
        return list(prompts)
    return [text(p) for p in prompts]


def check_prompt_list(prompts: Sequence[Any]) -> list[Any]:
    """A strategy runs a list of prompts; one bare string would read as a list of characters."""
    if isinstance(prompts, (str, bytes)):
        raise ArscaleError(f"prompts must be a list, got one string {prompts[:40]!r}: pass [prompt]")
    prompts = list(prompts)
    if not prompts:
        raise ArscaleError("no prompts to run")
    for i, p in enumerate(prompts):
        if isinstance(p, str) or (isinstance(class_index(p), int) and not isinstance(p, bool)):
            continue
        what = "None (the unconditional branch is the generator's own)" if p is None else f"{p!r} ({type(p).__name__})"
        raise ArscaleError(f"prompt {i} is {what}: give text, or a class index for a class-conditional model")
    return prompts
