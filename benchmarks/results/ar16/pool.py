"""ScalingAR N = 8 against raw sampling over every fresh draw with today's defaults, from the committed summaries:
the draws Session 23's `pool.py` lists (Sessions 15–23), then every `session<S>-fresh-draws/d*` folder of a later
session, so a session adds its draws' folders and nothing else. `--through S` stops after session S, which
reproduces that session's RESULTS number (e.g. `--through 27`: twenty-eight draws). Prints each draw, the pooled
gain over the earlier sessions' draws and over all, and the gain per tag.

    python benchmarks/results/ar16/pool.py [--through S]
"""

import argparse
import importlib.util
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _session_pool(session: int):
    """Session `session`'s `pool.py` as a module (these folders are not packages)."""
    spec = importlib.util.spec_from_file_location(f"pool{session}", HERE / f"session{session}-fresh-draws" / "pool.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pool23, pool24 = _session_pool(23), _session_pool(24)  # the draws up to 23 and `summaries`, `report`; `per_tag`
report, per_tag = pool23.report, pool24.per_tag


def later_draws(through: int | None = None) -> list[tuple[int, str]]:
    """(session, draw) for every draw folder of Sessions 24 onward, in session order, up to `through`."""
    found = []
    for folder in HERE.glob("session*-fresh-draws/d*"):
        session = int(re.match(r"session(\d+)-", folder.parent.name).group(1))
        if session > 23 and (through is None or session <= through) and folder.is_dir():
            found.append((session, f"{folder.parent.name}/{folder.name}"))
    return sorted(found)


def draws(through: int | None = None) -> list[str]:
    """Every fresh draw with today's defaults through session `through` (all when None)."""
    return pool23.DRAWS + [draw for _, draw in later_draws(through)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--through", type=int, default=None, metavar="S", help="stop after session S (24 or later)")
    args = parser.parse_args()
    if args.through is not None and args.through < 24:
        parser.error("--through takes a session from 24 on; earlier pools are Session 23's pool.py")
    selected = later_draws(args.through)
    last = selected[-1][0] if selected else 23
    earlier = len(pool23.DRAWS) + sum(1 for session, _ in selected if session < last)
    report(draws(args.through), earlier)
    per_tag(draws(args.through))
