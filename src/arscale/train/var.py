"""`arscale train shapeworld-var`: the scale-wise transformer (and its text encoder) of ShapeWorld-VAR.

Teacher forcing on freshly sampled scenes: the frozen tokenizer gives per-scale indices, the
transformer predicts every scale from the condition and the coarser scales (block-causal mask),
cross-entropy over all tokens. The prompt is replaced by the unconditional `<null>` text 10% of the
time, which is what classifier-free guidance needs. `--self-correction` corrupts the prefixes and
re-quantises the targets (`train/self_correction.py`), so the model learns to repair sampling errors;
`--sampled-prefix` also puts one scale the model sampled itself into a share of the prefixes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from arscale.errors import ArscaleError
from arscale.generators.loading import read_json, read_safetensors, shapeworld_folder_holds
from arscale.generators.next_scale.generator import ScaleGenerator
from arscale.generators.next_scale.shapeworld import WEIGHTS_DIR, build_shapeworld_var
from arscale.generators.seeding import mix
from arscale.train import common, lr_schedule, scene_stream
from arscale.train.grow import block_sources, deepen_state
from arscale.train.self_correction import (
    check_sampled_prefix,
    check_strength,
    corrupted_teacher_batch,
    with_sampled_scale,
)

STATE_DIR = "train_state/shapeworld-var"

DEFAULT_CONFIG = {
    "transformer": {"width": 256, "depth": 6, "heads": 4, "mlp_ratio": 4.0, "attn_l2_norm": True,
                    "shared_aln": False},
    "text_encoder": {"width": 128, "depth": 2, "heads": 4, "max_len": 12},
    "sampling": {"cfg": 3.0, "cfg_schedule": "constant", "top_k": 0, "top_p": 0.0, "temperature": 1.0},
}


SCALE_WEIGHTINGS = ("tokens", "side", "scales")


def register(sub) -> None:
    p = sub.add_parser("shapeworld-var", help="train the ShapeWorld-VAR transformer (needs the tokenizer)")
    common.add_training_args(p, steps=20000, batch_size=64, lr=1e-3, state_dir=STATE_DIR, out_dir=str(WEIGHTS_DIR),
                             trains=common.VAR_MODEL)
    lr_schedule.add_cooldown_arg(p)
    lr_schedule.add_fit_arg(p)
    p.add_argument("--tokenizer", default=None,
                   help="directory with tokenizer.safetensors + tokenizer_config.json (default: --out if it holds "
                        "one, else for a new run --init-from's if it holds one, else the shipped one)")
    p.add_argument("--config", default=None, help="JSON file overriding DEFAULT_CONFIG's sections (new runs)")
    p.add_argument("--init-from", default=None, metavar="DIR",
                   help="start a new run from trained weights (a weights folder with config.json, or a training "
                        "state): its config is the base that --config overrides; a larger transformer depth "
                        "deepens the trained stack without changing its output (train/grow.py)")
    p.add_argument("--null-prob", type=float, default=0.1, help="probability of dropping the prompt (CFG)")
    p.add_argument("--eval-every", type=int, default=1000, help="sample-and-evaluate every N steps (0 = only at the end)")
    p.add_argument("--self-correction", type=float, default=0.0, metavar="STRENGTH",
                   help="corrupt each scale's prefix tokens with probability U[0, STRENGTH] and re-quantise the "
                        "later targets, so the model learns to repair its own sampling errors (Infinity's "
                        "bitwise self-correction, which trains with 0.3; default 0 = plain teacher forcing)")
    p.add_argument("--self-correction-neighbours", type=int, default=None, metavar="K",
                   help="with --self-correction: a corrupted token takes one of the K codes nearest its residual "
                        "(0 = any code; default 8)")
    p.add_argument("--sampled-prefix", type=float, default=0.0, metavar="SHARE",
                   help="in this share of the rows, one scale of the prefix is sampled by the model itself (its "
                        "guidance and sampler) and the later targets re-quantised: the errors of tokens drawn "
                        "independently within a scale, which near-code corruption does not make (default 0)")
    p.add_argument("--sampled-prefix-from", type=int, default=None, metavar="SI",
                   help="with --sampled-prefix: the sampled scale is uniform in [SI, last − 1] (0-based; default 2)")
    p.add_argument("--scale-weighting", choices=SCALE_WEIGHTINGS, default="tokens",
                   help="how the cross-entropy weighs the scales: tokens = every token alike (VAR; default), "
                        "side = each scale in proportion to its side length, scales = every scale alike")
    p.set_defaults(func=main)


# What state.json records of a run (besides batch size, lr and seed); a resume notes the ones it changes.
RECORDED = ("cooldown", "null_prob", "self_correction", "self_correction_neighbours", "sampled_prefix",
            "sampled_prefix_from", "scale_weighting")


def check_args(args: argparse.Namespace) -> None:
    """This trainer's own options, before anything is loaded or written (with `common.check_arguments`)."""
    common.check_arguments(args)
    lr_schedule.check_fit_arg(args)
    lr_schedule.check_cooldown_arg(args)
    common.check_share(args.null_prob, "null_prob")
    common.check_count(args.eval_every, "eval_every", 0, " (0: only at the end)")
    for option, partner, default in (("self_correction_neighbours", "self_correction", 8),
                                     ("sampled_prefix_from", "sampled_prefix", 2)):
        if getattr(args, option) is None:
            setattr(args, option, default)
        elif not getattr(args, partner) > 0:
            print(f"note: {common.option_name(option)} has no effect without {common.option_name(partner)} above 0")
    check_strength(args.self_correction, args.self_correction_neighbours)


