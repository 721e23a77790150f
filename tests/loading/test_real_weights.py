"""Released checkpoints, when they are on disk: point the env vars at the download directories.

ARSCALE_VAR_WEIGHTS        directory with var_d16.pth and vae_ch160v4096z32.pth
ARSCALE_INFINITY_WEIGHTS   directory with infinity_2b_reg.pth and infinity_vae_d32reg.pth
ARSCALE_T5_WEIGHTS         google/flan-t5-xl directory (Infinity and LlamaGen t2i text)
ARSCALE_LLAMAGEN_WEIGHTS   directory with c2i_B_256.pt and vq_ds16_c2i.pt
ARSCALE_LLAMAGEN_T2I_WEIGHTS  directory with t2i_XL_stage2_512.pt and vq_ds16_t2i.pt
"""

from __future__ import annotations

import os

import pytest
import torch

from arscale.generators.registry import load_generator

pytestmark = pytest.mark.real_weights


def _env(*names):
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.skip(f"released weights not configured: set {', '.join(missing)}")
    return [os.environ[n] for n in names]


def test_var_d16_generates_a_class_image():
    (weights,) = _env("ARSCALE_VAR_WEIGHTS")
    gen = load_generator("var-d16", weights=weights)
    traj = gen.start([207], 1, seed=0)
    for _ in range(gen.num_scales):
        gen.step(traj)
    img = gen.finish(traj)
    assert img.shape == (1, 3, 256, 256) and 0 <= img.min() and img.max() <= 1 and img.std() > 0.01


def test_infinity_2b_generates_at_the_smallest_schedule():
    weights, t5 = _env("ARSCALE_INFINITY_WEIGHTS", "ARSCALE_T5_WEIGHTS")
    gen = load_generator("infinity-2b", weights=weights, text_encoder=t5, pixels="0.06M")
    traj = gen.start(["a red apple on a wooden table"], 1, seed=0)
    for _ in range(gen.num_scales):
        gen.step(traj)
    img = gen.finish(traj)
    assert img.shape == (1, 3, 256, 256) and img.std() > 0.01


def test_llamagen_c2i_b_generates():
    (weights,) = _env("ARSCALE_LLAMAGEN_WEIGHTS")
    gen = load_generator("llamagen-c2i-b", weights=weights)
    torch.manual_seed(0)
    img = gen.generate([207], 1, seed=0)
    assert img.shape == (1, 3, 256, 256) and img.std() > 0.01


def test_llamagen_t2i_xl_loads_and_prefills():
    weights, t5 = _env("ARSCALE_LLAMAGEN_T2I_WEIGHTS", "ARSCALE_T5_WEIGHTS")
    gen = load_generator("llamagen-t2i-xl", weights=weights, text_encoder=t5)
    traj = gen.start(["a red apple on a wooden table"], 1, seed=0)
    cond, uncond = gen.next_logits(traj)
    assert cond.shape == (1, 16384) and torch.isfinite(cond).all() and not torch.equal(cond, uncond)
