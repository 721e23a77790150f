"""`arscale generate PROMPT`: images for one prompt with any registered model and strategy.

Writes `<out>/<model>_<strategy>_<index>.png` (native size), a ×4 nearest-upscaled copy
`..._x4.png` for viewing, `grid.png`, and `result.json` (scores, cost, config). A strategy module may
define `write_extras(result, out_dir) -> list[Path]` to add its own outputs (search tree, plots).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from arscale.commands.precision import add_precision_arguments, precision_options
from arscale.devices import check_threads, pick_device
from arscale.errors import ArscaleError
from arscale.folders import first_missing, output_folder, remove_empty_folders
from arscale.generators.class_names import use_class_names

RAW_BATCH = 32  # raw images per forward batch unless --batch says otherwise


def register(sub) -> None:
    from arscale.generators.registry import MODELS
    from arscale.search.base import STRATEGIES

    p = sub.add_parser("generate", help="generate images for a prompt (offline with the shipped models)",
                       description="Generate images for PROMPT, e.g. arscale generate 'a photo of a red circle'.")
    p.add_argument("prompt", help="the text prompt (ShapeWorld grammar for the shipped models)")
    p.add_argument("--model", default="shapeworld-var", choices=sorted(MODELS), help="default %(default)s")
    p.add_argument("--strategy", default="raw", choices=sorted(STRATEGIES), help="default %(default)s")
    p.add_argument("--n", type=int, default=4, help="images (raw) or candidate budget per prompt (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="default %(default)s")
    p.add_argument("--batch", type=int, default=None, metavar="B",
                   help=f"raw only: images generated together, with a progress bar over the batches (default "
                        f"{RAW_BATCH}; each image's random draws do not depend on it); the other strategies search "
                        "their n candidates together")
    p.add_argument("--cfg", type=float, default=None,
                   help="guidance scale (default: the model's). No guidance is 1 on ShapeWorld, Infinity and LlamaGen "
                        "(LlamaGen: any value <= 1) and 0 on VAR, whose ramp 1 + cfg*k/(K-1) starts at 1: there the "
                        "strategies but ScalingAR run the conditional half alone, at half the transformer compute. "
                        "Below 1 a ShapeWorld model mixes toward its unconditional logits and follows the prompt less"),
    add_precision_arguments(p)
    p.add_argument("--config", default=None, help="strategy config as a JSON string or a path to a JSON file")
    p.add_argument("--scorer", default=None, help="scorer for strategies that need one (e.g. shapeworld-reward)")
    p.add_argument("--scorer-weights", default=None, metavar="DIR",
                   help="load the ShapeWorld reward and features (one model) from this folder instead of the "
                        "shipped one, e.g. a reward trained by `arscale train shapeworld-reward --out DIR`")
    p.add_argument("--weights", default=None,
                   help="model weights (a file, a directory or a hub id) instead of the shipped/default ones")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--class-names", default=None, metavar="FILE",
                   help="class-conditional models (var-d*, llamagen-c2i-*): one class name per line, in index order, "
                        "for a scorer that reads text (e.g. best-of-n with imagereward)")
    p.add_argument("--out", default="out/generate", help="output directory (default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from arscale.generators.seeding import check_seed

    if args.n <= 0:
        raise ArscaleError(f"--n must be at least 1, got {args.n}")
    if args.batch is not None and args.batch <= 0:
        raise ArscaleError(f"--batch must be at least 1, got {args.batch}")
    if args.batch is not None and args.strategy != "raw":
        print(f"note: --batch is for raw sampling; {args.strategy} searches its {args.n} candidates together",
              file=sys.stderr)
    args.batch = args.batch or RAW_BATCH
    check_seed(args.seed)
    check_cfg(args.cfg)
    precision_options(args.model, args.dtype, args.text_dtype)  # a model that takes neither: before --out is made
    if args.threads < 0:
        raise ArscaleError(f"--threads must be at least 1 (0: torch's own choice), got {args.threads}")
    check_threads(args.threads)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from arscale.scorers.shapeworld import restoring_weights, use_weights

    t0 = time.perf_counter()
    args.device = str(pick_device(args.device))
    made = first_missing(args.out)
    out = output_folder(args.out)  # before the model loads: a bad --out fails at once
    try:
        with restoring_weights():  # --scorer-weights holds for this run only
            if args.scorer_weights:  # before any scorer loads: a wrong folder fails before the model loads
                use_weights(args.scorer_weights)
            return _generate(args, out, t0)
    except BaseException:
        remove_empty_folders(made)  # leave no empty folder behind a failed run
        raise


def _generate(args: argparse.Namespace, out: Path, t0: float) -> int:
    from arscale.bench.geneval_layout import strict_json
    from arscale.generators.registry import load_generator
    from arscale.search.base import budget_note, check_result, make_strategy, read_config

    precision = precision_options(args.model, args.dtype, args.text_dtype)
    generator = load_generator(args.model, **model_options(args.device, args.cfg, args.weights), **precision)
    use_class_names(generator, args.class_names)
    strategy = make_strategy(args.strategy, read_config(args.config) if args.config else {})
    scorer = None
    if args.scorer_weights and not getattr(strategy, "uses_reward", True):
        print(f"note: {args.strategy} uses no scorer; --scorer-weights {args.scorer_weights} is ignored",
              file=sys.stderr)
    if args.scorer and not getattr(strategy, "uses_reward", True):
        print(f"note: {args.strategy} uses no scorer; --scorer {args.scorer} is ignored", file=sys.stderr)
    elif args.scorer:
        from arscale.scorers.base import load_scorer

        scorer = load_scorer(args.scorer, device=args.device)
    needs_unconditional = getattr(generator, "needs_unconditional", None)
    if args.cfg is not None and args.strategy == "scaling-ar" and hasattr(generator, "next_logits") and \
            callable(needs_unconditional) and not needs_unconditional(args.cfg):  # where the others run one half
        print(f"note: scaling-ar starts every candidate at --cfg {args.cfg:g} and its schedule moves each one's "
              "guidance from there, so it keeps both CFG halves", file=sys.stderr)
    note = budget_note(strategy, generator, args.n)
    if note:
        print(f"note: {note}", file=sys.stderr)
    if args.strategy == "raw":
        result = _raw_in_batches(strategy, generator, args, scorer)
    else:
        result = check_result(strategy.run(generator, [args.prompt], args.n, seed=args.seed, scorer=scorer),
                              args.strategy, 1)
    candidates = [c for per_prompt in result.candidates for c in per_prompt]
    images = [c.image for c in candidates]
    stem = f"{args.model}_{args.strategy}".replace("/", "-").replace("\\", "-")  # a plugin's "org/model": one file
    digits = max(2, len(str(len(images) - 1)))  # names sort in order
    written = _write_images(strategy, result, candidates, out, stem, digits)
    summary = {"prompt": args.prompt, "model": args.model, "strategy": args.strategy, "n": args.n,
               "seed": args.seed, "cfg": _model_cfg(generator), **precision,  # given only: else the loader's fp32
               "scorer": args.scorer if scorer else None,
               **({"scorer_weights": str(args.scorer_weights)}
                  if args.scorer_weights and getattr(strategy, "uses_reward", True) else {}),
               "scores": [c.score for c in candidates],
               "chosen": [i for i, c in enumerate(candidates) if c.chosen],
               "seconds": round(time.perf_counter() - t0, 2),  # the whole command, loading included
               "config": result.config,
               "search_tree": result.tree.to_dict()}
    cost = getattr(result, "cost", None)
    if cost is not None and hasattr(cost, "to_dict"):
        summary["cost"] = cost.to_dict()
    if getattr(result, "telemetry", None):  # the strategy's traces as data, not only as the plot (images left out)
        summary["telemetry"] = result.telemetry_dict()
    try:
        (out / "result.json").write_text(strict_json(summary, indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ArscaleError(f"cannot write {out / 'result.json'}: {exc.strerror or exc}") from None
    if args.model.startswith("shapeworld-"):  # the shipped models were trained on the ShapeWorld grammar only
        _note_outside_the_grammar(args.prompt)
    ours = {out / "result.json", *written, *(out / f"{stem}_{i:0{digits}d}{x}.png" for i in range(len(images))
                                             for x in ("", "_x4"))}
    earlier = sorted(f for f in out.iterdir() if f.suffix in (".png", ".json") and f not in ours)
    if earlier:  # an earlier run's images beside a result.json that no longer describes them
        print(f"note: {out} also holds {len(earlier)} image or JSON file(s) of an earlier run (e.g. {earlier[0].name}); "
              "result.json describes only this run's", file=sys.stderr)
    print(f"wrote {len(images)} image(s) and {', '.join(p.name for p in written)} to {out} "
          f"in {summary['seconds']} s")
    if 1 < len(images) and len(summary["chosen"]) < len(images):  # raw's images are each their own pick
        print(f"chosen: {', '.join(f'{stem}_{i:0{digits}d}.png' for i in summary['chosen'])} (framed in grid.png)")
    return 0


def _write_images(strategy, result, candidates: list, out: Path, stem: str, digits: int) -> list[Path]:
    """Every candidate (native size and ×4), grid.png and the strategy's own extras; returns grid.png and the
    extras' paths."""
    from arscale.search.base import strategy_extras

    images = [c.image for c in candidates]
    score_name = "reward" if getattr(strategy, "uses_reward", True) else "confidence"
    try:  # a read-only or full --out, a folder in the way: one line, as eval and render say it
        for i, img in enumerate(images):
            Image.fromarray(img).save(out / f"{stem}_{i:0{digits}d}.png")
            Image.fromarray(upscale(img, 4)).save(out / f"{stem}_{i:0{digits}d}_x4.png")
        captions = tile_captions(candidates, images, digits, score_name)
        Image.fromarray(grid(images, chosen=[i for i, c in enumerate(candidates) if c.chosen],
                             captions=captions)).save(out / "grid.png")
        written = [out / "grid.png"]
        write_extras = strategy_extras(strategy)
        if write_extras is not None:
            written += list(write_extras(result, out) or [])
    except OSError as exc:
        raise ArscaleError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    return written


