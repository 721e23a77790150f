"""Raw sampling, Best-of-N, importance sampling and TTS-VAR on the same ShapeWorld prompts at the same N.

Prints, per method, the ShapeWorld evaluator's accuracy, the mean reward of the picks and the cost record's
tokens and FLOPs; saves `compare_methods.png` (each method's pick for each prompt) into --out.

    python examples/compare_methods.py --out out/compare --n 8
"""

import argparse
from pathlib import Path

import torch

from arscale.figures import clip_text, new_figure
from arscale.generators.registry import load_generator
from arscale.scorers.base import images_for, load_scorer
from arscale.search.base import make_strategy
from arscale.shapeworld import evaluate

PROMPTS = ["a photo of a triangle", "a photo of a circle and a cross", "a photo of three squares",  # one per tag
           "a photo of a red circle", "a photo of a cross left of a triangle",
           "a photo of a blue square and a yellow circle"]
METHODS = ["raw", "best-of-n", "importance", "tts-var"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", required=True, help="folder for compare_methods.png")
parser.add_argument("--n", type=int, default=8, help="candidate budget per prompt, the same for every method")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
args = parser.parse_args()
torch.set_num_threads(args.threads)

generator = load_generator("shapeworld-var")  # the shipped next-scale model: offline, seconds on a CPU
scorer = load_scorer("shapeworld-reward")  # loaded once, handed to every method (raw ignores it)
rows, picks, verdicts = [], {}, {}
for method in METHODS:
    # same prompts, same seed, same N: every method starts from the same random streams
    result = make_strategy(method).run(generator, PROMPTS, n=args.n, seed=args.seed, scorer=scorer)
    correct = [evaluate(image, prompt).correct for image, prompt in zip(result.images, PROMPTS)]
    # the picks rescored by one reward on their uint8 images (raw's candidates carry no score; the others'
    # scores are of their float decodes, equal up to rounding)
    reward = scorer.reward(images_for(scorer, result.images), PROMPTS).mean().item()
    cost = result.cost.to_dict()
    flops = result.cost.total_flops  # transformer + decodes + scorer calls, as bench's table.md
    rows.append((method, sum(correct) / len(PROMPTS), reward, cost["generated_tokens"],
                 cost["transformer_flops"], flops))
    picks[method], verdicts[method] = result.images, correct

print(f"{len(PROMPTS)} prompts, N = {args.n}, seed {args.seed}")
print(f"{'method':<12}{'accuracy':>9}{'reward':>8}{'tokens':>8}{'model GFLOPs':>13}{'all GFLOPs':>11}")
for method, acc, reward, tokens, model, flops in rows:
    print(f"{method:<12}{acc:>9.2f}{reward:>8.3f}{tokens:>8d}{model / 1e9:>13.2f}{flops / 1e9:>11.2f}")

# a grid outside pyplot (figures.new_figure): one row per method, one column per prompt
fig = new_figure(figsize=(1.7 * len(PROMPTS) + 0.8, 1.9 * len(METHODS)))
axes = fig.subplots(len(METHODS), len(PROMPTS), squeeze=False)
for r, method in enumerate(METHODS):
    for c, prompt in enumerate(PROMPTS):
        ax = axes[r][c]
        ax.imshow(picks[method][c], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(clip_text(prompt.removeprefix("a photo of "), 24) if r == 0 else "", fontsize=7)
        ax.set_xlabel("correct" if verdicts[method][c] else "wrong", fontsize=7,
                      color="green" if verdicts[method][c] else "red")
    axes[r][0].set_ylabel(method, fontsize=9)
fig.tight_layout()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
fig.savefig(out / "compare_methods.png")
print(f"wrote {out / 'compare_methods.png'}")
