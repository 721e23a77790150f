"""Bench folders for tests: hand-made ones for the paired / pooled / table tests (one `record.json` per prompt), and
a real small bench run once per test module (`reference_bench`)."""

import json
from pathlib import Path


def write_records(root: Path, label: str, n: int, correct: list, reward=None, prompt: str = "prompt",
                  tag="counting") -> None:
    """`root/label/n{n}/{i:05d}/record.json` for each verdict in `correct` (None: not judged). `reward` and `tag`
    are one value for all or a list with one per record; prompt i is f"{prompt} {i}"."""
    for i, ok in enumerate(correct):
        d = root / label / f"n{n}" / f"{i:05d}"
        d.mkdir(parents=True)
        (d / "record.json").write_text(json.dumps({
            "label": label, "strategy": label.split("@")[0], "n": n, "index": i, "correct": ok,
            "tag": tag[i] if isinstance(tag, list) else tag, "prompt": f"{prompt} {i}",
            "reward": reward[i] if isinstance(reward, list) else reward}))


def reference_bench(tmp_path_factory, args: list[str]) -> Path:
    """`arscale bench ARGS --out <fresh folder>`, run once and checked to succeed; the process's torch threads are
    given back (bench sets its --threads)."""
    import torch

    from arscale.cli import main

    out = tmp_path_factory.mktemp("reference") / "out"
    before = torch.get_num_threads()
    assert main([*args, "--out", str(out)]) == 0
    torch.set_num_threads(before)
    return out
