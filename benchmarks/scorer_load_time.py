"""Loading ImageReward and HPSv2: the former path (the towers built eagerly with their random fp32 init, the file
copied in) against the shipped one (`imagereward.load_model`, `hpsv2.load_model`: meta parameters that the file's
tensors become, `arscale.generators.meta_build`).

    OMP_NUM_THREADS=1 python benchmarks/scorer_load_time.py                  # both, at their released sizes
    OMP_NUM_THREADS=1 python benchmarks/scorer_load_time.py --scorers hpsv2 --repeat 3

Writes each scorer's file with seeded random weights in its released layout to a temporary folder (ImageReward.pt:
BLIP's `blip.visual_encoder.*` / `blip.text_encoder.*` names, the MLP's `mlp.layers.*`, the unused contrastive
projections and the text position ids; HPS_v2.1_compressed.pt: open_clip ViT-H-14 names with fused q/k/v under
`state_dict`), then loads it once per variant and repeat, each in a fresh Python process (old and new alternating),
and prints the median wall time of the load (file read, model built, weights in; the tokenizer is not part of it),
the largest peak resident memory of the process (VmHWM) beside its RSS after the imports, and a digest of every
parameter and buffer of the loaded model: old and new must agree. Needs about twice the fp32 weights in memory for
the old path (ImageReward 1.7 GiB, HPSv2 3.7 GiB of weights).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load_time import combined, digest, print_table
from process_memory import current_mib, peak_mib

SCORERS = ("imagereward", "hpsv2")


# -- the released layouts, from the shapes of a meta build --------------------------------------------------------
def imagereward_released_shapes() -> dict[str, tuple[int, ...]]:
    """ImageReward.pt's key names and shapes: our model's keys renamed back (each checked to convert to itself)."""
    from arscale.generators.meta_build import parameters_on_meta
    from arscale.scorers import imagereward as ir

    with parameters_on_meta():
        model = ir.ImageRewardModel()
    shapes = {}
    for key, tensor in model.state_dict().items():
        released = _imagereward_released_key(key)
        if ir.released_to_model_key(released) != key:
            raise RuntimeError(f"{key} -> {released} does not convert back")
        shapes[released] = tuple(tensor.shape)
    config = model.config
    shapes.update({"blip.vision_proj.weight": (256, config.vision_width), "blip.vision_proj.bias": (256,),
                   "blip.text_proj.weight": (256, config.text_width), "blip.text_proj.bias": (256,)})
    return shapes


def _imagereward_released_key(key: str) -> str:
    from arscale.scorers import imagereward as ir

    for old, new in ir._VISION_RENAMES:
        if key == new or (new.endswith(".") and key.startswith(new)):
            return old + key[len(new):]
    if key.startswith("vision.encoder.layers."):
        index, rest = key[len("vision.encoder.layers."):].split(".", 1)
        for old, new in ir._BLOCK_RENAMES:
            if rest.startswith(new):
                return f"blip.visual_encoder.blocks.{index}.{old}{rest[len(new):]}"
    for ours, theirs in (("text.", "blip.text_encoder."), ("head.", "mlp.layers.")):
        if key.startswith(ours):
            return theirs + key[len(ours):]
    raise RuntimeError(f"no released name for {key}")


def hpsv2_released_shapes() -> dict[str, tuple[int, ...]]:
    """HPS_v2.1_compressed.pt's open_clip key names and shapes (q/k/v fused, projections transposed)."""
    from arscale.generators.meta_build import parameters_on_meta
    from arscale.scorers import hpsv2
    from arscale.scorers.hf import require_transformers

    with parameters_on_meta():
        model = require_transformers().CLIPModel(hpsv2.vit_h_14_config())
    ours = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    renames = {**{v: k for k, v in hpsv2._TOP_LEVEL.items()},
               **{f"{v}.{leaf}": f"{k}.{leaf}" for k, v in hpsv2._NORMS.items() for leaf in ("weight", "bias")}}
    shapes = {}
    for key, shape in ours.items():
        if key in renames:
            shapes[renames[key]] = shape
        elif key in hpsv2._PROJECTIONS.values():
            shapes[next(k for k, v in hpsv2._PROJECTIONS.items() if v == key)] = shape[::-1]
        else:  # a block: {tower}.encoder.layers.{i}.{part}.{leaf}
            tower, rest = key.split(".encoder.layers.", 1)
            index, part = rest.split(".", 1)
            stem, leaf = part.rsplit(".", 1)
            prefix = f"{'visual.' if tower == 'vision_model' else ''}transformer.resblocks.{index}"
            if stem in ("self_attn.k_proj", "self_attn.v_proj"):
                continue  # fused into q's in_proj
            if stem == "self_attn.q_proj":
                shapes[f"{prefix}.attn.in_proj_{leaf}"] = (3 * shape[0], *shape[1:])
            else:
                shapes[f"{prefix}.{next(k for k, v in hpsv2._BLOCK.items() if v == stem)}.{leaf}"] = shape
    return shapes


