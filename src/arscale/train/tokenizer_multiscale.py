"""`arscale train shapeworld-tokenizer`: the multi-scale residual VQ tokenizer of ShapeWorld-VAR.

Loss: L1 + L2 reconstruction, weighted up on a band around object outlines (`--boundary-weight`), a
small edge (image-gradient) L1 term that keeps shape outlines sharp, and the multi-scale VQ loss.
Codes unused for a while are re-seeded from current residual vectors, which keeps the small codebook
alive on flat-colour data.

`--decoder-only` fine-tunes post_quant_conv + decoder with the codes fixed; with `--generator DIR` some
rows decode latents that the trained ShapeWorld-VAR sampled itself from the image's coarse codes
(`train/generated_latents.py`), so the decoder learns to draw clean shapes from sampled tokens.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from arscale.errors import ArscaleError
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer, MultiScaleTokenizerConfig
from arscale.generators.seeding import mix
from arscale.train import common, lr_schedule, scene_stream
from arscale.train.generated_latents import check_same_codes, continued_latents, draw_start_scales

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "shapeworld-var"
STATE_DIR = "train_state/shapeworld-tokenizer"


def register(sub) -> None:
    p = sub.add_parser("shapeworld-tokenizer", help="train the multi-scale VQ tokenizer of ShapeWorld-VAR")
    common.add_training_args(p, steps=6000, batch_size=32, lr=1e-3, state_dir=STATE_DIR, out_dir=str(WEIGHTS_DIR),
                             used_with="`arscale train shapeworld-var --out DIR`, which finds it there",
                             trains=common.VAR_TOKENIZER)
    p.add_argument("--config", default=None, help="JSON file with MultiScaleTokenizerConfig fields (new runs)")
    p.add_argument("--eval-every", type=int, default=500, help="evaluate reconstructions every N steps (0 = only at the end)")
    p.add_argument("--boundary-weight", type=float, default=4.0,
                   help="extra loss weight on pixels near object outlines, where same-colour objects nearly touch")
    p.add_argument("--decoder-only", action="store_true",
                   help="fine-tune only post_quant_conv + decoder: codes stay fixed, so a transformer trained "
                        "on them stays valid")
    p.add_argument("--generator", default=None, metavar="DIR",
                   help="with --decoder-only: a ShapeWorld-VAR weights folder trained on these codes; some rows then "
                        "decode latents it sampled from the image's coarse codes (default: clean codes only)")
    p.add_argument("--generated-fraction", type=float, default=None,
                   help="with --generator: share of rows decoded from generator-sampled latents (default 0.75)")
    p.add_argument("--earliest-sampled-scale", type=int, default=None, metavar="SI",
                   help="with --generator: a generated row samples from a scale drawn uniformly in [SI, last] "
                        "(0-based; default: the last scale only — sampling coarser scales too made the decoder "
                        "repaint colours)")
    p.set_defaults(func=main)


def edge_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    def grads(x):
        return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]

    (ry, rx), (ty, tx) = grads(recon), grads(target)
    return F.l1_loss(ry, ty) + F.l1_loss(rx, tx)


def boundary_weights(images: torch.Tensor, extra: float) -> torch.Tensor:
    """1 + extra on a band around every object outline (gaps between objects are 3 px wide)."""
    background = torch.tensor([240, 240, 240], device=images.device).view(1, 3, 1, 1) / 255
    fg = ((images - background).abs().sum(1, keepdim=True) > 1e-3).float()
    grown = F.max_pool2d(fg, 5, 1, 2)
    shrunk = -F.max_pool2d(-fg, 3, 1, 1)
    return 1 + extra * (grown - shrunk)


@torch.no_grad()
def reconstruction_accuracy(model: MultiScaleTokenizer, per_tag: int = 10, seed: int = 12345) -> dict[str, float]:
    """Exact-evaluator accuracy of reconstructions of freshly sampled clean renders, per tag."""
    shapeworld = scene_stream.shapeworld_api()
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores = {}
    for tag in shapeworld.TAGS:
        stream = scene_stream.ShapeWorldStream(per_tag, seed, tags=(tag,))
        batch = stream.sample(per_tag)
        recon = model.decode_indices(model.encode(batch.images.to(device)))
        pixels = (recon * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
        scores[tag] = sum(bool(shapeworld.evaluate(px, md).correct) for px, md in zip(pixels, batch.metadata)) / per_tag
    scores["overall"] = sum(scores.values()) / len(shapeworld.TAGS)
    model.train(was_training)
    return scores


# What state.json records of a run (besides batch size, lr and seed); a resume notes the ones it changes. (The
# --generator options belong to a phase of their own, which a resume names.)
RECORDED = ("boundary_weight",)


def check_args(args: argparse.Namespace) -> None:
    """This trainer's own options, before anything is loaded or written (with `common.check_arguments`)."""
    common.check_arguments(args)
    if args.decoder_only and args.fresh:  # a fresh start is a random tokenizer, whose decoder is no use to tune
        raise ArscaleError("--decoder-only fine-tunes the trained tokenizer in --state-dir: drop --fresh, which "
                           "would start it over")
    if args.generator and not args.decoder_only:
        raise ArscaleError("--generator fine-tunes the decoder on the generator's latents: add --decoder-only "
                           "(training the codes would invalidate the generator)")
    common.check_count(args.eval_every, "eval_every", 0, " (0: only at the end)")
    common.check_rate(args.boundary_weight, "boundary_weight")
    for option in ("generated_fraction", "earliest_sampled_scale"):
        if getattr(args, option) is not None and not args.generator:
            raise ArscaleError(f"{common.option_name(option)} has no effect without --generator DIR (the generator "
                               "whose sampled latents the decoder learns from)")
    if args.generated_fraction is None:  # both are checked against the generator (`draw_start_scales`)
        args.generated_fraction = 0.75


