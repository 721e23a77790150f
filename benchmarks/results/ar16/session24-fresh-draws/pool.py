"""ScalingAR N = 8 against raw sampling, pooled over every fresh draw with the defaults of Sessions 15–24, from
the committed summaries (Session 23's `pool.py` with this session's two draws), and per tag. Later sessions'
`pool.py` import this one and add their draws."""

import importlib.util
import statistics
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "pool23", Path(__file__).resolve().parent.parent / "session23-fresh-draws" / "pool.py")
pool23 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pool23)

DRAWS = pool23.DRAWS + ["session24-fresh-draws/d2401", "session24-fresh-draws/d2402"]
report = pool23.report


def per_tag(draws: list[str]) -> None:
    """Each tag's accuracies and gain over `draws` (SE from the draws' spread): where the gain comes from."""
    for tag in pool23.summaries(draws[0])[0]["tags"]:
        pairs = [tuple(100 * s["tags"][tag]["accuracy"] for s in pool23.summaries(d)) for d in draws]
        diffs = [b - a for a, b in pairs]
        print(f"{tag:15s} raw {statistics.mean(a for a, _ in pairs):5.1f}  "
              f"scaling-ar {statistics.mean(b for _, b in pairs):5.1f}"
              f"  {statistics.mean(diffs):+5.1f} ± {statistics.stdev(diffs) / len(diffs) ** 0.5:.1f}")


if __name__ == "__main__":
    report(DRAWS, len(pool23.DRAWS))
    per_tag(DRAWS)