def write_checkpoint(scorer: str, folder: Path) -> tuple[Path, int]:
    """The scorer's released file, seeded normal weights (std 0.02); returns its path and parameter count."""
    import torch

    from arscale.scorers import hpsv2
    from arscale.scorers import imagereward as ir

    shapes = imagereward_released_shapes() if scorer == "imagereward" else hpsv2_released_shapes()
    g = torch.Generator().manual_seed(0)
    sd = {key: torch.randn(shape, generator=g).mul_(0.02) for key, shape in shapes.items()}
    if scorer == "imagereward":
        sd["blip.text_encoder.embeddings.position_ids"] = torch.arange(ir.ImageRewardConfig().max_positions)[None]
        path = folder / ir.FILENAME
        torch.save(sd, path)
    else:
        path = folder / hpsv2.FILES["v2.1"]
        torch.save({"state_dict": sd}, path)
    return path, sum(v.numel() for v in sd.values() if v.is_floating_point())


# -- one load, in a fresh process ---------------------------------------------------------------------------------
def load_old(scorer: str, path: Path):
    """The loaders as they were: every tower built eagerly (random fp32 init on the CPU), the file copied in."""
    from arscale.generators import loading
    from arscale.scorers import hpsv2
    from arscale.scorers import imagereward as ir
    from arscale.scorers.hf import require_transformers

    if scorer == "imagereward":
        return ir.load_released(ir.ImageRewardModel(), ir.read_released(path))
    sd = loading.unwrap(loading.read_checkpoint(path), ("state_dict",))
    return hpsv2.load_open_clip_weights(require_transformers().CLIPModel(hpsv2.vit_h_14_config()), sd)


def load_new(scorer: str, path: Path):
    from arscale.scorers import hpsv2
    from arscale.scorers import imagereward as ir

    return (ir if scorer == "imagereward" else hpsv2).load_model(path)


def measure(variant: str, scorer: str, path: Path) -> dict:
    """One load in this (fresh) process: its wall time, the peak RSS and the loaded weights' digest."""
    import transformers

    # imports are not part of the load
    import arscale.generators.loading
    import arscale.scorers.hpsv2
    import arscale.scorers.imagereward  # noqa: F401

    for name in ("BlipVisionModel", "BlipTextModel", "CLIPModel"):  # transformers imports its model code lazily
        getattr(transformers, name)
    rss_before = current_mib()
    start = time.perf_counter()
    model = (load_old if variant == "old" else load_new)(scorer, path)
    seconds = time.perf_counter() - start
    peak = peak_mib()  # read before hashing, which only reads the loaded tensors
    return {"seconds": seconds, "rss_before_mb": rss_before, "peak_mb": peak, "digest": digest(model)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scorers", nargs="+", default=list(SCORERS), choices=SCORERS)
    parser.add_argument("--repeat", type=int, default=2, help="fresh processes per variant (median time)")
    parser.add_argument("--tmp", default=None, help="where to write the checkpoints (default: the system's temp)")
    parser.add_argument("--measure", choices=("old", "new"), help=argparse.SUPPRESS)  # a variant's subprocess
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.scorers[0], Path(args.path))))
        return

    print(f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}")
    rows: dict[tuple[str, str], dict] = {}
    for scorer in args.scorers:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            start = time.perf_counter()
            path, count = write_checkpoint(scorer, Path(tmp))
            print(f"{scorer}: {count / 1e6:.0f} M parameters, {path.stat().st_size / 2**30:.2f} GiB on disk, written "
                  f"in {time.perf_counter() - start:.0f} s", flush=True)
            runs: dict[str, list[dict]] = {"old": [], "new": []}
            for _ in range(args.repeat):  # alternating, so a busy spell of the machine hits both
                for variant in ("old", "new"):
                    out = subprocess.run([sys.executable, __file__, "--measure", variant, "--scorers", scorer,
                                          "--path", str(path)], capture_output=True, text=True, check=True)
                    runs[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
                    print(f"  {scorer} {variant}: {runs[variant][-1]['seconds']:.1f} s", flush=True)  # progress
        rows.update({(scorer, variant): combined(rs) for variant, rs in runs.items()})
    print_table("scorer", rows)

if __name__ == "__main__":
    main()
