"""Infinity's per-scale lists: scale si is guided with cfg[si] and tempered with tau[si] (not a neighbour's):
guide = cfg·cond/tau + (1 - cfg)·uncond/tau."""

import torch
from tiny_families import tiny_infinity


def test_each_scale_takes_its_own_cfg_and_tau():
    gen = tiny_infinity()
    K = gen.num_scales
    gen.sampling.cfg = [1.5 + 0.5 * k for k in range(K)]
    gen.sampling.tau = [0.4 + 0.1 * k for k in range(K)]
    gen.set_schedule(gen.schedule)
    traj = gen.start(["a red cube", "two green balls on a table"], 2, seed=3)
    R = len(traj)
    for si in range(K):
        logits = gen.forward_scale(traj)
        guided = gen.guide(traj, logits)
        cfg, tau = gen.sampling.cfg[si], gen.sampling.tau[si]
        want = (cfg * logits[:R] / tau + (1 - cfg) * logits[R:] / tau).reshape(R, -1, 2)
        torch.testing.assert_close(guided, want, rtol=1e-5, atol=1e-5)
        gen.commit(traj, gen.sample(traj, guided))
    assert traj.step == K


def test_cfg_list_longer_than_the_schedule_is_cut_to_its_scales():
    gen = tiny_infinity()
    K = gen.num_scales
    gen.sampling.cfg = [2.0 + k for k in range(K + 3)]
    gen.set_schedule(gen.schedule)
    assert gen.cfg_list == [2.0 + k for k in range(K)]
    assert gen.start(["a red cube"], 1, seed=0).extra["cfg"] == gen.cfg_list
