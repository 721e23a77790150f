"""`arscale train shapeworld-reward`: the learned ShapeWorld image–text reward.

Each step draws B scenes over all six tags. Every scene gets hard-negative prompts from the
grammar (changed color, count ±1, mirrored relation, swapped classes / colors, changed class), and
one of them is also rendered, so every prompt is seen with a matching and a near-miss image.
Images are degraded half of the time (down-and-up sampling, noise) because the reward must also
judge blurry partial decodes and tokenizer reconstructions. With `--partial-tokenizer DIR`, a share of
the images is instead replaced by that multi-scale tokenizer's *partial decodes*: the clean render's
codes kept up to a random scale k and decoded, exactly what TTS-VAR shows the reward mid-generation
(blur alone does not look like them: measured, the blur-trained reward ranks them near chance).
`--init DIR` starts from existing reward weights (fine-tuning) instead of a fresh model.

Loss, over all (image, text) pairs of the step: binary cross-entropy against the construction's
labels (the score is absolute, so rewards of different images of one prompt compare), plus a
contrastive softmax over each image's texts (the positive against its hard negatives).
After training the raw logit is standardised on a held-out calibration set (see scorers.shapeworld).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from arscale.errors import ArscaleError
from arscale.generators.loading import read_safetensors
from arscale.scorers.shapeworld import WEIGHTS_DIR, RewardConfig, RewardModel
from arscale.train.common import (
    REWARD,
    Resumed,
    Timer,
    add_training_args,
    begin,
    check_arguments,
    check_count,
    check_share,
    export_weights,
    load_strict,
    progress,
    restore,
    stop_if_diverged,
)
from arscale.train.lr_schedule import cosine_lr, rewarm, set_lr
from arscale.train.scene_stream import shapeworld_api

SW = None


def _sw():
    global SW
    if SW is None:
        SW = shapeworld_api()
    return SW


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


_PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "cross": "crosses"}
_NUMBER = {2: "two", 3: "three", 4: "four"}
_MIRROR = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def _others(options, *exclude):
    return [o for o in options if o not in exclude]


def hard_negative_prompts(md: dict) -> list[str]:
    """Prompts in the grammar that the scene for `md` (exactly the named objects) does NOT satisfy."""
    sw = _sw()
    classes, colors = list(sw.CLASSES), list(sw.COLORS)
    tag, inc = md["tag"], md["include"]
    out: list[str] = []
    if tag == "single_object":
        c = inc[0]["class"]
        out += [f"a photo of {_a(o)}" for o in _others(classes, c)]
        out.append(f"a photo of two {_PLURAL[c]}")
    elif tag == "two_object":
        c1, c2 = inc[0]["class"], inc[1]["class"]
        out += [f"a photo of {_a(o)} and {_a(c2)}" for o in _others(classes, c1, c2)]
        out += [f"a photo of {_a(c1)} and {_a(o)}" for o in _others(classes, c1, c2)]
    elif tag == "counting":
        c, k = inc[0]["class"], inc[0]["count"]
        out += [f"a photo of {_NUMBER[j]} {_PLURAL[c]}" for j in (k - 1, k + 1) if j in _NUMBER]
        out += [f"a photo of {_NUMBER[k]} {_PLURAL[o]}" for o in _others(classes, c)]
    elif tag == "colors":
        c, k = inc[0]["class"], inc[0]["color"]
        out += [f"a photo of {_a(o)} {c}" for o in _others(colors, k)]
        out += [f"a photo of {_a(k)} {o}" for o in _others(classes, c)]
    elif tag == "position":
        ref, obj = inc[0]["class"], inc[1]["class"]
        rel = inc[1]["position"][0]
        out.append(f"a photo of {_a(obj)} {_MIRROR[rel]} {_a(ref)}")  # mirrored relation
        out.append(f"a photo of {_a(ref)} {rel} {_a(obj)}")  # swapped classes
        out += [f"a photo of {_a(o)} {rel} {_a(ref)}" for o in _others(classes, obj, ref)]
    elif tag == "color_attr":
        (c1, k1), (c2, k2) = (inc[0]["class"], inc[0]["color"]), (inc[1]["class"], inc[1]["color"])
        out.append(f"a photo of {_a(k2)} {c1} and {_a(k1)} {c2}")  # swapped colors
        out += [f"a photo of {_a(o)} {c1} and {_a(k2)} {c2}" for o in _others(colors, k1, k2)]
        out += [f"a photo of {_a(k1)} {c1} and {_a(o)} {c2}" for o in _others(colors, k1, k2)]
        out += [f"a photo of {_a(k1)} {o} and {_a(k2)} {c2}" for o in _others(classes, c1, c2)]
    else:
        raise ArscaleError(f"unknown tag {tag!r}")
    return out


def degrade(images: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Blur some images by area-down / bilinear-up sampling (sizes 8..32) and add a little noise."""
    out = images.clone()
    pick = torch.rand(len(images), generator=generator) < p
    sizes = (8, 12, 16, 24, 32)
    for i in torch.nonzero(pick).flatten().tolist():
        s = sizes[int(torch.randint(len(sizes), (1,), generator=generator))]
        small = F.interpolate(out[i : i + 1], size=(s, s), mode="area")
        out[i : i + 1] = F.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False)
    noise = torch.randn(out.shape, generator=generator) * 0.03 * pick.view(-1, 1, 1, 1)
    return (out + noise).clamp(0, 1)


