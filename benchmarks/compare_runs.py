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
    ap.add_argument("--label-a", default=None)
    ap.add_argument("--label-b", default=None)
    known, rest = ap.parse_known_args()
    names = [] if known.label_a is None and known.label_b is None else [known.label_a or "A", known.label_b or "B"]
    sys.exit(main(["compare", *rest, *(["--names", *names] if names else [])]))
