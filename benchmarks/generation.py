"""Next-scale generation throughput: images/s and peak memory against batch size.

    python benchmarks/generation.py [--model shapeworld-var] [--batch-sizes 1 8 32 64] [--device cpu]

Each row: raw sampling of `batch` images (one prompt per row, full CFG pair per row, all scales and
the final decode), timed after one warm-up run. Peak memory is the process's peak RSS growth on CPU
(sampled in a thread) and `torch.cuda.max_memory_allocated` on a GPU.
"""

from __future__ import annotations

import argparse
import platform
import threading
import time

import torch
from process_memory import as_cell, current_mib

from arscale.devices import check_threads, pick_device
from arscale.errors import ArscaleError
from arscale.generators.registry import load_generator

PROMPTS = ["a photo of a red circle", "a photo of two squares", "a photo of a cross above a triangle",
           "a photo of a blue square and a yellow circle"]


class PeakRSS:
    """Samples the resident set size every few ms while active (`process_memory`; growth None where the platform
    does not tell)."""

    def __enter__(self):
        self.base = self.peak = current_mib()
        self.running = self.base is not None
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self):
        while self.running:
            self.peak = max(self.peak, current_mib())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        if self.base is not None:
            self.peak = max(self.peak, current_mib())

    @property
    def growth_mib(self) -> float | None:
        return None if self.base is None else self.peak - self.base


def run(gen, batch: int, device: torch.device) -> tuple[float, float]:
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
    gen.generate(prompts, 1, seed=0)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        gen.generate(prompts, 1, seed=1)
        torch.cuda.synchronize()
        return batch / (time.perf_counter() - t0), torch.cuda.max_memory_allocated() / 2**20
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        gen.generate(prompts, 1, seed=1)
        dt = time.perf_counter() - t0
    return batch / dt, mem.growth_mib


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="shapeworld-var")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = p.parse_args()
    if args.threads < 0:
        raise ArscaleError(f"--threads must be at least 1 (0: torch's default), got {args.threads}")
    check_threads(args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    gen = load_generator(args.model, device=device)
    print(f"# {args.model} on {device} ({platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads), torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    label = "peak GPU MiB" if device.type == "cuda" else "peak RSS growth MiB"
    print(f"| batch (rows) | images/s | ms/image | {label} |")
    print("|---:|---:|---:|---:|")
    for b in args.batch_sizes:
        ips, mib = run(gen, b, device)
        print(f"| {b} | {ips:.1f} | {1000 / ips:.1f} | {as_cell(mib)} |", flush=True)


if __name__ == "__main__":
    from arscale.errors import one_line_errors

    one_line_errors(main, "generation")