def main(args: argparse.Namespace) -> int:
    check_args(args)
    device, state, resume = common.begin(args, RECORDED)
    common.refuse_new_codes_under_a_model(args, resume)
    if args.decoder_only and not resume:  # else it would tune the decoder of a random, untrained tokenizer
        raise ArscaleError(f"--decoder-only fine-tunes a trained tokenizer, but {args.state_dir} holds no training "
                           "state: give --state-dir of one (e.g. a copy of train_state/shapeworld-tokenizer for the "
                           "shipped tokenizer) or train the tokenizer first; --steps counts from that state's step")
    config = common.run_config(args, state, resume, MultiScaleTokenizerConfig.from_dict, MultiScaleTokenizerConfig)
    torch.manual_seed(args.seed)
    model = MultiScaleTokenizer(config).to(device)
    phase = "decoder-generated" if args.generator else "decoder" if args.decoder_only else "full"
    params = (list(model.post_quant_conv.parameters()) + list(model.decoder.parameters()) if args.decoder_only
              else list(model.parameters()))
    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.95))
    step, elapsed, metrics, phase_start = 0, 0.0, {}, 0
    if resume:
        info = state.info()
        same_phase = info.get("metrics", {}).get("phase", "full") == phase
        state.load(model, opt if same_phase else None)  # a new phase starts a fresh optimizer
        step, elapsed, metrics = info["step"], info["elapsed_seconds"], info.get("metrics", {})
        phase_start = metrics.get("phase_start", 0) if same_phase else step
        print(f"resuming {args.state_dir} at step {step} ({phase} training)")
    if args.decoder_only:
        model.requires_grad_(False)
        for p_ in params:
            p_.requires_grad_(True)
    gen = None
    if args.generator:
        from arscale.generators.next_scale.shapeworld import load_shapeworld_var

        gen = load_shapeworld_var(device, args.generator)
        check_same_codes(model, gen)
        earliest = gen.num_scales - 1 if args.earliest_sampled_scale is None else args.earliest_sampled_scale
        draw_start_scales(1, gen.num_scales, args.generated_fraction, earliest,
                          torch.Generator())  # validates both options before any training
        start_rng = torch.Generator()  # seeded per step, in the loop
    stream = scene_stream.ShapeWorldStream(args.batch_size, args.seed, start_step=step, workers=args.data_workers)
    timer = common.Timer(elapsed, args.checkpoint_minutes, args.time_limit)
    usage = torch.zeros(config.vocab_size, device=device)
    carried = state.extra()[0] if resume else {}
    if "usage" in carried:  # which codes the run found dead: the next re-seeding needs it
        usage.copy_(carried["usage"])

    def save():
        metrics.update(phase=phase, phase_start=phase_start)
        state.save(model, opt, step=step, config=config.to_dict(), elapsed=timer.elapsed, metrics=metrics,
                   extra={"usage": usage})

    bar = common.progress(args.steps, step, "shapeworld-tokenizer")
    model.train()
    while step < args.steps:
        lr_schedule.set_lr(opt, lr_schedule.cosine_lr(step - phase_start, args.steps - phase_start, args.lr,
                                            min(200, (args.steps - phase_start) // 10 + 1)))
        batch = stream.sample(args.batch_size)
        images = batch.images.to(device)
        if gen is None:
            recon, vq_loss, indices = model(images)
        else:
            start_rng.manual_seed(mix(args.seed, step, 0x57A27))  # per step: a resume draws as the whole run
            starts = draw_start_scales(len(images), gen.num_scales, args.generated_fraction, earliest, start_rng)
            f_hat = continued_latents(gen, model, images, batch.prompts, starts, seed=args.seed * 7919 + step)
            recon = (model.decoder(model.post_quant_conv(f_hat)) + 1) / 2
            vq_loss, indices = images.new_zeros(()), []
        w = boundary_weights(images, args.boundary_weight)
        pixel = (w * ((recon - images).abs() + (recon - images).pow(2))).mean()
        loss = pixel + 0.5 * edge_loss(recon, images) + (0 if args.decoder_only else vq_loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        common.stop_if_diverged(loss.item(), step, args)
        if not args.decoder_only:
            usage.mul_(0.99).add_(torch.bincount(torch.cat([i.flatten() for i in indices]), minlength=config.vocab_size))
            if step % 50 == 0:
                dead_rng = torch.Generator(device).manual_seed(mix(args.seed, step, 0xDEAD))  # a resume draws alike
                reseed_dead_codes(model, usage, generator=dead_rng)
        bar.update(1)
        if step % 20 == 0:
            codes = {} if args.decoder_only else {"vq": f"{vq_loss.item():.4f}", "used": int((usage > 0.05).sum())}
            bar.set_postfix(loss=f"{loss.item():.4f}", **codes)
        if common.evaluation_due(step, args):
            metrics = {"step": step, **reconstruction_accuracy(model), "phase": phase, "phase_start": phase_start}
            bar.write(f"step {step}: reconstruction accuracy {json.dumps(metrics)}")
        if timer.should_save():
            save()
        if timer.out_of_time():
            break
    common.end_loop(timer, bar, stream)
    save()
    common.export_weights(model.state_dict(), config.to_dict(), args.out, "tokenizer.safetensors",
                          "tokenizer_config.json", dtype=torch.float16)
    print(f"saved state to {args.state_dir} and weights to {args.out}")
    return 0


@torch.no_grad()
def reseed_dead_codes(model: MultiScaleTokenizer, usage: torch.Tensor, threshold: float = 0.05,
                      generator: torch.Generator | None = None) -> int:
    q = model.quantizer
    if q.last_residuals is None:
        return 0
    dead = torch.nonzero(usage < threshold).flatten()
    if len(dead) == 0:
        return 0
    pool = q.last_residuals
    pick = torch.randint(len(pool), (len(dead),), device=pool.device, generator=generator)
    noise = torch.randn(pool[pick].shape, device=pool.device, dtype=pool.dtype, generator=generator)
    q.embedding.weight.data[dead] = pool[pick] + 0.01 * noise
    usage[dead] = 1.0
    return len(dead)
