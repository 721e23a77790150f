import json, glob, math, sys
from pathlib import Path
root = Path(__file__).resolve().parent.parent
dirs = ["session15-threshold-pool/d990%d" % i for i in range(3, 8)] + ["session15-threshold-pool/ablations-draw40-99",
        "session16-step-windows/d9931", "session16-step-windows/d9932", "session17-fresh-draws/d9971",
        "session17-fresh-draws/d9972", "session18-fresh-draws/d9981", "session18-fresh-draws/d9982",
        "session19-fresh-draws/d9991", "session19-fresh-draws/d9992", "session21-model-size/ship_2102",
        "session21-model-size/ship_2103", "session22-fresh-draws/d2201", "session22-fresh-draws/d2202", "session23-fresh-draws/d2301", "session23-fresh-draws/d2302"]
rows = []
for d in dirs:
    r = json.load(open(next((root / d / "raw").glob("n*/summary.json")))); s = json.load(open(root / d / "scaling-ar/n8/summary.json"))
    rows.append((d, r["overall"] * 100, s["overall"] * 100))
for d, a, b in rows: print(f"{d:45s} {a:5.1f} {b:5.1f} {b-a:+5.1f}")
import statistics
for subset, name in ((rows[:18], "18"), (rows, "20")):
    gain = sum(b - a for _, a, b in subset) / len(subset); raw = sum(a for _, a, _ in subset) / len(subset)
    print(name, "draws: gain %+.2f raw %.2f rel %+.2f%%" % (gain, raw, 100 * gain / raw))
    g = [b - a for _, a, b in subset]; sd = statistics.stdev(g); se = sd / len(g) ** 0.5
    print("   between-draw SD %.2f, SE of mean %.2f points, rel SE %.2f%%" % (sd, se, 100 * se / raw))