def _note_outside_the_grammar(prompt: str) -> None:
    from arscale.shapeworld.grammar import GrammarError, metadata_from_prompt

    try:
        metadata_from_prompt(prompt)
    except GrammarError as exc:  # known words still encode (a test of composition), so warn, don't refuse
        print(f"note: outside the ShapeWorld grammar ({exc}); the shipped models never saw such a prompt "
              "and the ShapeWorld evaluator cannot judge it", file=sys.stderr)


def model_options(device: str, cfg: float | None, weights: str | None) -> dict:
    """`load_generator`'s options (generate and bench): the device, and --cfg and the weights only where given."""
    options: dict = {"device": device}
    if cfg is not None:
        options["cfg"] = cfg
    if weights:
        options["weights"] = weights
    return options


def _raw_in_batches(strategy, generator, args: argparse.Namespace, scorer):
    """Raw sampling has no budget to spend: n images are n independent samples, one per prompt copy. Copy i
    is global prompt i whatever the batch, so its random draws are those it would have in one big batch."""
    from tqdm import tqdm

    one_batch = args.n <= args.batch
    with tqdm(total=args.n, desc="generate", unit="img", disable=True if one_batch else None) as bar:
        result = None
        for start in range(0, args.n, args.batch):
            copies = [args.prompt] * min(args.batch, args.n - start)
            part = strategy.run(generator, copies, 1, seed=args.seed, prompt_offset=start, scorer=scorer)
            result = part if result is None else result.extend(part)
            bar.update(len(copies))
    return result


