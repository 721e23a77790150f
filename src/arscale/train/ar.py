"""`arscale train shapeworld-ar`: the text-conditioned next-token decoder of ShapeWorld-AR.

Needs a trained VQ tokenizer: `--tokenizer DIR`, else the output folder's, else the shipped one.
Data: scenes of all six tags, tokenised on the fly by the frozen tokenizer: `--fresh-fraction` of each
batch freshly rendered, the rest replayed from a buffer of recent samples; prompts are replaced by
the unconditional `<null>` text with probability `--text-dropout` (for CFG).
Loss: next-token cross-entropy over the whole grid (teacher forcing, one pass).

Decoder tuning (`--tune-decoder-every K`, default 3): every K steps the tokenizer's decoder (and
`post_quant_conv`) takes one reconstruction step on the fresh images while the encoder and codebook
stay frozen. The codes the decoder model learns are therefore unchanged, and the reconstructions
keep sharpening during the long decoder-model run instead of needing a separate tokenizer run. The
tuned tokenizer is saved beside the decoder model (state dir and output folder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from arscale.errors import ArscaleError
from arscale.generators.loading import read_json, read_safetensors, shapeworld_folder
from arscale.generators.next_token.generator import left_pad
from arscale.generators.next_token.shapeworld import (
    WEIGHTS_DIR,
    SamplingDefaults,
    ShapeWorldAR,
    ShapeWorldARConfig,
)
from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer
from arscale.generators.next_token.transformer import TransformerConfig
from arscale.generators.seeding import mix
from arscale.generators.text import TextEncoderConfig
from arscale.train import common, lr_schedule, scene_stream

STATE_DIR = "train_state/shapeworld-ar"


def register(sub) -> None:
    p = sub.add_parser("shapeworld-ar", help="train the next-token decoder of ShapeWorld-AR")
    common.add_training_args(p, steps=12000, batch_size=64, lr=1e-3, state_dir=STATE_DIR, out_dir=str(WEIGHTS_DIR),
                             trains=common.AR_MODEL)
    lr_schedule.add_cooldown_arg(p)
    lr_schedule.add_fit_arg(p)
    p.add_argument("--config", default=None, help="JSON file with ShapeWorldARConfig fields (new runs only)")
    p.add_argument("--tokenizer", default=None,
                   help="folder with tokenizer.safetensors (default: --out if it holds one, else the shipped one)")
    p.add_argument("--text-dropout", type=float, default=0.1, help="probability of the null prompt")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--fresh-fraction", type=float, default=0.5,
                   help="share of each batch freshly rendered and tokenised; the rest is replayed from a buffer "
                        "of recent samples (tokenising costs about as much as a training step on a CPU)")
    p.add_argument("--replay-size", type=int, default=20000, help="samples kept for replay")
    p.add_argument("--tune-decoder-every", type=int, default=3,
                   help="one tokenizer-decoder step (codes frozen) every K steps; 0 = never")
    p.add_argument("--decoder-lr", type=float, default=None,
                   help="peak learning rate of the decoder tuning (default 3e-4; with --tune-decoder-every above 0)")
    p.set_defaults(func=main)


# What state.json records of a run (besides batch size, lr and seed); a resume notes the ones it changes.
RECORDED = ("cooldown", "text_dropout", "weight_decay", "fresh_fraction", "replay_size", "tune_decoder_every",
            "decoder_lr")


def check_args(args: argparse.Namespace) -> None:
    """This trainer's own options, before anything is loaded or written (with `common.check_arguments`)."""
    common.check_arguments(args)
    lr_schedule.check_fit_arg(args)
    lr_schedule.check_cooldown_arg(args)
    common.check_share(args.text_dropout, "text_dropout")
    common.check_share(args.fresh_fraction, "fresh_fraction")
    common.check_rate(args.weight_decay, "weight_decay")
    common.check_count(args.replay_size, "replay_size", 1)
    common.check_count(args.tune_decoder_every, "tune_decoder_every", 0, " (0: never)")
    common.check_rate(args.decoder_lr, "decoder_lr")
    if args.decoder_lr is None:
        args.decoder_lr = 3e-4
    elif args.tune_decoder_every == 0:
        print("note: --decoder-lr has no effect with --tune-decoder-every 0 (the decoder is not tuned)")