def load_tokenizer_config(directory: str | Path) -> dict:
    path = Path(directory) / "tokenizer_config.json"
    if not path.exists():
        raise ArscaleError(f"no tokenizer in {directory}; run `arscale train shapeworld-tokenizer` first")
    config = read_json(path)
    if "patch_nums" not in config:
        raise ArscaleError(f"--tokenizer {directory} holds {shapeworld_folder_holds(directory)}, not a ShapeWorld-VAR "
                           "tokenizer (`arscale train shapeworld-tokenizer` makes one)")
    return config


def config_overrides(path: str) -> dict:
    """--config: sections of DEFAULT_CONFIG (each a JSON object of fields), sizes checked."""
    overrides = common.read_config(path)
    bad = next((k for k, v in overrides.items() if not isinstance(v, dict)), None)
    if bad is not None:
        raise ArscaleError(f"--config {path}: {bad} must be a section (a JSON object of its fields), "
                           f"got {overrides[bad]!r}")
    return overrides


def merged(base: dict, overrides: dict | None) -> dict:
    """A copy of a config with `overrides`' sections updated into it."""
    out = json.loads(json.dumps(base))
    for section, values in (overrides or {}).items():
        out.setdefault(section, {}).update(values)
    return out


def full_config(tokenizer_config: dict, overrides: dict | None) -> dict:
    config = merged(DEFAULT_CONFIG, overrides)
    t = config["transformer"]
    t.update(patch_nums=list(tokenizer_config["patch_nums"]), vocab_size=tokenizer_config["vocab_size"],
             code_dim=tokenizer_config["code_dim"])
    return config


def initial_files(directory: str) -> tuple[Path, Path]:
    """The weights and config file of --init-from: a weights folder (config.json) or training state (state.json)."""
    folder = Path(directory)
    weights = folder / "model.safetensors"
    config_file = next((f for f in (folder / "config.json", folder / "state.json") if f.exists()), None)
    if not weights.exists() or config_file is None:
        raise ArscaleError(f"--init-from {directory}: expected model.safetensors and config.json (or state.json)"
                           + ("" if folder.is_dir() else ", but there is no such folder"))
    return weights, config_file


