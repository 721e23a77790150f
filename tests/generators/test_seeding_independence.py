"""Seeding as a property: distinct rows draw from distinct streams, copies made by `select`
get fresh keys, and candidates of one prompt, or of one text at two suite indices, are drawn differently."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_families import tiny_var

from arscale.errors import ArscaleError
from arscale.generators.seeding import check_seed, mix, row_key
from arscale.generators.trajectories import Trajectories

SEEDS = st.integers(0, 2**63 - 1)


def test_two_selects_at_one_step_give_every_copy_a_fresh_key():
    """select([0, 0]) then select([0, 0, 1]) at one step: three rows, three keys (Trajectories.select: fresh keys)."""
    traj = Trajectories.for_prompts(["a"], 1, seed=0)
    traj.select([0, 0])
    traj.select([0, 0, 1])
    assert len(set(traj.seed_key)) == 3


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, offset=st.integers(0, 10**5 - 64), step=st.integers(0, 1023))
def test_rows_and_copies_of_a_step_have_distinct_63_bit_seeds(seed, offset, step):
    """64 candidates × 64 consecutive prompts and two copies of each: all step seeds distinct (63-bit hash)."""
    keys = [row_key(seed, offset + p, c) for p in range(64) for c in range(64)]
    keys += [mix(k, step, copy) for k in keys[:64] for copy in (1, 2)]
    assert len({mix(k, step) for k in keys}) == len(keys)


def test_seeds_at_the_edges():
    """Seeds 0, 1, 2**63 - 1 and 2**64 - 1 give distinct rows; -1 and 2**64 are refused in one line."""
    assert len({row_key(s, 0, 0) for s in (0, 1, 2**63 - 1, 2**64 - 1)}) == 4
    for bad in (-1, 2**64):
        with pytest.raises(ArscaleError, match="seed must lie in"):
            check_seed(bad)


def test_candidates_same_text_at_two_indices_and_copies_are_all_drawn_differently():
    """Tiny VAR: 4 candidates of a class at index 0 and 4 at index 1 (same class), then two copies made at scale 2,
    all give distinct images."""
    gen = tiny_var()
    with torch.no_grad():
        traj = gen.start([3, 3], 4, seed=5)
        for _ in range(2):
            gen.step(traj)
        traj.select([0, 0, 0, 4])  # row 0 twice more, and candidate 0 of index 1
        while traj.step < gen.num_scales:
            gen.step(traj)
        copies = gen.finish(traj).flatten(1)
        rows = gen.start([3, 3], 4, seed=5)
        while rows.step < gen.num_scales:
            gen.step(rows)
        first = gen.finish(rows).flatten(1)
    for flat in (first, copies):
        assert all(not torch.equal(flat[i], flat[j]) for i in range(len(flat)) for j in range(i + 1, len(flat)))
