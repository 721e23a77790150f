"""Does ShapeWorld-AR itself know a right prompt from a one-word-wrong one? (the ceiling of reward-free search)

    OMP_NUM_THREADS=2 python benchmarks/ar_implicit_classifier.py --per-tag 100 --seed 9 [--weights DIR]

A reward-free method such as ScalingAR can only prefer what the model's own distributions prefer. This
measures that directly, with no sampling: for fresh prompts (never the public suite) it renders a correct
scene, tokenises it, and compares the model's conditional log-likelihood of those tokens under the true
prompt, log p(x | y), with its likelihood under the same prompt with one thing changed, log p(x | y'):

- single_object: the class; two_object: the second class; counting: the number;
- colors: the colour; position: the relation (left of <-> right of, above <-> below);
- color_attr: the two colours swapped between the objects.

The model "knows" when log p(x | y) > log p(x | y'), i.e. its implicit classifier p(y | x) ∝ p(x | y) p(y)
(with equal priors) picks the true prompt; this equals comparing the implicit-classifier signal
Σ_t log p_c − log p_u, since p(x | ∅) is the same for both. 50 % is chance. Prints the rate per tag with its
standard error, and the mean margin in nats per image.

With `--candidates N` it asks the same question of the model's own samples: N candidates per fresh prompt
(CFG sampling at the shipped defaults, no search), each tokenised again and scored by its margin over the
*closest* one-word edit, log p(x | y) − max_y′ log p(x | y′) over every grammatical single-word substitution
(class, colour, number, relation; for colour binding also the swap). Prints per tag the accuracy of the first
candidate (raw sampling), a random candidate, the oracle (any correct), and the candidate picked by that
margin and by its conditional log-likelihood log p(x | y) alone: reward-free picks from the model's own
knowledge. It needs the ShapeWorld grammar to write the edits, so it is a diagnostic for this world, not a
search strategy.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from tqdm import tqdm

OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}


def as_prompt(words: list[str]) -> str | None:
    """The words as a prompt with their articles mended; None if that is not in the ShapeWorld grammar."""
    from arscale.shapeworld.grammar import GrammarError, article, metadata_from_prompt

    words = list(words)
    for k in range(len(words) - 1):
        if words[k] in ("a", "an"):
            words[k] = article(words[k + 1])
    prompt = " ".join(words)
    try:
        metadata_from_prompt(prompt)
    except GrammarError:
        return None
    return prompt


def edited(metadata: dict, rng: np.random.Generator) -> str | None:
    """The prompt with one word changed (see the module docs) so that a render of `metadata` no longer fits
    it, articles mended and the result checked against the grammar; None where no such edit exists."""
    from arscale.shapeworld.grammar import CLASSES, COLOR_NAMES, NUMBERS

    words = metadata["prompt"].split()
    g = metadata["include"]
    tag = metadata["tag"]

    def other(values, *avoid):
        choices = [v for v in values if v not in avoid]
        return choices[int(rng.integers(len(choices)))]

    def replace(old: str, new: str) -> None:
        words[words.index(old)] = new

    if tag == "single_object":
        replace(g[0]["class"], other(CLASSES, g[0]["class"]))
    elif tag == "two_object":
        words[-1] = other(CLASSES, g[0]["class"], g[1]["class"])
    elif tag == "counting":
        number = next(w for w in words if w in NUMBERS)
        replace(number, other(list(NUMBERS), number))
    elif tag == "colors":
        replace(g[0]["color"], other(COLOR_NAMES, g[0]["color"]))
    elif tag == "position":
        relation = next(w for w in words if w in OPPOSITE)
        replace(relation, OPPOSITE[relation])
    elif tag == "color_attr":
        a, b = (words.index(x["color"]) for x in g)
        if words[a] == words[b]:
            return None
        words[a], words[b] = words[b], words[a]
    else:
        return None
    return as_prompt(words)


def all_edits(prompt: str) -> list[str]:
    """Every grammatical prompt one content word away (plus the colour swap of a two-colour prompt)."""
    from arscale.shapeworld.grammar import CLASSES, COLOR_NAMES, NUMBERS

    words = prompt.split()
    out = []
    for k, w in enumerate(words):
        for group in (CLASSES, COLOR_NAMES, tuple(NUMBERS), tuple(OPPOSITE)):
            if w in group:
                out += [words[:k] + [v] + words[k + 1:] for v in group if v != w]
    colours = [k for k, w in enumerate(words) if w in COLOR_NAMES]
    if len(colours) == 2 and words[colours[0]] != words[colours[1]]:
        swapped = list(words)
        swapped[colours[0]], swapped[colours[1]] = words[colours[1]], words[colours[0]]
        out.append(swapped)
    prompts = []
    for text in map(as_prompt, out):
        if text is not None and text != prompt and text not in prompts:
            prompts.append(text)
    return prompts


@torch.no_grad()
def log_likelihood(gen, prompts: list[str], codes: torch.Tensor) -> torch.Tensor:
    """Σ_t log p(x_t | x_<t, prompt) of `codes` under each prompt (conditional branch, no CFG)."""
    from arscale.generators.next_token.generator import left_pad

    features, mask = left_pad(*gen.encode_condition(prompts))
    t = gen.transformer
    logits = t.teacher_forced_logits(t.embed_condition(features), mask, codes).float()
    return torch.log_softmax(logits, -1).gather(-1, codes[..., None]).squeeze(-1).sum(1)


def pick_from_samples(gen, records: list[dict], n: int, batch: int) -> None:
    """The `--candidates` mode (module docs): a reward-free pick among the model's own samples."""
    from arscale import shapeworld
    from arscale.search.scaling_ar import ScalingAR, ScalingARConfig

    sampler = ScalingAR(ScalingARConfig(terminate=False, schedule_guidance=False, prompt_batch=batch))
    prompts = [r["prompt"] for r in records]
    candidates = []  # one run per block of prompts (the blocks run() would make, same seeds), for a progress bar
    for start in tqdm(range(0, len(prompts), batch), desc=f"sampling {n} per prompt", unit="block"):
        candidates += sampler.run(gen, prompts[start:start + batch], n, seed=0, prompt_offset=start).candidates
    picks: dict[str, dict[str, list[float]]] = {}
    for rec, cands in tqdm(list(zip(records, candidates)), desc="scoring against edits", unit="prompt"):
        images = torch.from_numpy(np.stack([c.image for c in cands])).permute(0, 3, 1, 2).float() / 255
        codes = gen.tokenizer.encode(images)
        ok = np.array([shapeworld.evaluate(c.image, rec).correct for c in cands], dtype=float)
        edits = all_edits(rec["prompt"])
        prompts = [rec["prompt"]] + edits
        ll = torch.stack([log_likelihood(gen, [q] * len(cands), codes) for q in prompts])  # [prompts, n]
        margin = (ll[0] - ll[1:].max(0).values).numpy() if edits else ll[0].numpy()
        row = {"raw (first candidate)": ok[0], "random candidate (mean)": ok.mean(), "oracle (any correct)": ok.max(),
               "max conditional log-likelihood": ok[int(ll[0].argmax())],
               "max margin over the closest edit": ok[int(np.argmax(margin))]}
        for name, v in row.items():
            picks.setdefault(name, {}).setdefault(rec["tag"], []).append(float(v))
    tags = [t for t in shapeworld.TAGS if any(t in v for v in picks.values())]
    print(f"| pick among {n} samples | " + " | ".join(tags) + " | overall |")
    print("|---" * (len(tags) + 2) + "|")
    for name, by_tag in picks.items():
        means = [float(np.mean(by_tag[t])) for t in tags]
        print(f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {np.mean(means):.3f} |")


def main() -> None:
    from arscale import shapeworld
    from arscale.errors import ArscaleError
    from arscale.generators.next_token.shapeworld import load_shapeworld_ar

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--per-tag", type=int, default=100)
    p.add_argument("--seed", type=int, default=9)
    p.add_argument("--weights", default=None, help="a ShapeWorld-AR weights folder (default: the shipped one)")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--candidates", type=int, default=0,
                   help="N > 0: pick among N of the model's own samples per prompt instead (module docs)")
    args = p.parse_args()
    if args.seed == shapeworld.suite.PUBLIC_SUITE_SEED:
        p.error(f"--seed {args.seed} draws the public suite's prompts; use any other seed (fresh prompts)")
    if args.per_tag < 1 or args.batch < 1 or args.candidates < 0 or args.seed < 0:
        p.error("--per-tag and --batch must be >= 1, --candidates and --seed >= 0")
    try:
        gen = load_shapeworld_ar(weights=args.weights)
    except ArscaleError as exc:
        p.error(str(exc))
    if args.candidates:
        pick_from_samples(gen, shapeworld.build_suite(args.per_tag, args.seed), args.candidates, min(args.batch, 40))
        return
    rng = np.random.default_rng(args.seed)
    rows = []  # (tag, true prompt, wrong prompt, image)
    for rec in shapeworld.build_suite(args.per_tag, args.seed):
        wrong = edited(rec, rng)
        if wrong is None:
            continue
        image = shapeworld.render(shapeworld.sample_scene(rec, rng))
        rows.append((rec["tag"], rec["prompt"], wrong, image))
    margins: dict[str, list[float]] = {}
    for start in range(0, len(rows), args.batch):
        chunk = rows[start:start + args.batch]
        images = torch.from_numpy(np.stack([r[3] for r in chunk])).permute(0, 3, 1, 2).float() / 255
        codes = gen.tokenizer.encode(images)
        right = log_likelihood(gen, [r[1] for r in chunk], codes)
        wrong = log_likelihood(gen, [r[2] for r in chunk], codes)
        for (tag, *_), m in zip(chunk, (right - wrong).tolist()):
            margins.setdefault(tag, []).append(m)
    print("| tag | pairs | model prefers the true prompt (± SE) | mean margin, nats/image |")
    print("|---|---|---|---|")
    everything = []
    for tag in shapeworld.TAGS:
        m = np.array(margins.get(tag, []))
        if len(m) == 0:
            continue
        everything += m.tolist()
        rate = float((m > 0).mean())
        print(f"| {tag} | {len(m)} | {rate:.3f} ± {math.sqrt(rate * (1 - rate) / len(m)):.3f} | {m.mean():+.2f} |")
    m = np.array(everything)
    print(f"| all | {len(m)} | {(m > 0).mean():.3f} | {m.mean():+.2f} |")


if __name__ == "__main__":
    main()
