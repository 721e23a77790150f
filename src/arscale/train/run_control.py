"""What runs beside a trainer's loop: the `Timer` (elapsed time across resumes, checkpoint cadence, the time
limit, and a Ctrl-C that saves before stopping), its `progress` bar, and `release_trainer`, which closes what a
trainer that ended by an exception left open and removes an --out it made and left empty."""

from __future__ import annotations

import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from arscale.folders import remove_empty_folders

_LIVE_TIMERS: weakref.WeakSet = weakref.WeakSet()  # see `release_trainer`
_LIVE_BARS: weakref.WeakSet = weakref.WeakSet()  # likewise
_MADE_FOLDERS: list[Path] = []  # the --out folders trainers of this process made: see `release_trainer`
_STOPPED_BY_SIGNAL: list[int] = []  # a Ctrl-C (or a SIGTERM, which the CLI turns into one) stopped a trainer's loop


def progress(total: int, initial: int = 0, desc: str = "train") -> tqdm:
    bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, mininterval=5.0)
    _LIVE_BARS.add(bar)
    return bar


def stopped_by_signal() -> bool:
    """Whether a Ctrl-C or SIGTERM stopped the trainer's loop (it saved, but did not reach --steps)."""
    return bool(_STOPPED_BY_SIGNAL)


def release_trainer(failed: bool = False) -> None:
    """What a trainer that ended by an exception never reached: close every timer still holding Ctrl-C, its
    progress bars (so that the error comes on a line of its own) and its data workers; after a failure, remove
    an --out the run made and left without a file."""
    from arscale.train.scene_stream import close_live_streams

    for timer in list(_LIVE_TIMERS):
        timer.close()
    for bar in list(_LIVE_BARS):
        bar.close()
    close_live_streams()
    _STOPPED_BY_SIGNAL.clear()
    if failed:
        for folder in _MADE_FOLDERS:
            remove_empty_folders(folder)
    _MADE_FOLDERS.clear()


class Timer:
    """Elapsed wall time including earlier runs (from the resumed state), and checkpoint cadence.

    A trainer stops when `out_of_time()`: at the time limit, or after a Ctrl-C, which finishes the step and
    then saves the state and weights like the time limit does (a second Ctrl-C stops at once, unsaved)."""

    def __init__(self, already: float = 0.0, checkpoint_minutes: float = 5.0, limit_minutes: float = 0.0):
        _LIVE_TIMERS.add(self)
        self.start = time.monotonic()
        self.already = already
        self.last_save = self.start
        self.every = checkpoint_minutes * 60
        self.limit = limit_minutes * 60
        self.said_so = False
        self.interrupted = False
        self.closed = False
        self._restore: Callable[[], Any] = lambda: None
        self._catch_interrupt()

    def _catch_interrupt(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)
        if previous is None:  # installed outside Python: put Python's own back afterwards
            previous = signal.default_int_handler
        alive = weakref.ref(self)  # once the trainer is done with this timer, Ctrl-C is what it was before

        def on_interrupt(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGINT, previous)
            timer = alive()
            if timer is None or timer.closed:
                if callable(previous):
                    previous(signum, frame)
                elif previous != signal.SIG_IGN:
                    raise KeyboardInterrupt
                return
            timer.interrupted = True
            _STOPPED_BY_SIGNAL.append(signum)
            tqdm.write("interrupted: saving the state after this step; the same command (without --fresh) resumes "
                       "it (Ctrl-C again stops without saving)", file=sys.stderr)

        def restore() -> None:
            if signal.getsignal(signal.SIGINT) is on_interrupt:
                signal.signal(signal.SIGINT, previous)

        signal.signal(signal.SIGINT, on_interrupt)
        self._restore = restore

    def close(self) -> None:
        """The training loop is over: Ctrl-C is what it was before (during the final save, too)."""
        self.closed = True
        self._restore()

    @property
    def elapsed(self) -> float:
        return self.already + time.monotonic() - self.start

    def should_save(self) -> bool:
        if time.monotonic() - self.last_save >= self.every:
            self.last_save = time.monotonic()
            return True
        return False

    def out_of_time(self) -> bool:
        if self.interrupted:
            return True
        over = self.limit > 0 and time.monotonic() - self.start >= self.limit
        if over and not self.said_so:  # a run cut short should say so, and how to go on
            self.said_so = True
            tqdm.write(f"time limit of {self.limit / 60:g} min reached: stopping before --steps; the state is saved, "
                       "the same command (without --fresh) resumes it", file=sys.stderr)  # not into an open bar
        return over

    def seconds_left(self) -> float:
        return self.limit - (time.monotonic() - self.start)
