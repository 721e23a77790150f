"""Paired comparison of two `arscale bench` output folders: now `arscale compare` (see its --help).

Kept so that the commands recorded in RESULTS.md still run; `--label-a X --label-b Y` become `--names X Y`.

    python benchmarks/compare_runs.py OLD_OUT NEW_OUT [--label-a NAME] [--label-b NAME] [--json FILE]
    python benchmarks/compare_runs.py OUT OUT --match scaling-ar scaling-ar@end   # two variants, one folder
"""

from __future__ import annotations

import argparse
import sys

from arscale.cli import main

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    known, rest = ap.parse_known_args()
    sys.exit(main(["compare", *rest, "--names", known.label_a, known.label_b]))
