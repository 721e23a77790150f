"""`arscale train shapeworld-ar-tokenizer`: the single-scale VQ tokenizer of ShapeWorld-AR.

Loss: L1 + L2 reconstruction, an image-gradient L1 term (flat-colour shapes live or die by their
outlines) and the VQ commitment/codebook loss. Codes unused for a while are re-seeded from current
encoder latents so the codebook stays in use. Reconstructions are checked with the exact
ShapeWorld evaluator on fresh clean renders (never the public suite).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from arscale.errors import ArscaleError
from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer
from arscale.generators.seeding import mix
from arscale.train import common, lr_schedule, scene_stream

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "shapeworld-ar"
STATE_DIR = "train_state/shapeworld-ar-tokenizer"
# Downsample 4 -> the shipped 16x16 grid (256 tokens): ScalingAR's windows need a long raster (MODEL_CARD.md).
SHIPPED_CH_MULT = (1, 2, 4)


def register(sub) -> None:
    p = sub.add_parser("shapeworld-ar-tokenizer", help="train the single-scale VQ tokenizer of ShapeWorld-AR")
    common.add_training_args(p, steps=8000, batch_size=32, lr=1e-3, state_dir=STATE_DIR, out_dir=str(WEIGHTS_DIR),
                             used_with="`arscale train shapeworld-ar --out DIR`, which finds it there",
                             trains=common.AR_TOKENIZER)
    p.add_argument("--config", default=None, help="JSON file with VQConfig fields (new runs only)")
    p.add_argument("--eval-every", type=int, default=500, help="evaluate reconstructions every N steps (0 = only at the end)")
    p.add_argument("--decoder-only", default=None, metavar="DIR",
                   help="fine-tune only the decoder (and post_quant_conv) of the tokenizer in DIR, codes frozen: "
                        "a model trained on its codes stays valid")
    p.set_defaults(func=main)


def edge_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    dy = F.l1_loss(recon[..., 1:, :] - recon[..., :-1, :], target[..., 1:, :] - target[..., :-1, :])
    dx = F.l1_loss(recon[..., :, 1:] - recon[..., :, :-1], target[..., :, 1:] - target[..., :, :-1])
    return dx + dy


@torch.no_grad()
def reconstruction_accuracy(model: VQTokenizer, per_tag: int = 10, seed: int = 4242) -> dict[str, float]:
    """Exact-evaluator accuracy of reconstructions of clean renders of `per_tag` fresh prompts per tag (drawn with
    `seed`), per tag and overall."""
    import numpy as np

    from arscale import shapeworld

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    metadata = [shapeworld.random_metadata(rng, tag) for tag in shapeworld.TAGS for _ in range(per_tag)]
    rng = np.random.default_rng(seed + 1)
    pixels = shapeworld.render_batch([shapeworld.sample_scene(md, rng) for md in metadata])
    hits: dict[str, list[bool]] = {}
    for start in range(0, len(metadata), 64):
        chunk = torch.from_numpy(pixels[start:start + 64]).permute(0, 3, 1, 2).float().div(255).to(device)
        recon = model.decode_codes(model.encode(chunk))
        out = (recon * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        for px, md in zip(out, metadata[start:start + 64]):
            hits.setdefault(md["tag"], []).append(bool(shapeworld.evaluate(px, md).correct))
    scores = {tag: sum(v) / len(v) for tag, v in hits.items()}
    scores["overall"] = sum(scores.values()) / len(scores)
    model.train(was_training)
    return scores


@torch.no_grad()
def reseed_dead_codes(model: VQTokenizer, usage: torch.Tensor, latents: torch.Tensor, threshold: float = 0.03,
                      generator: torch.Generator | None = None) -> int:
    dead = torch.nonzero(usage < threshold).flatten()
    if len(dead) == 0:
        return 0
    pool = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    pick = torch.randint(len(pool), (len(dead),), device=pool.device, generator=generator)
    noise = torch.randn(pool[pick].shape, device=pool.device, dtype=pool.dtype, generator=generator)
    model.codebook.weight.data[dead] = pool[pick] + 0.01 * noise
    usage[dead] = 1.0
    return len(dead)


def check_args(args: argparse.Namespace) -> None:
    """This trainer's own options, before anything is loaded or written (with `common.check_arguments`)."""
    common.check_arguments(args)
    common.check_count(args.eval_every, "eval_every", 0, " (0: only at the end)")
    if args.decoder_only and args.config:  # the tokenizer in DIR keeps its own config: --config would be ignored
        raise ArscaleError(f"--config sets a new tokenizer's fields, but --decoder-only {args.decoder_only} fine-tunes "
                           "the tokenizer there with its own: drop --config")