def upscale(img: np.ndarray, factor: int) -> np.ndarray:
    return img.repeat(factor, 0).repeat(factor, 1)


CHOSEN_FRAME = (0, 170, 0)  # green, around the strategy's pick
GRID_PIXELS = 4096  # the widest grid.png; many or large images are shown smaller
SEPARATOR = 150  # grey between tiles


def grid(images: list[np.ndarray], scale: int = 4, pad: int = 4, chosen: Sequence[int] = (),
         captions: Sequence[str] = ()) -> np.ndarray:
    """Images in a near-square grid, ×`scale` nearest-upscaled, separated by grey lines (ShapeWorld's own
    background is near white); the `chosen` ones framed in green (in the padding, so no pixel of an image is
    covered) when they are not all of them.
    The grid is at most GRID_PIXELS wide: with many images they are upscaled less, or shown subsampled.
    `captions` (one per image) are written under the tiles where they are wide enough to read."""
    if not images:
        raise ArscaleError("no images to put in a grid")
    cols = math.ceil(math.sqrt(len(images)))
    width = images[0].shape[1]
    scale = max(1, min(scale, (GRID_PIXELS - pad) // (cols * (width + pad))))
    step = 1  # keep every step-th pixel when even ×1 is too wide
    while cols * (math.ceil(width / step) * scale + pad) + pad > GRID_PIXELS and math.ceil(width / step) > 1:
        step += 1
    tiles = [upscale(im[::step, ::step], scale) for im in images]
    h, w = tiles[0].shape[:2]
    if captions and (len(captions) != len(tiles) or w < CAPTION_MIN_WIDTH):
        captions = ()
    strip = CAPTION_HEIGHT if captions else 0
    tiles = [np.concatenate([t, np.full((strip, w, 3), 255, np.uint8)]) for t in tiles] if strip else tiles
    h += strip
    rows = math.ceil(len(tiles) / cols)
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), SEPARATOR, dtype=np.uint8)
    framed = set(chosen) if len(set(chosen)) < len(tiles) else set()  # raw: every image is its prompt's pick
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        if i in framed:
            canvas[top - pad: top + h + pad, left - pad: left + w + pad] = CHOSEN_FRAME
        canvas[top: top + h, left: left + w] = t
    for i in range(len(tiles), rows * cols):  # the last row's empty cells
        r, c = divmod(i, cols)
        canvas[pad + r * (h + pad): (r + 1) * (h + pad), pad + c * (w + pad): (c + 1) * (w + pad)] = 255
    if captions:
        canvas = _write_captions(canvas, captions, cols, h, w, pad, framed)
    return canvas


