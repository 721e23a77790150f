"""ScalingAR N = 8 against raw sampling, pooled over every fresh draw with the defaults of Sessions 15–24, from
the committed summaries (`arscale compare --pooled` reads per-prompt records, which are not committed)."""

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRAWS = [f"session15-threshold-pool/d990{i}" for i in range(3, 8)] + [
    "session15-threshold-pool/ablations-draw40-99", "session16-step-windows/d9931", "session16-step-windows/d9932",
    "session17-fresh-draws/d9971", "session17-fresh-draws/d9972", "session18-fresh-draws/d9981",
    "session18-fresh-draws/d9982", "session19-fresh-draws/d9991", "session19-fresh-draws/d9992",
    "session21-model-size/ship_2102", "session21-model-size/ship_2103", "session22-fresh-draws/d2201",
    "session22-fresh-draws/d2202", "session23-fresh-draws/d2301", "session23-fresh-draws/d2302",
    "session24-fresh-draws/d2401", "session24-fresh-draws/d2402"]


def overall(path: Path) -> float:
    return 100 * json.loads(path.read_text())["overall"]


rows = [(d, overall(next((ROOT / d / "raw").glob("n*/summary.json"))), overall(ROOT / d / "scaling-ar/n8/summary.json"))
        for d in DRAWS]
for d, raw, run in rows:
    print(f"{d:45s} {raw:5.1f} {run:5.1f} {run - raw:+5.1f}")
for subset in (rows[:20], rows):
    gains = [run - raw for _, raw, run in subset]
    gain, raw = statistics.mean(gains), statistics.mean(r for _, r, _ in subset)
    sd = statistics.stdev(gains)
    se = sd / len(gains) ** 0.5
    print(f"{len(subset)} draws: gain {gain:+.2f} ± {se:.2f} points on raw {raw:.2f}, relative {100 * gain / raw:+.2f} "
          f"± {100 * se / raw:.2f} % (between-draw SD {sd:.2f})")

# per tag, over every draw: where the gain comes from
for tag in json.loads(next((ROOT / DRAWS[0] / "raw").glob("n*/summary.json")).read_text())["tags"]:
    pairs = []
    for d in DRAWS:
        raw = json.loads(next((ROOT / d / "raw").glob("n*/summary.json")).read_text())["tags"][tag]["accuracy"]
        run = json.loads((ROOT / d / "scaling-ar/n8/summary.json").read_text())["tags"][tag]["accuracy"]
        pairs.append((100 * raw, 100 * run))
    diffs = [b - a for a, b in pairs]
    print(f"{tag:15s} raw {statistics.mean(a for a, _ in pairs):5.1f}  scaling-ar {statistics.mean(b for _, b in pairs):5.1f}"
          f"  {statistics.mean(diffs):+5.1f} ± {statistics.stdev(diffs) / len(diffs) ** 0.5:.1f}")
