"""Several ShapeWorld-VAR decoders on the *same* sampled latents: a paired comparison.

Raw sampling draws its tokens with the transformer alone, so swapping the tokenizer's decoder changes
the images but not the tokens. This script samples the accumulated latents f̂ once (one image per
prompt, seeds as `arscale bench` derives them), decodes them with every decoder given, and scores each
with the exact evaluator; per-prompt differences against the first decoder are paired, so their
standard error is far below either run's own. It also scores each decoder's reconstructions of clean
renders of the same prompts (the tokenizer's own target).

    OMP_NUM_THREADS=2 python benchmarks/decoder_on_samples.py --decoders SHIPPED_DIR NEW_DIR \
        --per-tag 100 --suite-seeds 2024 2025 [--generator DIR] [--json out.json]

A decoder is a folder with `tokenizer.safetensors` + `tokenizer_config.json` (a weights folder) or a
tokenizer training state; its codes (encoder, codebook, φ) must equal the generator's.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch


def suite(per_tag: int, seeds: list[int], name: str | None) -> list[dict]:
    from arscale import shapeworld

    if name:
        return shapeworld.load_suite(name)
    if shapeworld.suite.PUBLIC_SUITE_SEED in seeds:
        raise SystemExit("use seeds other than the public suite's")
    return [md for seed in seeds for md in shapeworld.build_suite(per_tag, seed)]


@torch.no_grad()
def sampled_latents(gen, records: list[dict], seed: int, batch: int) -> torch.Tensor:
    from tqdm import tqdm

    out = []
    for s in tqdm(range(0, len(records), batch), desc="sampling latents"):
        traj = gen.start([md["prompt"] for md in records[s:s + batch]], 1, seed, prompt_offset=s)
        for _ in range(gen.num_scales):
            gen.step(traj)
        out.append(gen.latent(traj).clone())
    return torch.cat(out)


def verdicts(images: torch.Tensor, records: list[dict]) -> list[bool]:
    from arscale import shapeworld

    pixels = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    return [bool(shapeworld.evaluate(px, md).correct) for px, md in zip(pixels, records)]


def summary(hits: list[bool], records: list[dict]) -> dict[str, float]:
    """Per-tag accuracy and the tag-averaged overall with its standard error (as `arscale bench`)."""
    from arscale.bench.metrics import standard_error_of_overall

    tags: dict[str, list[bool]] = {}
    for h, md in zip(hits, records):
        tags.setdefault(md["tag"], []).append(h)
    out = {t: float(np.mean(v)) for t, v in sorted(tags.items())}
    out["overall"] = float(np.mean([out[t] for t in tags]))
    out["overall_se"] = standard_error_of_overall({t: {"accuracy": out[t], "total": len(v)} for t, v in tags.items()})
    return out


def paired(base: list[bool], other: list[bool], records: list[dict]) -> dict[str, float]:
    """Tag-averaged difference other − base with its paired standard error, and flips each way."""
    tags: dict[str, list[float]] = {}
    for a, b, md in zip(base, other, records):
        tags.setdefault(md["tag"], []).append(float(b) - float(a))
    means = {t: float(np.mean(v)) for t, v in tags.items()}
    var = sum(float(np.var(v, ddof=1)) / len(v) for v in tags.values() if len(v) > 1)
    return {"diff": float(np.mean(list(means.values()))), "diff_se": math.sqrt(var) / len(tags),
            "fixed": sum(b and not a for a, b in zip(base, other)),
            "broken": sum(a and not b for a, b in zip(base, other))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decoders", nargs="+", required=True, help="tokenizer folders; the first is the baseline")
    ap.add_argument("--generator", default=None, help="ShapeWorld-VAR weights folder (default: shipped)")
    ap.add_argument("--suite", default=None, help="a suite name or file instead of drawn prompts")
    ap.add_argument("--per-tag", type=int, default=100)
    ap.add_argument("--suite-seeds", type=int, nargs="+", default=[2024, 2025])
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    from arscale import shapeworld
    from arscale.errors import ArscaleError
    from arscale.generators.next_scale.shapeworld import load_shapeworld_tokenizer, load_shapeworld_var
    from arscale.train.generated_latents import check_same_codes

    try:  # a wrong folder or another model's tokenizer: one line, not a traceback
        records = suite(args.per_tag, args.suite_seeds, args.suite)
        gen = load_shapeworld_var(weights=args.generator)
        decoders = [load_shapeworld_tokenizer(d) for d in args.decoders]
        for d in decoders:
            check_same_codes(d, gen)
    except ArscaleError as e:
        raise SystemExit(f"decoder_on_samples: {e}") from None
    t0 = time.perf_counter()
    f_hat = sampled_latents(gen, records, args.seed, args.batch)
    rng = np.random.default_rng(args.seed)
    clean = torch.from_numpy(shapeworld.render_batch([shapeworld.sample_scene(md, rng) for md in records]))
    clean = clean.permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():  # the codes are the same for every decoder (checked above): encode once
        codes = [decoders[0].encode(clean[s:s + args.batch]) for s in range(0, len(clean), args.batch)]
    print(f"{len(records)} prompts, latents sampled in {time.perf_counter() - t0:.0f} s")

    rows, base = [], None
    for path, tok in zip(args.decoders, decoders):
        with torch.no_grad():
            raw = torch.cat([tok.decode_fhat(f_hat[s:s + args.batch]) for s in range(0, len(f_hat), args.batch)])
            recon = torch.cat([tok.decode_indices(c) for c in codes])
        hits = verdicts(raw, records)
        row = {"decoder": path, "raw": summary(hits, records), "recon": summary(verdicts(recon, records), records)}
        base = hits if base is None else base
        row["vs_first"] = paired(base, hits, records)
        rows.append(row)

    tags = sorted(t for t in rows[0]["raw"] if t not in ("overall", "overall_se"))
    print(f"\n| decoder | raw overall ± SE | {' | '.join(tags)} | vs first ± paired SE (fixed / broken) "
          "| reconstructions |")
    print("|---|---|" + "---|" * len(tags) + "---|---|")
    for r in rows:
        raw, d = r["raw"], r["vs_first"]
        print(f"| {r['decoder']} | {raw['overall']:.3f} ± {raw['overall_se']:.3f} | "
              + " | ".join(f"{raw[t]:.3f}" for t in tags)
              + f" | {d['diff']:+.3f} ± {d['diff_se']:.3f} ({d['fixed']} / {d['broken']}) | {r['recon']['overall']:.3f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"prompts": len(records), "suite": args.suite or [args.per_tag, args.suite_seeds],
                       "seed": args.seed, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
