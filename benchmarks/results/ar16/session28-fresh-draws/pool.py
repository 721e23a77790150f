"""ScalingAR N = 8 against raw sampling, pooled over every fresh draw with the defaults of Sessions 15–28, from
the committed summaries (Session 27's `pool.py` with this session's two draws), and per tag. Later sessions'
`pool.py` import this one and add their draws."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "pool27", Path(__file__).resolve().parent.parent / "session27-fresh-draws" / "pool.py")
pool27 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pool27)

DRAWS = pool27.DRAWS + ["session28-fresh-draws/d2801", "session28-fresh-draws/d2802"]
report, per_tag = pool27.report, pool27.per_tag

if __name__ == "__main__":
    report(DRAWS, len(pool27.DRAWS))
    per_tag(DRAWS)
