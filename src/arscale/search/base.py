"""The strategy interface, config serialisation and the registry.

A strategy is a small loop over a generator: it decides which rows live and never touches model
internals. Its config is a dataclass that round-trips to JSON.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import numbers
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from arscale.errors import ArscaleError
from arscale.registry import check_registration, resolve_target
from arscale.search.result import SearchResult


class StrategyConfig:
    """Mixin for config dataclasses: JSON round trip; unknown keys and values of the wrong type are rejected
    in one line. A config may map the paper's symbols to its field names in `symbols` (error hints only)."""

    symbols: ClassVar[dict[str, str]] = {}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[arg-type]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        if not isinstance(data, dict):
            raise ArscaleError(f"a {cls.__name__} is a JSON object of field: value, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        for key in data:
            if not names:
                raise ArscaleError(f"{cls.__name__} has no fields: this strategy takes no config, got {key!r}")
            if key not in names:
                raise ArscaleError(f"unknown {cls.__name__} field {key!r}{_suggestion(key, names, cls.symbols)}; "
                                   f"known fields: {', '.join(names)}")
        try:
            hints = typing.get_type_hints(cls)
        except (NameError, TypeError):  # annotations that cannot be evaluated here are not checked
            hints = {}
        for key, value in data.items():
            if not _matches(value, hints.get(key, Any)):
                raise ArscaleError(f"{cls.__name__}.{key} must be {_describe(hints[key])}, got {value!r} "
                                   f"({type(value).__name__})")
        return cls(**copy.deepcopy(data))  # the config owns its lists: the caller's dict stays the caller's

    def check(self) -> None:
        """Validate the fields as they are now, as `from_dict` does: a strategy calls this when it runs, so a
        field changed after construction (`strategy.config.lam = -5`) is refused, not used."""
        type(self).from_dict(self.to_dict())

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))


def _suggestion(key: str, names: Sequence[str], symbols: dict[str, str]) -> str:
    if key in symbols:
        return f" (the paper's {key} is {symbols[key]!r})"
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON-decoded value fits a config field's annotation (ints pass as floats; bools are not
    numbers). Annotations this does not know pass."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and Ellipsis not in args:  # tuple[int, str]: one type per position
            return len(value) == len(args) and all(_matches(v, h) for v, h in zip(value, args))
        return all(_matches(v, args[0] if args else Any) for v in value)
    return True


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is tuple and typing.get_args(hint) and Ellipsis not in typing.get_args(hint):
        return f"a list [{', '.join(_describe(h) for h in typing.get_args(hint))}]"
    if typing.get_origin(hint) in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        plural = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
        return f"a list of {plural.get(args[0], str(args[0]))}" if args else "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


@runtime_checkable
class Strategy(Protocol):
    """What `make_strategy`, `arscale generate` and `arscale bench` need of a strategy class: a `Config`
    dataclass deriving `StrategyConfig` (class attribute), `__init__(config)`, and the members below.
    Optional: `uses_reward = False` where `scorer` is ignored, `write_extras(result, out_dir)`
    (`strategy_extras`), and `budget_note(generator, n)` (`budget_note`)."""

    name: str
    config: StrategyConfig

    def run(self, generator: Any, prompts: Sequence[str], n: int, *, seed: int = 0, prompt_offset: int = 0,
            scorer: Any = None) -> SearchResult:
        """Spend a budget of `n` candidates per prompt (a list, even of one); return one chosen image per prompt.
        `scorer` is a scorer object or a registered name; without one, a strategy loads its config's default."""
        ...


# name -> "module:Class" (imported on first use, so the registry costs nothing) or a strategy class.
STRATEGIES: dict[str, Any] = {
    "raw": "arscale.search.raw:Raw",
    "best-of-n": "arscale.search.best_of_n:BestOfN",
    "importance": "arscale.search.importance:Importance",
    "tts-var": "arscale.search.tts_var:TTSVAR",
    "scaling-ar": "arscale.search.scaling_ar:ScalingAR",
}


# what no folder name may hold on some platform (Windows: \ : * ? " < > |): a strategy's name and a bench label
# each name a folder under `bench --out`
NOT_IN_FOLDER_NAMES = '/\\:*?"<>|'


def strategy_repr(strategy: Any) -> str:
    """A strategy as a notebook cell shows it: its class and settings, not `<... object at 0x...>`."""
    return f"{type(strategy).__name__}({strategy.config!r})"


def register_strategy(name: str, target: Any, *, replace: bool = False) -> None:
    """Make a strategy available to `make_strategy`, `arscale generate --strategy` and `arscale bench`.

    `target` is a class (or "module:Class") with a `Config` dataclass deriving `StrategyConfig`, a
    `name` and `run(generator, prompts, n, *, seed, prompt_offset, scorer)` (see `Strategy`, and
    docs/extending.md for a worked example). For the command line, register from a plugin module
    (`arscale.plugins`)."""
    check_registration(STRATEGIES, name, target, "strategy", replace)
    if any(c in name for c in NOT_IN_FOLDER_NAMES) or name in (".", ".."):  # `bench` names folders <out>/<name>/n<N>
        raise ArscaleError(f"a strategy name names bench folders: none of / \\ : * ? \" < > | in it, and not . or "
                           f"..; got {name!r}")
    STRATEGIES[name] = target