def initial_config(directory: str) -> dict:
    """The model sections of --init-from's config (config.json, or a training state's state.json); a folder of
    another model is refused."""
    _, config_file = initial_files(directory)
    config = read_json(config_file)
    config = config.get("config", config)
    if "transformer" not in config or "text_encoder" not in config:
        raise ArscaleError(f"--init-from {directory} holds {shapeworld_folder_holds(directory)}, not a ShapeWorld-VAR "
                           "model")
    return {k: config[k] for k in ("transformer", "text_encoder", "sampling") if k in config}


def initial_weights(directory: str | None) -> tuple[dict[str, torch.Tensor], dict] | None:
    """(fp32 state dict, config) of a weights folder (config.json) or training state (state.json)."""
    if directory is None:
        return None
    sections = initial_config(directory)
    weights, _ = initial_files(directory)
    return {k: v.float() for k, v in read_safetensors(weights).items()}, sections


def load_initial(model: torch.nn.Module, weights: dict[str, torch.Tensor], init_config: dict, config: dict,
                 source: str) -> None:
    """Load trained weights into a new run's model, deepened when the new config has more blocks."""
    old_depth, new_depth = init_config["transformer"]["depth"], config["transformer"]["depth"]
    if new_depth != old_depth:
        weights = deepen_state(weights, old_depth, new_depth)
        print(f"deepened {source}: {old_depth} -> {new_depth} blocks (copies {block_sources(old_depth, new_depth)})")
    common.load_strict(model, weights, source)


def scale_loss_weights(patch_nums: list[int], mode: str) -> torch.Tensor:
    """Per-token weights of the cross-entropy over the flattened scales, mean 1.

    Per-token weighting gives the 8x8 scale 41 % of the loss and scales 0-4 (where ShapeWorld-VAR's
    single objects go wrong, benchmarks/where_shapes_break.py) 35 %; "side" gives each scale a share
    proportional to its side length (scales 0-4: 52 %), "scales" gives every scale the same share."""
    if mode not in SCALE_WEIGHTINGS:
        raise ArscaleError(f"unknown scale weighting {mode!r}: expected one of {', '.join(SCALE_WEIGHTINGS)}")
    share = {"tokens": lambda pn: pn * pn, "side": lambda pn: pn, "scales": lambda pn: 1}[mode]
    weights = torch.cat([torch.full((pn * pn,), share(pn) / (pn * pn)) for pn in patch_nums])
    return weights / weights.mean()


def trainable(gen: ScaleGenerator) -> torch.nn.ModuleDict:
    """The trained part, with the key layout of the shipped model.safetensors."""
    return torch.nn.ModuleDict({"transformer": gen.transformer, "conditioner": gen.conditioner})