class PartialDecodes:
    """Replace a share of the images by partial decodes of a multi-scale tokenizer.

    Image i keeps its codes up to scale k (0-based, drawn uniformly from `first_scale` .. last; the
    last scale is the full reconstruction) and is decoded from that accumulated latent. Scales below
    `first_scale` are skipped: a 1×1 or 2×2 code grid leaves almost nothing to judge, and TTS-VAR
    clusters features there rather than asking the reward.
    """

    def __init__(self, tokenizer, share: float = 0.5, first_scale: int = 2):
        self.tokenizer = tokenizer.eval().requires_grad_(False)
        self.scales = len(tokenizer.patch_nums)
        if not 0.0 <= share <= 1.0:
            raise ArscaleError(f"--partial-share must be in [0, 1], got {share}")
        if not 0 <= first_scale < self.scales:
            raise ArscaleError(f"--partial-first-scale must be in [0, {self.scales - 1}] for this tokenizer, "
                               f"got {first_scale}")
        self.share, self.first_scale = share, first_scale

    @torch.no_grad()
    def __call__(self, clean: torch.Tensor, images: torch.Tensor, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(images with the picked rows replaced, kept scale per row: -1 where unchanged)."""
        n = len(clean)
        pick = torch.rand(n, generator=generator) < self.share
        kept = torch.randint(self.first_scale, self.scales, (n,), generator=generator)
        kept = torch.where(pick, kept, torch.full_like(kept, -1))
        out = images.clone()
        rows = torch.nonzero(pick).flatten()
        if len(rows):
            device = next(self.tokenizer.parameters()).device  # the tokenizer may sit on the GPU, scenes do not
            indices = self.tokenizer.encode(clean[rows].to(device))
            for k in kept[rows].unique().tolist():
                sel = torch.nonzero(kept[rows] == k).flatten()
                decoded = self.tokenizer.decode_indices([ix[sel.to(device)] for ix in indices[: k + 1]])
                out[rows[sel]] = decoded.to(out.device)
        return out, kept


class PairBatch:
    """Images, texts and the (image, text, label) pairs of one training step."""

    def __init__(self, images: torch.Tensor, texts: list[str], image_index: torch.Tensor,
                 text_index: torch.Tensor, labels: torch.Tensor, positive_first: int):
        self.images, self.texts = images, texts
        self.image_index, self.text_index, self.labels = image_index, text_index, labels
        self.positive_first = positive_first  # pairs come in groups of this size, positive first


def make_batch(batch_size: int, rng: np.random.Generator, negatives: int = 4) -> PairBatch:
    sw = _sw()
    metadata, partner = [], []
    for _ in range(batch_size):
        md = sw.random_metadata(rng)
        negs = hard_negative_prompts(md)
        metadata.append(md)
        partner.append(sw.metadata_from_prompt(negs[int(rng.integers(len(negs)))]))
    all_md = metadata + partner
    pixels = sw.render_batch([sw.sample_scene(md, rng) for md in all_md])
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255)
    texts: list[str] = []
    text_id: dict[str, int] = {}

    def tid(p: str) -> int:
        if p not in text_id:
            text_id[p] = len(texts)
            texts.append(p)
        return text_id[p]

    ii, tt, ll = [], [], []
    for i, md in enumerate(all_md):
        negs = hard_negative_prompts(md)
        other = all_md[(i + batch_size) % len(all_md)]["prompt"]  # the partner's prompt: a hard negative
        if other not in negs:  # a partner may satisfy the prompt it is a near miss of (two circles: "a circle")
            other = negs[int(rng.integers(len(negs)))]
        chosen = [negs[int(j)] for j in rng.choice(len(negs), size=min(negatives - 1, len(negs)), replace=False)]
        group = [md["prompt"], other] + chosen
        while len(group) < negatives + 1:
            group.append(negs[int(rng.integers(len(negs)))])
        for j, p in enumerate(group):
            ii.append(i)
            tt.append(tid(p))
            ll.append(1.0 if j == 0 else 0.0)
    return PairBatch(images, texts, torch.tensor(ii), torch.tensor(tt), torch.tensor(ll), negatives + 1)


def batch_loss(model: RewardModel, batch: PairBatch, device: torch.device) -> tuple[torch.Tensor, dict]:
    image_tokens = model.image(batch.images.to(device))
    text_tokens, mask = model.encode_text(batch.texts)
    logits = model.pair_logits(image_tokens[batch.image_index.to(device)], text_tokens[batch.text_index.to(device)],
                               mask[batch.text_index.to(device)])
    labels = batch.labels.to(device)
    bce = F.binary_cross_entropy_with_logits(logits, labels)
    groups = logits.view(-1, batch.positive_first)
    ce = F.cross_entropy(groups, torch.zeros(len(groups), dtype=torch.long, device=device))
    acc = (groups.argmax(1) == 0).float().mean().item()
    return bce + ce, {"bce": bce.item(), "ce": ce.item(), "group_acc": acc}


def augment(images: torch.Tensor, generator: torch.Generator, partial: PartialDecodes | None) -> torch.Tensor:
    """The training-time image mix: degraded half of the time, and partial decodes when asked for."""
    out = degrade(images, generator)
    return partial(images, out, generator)[0] if partial is not None else out


@torch.no_grad()
def calibrate(model: RewardModel, rng: np.random.Generator, device: torch.device, batches: int = 8,
              partial: PartialDecodes | None = None) -> tuple[float, float]:
    """Mean and std of raw logits over matching and hard-negative pairs, images mixed as in training."""
    model.eval()
    g = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    values = []
    bar = progress(batches, 0, "calibration")
    for _ in range(batches):
        b = make_batch(64, rng)
        b.images = augment(b.images, g, partial)
        image_tokens = model.image(b.images.to(device))
        text_tokens, mask = model.encode_text(b.texts)
        values.append(model.pair_logits(image_tokens[b.image_index], text_tokens[b.text_index],
                                        mask[b.text_index]).cpu())
        bar.update(1)
    bar.close()
    v = torch.cat(values)
    model.train()
    return float(v.mean()), float(v.std().clamp_min(1e-3))


def check_args(args: argparse.Namespace) -> None:
    """This trainer's own options, before anything is loaded or written (with `check_arguments`)."""
    check_arguments(args)
    for option in ("partial_share", "partial_first_scale"):
        if getattr(args, option) is not None and not args.partial_tokenizer:
            raise ArscaleError(f"--{option.replace('_', '-')} has no effect without --partial-tokenizer DIR (the "
                               "tokenizer whose partial decodes are mixed in)")
    check_share(args.partial_share, "partial_share")
    check_count(args.partial_first_scale, "partial_first_scale", 0)  # its top: the tokenizer's scales
    args.partial_share = 0.5 if args.partial_share is None else args.partial_share
    args.partial_first_scale = 2 if args.partial_first_scale is None else args.partial_first_scale


# What state.json records of a run (besides batch size, lr and seed); a resume notes the ones it changes.
RECORDED = ("partial_tokenizer", "partial_share", "partial_first_scale")


def train(args: argparse.Namespace) -> int:
    check_args(args)
    device, state, resume = begin(args, RECORDED)
    torch.manual_seed(args.seed)
    config = RewardConfig()
    model = RewardModel(config).to(device)
    if args.init and resume:
        print(f"--init {args.init} is ignored: {args.state_dir} already holds a run, which resumes "
              "(--fresh starts over from --init)")
    if args.init and not resume:
        init = Path(args.init) / "model.safetensors"
        if not init.exists():
            raise ArscaleError(f"--init {args.init}: no model.safetensors there (a reward weights folder is expected)")
        load_strict(model, read_safetensors(init, device), str(init))
        print(f"starting from the reward weights in {args.init}")
    partial = None
    if args.partial_tokenizer:
        from arscale.generators.next_scale.shapeworld import load_shapeworld_tokenizer

        partial = PartialDecodes(load_shapeworld_tokenizer(args.partial_tokenizer).to(device),
                                 args.partial_share, args.partial_first_scale)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    run = restore(state, model, optimizer) if resume else Resumed()
    step, metrics = run.step, run.metrics
    timer = Timer(run.elapsed, args.checkpoint_minutes, args.time_limit)
    bar = progress(args.steps, step, "shapeworld-reward")
    model.train()
    while step < args.steps:
        rng = np.random.default_rng([args.seed, step])
        batch = make_batch(args.batch_size, rng)
        # seeded per step, so a resumed run degrades its images as the uninterrupted run would
        generator = torch.Generator().manual_seed(int(rng.integers(1 << 62)))
        batch.images = augment(batch.images, generator, partial)  # on the CPU, like the scene renderer
        set_lr(optimizer, rewarm(float(cosine_lr(step, args.steps, args.lr, warmup=100)), step, run.rewarm_from))  # float: numpy scalars break weights_only resume
        loss, metrics = batch_loss(model, batch, device)
        stop_if_diverged(metrics["bce"] + metrics["ce"], step + 1, args)  # the loss, already on the CPU
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{metrics['group_acc']:.3f}")
        if timer.should_save():
            state.save(model, optimizer, step=step, config=asdict(config), elapsed=timer.elapsed, metrics=metrics)
        if timer.out_of_time():
            break
    timer.close()
    bar.close()
    state.save(model, optimizer, step=step, config=asdict(config), elapsed=timer.elapsed, metrics=metrics)
    shift, scale = calibrate(model, np.random.default_rng([args.seed, 10**9]), device, partial=partial)
    if not (np.isfinite(shift) and np.isfinite(scale)):  # finite weights, but so large the logits overflow
        raise ArscaleError(f"the reward's logits are no longer finite after step {step} (calibration shift {shift}, "
                           f"scale {scale}): not exporting it; --lr {args.lr:g} is probably too high: start over "
                           "with a lower one (--fresh)")
    config.shift, config.scale = shift, scale
    model.config = config
    export_weights(model.state_dict(), asdict(config), args.out)
    trained = (f"nothing trained (the state is at step {step})" if step == run.step else
               f"trained {step - run.step} steps" + (f" (to step {step})" if run.step else ""))
    print(f"{trained}, {timer.elapsed / 60:.1f} min in all; calibration shift {shift:.3f} scale {scale:.3f}; "
          f"weights in {args.out}")
    return 0


def register(sub) -> None:
    parser = sub.add_parser("shapeworld-reward", help="train the ShapeWorld image–text reward (and feature) model",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(parser, steps=2000, batch_size=32, lr=1e-3, state_dir="train_state/shapeworld-reward",
                      out_dir=str(WEIGHTS_DIR), scene_stream=False, used_with="`arscale bench --scorer-weights DIR`",
                      trains=REWARD)
    parser.add_argument("--init", default=None,
                        help="start from the reward weights in this folder (fine-tuning; a fresh optimizer)")
    parser.add_argument("--partial-tokenizer", default=None,
                        help="multi-scale tokenizer folder (e.g. the shipped shapeworld-var): mix in its partial "
                             "decodes of the training scenes")
    parser.add_argument("--partial-share", type=float, default=None,
                        help="with --partial-tokenizer: share of images replaced by partial decodes (default 0.5)")
    parser.add_argument("--partial-first-scale", type=int, default=None,
                        help="with --partial-tokenizer: coarsest kept scale, 0-based (default 2)")
    parser.set_defaults(func=train)

