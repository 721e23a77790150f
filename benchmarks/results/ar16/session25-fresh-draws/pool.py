"""ScalingAR N = 8 against raw sampling, pooled over every fresh draw with the defaults of Sessions 15–25, from
the committed summaries (Session 24's `pool.py` with this session's two draws), and per tag. Later sessions'
`pool.py` import this one and add their draws."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "pool24", Path(__file__).resolve().parent.parent / "session24-fresh-draws" / "pool.py")
pool24 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pool24)

DRAWS = pool24.DRAWS + ["session25-fresh-draws/d2501", "session25-fresh-draws/d2502"]
report, per_tag = pool24.report, pool24.per_tag

if __name__ == "__main__":
    report(DRAWS, len(pool24.DRAWS))
    per_tag(DRAWS)