def load_tokenizer(folder: Path, device: torch.device) -> VQTokenizer:
    cfg_path, w_path = folder / "tokenizer_config.json", folder / "tokenizer.safetensors"
    if not (cfg_path.exists() and w_path.exists()):
        raise ArscaleError(f"no trained tokenizer in {folder}; run `arscale train shapeworld-ar-tokenizer` first")
    with shapeworld_folder(folder, "a ShapeWorld-AR tokenizer"):
        info = read_json(cfg_path)
        tok = VQTokenizer(VQConfig(**info.get("tokenizer", info)))
    common.load_strict(tok, read_safetensors(w_path), str(w_path))
    return tok.to(device).eval()


def default_config(tokenizer: VQTokenizer) -> ShapeWorldARConfig:
    text = TextEncoderConfig(width=128, depth=2, heads=4, max_len=12)
    transformer = TransformerConfig(dim=128, n_layer=4, n_head=4, vocab_size=tokenizer.config.codebook_size,
                                    grid=tokenizer.grid, cls_token_num=text.max_len, caption_dim=text.width)
    # the shipped v2 sampler (temperature 1.0, MODEL_CARD.md), not SamplingDefaults' v1 fallback (0.8)
    return ShapeWorldARConfig(text=text, transformer=transformer, sampling=SamplingDefaults(temperature=1.0))


def training_loss(model: ShapeWorldAR, prompts: list[str | None], codes: torch.Tensor) -> torch.Tensor:
    features, mask = model.encode_condition(prompts)
    features, mask = left_pad(features, mask)
    t = model.transformer
    logits = t.teacher_forced_logits(t.embed_condition(features), mask, codes)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes.reshape(-1))


