"""The numeric extremes of the sampler and strategy settings.

A temperature (or Infinity's tau) so small that logits / temperature overflows float32 is its limit, greedy sampling,
as a small one such as 1e-8 already is, not NaN probabilities; a guidance scale float32 cannot hold is refused in one
line; a ScalingAR clamp_over beyond float32 means no ceiling; weights whose sum overflows are refused; the coarse
scales' counts are whole numbers, as top_k is."""

import dataclasses

import pytest
import torch
from cli_output import one_error_line
from tiny_families import tiny_infinity
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.cli import main
from arscale.errors import ArscaleError
from arscale.generators.next_scale.generator import SamplingConfig
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.sampling import sample_batch, sample_per_row
from arscale.search.base import make_strategy

PROMPTS = ["a photo of a red circle", "a photo of two squares"]


@pytest.mark.parametrize("temperature", [1e-40, 1e-320, 5e-324])
def test_a_tiny_temperature_samples_the_argmax(temperature):
    logits = torch.randn(3, 5, 11, generator=torch.Generator().manual_seed(0)) * 30
    logits[0, 0, 4] = logits[0, 0, 7] = logits[0, 0].max() + 1  # a tie at the top: both stay possible
    tokens = sample_per_row(logits, [1, 2, 3], 0, temperature=temperature)
    want = logits.argmax(-1)
    assert torch.equal(tokens[1:], want[1:]) and torch.equal(tokens[0, 1:], want[0, 1:])
    assert int(tokens[0, 0]) in (4, 7)
    batch = sample_batch(logits, torch.Generator().manual_seed(0), temperature=temperature, top_k=3, top_p=0.5)
    assert torch.equal(batch[1:], want[1:])


def test_a_tiny_temperature_leaves_nan_logits_refused():
    """The greedy limit does not hide a model's NaN logits: the sampler still refuses them."""
    logits = torch.zeros(1, 4)
    logits[0, 1] = float("nan")
    with pytest.raises(RuntimeError):
        sample_per_row(logits, [0], 0, temperature=1e-320)


@pytest.mark.parametrize("field", ["temperature", "coarse_temperature"])
def test_a_next_scale_model_with_a_tiny_temperature_runs_greedy(field):
    def images(temperature: float):
        tok, model = tiny_var_configs(sampling={"cfg": 2.0, field: temperature, "coarse_scales": 2})
        return make_strategy("raw").run(build_tiny_var(tok, model), PROMPTS, n=2, seed=3).images

    assert all((a == b).all() for a, b in zip(images(1e-320), images(1e-12)))


def test_scaling_ar_with_a_tiny_temperature_runs_greedy():
    gen = random_shapeworld_ar(0, grid=2)

    def images(temperature: float):
        config = {"temperature": temperature, "terminate": False, "record_previews": False}
        return make_strategy("scaling-ar", config).run(gen, PROMPTS, n=2, seed=1).images

    assert all((a == b).all() for a, b in zip(images(1e-320), images(1e-12)))


@pytest.mark.parametrize("tau", [1e-38, 1e-320])
def test_infinity_with_a_tiny_tau_runs_greedy(tau):
    def images(value: float):
        gen = tiny_infinity()
        gen.sampling = dataclasses.replace(gen.sampling, tau=value)
        gen.tau_list = gen._per_scale(value, "tau")
        return make_strategy("raw").run(gen, ["a cat"], n=1, seed=0).images

    assert all((a == b).all() for a, b in zip(images(tau), images(1e-12)))


@pytest.mark.parametrize("model", ["shapeworld-var", "shapeworld-ar"])
def test_a_guidance_scale_float32_cannot_hold_is_one_line(model, tmp_path, capsys):
    assert main(["generate", "a photo of a red circle", "--model", model, "--cfg", "1e39", "--n", "1",
                 "--threads", "1", "--out", str(tmp_path / "out")]) == 2
    assert "--cfg" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_the_library_refuses_a_guidance_scale_float32_cannot_hold():
    with pytest.raises(ArscaleError, match="cfg"):
        SamplingConfig(cfg=1e39)
    with pytest.raises(ArscaleError, match="guidance scale"):
        random_shapeworld_ar(0, grid=2).start(PROMPTS, 1, 0, cfg=1e39)
    with pytest.raises(ArscaleError, match="cfg_base"):
        make_strategy("scaling-ar", {"cfg_base": 1e308})


def test_scaling_ar_clamp_over_beyond_float32_is_no_ceiling():
    gen = random_shapeworld_ar(0, grid=2)

    def run(clamp_over: float):
        return make_strategy("scaling-ar", {"clamp_over": clamp_over, "record_previews": False}).run(
            gen, PROMPTS, n=3, seed=2)

    huge, large = run(1e308), run(1e6)  # guidance never comes near 1e6 above the base here: the same run
    assert all((a == b).all() for a, b in zip(huge.images, large.images))


@pytest.mark.parametrize("weights", [{"w_tok": 1e308, "w_blk": 1e308}, {"w_i": 1e308, "w_d": 1e308}])
def test_scaling_ar_weights_whose_sum_overflows_are_refused(weights):
    with pytest.raises(ArscaleError, match="finite"):
        make_strategy("scaling-ar", weights)


@pytest.mark.parametrize("bad", [{"coarse_top_k": 2.5}, {"coarse_scales": 1.5}, {"coarse_scales": True},
                                 {"coarse_temperature": True}])
def test_coarse_scale_counts_are_whole_numbers(bad):
    with pytest.raises(ArscaleError, match="coarse"):
        SamplingConfig(cfg=2.0, **bad)


def test_fit_time_limit_with_a_huge_time_limit_keeps_the_plan():
    import argparse

    from arscale.train.common import Timer
    from arscale.train.lr_schedule import FIT_PROBE_STEPS, StepFitter, fitted_steps

    assert fitted_steps(1000, 100, 60, 50, 5.0, float("inf")) == (1000, 100)
    args = argparse.Namespace(fit_time_limit=True, steps=1000, cooldown=100)
    timer = Timer(0.0, 5.0, 1e308)  # accepted: a finite number of minutes
    try:
        fitter = StepFitter(args, timer, 0)
        said = [fitter.after_step(step) for step in range(StepFitter.FIT_SKIP_STEPS + FIT_PROBE_STEPS + 1)]
    finally:
        timer.close()
    assert said[-1] is not None and "1000 steps fit" in said[-1] and (args.steps, args.cooldown) == (1000, 100)


def test_infinity_with_a_guidance_scale_near_float32s_largest_runs():
    def images(cfg: float):
        gen = tiny_infinity()
        gen.sampling = dataclasses.replace(gen.sampling, cfg=cfg)
        gen.cfg_list = gen._per_scale(cfg, "cfg")
        return make_strategy("raw").run(gen, ["a cat"], n=2, seed=0).images

    assert all((a == b).all() for a, b in zip(images(3e38), images(1e30)))  # both the sign of cond - uncond


def test_llamagen_with_a_guidance_scale_near_float32s_largest_runs():
    from tiny_families import tiny_llamagen

    gen = tiny_llamagen()
    gen.cfg = 3e38
    result = make_strategy("raw").run(gen, [3, 5], n=2, seed=0)
    assert len(result.images) == 2 and all(image.shape[-1] == 3 for image in result.images)
