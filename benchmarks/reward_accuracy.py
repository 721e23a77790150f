"""Pairwise accuracy of the ShapeWorld reward on grammar hard negatives.

For fresh scenes (a seed far from the training stream), the reward of (image, true prompt) is
compared with (image, hard-negative prompt): changed color, count ±1, mirrored relation, swapped
classes / colors, changed class. Reported per tag for clean renders and, when a multi-scale
tokenizer is given, for its reconstructions (what the generator's decoder produces). With
`--partial`, also for reconstructions truncated after each scale k (the accumulated latent of scales
0..k decoded, i.e. a perfect model's partial decode): can the reward judge what TTS-VAR shows it?

    python benchmarks/reward_accuracy.py --per-tag 200 [--tokenizer DIR [--partial]] [--json out.json]

DIR holds `tokenizer.safetensors` + `tokenizer_config.json` (the shipped ShapeWorld-VAR folder) or a
training state (`model.safetensors` + `state.json` with the config).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from arscale import shapeworld as sw
from arscale.generators.next_scale.shapeworld import load_shapeworld_tokenizer
from arscale.scorers.base import load_scorer
from arscale.train.reward import hard_negative_prompts


@torch.no_grad()
def measure(scorer, images: torch.Tensor, metadata: list[dict], rng: np.random.Generator) -> dict:
    true = [md["prompt"] for md in metadata]
    wrong = []
    for md in metadata:
        negs = hard_negative_prompts(md)
        wrong.append(negs[int(rng.integers(len(negs)))])
    wins = (scorer.reward(images, true) > scorer.reward(images, wrong)).float().numpy()
    out = {"all": float(wins.mean()), "n": len(wins)}
    for tag in sw.TAGS:
        m = np.array([md["tag"] == tag for md in metadata])
        if m.any():
            out[tag] = float(wins[m].mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-tag", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--weights", default=None, help="reward weights directory (default: shipped)")
    ap.add_argument("--tokenizer", default=None, help="multi-scale tokenizer directory for reconstructions")
    ap.add_argument("--partial", action="store_true", help="also per-scale truncated reconstructions")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.per_tag < 1:
        ap.error("--per-tag must be >= 1")
    if args.partial and not args.tokenizer:
        ap.error("--partial needs --tokenizer DIR (the truncated reconstructions come from its codes)")
    torch.set_num_threads(1)
    scorer = load_scorer("shapeworld-reward", **({"weights": args.weights} if args.weights else {}))
    rng = np.random.default_rng(args.seed)
    metadata = [sw.random_metadata(rng, tag) for tag in sw.TAGS for _ in range(args.per_tag)]
    pixels = sw.render_batch([sw.sample_scene(md, rng) for md in metadata])
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    report = {"clean": measure(scorer, images, metadata, np.random.default_rng(args.seed + 1))}
    if args.tokenizer:
        tok = load_shapeworld_tokenizer(args.tokenizer)
        with torch.no_grad():  # encode once; the full and the truncated reconstructions share the codes
            indices = [tok.encode(images[i : i + 128]) for i in range(0, len(images), 128)]
            total = tok.quantizer.num_scales
            for kept in [*(range(1, total) if args.partial else []), total]:  # scales kept; total = finished
                recon = torch.cat([tok.decode_indices(ix[:kept]) for ix in indices])
                acc = measure(scorer, recon, metadata, np.random.default_rng(args.seed + 1))
                if kept == total:
                    report["reconstruction"] = acc
                else:
                    report.setdefault("partial", []).append({"scale": kept - 1, **acc})
                    print(f"after scale {kept - 1}: {acc['all']:.3f}", file=sys.stderr, flush=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    from arscale.errors import one_line_errors

    one_line_errors(main, "reward_accuracy")
