"""ScalingAR N = 8 against raw sampling, pooled over every fresh draw with the defaults of Sessions 15–23, from
the committed summaries (`arscale compare --pooled` reads per-prompt records, which are not committed). Later
sessions' `pool.py` import this one and add their draws."""

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRAWS = [f"session15-threshold-pool/d990{i}" for i in range(3, 8)] + [
    "session15-threshold-pool/ablations-draw40-99", "session16-step-windows/d9931", "session16-step-windows/d9932",
    "session17-fresh-draws/d9971", "session17-fresh-draws/d9972", "session18-fresh-draws/d9981",
    "session18-fresh-draws/d9982", "session19-fresh-draws/d9991", "session19-fresh-draws/d9992",
    "session21-model-size/ship_2102", "session21-model-size/ship_2103", "session22-fresh-draws/d2201",
    "session22-fresh-draws/d2202", "session23-fresh-draws/d2301", "session23-fresh-draws/d2302"]


# Session 15's first two draws ran before the default changed: there `scaling-ar` is the previous default
# (threshold_pool "active", about 830 tokens) and `scaling-ar@unflagged` today's (session15-threshold-pool/README.md)
LABELS = {f"session15-threshold-pool/d990{i}": "scaling-ar@unflagged" for i in (3, 4)}


def summaries(draw: str) -> tuple[dict, dict]:
    """A draw's raw-sampling summary and its ScalingAR N = 8 one (with today's defaults)."""
    raw = json.loads(next((ROOT / draw / "raw").glob("n*/summary.json")).read_text())
    return raw, json.loads((ROOT / draw / LABELS.get(draw, "scaling-ar") / "n8/summary.json").read_text())


def report(draws: list[str], earlier: int) -> None:
    """Each draw's accuracies and gain, then the pooled gain over the first `earlier` draws and over all."""
    rows = [(d, *(round(100 * s["overall"], 9) for s in summaries(d))) for d in draws]  # printed as table.md does
    for d, raw, run in rows:
        print(f"{d:45s} {raw:5.1f} {run:5.1f} {run - raw:+5.1f}")
    for subset in (rows[:earlier], rows):
        gains = [run - raw for _, raw, run in subset]
        gain, raw = statistics.mean(gains), statistics.mean(r for _, r, _ in subset)
        sd = statistics.stdev(gains)
        se = sd / len(gains) ** 0.5
        print(f"{len(subset)} draws: gain {gain:+.2f} ± {se:.2f} points on raw {raw:.2f}, relative "
              f"{100 * gain / raw:+.2f} ± {100 * se / raw:.2f} % (between-draw SD {sd:.2f})")


if __name__ == "__main__":
    report(DRAWS, 18)