@torch.no_grad()
def sample_accuracy(gen: ScaleGenerator, per_tag: int = 8, seed: int = 777, cfg: float | None = None
                    ) -> dict[str, float]:
    """Raw sampling (one image per prompt) scored by the exact evaluator, on freshly drawn prompts."""
    sw = scene_stream.shapeworld_api()
    rng = __import__("numpy").random.default_rng(seed)
    scores = {}
    was_training = gen.training
    gen.eval()
    for tag in sw.TAGS:
        mds = [sw.random_metadata(rng, tag) for _ in range(per_tag)]
        imgs = gen.generate([m["prompt"] for m in mds], 1, seed=seed, cfg=cfg)
        px = (imgs * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        scores[tag] = sum(bool(sw.evaluate(p, m).correct) for p, m in zip(px, mds)) / per_tag
    scores["overall"] = sum(scores.values()) / len(sw.TAGS)
    gen.train(was_training)
    return scores


def main(args: argparse.Namespace) -> int:
    check_args(args)
    if args.fresh or not common.TrainState(args.state_dir).exists:  # a new run: before the tokenizer is looked for
        check_new_run_files(args)
    args.tokenizer = common.tokenizer_folder(args, WEIGHTS_DIR)
    tok_cfg = load_tokenizer_config(args.tokenizer)
    check_sampled_prefix(args.sampled_prefix, args.sampled_prefix_from, len(tok_cfg["patch_nums"]))
    device, state, resume = common.begin(args, RECORDED)
    init = None if resume else initial_weights(args.init_from)
    if resume and args.init_from:
        print(f"--init-from {args.init_from} is ignored: {args.state_dir} already holds a run, which resumes "
              "(--fresh starts over from --init-from)")
    config = run_config(args, state, resume, tok_cfg, init)
    gen, model = build_trainable(args, tok_cfg, config, device, resume, init)
    opt = make_optimizer(model, args.lr)
    run = common.restore(state, model, opt) if resume else common.Resumed()
    step, metrics = run.step, run.metrics
    stream = scene_stream.ShapeWorldStream(args.batch_size, args.seed, start_step=step, workers=args.data_workers)
    drop_rng, noise_rng = torch.Generator(), torch.Generator(device=device)  # seeded per step, in `step_loss`
    timer = common.Timer(run.elapsed, args.checkpoint_minutes, args.time_limit)
    fitter = lr_schedule.StepFitter(args, timer, step)

    def save():
        state.save(model, opt, step=step, config=config, elapsed=timer.elapsed, metrics=metrics,
                   extra={**({} if ema_loss is None else {"ema_loss": torch.tensor(ema_loss, dtype=torch.float64)}),
                          **lr_schedule.fitted_plan(args)})

    bar = common.progress(args.steps, step, "shapeworld-var")
    model.train()
    carried = state.extra()[0] if resume else {}
    ema_loss = float(carried["ema_loss"]) if "ema_loss" in carried else None  # the running loss goes on
    token_weights = scale_loss_weights(config["transformer"]["patch_nums"], args.scale_weighting).to(device)
    while step < args.steps:
        lr_schedule.set_lr(opt, lr_schedule.transformer_lr(step, args, run.rewarm_from))
        batch = stream.sample(args.batch_size)
        loss = step_loss(gen, batch, args, step, token_weights, drop_rng, noise_rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        step += 1
        value = loss.item()
        common.stop_if_diverged(value, step, args)
        ema_loss = value if ema_loss is None else 0.98 * ema_loss + 0.02 * value
        bar.update(1)
        if message := fitter.after_step(step):
            bar.total = args.steps
            bar.write(message)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{ema_loss:.4f}")
        if common.evaluation_due(step, args):
            metrics = {"step": step, "loss": ema_loss, **sample_accuracy(gen)}
            bar.write(f"step {step}: raw sampling accuracy {json.dumps(metrics)}")
        if timer.should_save():
            save()
        if timer.out_of_time():
            break
    common.end_loop(timer, bar, stream)
    save()
    export_model(args, model, config, step, timer.elapsed, device, metrics)
    print(f"saved state to {args.state_dir} and weights to {args.out}")
    return 0


def check_new_run_files(args: argparse.Namespace) -> None:
    """A new run's --init-from and --config, read before the tokenizer is looked for: --init-from's own tokenizer
    is the one its weights were trained on."""
    if args.init_from:
        initial_config(args.init_from)  # another model's folder is named now, not as the tokenizer taken from it
        if not args.tokenizer and not (Path(args.out) / "tokenizer_config.json").is_file() \
                and (Path(args.init_from) / "tokenizer_config.json").is_file():
            args.tokenizer = args.init_from  # the codes the initial weights were trained on
    if args.config:
        config_overrides(args.config)


def run_config(args: argparse.Namespace, state: common.TrainState, resume: bool, tok_cfg: dict,
               init: tuple[dict[str, torch.Tensor], dict] | None) -> dict:
    """A resumed run's own config; a new run's: DEFAULT_CONFIG, under --init-from's, under --config's sections, with
    the tokenizer's sizes."""
    if resume:
        return state.info()["config"]
    overrides = config_overrides(args.config) if args.config else None
    return full_config(tok_cfg, merged(init[1], overrides) if init else overrides)


def build_trainable(args: argparse.Namespace, tok_cfg: dict, config: dict, device: torch.device, resume: bool,
                    init: tuple[dict[str, torch.Tensor], dict] | None) -> tuple[ScaleGenerator, torch.nn.ModuleDict]:
    """The generator (seeded with --seed) with its frozen tokenizer loaded, and its trained part (`trainable`),
    starting from --init-from's weights in a new run that has them."""
    torch.manual_seed(args.seed)
    try:
        gen = build_shapeworld_var(tok_cfg, config).to(device)
    except TypeError as exc:  # an unknown field in --config's sections
        if resume or not args.config:
            raise
        raise ArscaleError(f"--config {args.config} does not fit this trainer: {exc}") from None
    tok_file = Path(args.tokenizer) / "tokenizer.safetensors"
    common.load_strict(gen.tokenizer, read_safetensors(tok_file, device), str(tok_file))
    gen.tokenizer.requires_grad_(False).eval()
    model = trainable(gen)
    if init:
        load_initial(model, *init, config, args.init_from)
    return gen, model


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only (not on embeddings or the transformer's position tables; the
    text encoder's `pos` table is decayed)."""
    def decayed(name: str, p: torch.nn.Parameter) -> bool:
        return p.dim() >= 2 and "embed" not in name and "pos_" not in name

    decay = [p for n, p in model.named_parameters() if decayed(n, p)]
    other = [p for n, p in model.named_parameters() if not decayed(n, p)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95))


def step_loss(gen: ScaleGenerator, batch, args: argparse.Namespace, step: int, token_weights: torch.Tensor,
              drop_rng: torch.Generator, noise_rng: torch.Generator) -> torch.Tensor:
    """One step's weighted cross-entropy: the batch's teacher-forced scales (corrupted with --self-correction, one
    scale sampled by the model in a --sampled-prefix share of the rows), prompts dropped at --null-prob."""
    device = token_weights.device
    # seeded per step, so a resumed run drops prompts and corrupts prefixes as the uninterrupted run would
    drop_rng.manual_seed(mix(args.seed, step, 0xD20B))
    noise_rng.manual_seed(mix(args.seed, step, 0x7015E))
    with torch.no_grad():
        # strength 0 is exactly plain teacher forcing (tested)
        latent = gen.tokenizer.latent(batch.images.to(device))
        teacher = corrupted_teacher_batch(gen.tokenizer.quantizer, latent, args.self_correction,
                                          args.self_correction_neighbours, noise_rng)
        if args.sampled_prefix > 0:
            teacher = with_sampled_scale(gen, latent, teacher, batch.prompts, args.sampled_prefix,
                                         args.sampled_prefix_from, noise_rng)
        x, target = teacher.inputs, teacher.targets
    drop = torch.rand(len(batch.prompts), generator=drop_rng) < args.null_prob
    prompts = [None if d else p for p, d in zip(batch.prompts, drop.tolist())]
    cond = gen.conditioner(prompts)
    logits = gen.transformer(cond.pooled, x, cond.context, cond.context_mask)
    per_token = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # [B, L]
    return (per_token * token_weights).mean()


def export_model(args: argparse.Namespace, model: torch.nn.Module, config: dict, step: int, elapsed: float,
           device: torch.device, metrics: dict) -> None:
    """The shippable fp16 weights, their config with what trained them, and the tokenizer beside them."""
    training = {"steps": step, "batch_size": args.batch_size, "lr": args.lr, "cooldown": args.cooldown,
                "self_correction": args.self_correction, "self_correction_neighbours": args.self_correction_neighbours,
                "sampled_prefix": args.sampled_prefix, "sampled_prefix_from": args.sampled_prefix_from,
                "scale_weighting": args.scale_weighting, "elapsed_seconds": round(elapsed), "device": str(device),
                "metrics": metrics}
    common.export_weights(model.state_dict(), dict(config, training=training), args.out, dtype=torch.float16)
    common.complete_with_tokenizer(args.out, args.tokenizer)
