"""ScalingAR N = 8 against raw sampling, pooled over every fresh draw with the defaults of Sessions 15–26, from
the committed summaries (Session 25's `pool.py` with this session's two draws), and per tag. Later sessions'
`pool.py` import this one and add their draws."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "pool25", Path(__file__).resolve().parent.parent / "session25-fresh-draws" / "pool.py")
pool25 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pool25)

DRAWS = pool25.DRAWS + ["session26-fresh-draws/d2601", "session26-fresh-draws/d2602"]
report, per_tag = pool25.report, pool25.per_tag

if __name__ == "__main__":
    report(DRAWS, len(pool25.DRAWS))
    per_tag(DRAWS)