def decoder_only(args: argparse.Namespace) -> int:
    from arscale.train.ar import decoder_step, load_tokenizer

    device, state, resume = common.begin(args)
    if resume and not state.info().get("config", {}).get("decoder_only"):  # its optimizer holds every parameter
        raise ArscaleError(f"{args.state_dir} holds the tokenizer's own training, not a --decoder-only run: give "
                           "--decoder-only a --state-dir of its own")
    model = load_tokenizer(Path(args.decoder_only), device)
    params = list(model.decoder.parameters()) + list(model.post_quant_conv.parameters())
    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.95))
    run = common.restore(state, model, opt) if resume else common.Resumed()
    step = run.step
    stream = scene_stream.ShapeWorldStream(args.batch_size, args.seed + 1, start_step=step, workers=args.data_workers)
    timer = common.Timer(run.elapsed, args.checkpoint_minutes, args.time_limit)
    config = model.config.to_dict()
    metrics: dict = run.metrics  # a run with nothing left to train keeps what it measured
    bar = common.progress(args.steps, step, "shapeworld-ar-tokenizer (decoder only)")
    while step < args.steps:
        model.train()
        lr_schedule.set_lr(opt, lr_schedule.rewarm(lr_schedule.cosine_lr(step, args.steps, args.lr, 0), step, run.rewarm_from))
        loss = decoder_step(model, opt, stream.sample(args.batch_size).images.to(device))
        step += 1
        common.stop_if_diverged(loss, step, args)
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss:.4f}")
        if common.evaluation_due(step, args):
            metrics = {"step": step, **reconstruction_accuracy(model)}
            bar.write(json.dumps(metrics))
        if timer.should_save():
            state.save(model, opt, step=step, config={**config, "decoder_only": True}, elapsed=timer.elapsed,
                       metrics=metrics)
        if timer.out_of_time():
            break
    common.end_loop(timer, bar, stream)
    model.eval()
    state.save(model, opt, step=step, config={**config, "decoder_only": True}, elapsed=timer.elapsed, metrics=metrics)
    common.export_weights(model.state_dict(), {"tokenizer": config, "decoder_only_steps": step}, args.out,
                          "tokenizer.safetensors", "tokenizer_config.json", dtype=torch.float16)
    print(f"saved state to {args.state_dir} and weights to {args.out}")
    return 0


def main(args: argparse.Namespace) -> int:
    check_args(args)
    if args.decoder_only:
        return decoder_only(args)
    device, state, resume = common.begin(args)
    common.refuse_new_codes_under_a_model(args, resume)
    if resume and state.info().get("config", {}).get("decoder_only"):
        raise ArscaleError(f"{args.state_dir} holds a --decoder-only run, not the tokenizer's own training: give "
                           "this run a --state-dir of its own (or add --decoder-only DIR to go on with that one)")
    config = common.run_config(args, state, resume, lambda d: VQConfig(**d), lambda: VQConfig(ch_mult=SHIPPED_CH_MULT))
    from arscale.shapeworld import IMAGE_SIZE

    if config.image_size != IMAGE_SIZE:  # the scene stream renders 64x64; another size has no grid of its own
        raise ArscaleError(f"image_size {config.image_size}: this trainer tokenises ShapeWorld's {IMAGE_SIZE}×{IMAGE_SIZE} "
                           f"renders, so image_size must be {IMAGE_SIZE}")
    torch.manual_seed(args.seed)
    model = VQTokenizer(config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.95))
    run = common.restore(state, model, opt) if resume else common.Resumed()
    step, metrics = run.step, run.metrics
    stream = scene_stream.ShapeWorldStream(args.batch_size, args.seed, start_step=step, workers=args.data_workers)
    timer = common.Timer(run.elapsed, args.checkpoint_minutes, args.time_limit)
    usage = torch.ones(config.codebook_size, device=device)
    carried = state.extra()[0] if resume else {}
    if "usage" in carried:  # which codes the run found dead: the next re-seeding needs it
        usage.copy_(carried["usage"])

    def save():
        state.save(model, opt, step=step, config=config.to_dict(), elapsed=timer.elapsed, metrics=metrics,
                   extra={"usage": usage})

    bar = common.progress(args.steps, step, "shapeworld-ar-tokenizer")
    model.train()
    while step < args.steps:
        lr_schedule.set_lr(opt, lr_schedule.rewarm(lr_schedule.cosine_lr(step, args.steps, args.lr, 200), step, run.rewarm_from))
        images = stream.sample(args.batch_size).images.to(device)
        recon, vq_loss, codes = model(images)
        target = images * 2 - 1
        loss = F.l1_loss(recon, target) + F.mse_loss(recon, target) + 0.5 * edge_loss(recon, target) + vq_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        common.stop_if_diverged(loss.item(), step, args)
        usage.mul_(0.98).add_(torch.bincount(codes.flatten(), minlength=config.codebook_size).float())
        if step % 50 == 0 and step < 0.8 * args.steps:
            with torch.no_grad():
                reseed_dead_codes(model, usage, model.encode_latent(images),
                                  generator=torch.Generator(device).manual_seed(mix(args.seed, step, 0xDEAD)))
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", vq=f"{vq_loss.item():.4f}", used=int((usage > 0.03).sum()))
        if common.evaluation_due(step, args):
            metrics = {"step": step, **reconstruction_accuracy(model)}
            bar.write(f"step {step}: reconstruction accuracy {json.dumps(metrics)}")
        if timer.should_save():
            save()
        if timer.out_of_time():
            break
    common.end_loop(timer, bar, stream)
    save()
    common.export_weights(model.state_dict(), {"tokenizer": config.to_dict(), "trained_steps": step},
                          args.out, "tokenizer.safetensors", "tokenizer_config.json", dtype=torch.float16)
    print(f"saved state to {args.state_dir} and weights to {args.out}")
    return 0