def strategy_extras(strategy: Any) -> Callable[[SearchResult, Path], Any] | None:
    """The strategy's optional `write_extras(result, out_dir)` (pictures `arscale generate` writes beside the
    images; returns the paths written): a method of the strategy or a function of its module."""
    fn = getattr(strategy, "write_extras", None)
    if fn is None:
        fn = getattr(sys.modules.get(type(strategy).__module__), "write_extras", None)
    return fn if callable(fn) else None


def budget_note(strategy: Any, generator: Any, n: int) -> str | None:
    """The strategy's optional `budget_note(generator, n)`: what a user should know before it spends budget `n` on
    `generator` (e.g. that its schedule there consults no reward); None where there is nothing to say."""
    fn = getattr(strategy, "budget_note", None)
    return fn(generator, n) if callable(fn) else None


def check_result(result: Any, strategy: str, prompts: int) -> SearchResult:
    """What a strategy's `run` returned, checked before `generate` / `bench` use it: a SearchResult with one list of
    candidates per prompt, exactly one of them chosen, each image uint8 [H, W, 3]. A plugin's slip is one line."""
    if not isinstance(result, SearchResult):
        raise ArscaleError(f"strategy {strategy!r}: run() must return a SearchResult, got {type(result).__name__}")
    if len(result.candidates) != prompts:
        raise ArscaleError(f"strategy {strategy!r}: run() returned candidates for {len(result.candidates)} prompt(s) "
                           f"of {prompts}")
    for p, per_prompt in enumerate(result.candidates):
        chosen = sum(bool(c.chosen) for c in per_prompt)
        if chosen != 1:
            raise ArscaleError(f"strategy {strategy!r}: prompt {p} has {chosen} chosen candidate(s) of "
                               f"{len(per_prompt)}; exactly one must be chosen")
        for c in per_prompt:
            image = c.image
            if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                    and image.shape[2] == 3):
                shape = getattr(image, "shape", None)
                raise ArscaleError(f"strategy {strategy!r}: a candidate's image must be a uint8 [H, W, 3] array, got "
                                   f"{type(image).__name__} {getattr(image, 'dtype', '')} {shape}")
            if c.score is not None:  # result.json and bench records store it as a JSON number
                c.score = _as_score(c.score, strategy)
    return result


def _as_score(score: Any, strategy: str) -> float:
    """A candidate's score as a float: a number, or a numpy or torch scalar (`scores[r]` of a tensor); else one line."""
    numpy_complex = isinstance(score, (np.generic, np.ndarray)) and score.dtype.kind == "c"  # float() only warns
    if not isinstance(score, bool) and not numpy_complex and (isinstance(score, numbers.Real)
                                                              or getattr(score, "ndim", None) == 0):
        try:
            return float(score)
        except (TypeError, ValueError, RuntimeError):  # a complex or text scalar
            pass
    raise ArscaleError(f"strategy {strategy!r}: a candidate's score must be a number or None, got {score!r:.60} "
                       f"({type(score).__name__})")


def read_config(text: str, what: str = "--config") -> dict[str, Any]:
    """A strategy config given on the command line: inline JSON (`{...}`) or the path of a JSON file."""
    source = text
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            if text.lstrip().startswith("["):
                raise ArscaleError(f"{what}: a config is a JSON object of fields {{...}}, got a list: {text!r}")
            raise ArscaleError(f"{what}: {text!r} is neither inline JSON ({{...}}) nor an existing JSON file")
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ArscaleError(f"{what}: cannot read {text}: {exc}") from None
    try:
        config = json.loads(source)
    except json.JSONDecodeError as exc:
        raise ArscaleError(f"{what}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; lists nested too deep
        raise ArscaleError(f"{what}: not a config ({exc})") from None
    if not isinstance(config, dict):
        raise ArscaleError(f"{what}: a config is a JSON object of fields, got {type(config).__name__}")
    return config


def make_strategy(name: str, config: dict[str, Any] | StrategyConfig | None = None) -> Strategy:
    """The strategy registered as `name`, configured by `config`.

    `name`: raw, best-of-n, importance, tts-var, scaling-ar, or one added with `register_strategy`.
    `config`: a dict of the strategy's `Config` fields (what `--config` holds; unknown fields and values of the
    wrong type are refused in one line), an instance of its `Config` class (checked the same way, through
    `to_dict`/`from_dict`; the strategy keeps a copy), or None for the defaults. The fields of each strategy
    are in docs/strategies.md. Run it with `strategy.run(generator, prompts, n, seed=..., scorer=...)`."""
    if name not in STRATEGIES:
        raise ArscaleError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    strategy_cls = resolve_target(STRATEGIES[name], f"strategy {name!r}:")
    config_cls = getattr(strategy_cls, "Config", None)
    if config_cls is None or not dataclasses.is_dataclass(config_cls) or not hasattr(config_cls, "from_dict"):
        raise ArscaleError(f"strategy {name!r} ({strategy_cls!r}) needs a `Config` dataclass deriving StrategyConfig")
    if isinstance(config, config_cls):
        config = config.to_dict()  # validated like a dict, and a copy: the caller's object stays the caller's
    elif isinstance(config, StrategyConfig) or dataclasses.is_dataclass(config):
        raise ArscaleError(f"strategy {name!r} takes a {config_cls.__name__} or a dict of its fields, got "
                           f"{type(config).__name__}")
    return strategy_cls(config_cls.from_dict({} if config is None else config))
