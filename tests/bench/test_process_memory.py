"""The benchmark scripts' memory readings (benchmarks/process_memory.py): /proc on Linux, psutil or getrusage
elsewhere, "–" where nothing tells, so the scripts run on macOS and Windows too."""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def memory(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.delitem(sys.modules, "process_memory", raising=False)
    import process_memory

    return process_memory


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_linux_reads_current_and_peak_from_proc(memory):
    now, peak = memory.current_mib(), memory.peak_mib()
    assert 10 < now <= peak < 1e6


def test_without_proc_or_psutil_the_peak_comes_from_getrusage(memory, monkeypatch):
    pytest.importorskip("resource")
    import resource

    monkeypatch.setattr(memory, "_proc_status_kib", lambda field: None)  # macOS: no /proc
    monkeypatch.setattr(memory, "_psutil_info", lambda: None)  # and no psutil
    assert memory.current_mib() is None
    unit = 2**20 if sys.platform == "darwin" else 1024
    assert memory.peak_mib() == pytest.approx(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / unit, rel=0.05)
    assert memory.as_cell(None) == "–" and memory.as_cell(12.345) == "12.3" and memory.as_cell(12.5, 0) == "12"


def test_without_anything_that_tells_the_readings_are_none(memory, monkeypatch):
    monkeypatch.setattr(memory, "_proc_status_kib", lambda field: None)
    monkeypatch.setattr(memory, "_psutil_info", lambda: None)
    monkeypatch.setitem(sys.modules, "resource", None)  # Windows: no such module
    assert memory.current_mib() is None and memory.peak_mib() is None
