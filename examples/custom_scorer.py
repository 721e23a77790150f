"""A reward of your own ("prefer images with more red pixels") driving Best-of-N and TTS-VAR.

The prompts name no colour, so the reward picks among the model's own colours. Prints each candidate's red
share and the picks; saves Best-of-N's candidates (`best_of_n_<prompt>.png`) and picks into --out.

    python examples/custom_scorer.py --out out/custom_scorer --n 8
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from arscale.generators.registry import load_generator
from arscale.scorers.base import images_for
from arscale.search.base import make_strategy


class Redness:
    """What a scorer must provide (docs/extending.md): `name`, `input_size`, and `reward` (or `features`)."""

    name = "redness"  # results name the scorer that was used: result.config["reward"]
    input_size = 64  # images are decoded (or resized) to this side before they reach `reward`

    def reward(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """images [B, 3, 64, 64] floats in [0, 1] -> [B]: the share of clearly red pixels (prompts unused)."""
        r, g, b = images[:, 0], images[:, 1], images[:, 2]
        return ((r > 0.6) & (g < 0.4) & (b < 0.4)).float().mean(dim=(1, 2))


def red_share(image: np.ndarray) -> float:
    """The same measure on a result's uint8 [H, W, 3] image."""
    return float(Redness().reward(images_for(Redness(), image), [""])[0])


PROMPTS = ["a photo of a circle", "a photo of two squares"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", required=True, help="folder for the Best-of-N images")
parser.add_argument("--n", type=int, default=8, help="candidate budget per prompt")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
args = parser.parse_args()
torch.set_num_threads(args.threads)

generator = load_generator("shapeworld-var")
scorer = Redness()  # an instance goes straight to run(); register_scorer would make it a name for configs and the CLI

best = make_strategy("best-of-n").run(generator, PROMPTS, n=args.n, seed=args.seed, scorer=scorer)
print(f"best-of-n, reward {best.config['reward']!r}")
for p, prompt in enumerate(PROMPTS):  # every final candidate carries the reward it was picked by
    shares = " ".join(f"{c.score:.3f}{'*' if c.chosen else ''}" for c in best.candidates[p])
    print(f"  {prompt!r}: red share of each candidate (* pick): {shares}")

# TTS-VAR reads the reward at its resampling scales and at the end; clustering still uses its own features
red = make_strategy("tts-var").run(generator, PROMPTS, n=args.n, seed=args.seed, scorer=scorer)
shipped = make_strategy("tts-var").run(generator, PROMPTS, n=args.n, seed=args.seed, scorer="shapeworld-reward")
print(f"tts-var, reward {red.config['reward']!r}")
for op in red.telemetry["operations"]:  # each resampling: the partial images' rewards, and the rows it kept
    if op["op"] == "resample":
        kept = [op["reward"][i] for i in op["kept"]]
        print(f"  resampling after scale {op['scale']}: read {np.mean(op['reward']):.3f} on average, "
              f"kept rows averaging {np.mean(kept):.3f}")
for p, prompt in enumerate(PROMPTS):  # the same seeds, so the reward alone makes the difference
    print(f"  {prompt!r}: red share of the pick {red_share(red.images[p]):.3f} "
          f"(with shapeworld-reward: {red_share(shipped.images[p]):.3f})")

out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
for p, candidates in enumerate(best.candidates):  # each prompt's candidates side by side, then the pick alone
    Image.fromarray(np.concatenate([c.image for c in candidates], axis=1)).save(out / f"best_of_n_{p}.png")
    Image.fromarray(best.chosen(p).image).save(out / f"best_of_n_{p}_pick.png")
print(f"wrote {len(PROMPTS)} strips of candidates and their picks into {out}")
