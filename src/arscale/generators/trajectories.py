"""Trajectories: a batch of partial generations, possibly of different prompts.

A strategy changes a batch only through `select(rows)`, which gathers every per-row tensor
consistently — per-row state, CFG-paired state (every half), the KV cache, histories, seeds
and lineage — with duplicates allowed. Nothing is recomputed; the KV cache is gathered once, or
compacted in place when rows are only dropped (`KVCache.keep_`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from arscale.errors import ArscaleError
from arscale.generators.kv_cache import KVCache, on_device_once
from arscale.generators.seeding import check_seed, mix, row_key


@dataclass
class SearchTree:
    """Append-only record of every row that ever lived: its parent and how it ended."""

    parent: list[int] = field(default_factory=list)  # -1 for a root
    prompt: list[int] = field(default_factory=list)
    # steps count what was generated (scales or tokens): a row cut after 0-based scale k has ended = k + 1,
    # a survivor ends at the model's length; telemetry and plots name the 0-based step itself
    born: list[int] = field(default_factory=list)  # steps already generated when the row appeared
    ended: list[int | None] = field(default_factory=list)  # steps generated when it was cut or finished
    reason: list[str | None] = field(default_factory=list)  # why it was cut ("cluster", "prune", ...)

    def add(self, parents: Sequence[int], prompts: Sequence[int], step: int) -> list[int]:
        first = len(self.parent)
        for p, q in zip(parents, prompts):
            self.parent.append(int(p))
            self.prompt.append(int(q))
            self.born.append(step)
            self.ended.append(None)
            self.reason.append(None)
        return list(range(first, len(self.parent)))

    def end(self, nodes: Sequence[int], step: int, reason: str) -> None:
        for n in nodes:
            if self.ended[n] is None:
                self.ended[n] = step
                self.reason[n] = reason

    def lineage(self, node: int) -> list[int]:
        """Node ids from the root down to `node`."""
        path = [node]
        while self.parent[path[-1]] >= 0:
            path.append(self.parent[path[-1]])
        return path[::-1]

    def __len__(self) -> int:
        return len(self.parent)

    def __repr__(self) -> str:  # a summary (a bench-sized tree lists tens of thousands of nodes); `to_dict` has them
        ends = Counter(r for r in self.reason if r is not None)
        return (f"SearchTree({len(self)} nodes, {len(set(self.prompt))} prompt(s), ended: "
                f"{dict(sorted(ends.items())) if ends else 'none yet'})")

    def extend(self, other: SearchTree, *, prompt_shift: int) -> int:
        """Append `other`, the tree of a later prompt chunk, whose node ids and prompt indices start at 0.
        Returns the shift its node ids got (their new id is old + shift)."""
        shift = len(self.parent)
        self.parent += [p + shift if p >= 0 else -1 for p in other.parent]
        self.prompt += [q + prompt_shift for q in other.prompt]
        self.born += other.born
        self.ended += other.ended
        self.reason += other.reason
        return shift

    def to_dict(self) -> dict[str, list]:  # copies: a later `extend`, or the caller's edits, change only their own
        return {"parent": list(self.parent), "prompt": list(self.prompt), "born": list(self.born),
                "ended": list(self.ended), "reason": list(self.reason)}


class Trajectories:
    """Rows of partial generations.

    - `prompt_index[r]`: which of `prompts` row r belongs to (an index into `prompts`; seeds use the caller's
      global index, `prompt_offset` + it).
    - `node[r]`: the row's id in `tree`; `seed_key[r]`: its random stream.
    - `rows`: per-row tensors, dim 0 = R (accumulated latent, tokens, next input, ...).
    - `paired`: CFG-paired tensors, dim 0 = halves·R (conditional rows first, then unconditional).
    - `cache`: KV cache laid out like `paired`.
    - `history`: per-row histories [R, T] (rewards, confidences); NaN where not yet written.
    - `extra`: generator-private, batch-independent state (e.g. the schedule).
    """

    def __init__(
        self,
        prompts: Sequence[str],
        prompt_index: torch.Tensor,
        seed_key: Sequence[int],
        *,
        halves: int = 2,
        tree: SearchTree | None = None,
        step: int = 0,
    ):
        self.prompts = list(prompts)
        self.prompt_index = prompt_index.long().cpu()
        self.seed_key = [int(k) for k in seed_key]
        if len(self.seed_key) != len(self.prompt_index):
            raise ValueError("one seed key per row is required")
        self.halves = halves
        self.tree = tree if tree is not None else SearchTree()
        self.step = step
        self.node = torch.tensor(
            self.tree.add([-1] * len(self.prompt_index), self.prompt_index.tolist(), step), dtype=torch.long
        )
        self.rows: dict[str, torch.Tensor] = {}
        self.paired: dict[str, torch.Tensor] = {}
        self.cache: KVCache | None = None
        self.history: dict[str, torch.Tensor] = {}
        self.extra: dict[str, Any] = {}
        self.copies: dict[tuple[int, int], int] = {}  # (parent key, step) -> copies made: fresh keys across selects

    @classmethod
    def for_prompts(
        cls,
        prompts: Sequence[str],
        rows_per_prompt: int | Sequence[int],
        seed: int,
        *,
        prompt_offset: int = 0,
        halves: int = 2,
    ) -> Trajectories:
        """Rows for each prompt; prompt i gets global index `prompt_offset + i` for seeding."""
        if isinstance(prompts, (str, bytes)):  # else each character would be a prompt
            raise ArscaleError(f"prompts must be a list, got one string {prompts[:40]!r}: pass [prompt]")
        counts = [rows_per_prompt] * len(prompts) if isinstance(rows_per_prompt, int) else list(rows_per_prompt)
        if len(counts) != len(prompts):
            raise ValueError("rows_per_prompt must give one count per prompt")
        if any(c <= 0 for c in counts):
            raise ValueError(f"every prompt needs at least one row, got {counts}")
        seed = check_seed(seed)
        index, keys = [], []
        for i, c in enumerate(counts):
            index += [i] * c
            keys += [row_key(seed, prompt_offset + i, j) for j in range(c)]
        return cls(prompts, torch.tensor(index), keys, halves=halves)

    # -- shape -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.prompt_index)

    @property
    def num_prompts(self) -> int:
        return len(self.prompts)

    def rows_of(self, prompt: int) -> torch.Tensor:
        return torch.nonzero(self.prompt_index == prompt).flatten()

    def paired_index(self, index: torch.Tensor) -> torch.Tensor:
        n = len(self)
        return torch.cat([index + h * n for h in range(self.halves)])

    # -- histories -------------------------------------------------------------------------------
    def record(self, name: str, column: int, values: torch.Tensor) -> None:
        """Write values[r] into history `name` at column `column`, growing it as needed."""
        values = values.detach().float().cpu().reshape(len(self))
        h = self.history.get(name)
        if h is None:
            h = torch.full((len(self), column + 1), float("nan"))
        elif h.shape[1] <= column:
            h = torch.cat([h, torch.full((len(self), column + 1 - h.shape[1]), float("nan"))], 1)
        h[:, column] = values
        self.history[name] = h

    # -- selection -------------------------------------------------------------------------------
    def select(self, rows: Sequence[int] | torch.Tensor, reason: str = "select") -> Trajectories:
        """Keep `rows` (duplicates allowed, any order), in place; returns self.

        Rows not kept end in the search tree with `reason`. The first copy of a kept row keeps its
        node and seed; further copies become child nodes with fresh seed keys.
        """
        n = len(self)
        if isinstance(rows, (list, tuple)) and any(isinstance(r, bool) for r in rows):  # torch reads [True, 2] as 1, 2
            raise TypeError(f"select takes row indices (integers), got booleans in {rows!r:.80}: for a boolean mask "
                            "pass mask.nonzero().flatten()")
        try:
            given = torch.as_tensor(rows)
        except (TypeError, ValueError, RuntimeError) as exc:  # None, strings, sets, ragged lists, huge ints
            raise TypeError(f"select takes row indices (integers in [0, {n})), got {rows!r:.80}: {exc}") from None
        if given.numel() and (given.is_floating_point() or given.is_complex() or given.dtype == torch.bool):
            hint = ": for a boolean mask pass mask.nonzero().flatten()" if given.dtype == torch.bool else ""
            raise TypeError(f"select takes row indices (integers), got {given.dtype}{hint}")
        idx = given.long().flatten().cpu()
        if len(idx) == 0:
            raise ValueError("select needs at least one row")
        if int(idx.min()) < 0 or int(idx.max()) >= n:
            # the rows as given: a uint64 2**64 - 1 is -1 once cast to long
            raise IndexError(f"select rows must lie in [0, {n}), got {given.flatten().tolist()}")

        kept = set(idx.tolist())
        self.tree.end([int(self.node[r]) for r in range(n) if r not in kept], self.step, reason)

        seen: dict[int, int] = {}
        new_nodes, new_keys = [], []
        for r in idx.tolist():
            copy = seen.get(r, 0)
            seen[r] = copy + 1
            if copy == 0:
                new_nodes.append(int(self.node[r]))
                new_keys.append(self.seed_key[r])
            else:
                new_nodes += self.tree.add([int(self.node[r])], [int(self.prompt_index[r])], self.step)
                made = self.copies.get((self.seed_key[r], self.step), 0) + 1  # a second select at this step goes on
                self.copies[(self.seed_key[r], self.step)] = made
                new_keys.append(mix(self.seed_key[r], self.step, made))

        pidx = self.paired_index(idx)
        on = on_device_once(idx)
        self.rows = {k: v.index_select(0, on(v)) for k, v in self.rows.items()}
        on = on_device_once(pidx)
        self.paired = {k: v.index_select(0, on(v)) for k, v in self.paired.items()}
        self.history = {k: v.index_select(0, idx) for k, v in self.history.items()}
        if self.cache is not None:
            pruning = len(pidx) == 1 or bool((pidx[1:] > pidx[:-1]).all())
            self.cache = self.cache.keep_(pidx) if pruning else self.cache.select(pidx)
        self.prompt_index = self.prompt_index.index_select(0, idx)
        self.node = torch.tensor(new_nodes, dtype=torch.long)
        self.seed_key = new_keys
        return self

    def finish_tree(self, reason: str = "final") -> None:
        """Mark the surviving rows as ended at the current step (call once generation is done)."""
        self.tree.end(self.node.tolist(), self.step, reason)
