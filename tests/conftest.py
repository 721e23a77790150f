"""Puts this folder on the import path, so every test folder can use `tiny_shapeworld_var` and `tiny_families`;
the `registries` fixture for tests that register strategies, scorers or plugins; `fake_cuda` for a machine that
reports GPUs; every test leaves the process's Ctrl-C and SIGTERM handlers as it found them; the suite runs torch on
one thread."""

import signal
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models run fastest on one thread, and every test then sees the same thread count whichever ran first."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def signal_handlers():
    """A trainer's `Timer` left open by a test holds Ctrl-C until it is collected; a later command's SIGTERM, which
    defers to that handler, would then not stop (what the test of it caught, depending on the collector's timing)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        if signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


@pytest.fixture
def registries(monkeypatch):
    """Registrations made by a test (strategies, scorers, loaded plugins) are undone after it."""
    from arscale import plugins
    from arscale.scorers.base import SCORERS
    from arscale.search.base import STRATEGIES

    saved = dict(STRATEGIES), dict(SCORERS), set(plugins._loaded)
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    yield
    for registry, before in zip((STRATEGIES, SCORERS), saved[:2]):
        registry.clear()
        registry.update(before)
    plugins._loaded.clear()
    plugins._loaded.update(saved[2])


@pytest.fixture
def saved_figures(monkeypatch):
    """The figures arscale saves, in order: it draws outside pyplot, so they are caught at `Figure.savefig`."""
    from matplotlib.figure import Figure

    caught, save = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: caught.append(self) or save(self, *args, **kwargs))
    return caught


@pytest.fixture
def fake_cuda(monkeypatch):
    """`fake_cuda(count)`: a machine that reports `count` CUDA devices; returns the list that records `set_device`
    calls (recorded, not made)."""
    def report(count: int) -> list[int]:
        current: list[int] = []
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "set_device", lambda index: current.append(index))
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "fake GPU")
        return current

    return report
