"""What each strategy's final images contain: mean ShapeWorld objects detected per image, by tag.

Reads `arscale bench` output folders (shard folders may be listed together) and runs the exact ShapeWorld
detector on every prompt's first final image. Also reports, for two_object prompts, how often the image
holds one shape class or none — the failure where both objects are drawn as the same shape. Used to explain
where a search's gains and losses come from (RESULTS.md, Session 12); no model is loaded.

    python benchmarks/objects_per_image.py runs/bench [more folders] [--labels raw,scaling-ar] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from arscale.shapeworld.evaluate import detect
from arscale.shapeworld.grammar import TAGS


def final_images(roots: list[Path]) -> dict[str, list[tuple[str, Path]]]:
    """label → [(tag, first final image)] over every finished prompt under the folders."""
    out: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for root in roots:
        for record_path in sorted(root.glob("*/n*/*/record.json")):
            record = json.loads(record_path.read_text())
            samples = sorted((record_path.parent / "samples").glob("*.png"))
            if samples:
                out[f"{record['label']} (N={record['n']})"].append((record["tag"], samples[0]))
    return out


def summarise(images: list[tuple[str, Path]]) -> dict:
    counts: dict[str, list[int]] = defaultdict(list)
    one_class = two_object = 0
    for tag, path in images:
        detections = detect(np.asarray(Image.open(path).convert("RGB")))
        counts[tag].append(len(detections))
        if tag == "two_object":
            two_object += 1
            one_class += len({d.cls for d in detections}) <= 1
    every = [c for values in counts.values() for c in values]
    return {"prompts": len(every),
            "objects_per_image": {tag: float(np.mean(counts[tag])) for tag in TAGS if counts[tag]} | {"all": float(np.mean(every))},
            "two_object_one_class": [one_class, two_object]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--labels", default="", help="comma-separated labels to keep (default: all)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        print(f"not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    by_label = final_images(args.folders)
    keep = {x for x in args.labels.split(",") if x}
    if keep:
        by_label = {k: v for k, v in by_label.items() if k.split(" (")[0] in keep}
    if not by_label:
        print("no finished prompts with images under these folders", file=sys.stderr)
        return 2
    results = {label: summarise(images) for label, images in sorted(by_label.items())}
    tags = [t for t in TAGS if any(t in r["objects_per_image"] for r in results.values())]
    print("| run | prompts | " + " | ".join(tags) + " | all | two_object with one class or none |")
    print("|---|---|" + "---|" * (len(tags) + 2))
    for label, r in results.items():
        per = r["objects_per_image"]
        cells = " | ".join(f"{per[t]:.2f}" if t in per else "–" for t in tags)
        one, total = r["two_object_one_class"]
        print(f"| {label} | {r['prompts']} | {cells} | {per['all']:.2f} | {one} / {total} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