class ReplayBuffer:
    """The most recent tokenised samples, replayed to fill each batch (tokenising is the costly part)."""

    def __init__(self, capacity: int, seed: int):
        self.capacity = capacity
        self.prompts: list[str] = []
        self.codes: torch.Tensor | None = None
        self.next = 0
        self.rng = torch.Generator().manual_seed(seed)

    def add(self, prompts: list[str], codes: torch.Tensor) -> None:
        codes = codes.cpu()
        if self.codes is None:
            self.codes = torch.empty(self.capacity, codes.shape[1], dtype=torch.long)
        for p, c in zip(prompts, codes):
            if len(self.prompts) < self.capacity:
                self.prompts.append(p)
            else:
                self.prompts[self.next] = p
            self.codes[self.next] = c
            self.next = (self.next + 1) % self.capacity

    def sample(self, n: int) -> tuple[list[str], torch.Tensor]:
        if n <= 0 or not self.prompts:
            return [], torch.empty(0, 0 if self.codes is None else self.codes.shape[1], dtype=torch.long)
        idx = torch.randint(len(self.prompts), (n,), generator=self.rng)
        return [self.prompts[i] for i in idx.tolist()], self.codes[idx]

    def saved(self, running: float | None, also: dict[str, torch.Tensor]) -> dict:
        """`TrainState.save`'s extra: the samples (and the running loss), so a resume replays what the
        uninterrupted run would."""
        tensors = {"next": torch.tensor(self.next), **also}
        if self.codes is not None:
            tensors["codes"] = self.codes[:len(self.prompts)].to(torch.int32)
        if running is not None:
            tensors["loss_ema"] = torch.tensor(running, dtype=torch.float64)
        return {"extra": tensors, "extra_metadata": {"prompts": json.dumps(self.prompts)}}

    def restore(self, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> float | None:
        """Load what `saved` wrote (nothing for a state without it); returns the running loss."""
        if "codes" in tensors and len(tensors["codes"]) <= self.capacity:
            self.prompts = json.loads(metadata["prompts"])
            self.codes = torch.empty(self.capacity, tensors["codes"].shape[1], dtype=torch.long)
            self.codes[:len(self.prompts)] = tensors["codes"].long()
            self.next = int(tensors["next"]) % self.capacity if len(self.prompts) == self.capacity else len(self.prompts)
        return float(tensors["loss_ema"]) if "loss_ema" in tensors else None


def decoder_step(tokenizer: VQTokenizer, opt: torch.optim.Optimizer, images: torch.Tensor) -> float:
    """One reconstruction step of decoder + post_quant_conv on frozen codes."""
    from arscale.train.tokenizer_vq import edge_loss

    with torch.no_grad():
        _, zq = tokenizer.quantize(tokenizer.encode_latent(images))
    recon = tokenizer.decoder(tokenizer.post_quant_conv(zq))
    target = images * 2 - 1
    loss = F.l1_loss(recon, target) + F.mse_loss(recon, target) + 0.5 * edge_loss(recon, target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def main(args: argparse.Namespace) -> int:
    check_args(args)
    device, state, resume = common.begin(args, RECORDED)
    tuned = Path(args.state_dir) / "tokenizer"
    source = tuned if resume and tuned.exists() else Path(common.tokenizer_folder(args, WEIGHTS_DIR))
    tokenizer = load_tokenizer(source, device)
    dec_params = list(tokenizer.decoder.parameters()) + list(tokenizer.post_quant_conv.parameters())
    dec_opt = torch.optim.Adam(dec_params, lr=args.decoder_lr, betas=(0.9, 0.95))
    if resume:
        common.load_optimizer(dec_opt, tuned)
    config = common.run_config(args, state, resume, ShapeWorldARConfig.from_dict, lambda: default_config(tokenizer))
    if config.transformer.vocab_size != tokenizer.config.codebook_size or config.transformer.grid != tokenizer.grid:
        raise ArscaleError("the decoder config does not match the tokenizer (vocab size / grid)")
    torch.manual_seed(args.seed)
    model = ShapeWorldAR(config).to(device)
    opt = make_optimizer(model, args.lr, args.weight_decay)
    run = common.restore(state, model, opt) if resume else common.Resumed()
    step, metrics = run.step, run.metrics
    stream = scene_stream.ShapeWorldStream(args.batch_size, args.seed, start_step=step, workers=args.data_workers)
    drop_rng = torch.Generator()  # seeded per step, in `with_replayed`
    timer = common.Timer(run.elapsed, args.checkpoint_minutes, args.time_limit)
    fitter = lr_schedule.StepFitter(args, timer, step)

    tok_config = {"tokenizer": tokenizer.config.to_dict()}

    def save():
        # the model, the tuned decoder and their fp16 exports are written together, or nothing of this step is
        common.refuse_non_finite(tokenizer, step)
        for module, what in ((model, "the model"), (tokenizer, "the tokenizer")):
            common.check_range(module.state_dict(), torch.float16, f"{what} at step {step}")
        state.save(model, opt, step=step, config=config.to_dict(), elapsed=timer.elapsed, metrics=metrics,
                   **replay.saved(running, lr_schedule.fitted_plan(args)))
        # fp16 files keep the package small; loaders cast back to fp32
        common.export_weights(model.state_dict(), config.to_dict(), args.out, "model.safetensors", "config.json",
                              dtype=torch.float16)
        if args.tune_decoder_every > 0:
            common.export_weights(tokenizer.state_dict(), tok_config, tuned, "tokenizer.safetensors",
                                  "tokenizer_config.json")
            common.export_weights(tokenizer.state_dict(), tok_config, args.out, "tokenizer.safetensors",
                                  "tokenizer_config.json", dtype=torch.float16)
            common.save_optimizer(dec_opt, tuned / "optimizer.safetensors")
        else:  # the tokenizer the codes come from goes beside the model, so that --out loads on its own
            common.complete_with_tokenizer(args.out, source)

    bar = common.progress(args.steps, step, "shapeworld-ar")
    model.train()
    rec_loss = float("nan")
    fresh_n = max(1, round(args.batch_size * args.fresh_fraction))
    replay = ReplayBuffer(args.replay_size, seed=args.seed)
    running = replay.restore(*state.extra()) if resume else None  # the recent samples and the running loss
    while step < args.steps:
        lr_schedule.set_lr(opt, lr_schedule.transformer_lr(step, args, run.rewarm_from))
        batch = stream.sample(fresh_n)
        with torch.no_grad():
            codes = tokenizer.encode(batch.images.to(device))
        prompts, codes = with_replayed(replay, batch.prompts, codes, args.batch_size - fresh_n, args, step, drop_rng)
        loss = training_loss(model, prompts, codes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        value = loss.item()
        common.stop_if_diverged(value, step, args)
        running = value if running is None else 0.98 * running + 0.02 * value
        if args.tune_decoder_every > 0 and step % args.tune_decoder_every == 0:
            rec_loss = tune_decoder(tokenizer, dec_opt, batch.images.to(device), args, step)
        bar.update(1)
        if message := fitter.after_step(step):
            bar.total = args.steps
            bar.write(message)
        if step % 20 == 0:  # rec only where the decoder is tuned (a frozen one has no reconstruction loss)
            bar.set_postfix(loss=f"{running:.4f}", **({"rec": f"{rec_loss:.4f}"} if args.tune_decoder_every > 0 else {}))
        if step % 500 == 0:
            from arscale.train.tokenizer_vq import reconstruction_accuracy

            metrics = {"step": step, "loss_ema": running}
            if args.tune_decoder_every > 0:
                metrics["reconstruction"] = reconstruction_accuracy(tokenizer)
            bar.write(json.dumps(metrics))
        if timer.should_save():
            save()
        if timer.out_of_time():
            break
    common.end_loop(timer, bar, stream)
    if running is not None:  # a loss to report: this run's, or the resumed state's
        metrics = {"step": step, "loss_ema": running}
    save()
    print(f"saved state to {args.state_dir} and weights to {args.out}")
    return 0


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with --weight-decay on the matrices only."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))


def with_replayed(replay: ReplayBuffer, prompts: list[str], codes: torch.Tensor, replayed: int,
                  args: argparse.Namespace, step: int, drop_rng: torch.Generator
                  ) -> tuple[list[str | None], torch.Tensor]:
    """One step's prompts and codes: the fresh samples (kept for replay) and `replayed` more from the buffer, prompts
    dropped at --text-dropout."""
    replay.add(prompts, codes)
    replay.rng.manual_seed(mix(args.seed, step, 0x2E91A))  # seeded per step, as the prompt drops below
    drop_rng.manual_seed(mix(args.seed, step, 0xD20B))
    old_prompts, old_codes = replay.sample(replayed)
    codes = torch.cat([codes, old_codes.to(codes.device)])
    drop = torch.rand(len(codes), generator=drop_rng) < args.text_dropout
    return [None if d else p for p, d in zip(prompts + old_prompts, drop.tolist())], codes


def tune_decoder(tokenizer: VQTokenizer, dec_opt: torch.optim.Optimizer, images: torch.Tensor,
                 args: argparse.Namespace, step: int) -> float:
    """One reconstruction step of the tokenizer's decoder (`decoder_step`) on the fresh scenes, at its own cosine
    learning rate; returns its loss."""
    tokenizer.train()
    lr_schedule.set_lr(dec_opt, lr_schedule.cosine_lr(step, args.steps, args.decoder_lr, 0))
    rec_loss = decoder_step(tokenizer, dec_opt, images)
    common.stop_if_diverged(rec_loss, step, args, "decoder_lr")
    tokenizer.eval()
    return rec_loss
