"""This process's resident memory in MiB, for the benchmark scripts, on Linux, macOS and Windows: `current_mib`
and `peak_mib` read /proc on Linux, psutil elsewhere when it is installed, and the peak also from
`resource.getrusage` (macOS, BSD); None where nothing tells (a table then prints "–")."""

from __future__ import annotations

import os
import sys
from pathlib import Path

MIB = 2**20


def _proc_status_kib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:  # not Linux
        pass
    return None


def _psutil_info():
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process(os.getpid()).memory_info()


def current_mib() -> float | None:
    """The resident set size now."""
    kib = _proc_status_kib("VmRSS")
    if kib is not None:
        return kib / 1024
    info = _psutil_info()
    return None if info is None else info.rss / MIB


def peak_mib() -> float | None:
    """The largest resident set size so far."""
    kib = _proc_status_kib("VmHWM")
    if kib is not None:
        return kib / 1024
    info = _psutil_info()
    if info is not None and hasattr(info, "peak_wset"):  # Windows' own peak
        return info.peak_wset / MIB
    try:
        import resource
    except ImportError:  # Windows without psutil
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024  # macOS counts bytes, the BSDs KiB


def as_cell(mib: float | None, digits: int = 1) -> str:
    return "–" if mib is None else f"{mib:.{digits}f}"
