"""ScalingAR on the shipped ShapeWorld-AR model, read through its telemetry.

Prints, for each prompt, every candidate's fate (terminated at which token step, at what confidence C; or
survived), its guidance, the flag / recover events, the pick and the tokens spent; saves the library's own
confidence plot (`confidence_00000.png`, ... : C per step and candidate, the prune events, every candidate).

    python examples/scaling_ar_confidence.py --out out/scaling_ar --n 8
"""

import argparse
from collections import Counter

import numpy as np
import torch

from arscale.generators.registry import load_generator
from arscale.search.base import make_strategy
from arscale.search.scaling_ar import write_extras
from arscale.shapeworld import evaluate

PROMPTS = ["a photo of two circles", "a photo of a red square"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", required=True, help="folder for the confidence plots")
parser.add_argument("--n", type=int, default=8, help="candidates per prompt")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
args = parser.parse_args()
torch.set_num_threads(args.threads)

generator = load_generator("shapeworld-ar")  # the shipped next-token model (256 tokens an image)
# ScalingAR needs no reward model: it picks by the model's own confidence C
result = make_strategy("scaling-ar").run(generator, PROMPTS, n=args.n, seed=args.seed)
tele = result.telemetry
print(f"{tele['num_tokens']} tokens an image, no termination before step {tele['warmup_steps']}, "
      f"base guidance {tele['s_base']}")

for p, traces in enumerate(tele["prompts"]):  # one trace per candidate
    pick = result.chosen(p)  # the highest final C among the survivors
    picked = next(tr for tr in traces if tr["node"] == pick.node)  # candidates are tree nodes in the result
    print(f"\nprompt {p}: {PROMPTS[p]!r}")
    for tr in sorted(traces, key=lambda tr: tr["ended"] if tr["ended"] is not None else tele["num_tokens"]):
        # a terminated candidate generated `ended` tokens; its C list ends with the value that decided
        fate = (f"terminated at step {tr['ended']:3d} (C {tr['C'][-1]:.3f})" if tr["reason"] == "prune"
                else f"survived             (C {tr['C'][-1]:.3f})")
        guidance = np.asarray(tr["guidance"])  # the per-step guidance scale ScalingAR gave this candidate
        mark = "  <- pick" if tr["node"] == pick.node else ""
        print(f"  cand {tr['candidate']}: {fate}, guidance {guidance.min():.2f}..{guidance.max():.2f} "
              f"(mean {guidance.mean():.2f}){mark}")
    events = Counter(e["event"] for e in tele["events"] if e["prompt"] == p)
    verdict = evaluate(pick.image, PROMPTS[p])  # the exact ShapeWorld evaluator on the chosen image
    print(f"  events: {dict(sorted(events.items()))}")
    print(f"  pick: cand {picked['candidate']}, C {pick.score:.3f}, "
          f"{'correct' if verdict.correct else 'wrong: ' + verdict.reason}")
    print(f"  tokens: {tele['tokens_per_prompt'][p]:.0f} of {args.n * tele['num_tokens']} for N full images")

for path in write_extras(result, args.out):  # the plot `arscale generate --strategy scaling-ar` writes
    print(f"wrote {path}")
