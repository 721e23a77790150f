"""Which prompts this process runs: `--num-shards/--shard-index` (job arrays) × launcher ranks.

Prompts are dealt round-robin in blocks of `--batch-prompts` consecutive global indices: block
`index // batch_prompts` goes to shard `block % shards` (with `--batch-prompts 1` simply
`index % shards == shard`). Whole blocks, because prompts sharing a batched forward must be the same
in every split for bit-identical images; seeds derive from the global index, never from the shard,
so any split reproduces the unsharded run.
Under `torchrun` / `accelerate launch` (env `WORLD_SIZE`, `RANK`) each rank takes its own slice of
the job-array shard; `accelerate` is consulted only when importable and already initialised.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from arscale.errors import ArscaleError


@dataclass(frozen=True)
class Shard:
    count: int = 1  # total shards = job-array shards × launcher world size
    index: int = 0
    array_shards: int = 1
    array_index: int = 0
    world_size: int = 1
    rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, global_index: int, block: int = 1) -> bool:
        return (global_index // block) % self.count == self.index

    def select(self, prompts: Sequence, block: int = 1) -> list:
        return [p for p in prompts if self.owns(p.index, block)]

    def to_dict(self) -> dict:
        return asdict(self)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ArscaleError(f"environment variable {name} must be an integer, got {value!r}") from None


def launcher_rank() -> tuple[int, int]:
    """(world size, rank) from torchrun/accelerate environment variables, else (1, 0)."""
    world, rank = _env_int("WORLD_SIZE"), _env_int("RANK")
    if world is None:
        try:  # optional: accelerate's own state, when a script initialised it
            from accelerate.state import PartialState

            if PartialState._shared_state:
                state = PartialState()
                return int(state.num_processes), int(state.process_index)
        except ImportError:
            pass
        return 1, 0
    rank = 0 if rank is None else rank
    if world < 1 or not 0 <= rank < world:
        raise ArscaleError(f"inconsistent launcher environment: RANK={rank}, WORLD_SIZE={world}")
    return world, rank


def launcher_device(device: str) -> str:
    """Under torchrun / accelerate (WORLD_SIZE > 1 and LOCAL_RANK set) `cuda` and `auto` name this rank's own GPU,
    cuda:LOCAL_RANK (modulo the GPUs present): a command line cannot differ per rank, so else every rank runs on GPU 0."""
    local = _env_int("LOCAL_RANK")
    if local is None or device not in ("cuda", "auto") or launcher_rank()[0] < 2:
        return device
    import torch

    if not torch.cuda.is_available():
        return device  # `pick_device` says what is missing (auto: the CPU)
    return f"cuda:{local % torch.cuda.device_count()}"


def resolve_shard(num_shards: int = 1, shard_index: int = 0, *, world_size: int | None = None,
                  rank: int | None = None) -> Shard:
    if num_shards < 1:
        raise ArscaleError(f"--num-shards must be at least 1, got {num_shards}")
    if not 0 <= shard_index < num_shards:
        raise ArscaleError(f"--shard-index must be in [0, {num_shards - 1}], got {shard_index}")
    if world_size is None or rank is None:
        world_size, rank = launcher_rank()
    # ranks subdivide the job-array shard: global shard = array index + array count × rank
    return Shard(count=num_shards * world_size, index=shard_index + num_shards * rank, array_shards=num_shards,
                 array_index=shard_index, world_size=world_size, rank=rank)


class ProcessGroup:
    """A gloo group for the end-of-run barrier (rank 0 then writes the combined outputs); a no-op alone."""

    def __init__(self, shard: Shard):
        self.active = self.owned = False
        if not shard.distributed:
            return
        import torch.distributed as dist

        if dist.is_available() and not dist.is_initialized() and os.environ.get("MASTER_ADDR"):
            dist.init_process_group("gloo", rank=shard.rank, world_size=shard.world_size)
            self.active = self.owned = True
        elif dist.is_available() and dist.is_initialized():  # the launcher's or the caller's: used, never destroyed
            self.active = True

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.active:
            import torch.distributed as dist

            if self.owned and dist.is_initialized():
                dist.destroy_process_group()
            self.active = self.owned = False
