"""Can the training data keep up with a GPU? Scenes per second of `ShapeWorldStream`, side by side:

    python benchmarks/scene_stream.py --batch-size 256 --batches 40 --workers 0 1 2

Every trainer draws its batches from `arscale.train.scene_stream.ShapeWorldStream`: random prompts of all six
tags, a random scene for each, rendered to 64×64. That is pure Python and numpy, so one core makes only a few
thousand scenes a second, which is the whole budget of the GPU recipe (`benchmarks/gpu/retrain_larger.sh`:
8000 steps × 256 scenes in nine-minute device calls). `--data-workers N` makes the next batches in N
processes while the trainer steps. Here the trainer is replaced by `--step-ms` of sleep per batch (0: the
stream alone), so the table shows what the stream delivers; the batches are checked identical to the
in-process stream's. Timing starts once the workers are up and have filled their queue (two batches each).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import time

import torch

from arscale.train.scene_stream import ShapeWorldStream


def measure(workers: int, batch_size: int, batches: int, step_ms: float, seed: int) -> tuple[float, list]:
    with ShapeWorldStream(batch_size, seed, workers=workers) as stream:
        made = [stream.sample(batch_size)]
        concurrent.futures.wait([future for _, _, future in stream.pending])  # workers started and filled
        start = time.perf_counter()
        for _ in range(batches):
            made.append(stream.sample(batch_size))
            time.sleep(step_ms / 1000)
        elapsed = time.perf_counter() - start
    return batches * batch_size / elapsed, made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=40, help="timed batches per run (default %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--step-ms", type=float, default=0.0, help="simulated trainer step per batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.batches < 1 or args.batch_size < 1:
        parser.error("--batches and --batch-size must be positive")
    if min(args.workers) < 0 or args.step_ms < 0:
        parser.error("--workers and --step-ms must be >= 0")
    print(f"| data workers | scenes/s | vs in-process | batches identical | "
          f"(batch {args.batch_size}, {args.batches} batches, trainer step {args.step_ms:g} ms)")
    print("|---|---|---|---|")
    base, reference = None, None
    for workers in args.workers:
        rate, made = measure(workers, args.batch_size, args.batches, args.step_ms, args.seed)
        if reference is None:
            base, reference = rate, made
        same = all(torch.equal(a.images, b.images) and a.prompts == b.prompts for a, b in zip(reference, made))
        print(f"| {workers} | {rate:,.0f} | {rate / base:.2f}× | {'yes' if same else 'NO'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