CAPTION_HEIGHT = 16  # px of white under each tile for its caption
CAPTION_MIN_WIDTH = 48  # narrower tiles (many images in one grid) go without


def _write_captions(canvas: np.ndarray, captions: Sequence[str], cols: int, h: int, w: int, pad: int,
                    framed: set[int]) -> np.ndarray:
    from PIL import ImageDraw, ImageFont

    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=11)
    for i, text in enumerate(captions):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        text = _fit_caption(text, font, w - 4)
        draw.text((left + 3, top + h - CAPTION_HEIGHT + 2), text, font=font,
                  fill=CHOSEN_FRAME if i in framed else (0, 0, 0))
    return np.asarray(picture)


def _fit_caption(text: str, font, width: float) -> str:
    """The caption's leading parts that fit in `width` px (the file number first): wider text would run into the
    next tile's caption."""
    parts = text.split(" · ")
    while len(parts) > 1 and font.getlength(" · ".join(parts)) > width:
        parts.pop()
    return " · ".join(parts) if font.getlength(parts[0]) <= width else ""


def tile_captions(candidates: Sequence, images: list[np.ndarray], digits: int, score_name: str) -> list[str]:
    """What each tile of grid.png is: the number of its file, its score (`score_name`: what the strategy picks
    by), whether it is the pick, and which earlier tile it repeats (resampling keeps copies of a candidate)."""
    picks = sum(bool(c.chosen) for c in candidates)
    first_of: dict[bytes, int] = {}  # a digest of an image's pixels -> the first tile showing it
    out = []
    for i, (candidate, image) in enumerate(zip(candidates, images, strict=True)):
        parts = [f"{i:0{digits}d}"]
        if candidate.score is not None:
            parts.append(f"{score_name} {candidate.score:.3g}")
        if candidate.chosen and picks < len(candidates):
            parts.append("chosen")
        same = first_of.setdefault(hashlib.sha256(str(image.shape).encode() + image.tobytes()).digest(), i)
        if same != i:
            parts.append(f"= {same:0{digits}d}")
        out.append(" · ".join(parts))
    return out


def _model_cfg(generator):
    """The guidance the model ran at (--cfg, else its default): a next-token model's `cfg`, a next-scale model's
    sampling config's (Infinity: a value or one per scale); None for a plugin model that says neither."""
    cfg = getattr(generator, "cfg", None)
    return getattr(getattr(generator, "sampling", None), "cfg", None) if cfg is None else cfg


def check_cfg(cfg: float | None) -> None:
    """`--cfg` (generate and bench): a finite guidance scale ≥ 0 that float32 holds, or None for the model's own."""
    from arscale.generators.sampling import MAX_GUIDANCE

    if cfg is not None and not 0 <= cfg <= MAX_GUIDANCE:
        raise ArscaleError(f"--cfg must be a finite number ≥ 0, got {cfg} (at most {MAX_GUIDANCE:.4g})")
