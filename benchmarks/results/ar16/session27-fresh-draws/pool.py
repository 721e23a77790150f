"""ScalingAR N = 8 against raw sampling, pooled over every fresh draw with the defaults of Sessions 15–27, from
the committed summaries (Session 26's `pool.py` with this session's two draws), and per tag. Later sessions'
`pool.py` import this one and add their draws."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "pool26", Path(__file__).resolve().parent.parent / "session26-fresh-draws" / "pool.py")
pool26 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pool26)

DRAWS = pool26.DRAWS + ["session27-fresh-draws/d2701", "session27-fresh-draws/d2702"]
report, per_tag = pool26.report, pool26.per_tag

if __name__ == "__main__":
    report(DRAWS, len(pool26.DRAWS))
    per_tag(DRAWS)
