"""The `arscale` command.

Each command group lives in its own module under `arscale.commands` and exposes
`register(subparsers)`; the handler it sets as `func` receives the parsed args and returns an
exit code. User errors are raised as `ArscaleError` and printed as one line, never a traceback.
Plugins (`arscale.plugins`) are imported before the parser is built.
"""

from __future__ import annotations

import argparse
import codecs
import importlib
import signal
import sys
import threading
import warnings

from arscale import __version__
from arscale.errors import ArscaleError, ArscaleWarning
from arscale.plugins import load_plugins

# Command modules, in the order they appear in `arscale --help`.
COMMAND_MODULES = [
    "arscale.commands.generate",
    "arscale.commands.shapeworld",
    "arscale.commands.eval",
    "arscale.commands.train",
    "arscale.commands.bench",
    "arscale.commands.compare",
]


# Options that name a file or folder: given as '' (an unset shell variable) they would read as "not given" (the
# shipped weights, no plot, a whole tokenizer run for --decoder-only) or as the working folder.
PATH_OPTIONS = ("config", "weights", "model_weights", "scorer_weights", "class_names", "json", "plot", "state_dir",
                "tokenizer", "init", "init_from", "partial_tokenizer", "decoder_only", "generator")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error: the usage block is one --help away. Options are
    spelt out (no `--step` for `--steps`). Subcommand parsers inherit the class."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command parser that `args` went through, for an error about its options."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            if chosen in action.choices:
                return _innermost(action.choices[chosen], args)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="arscale",
        description="Test-time scaling for autoregressive image generators.",
    )
    parser.add_argument("--version", action="version", version=f"arscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # command group not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    restore = _escape_what_stdout_cannot_encode()
    terminated: list[int] = []  # the SIGTERM that `_main` turned into a KeyboardInterrupt, if any
    try:
        return _main(argv, terminated)
    except KeyboardInterrupt:  # in a command, or while the commands load (torch's import takes seconds)
        print("arscale: terminated" if terminated else "arscale: interrupted", file=sys.stderr)
        return 143 if terminated else 130
    finally:
        restore()


def _escape_what_stdout_cannot_encode():
    """A stdout in a legacy code page (Windows gives a redirected one cp1252) escapes what it cannot encode (the
    tables' −, --help's ≥, a prompt's λ) as Python's stderr does, rather than ending the command in a traceback;
    returns what puts the stream back."""
    stream = sys.stdout
    try:
        legacy = codecs.lookup(stream.encoding).name != "utf-8" and stream.errors == "strict"
    except (AttributeError, LookupError, TypeError):
        return lambda: None
    if not legacy or not callable(getattr(stream, "reconfigure", None)):
        return lambda: None
    stream.reconfigure(errors="backslashreplace")
    return lambda: stream.reconfigure(errors="strict")


def _main(argv: list[str] | None, terminated: list[int]) -> int:
    try:  # plugins first: their strategies and scorers are choices of the parser
        load_plugins()
    except ArscaleError as exc:
        print(f"arscale: error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the command that would have taken them, not by `arscale` itself
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    empty = [dest for dest in PATH_OPTIONS if isinstance(getattr(args, dest, None), str) and not getattr(args, dest).strip()]
    if empty:
        print(f"arscale: error: --{empty[0].replace('_', '-')} is empty: name a file or folder", file=sys.stderr)
        return 2
    restore = _terminate_as_interrupt(terminated)
    import torch  # the commands' parser has imported it already

    threads = torch.get_num_threads()  # --threads holds for the command: a caller's process gets its own back
    rng, tf32 = torch.get_rng_state(), (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    gpu = torch.cuda.current_device() if torch.cuda.is_initialized() else 0  # `--device cuda:N` makes N current
    gpu_rngs = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None  # a trainer reseeds them too
    seed = torch.initial_seed()  # what CUDA's generators start from when the command is the one to start CUDA
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _as_note(warnings.showwarning)
            return int(args.func(args) or 0)
    except ArscaleError as exc:
        print(f"arscale: error: {exc}", file=sys.stderr)
        return 2
    finally:
        restore()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.set_rng_state(rng)  # a trainer's --seed, TF32 on CUDA: the command's, not the caller's
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        if torch.cuda.is_initialized() and torch.cuda.current_device() != gpu:
            torch.cuda.set_device(gpu)
        if gpu_rngs is not None:
            torch.cuda.set_rng_state_all(gpu_rngs)
        elif torch.cuda.is_initialized():  # as the caller's own first CUDA use would have found them: seeded as
            torch.cuda.manual_seed_all(seed)  # its CPU stream (`torch.manual_seed` seeds both; unseeded, one default)


def _terminate_as_interrupt(terminated: list[int]):
    """A SIGTERM (a scheduler's time limit, `scancel`, `kill`) stops the command as Ctrl-C does: a trainer saves
    after its step, a bench keeps its finished prompts and the time spent. Left alone where someone else handles
    SIGTERM; returns what puts the old handler back."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:  # a launcher's own handler stays
        return lambda: None

    def on_terminate(signum, frame):
        terminated.append(signum)
        handler = signal.getsignal(signal.SIGINT)  # a trainer's: save after this step
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:  # SIGINT ignored (a background job) or left to the system: stop all the same
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_terminate)

    def restore():
        if signal.getsignal(signal.SIGTERM) is on_terminate:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return restore


def _as_note(show):
    """arscale's own warnings (`ArscaleWarning`: a setting that cannot act as asked) read as the command line's
    other notes; anyone else's keep Python's format."""

    def note(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ArscaleWarning):
            print(f"note: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return note


if __name__ == "__main__":
    sys.exit(main())
