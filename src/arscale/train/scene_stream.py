"""The training data of every ShapeWorld trainer: an endless stream of freshly sampled scenes over all six tags
(uniform tag per sample) -> `Batch(images [B,3,64,64] float in [0,1], prompts, metadata)`.

Each batch is seeded from (seed, step), so a resumed run sees the data the uninterrupted run would have;
`--data-workers N` makes the batches ahead in N processes (the same batches).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Self

import numpy as np
import torch

from arscale.errors import ArscaleError
from arscale.generators.seeding import mix

_LIVE_STREAMS: weakref.WeakSet = weakref.WeakSet()  # streams with worker processes: see `close_live_streams`


@dataclass
class Batch:
    images: torch.Tensor  # [B,3,64,64] float in [0,1]
    prompts: list[str]
    metadata: list[dict]


def scene_batch(seed: int, index: int, n: int, tags: tuple[str, ...]) -> tuple[np.ndarray, list[dict]]:
    """Batch `index` of a stream: `n` random scenes, rendered to uint8 [n, 64, 64, 3], with their metadata.
    A pure function of its arguments, so any process can make any batch."""
    sw = shapeworld_api()
    rng = np.random.default_rng(mix(seed, index, 0x5CE7E))
    metadata, scenes = [], []
    for _ in range(n):
        md = sw.random_metadata(rng, tags[int(rng.integers(len(tags)))])
        metadata.append(md)
        scenes.append(sw.sample_scene(md, rng))
    return sw.render_batch(scenes), metadata


class ShapeWorldStream:
    """Endless batches of random scenes for prompts of all six tags (a uniform tag per sample).

    Batch k after `start_step` is `scene_batch(seed, start_step + k, n, tags)`, so a run resumed at a step
    sees exactly the data the uninterrupted run would have. With `workers` > 0, worker processes make the
    next batches while the trainer steps (scene sampling is pure Python, about 3200 scenes/s per core,
    which would starve a GPU at batch 256); the batches are the same with any number of workers."""

    def __init__(self, batch_size: int, seed: int, *, start_step: int = 0, tags: tuple[str, ...] | None = None,
                 workers: int = 0):
        if workers < 0:
            raise ArscaleError(f"--data-workers must be >= 0, got {workers}")
        self.batch_size = batch_size
        self.seed = seed
        self.index = start_step
        self.tags = tuple(tags) if tags else tuple(shapeworld_api().TAGS)
        self.pool = None
        self.pending: deque = deque()  # (index, n, future), in index order
        if workers > 0:
            # spawn, not fork: the trainer may already hold CUDA or OpenMP state that a fork would copy
            context = multiprocessing.get_context("spawn")
            self.pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                               initializer=_ignore_interrupts)
            self.depth = 2 * workers
            _LIVE_STREAMS.add(self)

    def sample(self, n: int) -> Batch:
        index, self.index = self.index, self.index + 1
        if self.pool is None:
            pixels, metadata = scene_batch(self.seed, index, n, self.tags)
        else:
            while self.pending and (self.pending[0][0] < index or self.pending[0][1] != n):
                self.pending.popleft()[2].cancel()  # made for another batch size: recompute below
            head = self.pending.popleft() if self.pending and self.pending[0][0] == index else None
            ahead = self.pending[-1][0] + 1 if self.pending else index + 1
            while len(self.pending) < self.depth:
                self.pending.append((ahead, n, self.pool.submit(scene_batch, self.seed, ahead, n, self.tags)))
                ahead += 1
            pixels, metadata = head[2].result() if head else scene_batch(self.seed, index, n, self.tags)
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255)
        return Batch(images, [md["prompt"] for md in metadata], metadata)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)  # the workers end with the trainer, not after it
            self.pool, self.pending = None, deque()
        _LIVE_STREAMS.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.sample(self.batch_size)


def close_live_streams() -> None:
    """Stop the workers of every stream still open: a trainer that raised mid-loop never reached its close."""
    for stream in list(_LIVE_STREAMS):
        stream.close()


def _ignore_interrupts() -> None:
    """Data workers leave Ctrl-C and a scheduler's SIGTERM (sent to every process of a job) to the trainer, which
    saves its state and closes them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    trainer = os.getppid()

    def on_terminate(signum: int, frame: object) -> None:
        if os.getppid() != trainer or not hasattr(signal, "alarm"):  # the trainer is gone: nobody else ends us
            os._exit(128 + signum)
        signal.alarm(30)  # a grace period, not immunity: a broken pool's own terminate() must still end us

    signal.signal(signal.SIGTERM, on_terminate)


def shapeworld_api():
    """The ShapeWorld module, imported on first use (trainers that never sample scenes do not need it)."""
    from arscale import shapeworld

    return shapeworld
