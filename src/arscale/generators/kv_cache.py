"""A preallocated per-layer key/value cache whose batch rows can be gathered.

Layout per layer: keys and values of shape [rows, heads, capacity, head_dim], filled up to
`length` (with `grow`, the next-scale loop's, only as many positions as the appends so far needed, at least
doubling: its searches shrink the batch before the long scales). With classifier-free guidance the rows are
the conditional half followed by the unconditional half (where the trajectory runs it); `Trajectories.select`
builds the matching row index for each half.
"""

from __future__ import annotations

import torch

# pruned rows move to a right-sized buffer once they use at most this fraction of their allocation
# (0 keeps every allocation; benchmarks/kv_memory.py compares the two)
RIGHT_SIZE_AT = 0.5


def on_device_once(index: torch.Tensor):
    """`on(tensor)`: `index` on the device of `tensor`, copied once per device (a copy from the host waits for the
    device: one sync per device, not one per tensor or layer gathered)."""
    copies: dict[torch.device, torch.Tensor] = {}

    def on(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.device not in copies:
            copies[tensor.device] = index.to(tensor.device)
        return copies[tensor.device]

    return on


class KVCache:
    def __init__(self, num_layers: int, capacity: int, *, grow: bool = False):
        if capacity <= 0:
            raise ValueError("KV cache capacity must be positive")
        self.num_layers = num_layers
        self.capacity = capacity
        # grow: allocate positions as appends need them (at least doubling, up to `capacity`), not all at once. A
        # next-scale search shrinks its batch before the long scales (TTS-VAR: 8 rows at scale 0, 1 at the last), so
        # a whole-capacity buffer per starting row would hold up to 8x the positions any scale uses
        self.grow = grow
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.lengths = [0] * num_layers

    @property
    def length(self) -> int:
        return self.lengths[0]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys/values [rows, heads, n, dim]; return all cached ones so far."""
        rows, n = k.shape[0], k.shape[2]
        start = self.lengths[layer]
        end = start + n
        if end > self.capacity:
            raise RuntimeError(f"KV cache overflow: {end} positions > capacity {self.capacity}")
        if self.keys[layer] is not None and self.keys[layer].shape[0] != rows:
            raise RuntimeError(f"KV cache holds {self.keys[layer].shape[0]} rows but got {rows}")
        if self.keys[layer] is None or end > self.keys[layer].shape[2]:
            self._allocate(layer, k, v, end)
        keys, values = self.keys[layer], self.values[layer]
        keys[:, :, start:end] = k
        values[:, :, start:end] = v
        self.lengths[layer] = end
        return keys[:, :, :end], values[:, :, :end]

    def _allocate(self, layer: int, k: torch.Tensor, v: torch.Tensor, end: int) -> None:
        """Buffers of `layer` that hold `end` positions: the whole capacity, or (`grow`) what is needed, at least
        twice the old allocation, up to the capacity; the filled positions move over."""
        old_k, old_v = self.keys[layer], self.values[layer]
        size = self.capacity
        if self.grow:
            size = min(self.capacity, max(end, 2 * (0 if old_k is None else old_k.shape[2])))
        new_k = k.new_empty(k.shape[0], k.shape[1], size, k.shape[3])
        new_v = v.new_empty(v.shape[0], v.shape[1], size, v.shape[3])
        if old_k is not None:
            filled = self.lengths[layer]
            new_k[:, :, :filled] = old_k[:, :, :filled]
            new_v[:, :, :filled] = old_v[:, :, :filled]
        self.keys[layer], self.values[layer] = new_k, new_v

    def select(self, index: torch.Tensor) -> KVCache:
        """Gather rows (duplicates allowed, any order) into a new cache; only the filled positions are copied."""
        out = KVCache(self.num_layers, self.capacity, grow=self.grow)
        on = on_device_once(index)
        for i, (k, v) in enumerate(zip(self.keys, self.values)):
            n = self.lengths[i]
            out.lengths[i] = n
            if k is None:
                continue
            idx = on(k)
            nk = k.new_empty(len(idx), k.shape[1], k.shape[2], k.shape[3])  # as many positions as allocated here
            nv = v.new_empty(len(idx), v.shape[1], v.shape[2], v.shape[3])
            nk[:, :, :n] = k[idx, :, :n]
            nv[:, :, :n] = v[idx, :, :n]
            out.keys[i], out.values[i] = nk, nv
        return out

    def keep_(self, index: torch.Tensor) -> KVCache:
        """Keep the rows `index` (strictly increasing: pruning, no reordering) in place; returns self.

        Only rows whose position changes are moved, and the buffers are reused: dropping terminated
        candidates costs a fraction of `select`'s fresh gather (which also pays for new allocations).
        Once the kept rows fill at most half of a buffer's allocation (`RIGHT_SIZE_AT`) they are gathered
        into a right-sized one instead, so memory follows the surviving rows (at most log2(rows) such
        copies while pruning).
        """
        idx = index.flatten().to(device="cpu", dtype=torch.long)  # one host copy; the moves are found here, not per layer
        if len(idx) == 0 or (len(idx) > 1 and not bool((idx[1:] > idx[:-1]).all())):
            raise ValueError("keep_ needs a non-empty, strictly increasing row index")
        moved = idx != torch.arange(len(idx))
        moves = (idx[moved], moved.nonzero().flatten())  # (from, to) of the rows whose position changes
        # each copied to a layer's device once for every layer and buffer (a copy from the host is a device sync)
        on = tuple(on_device_once(t) for t in (idx, *moves))
        for i, (k, v) in enumerate(zip(self.keys, self.values)):
            if k is None:
                continue
            self.keys[i] = _keep_rows(k, idx, moves, self.lengths[i], on)
            self.values[i] = _keep_rows(v, idx, moves, self.lengths[i], on)
        return self

    def nbytes(self) -> int:
        """Bytes of the live rows (a pruned buffer may still hold up to twice this; see `allocated_bytes`)."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values if t is not None)

    def allocated_bytes(self) -> int:
        """Bytes of the allocations behind the buffers, pruned-away rows not yet released included."""
        return sum(t.untyped_storage().nbytes() for t in self.keys + self.values if t is not None)


def _keep_rows(buf: torch.Tensor, index: torch.Tensor, moves: tuple[torch.Tensor, torch.Tensor],
               filled: int, on: tuple | None = None) -> torch.Tensor:
    """Rows `index` (strictly increasing, on the CPU) of `buf`, whose first `filled` positions are live: gathered
    into a right-sized buffer when they would use at most half of the allocation, else moved up in place
    (`moves`: the rows whose position changes, from and to; `on`: `index` and `moves` by device, copied once)."""
    on = on or tuple(on_device_once(t) for t in (index, *moves))
    if len(index) * buf[0].numel() * buf.element_size() <= RIGHT_SIZE_AT * buf.untyped_storage().nbytes():
        out = buf.new_empty(len(index), *buf.shape[1:])
        out[:, :, :filled] = buf[on[0](buf), :, :filled]
        return out
    src, dst = on[1](buf), on[2](buf)
    if len(src):
        buf[dst, :, :filled] = buf[src, :, :filled]  # the right side is gathered first: no aliasing
    return buf[: len(index)]
