"""A mutation audit of the generators' shared machinery (sampling, seeding, trajectories,
KV cache, the two generator loops) and the bench's statistics (metrics, paired, pooled, table).

Tests here kill mutants that survived the existing suite; every expectation is worked out by hand from the
docstrings, README and ../shared/methods, not copied from a run of the code."""

from __future__ import annotations

import math

import pytest
import torch


# -- sampling -------------------------------------------------------------------------------------------------------
def test_hf_top_p_zero_keeps_the_most_probable_token_alone():
    # MODELS.md: LlamaGen's top-p acts on any top_p < 1; check_sampler: "0 as the top token alone"
    from arscale.generators.sampling import filter_logits_hf

    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    out = filter_logits_hf(logits, top_k=0, top_p=0.0)
    assert torch.isfinite(out).tolist() == [[False, True, False, False]]
    assert out[0, 1] == 3.0


# -- seeding --------------------------------------------------------------------------------------------------------
def test_the_largest_seed_is_accepted():
    # check_seed: a whole number in [0, 2**64)
    from arscale.errors import ArscaleError
    from arscale.generators.seeding import check_seed

    assert check_seed(2 ** 64 - 1) == 2 ** 64 - 1
    with pytest.raises(ArscaleError):
        check_seed(2 ** 64)


# -- bench metrics ----------------------------------------------------------------------------------------------------
def test_summary_overhead_share_and_per_tag_se():
    from arscale.bench.metrics import summarize

    records = [{"reward": 0.5, "cost": {"total_wall": 2.0, "overhead": 0.5, "wall": {"model": 1.0}}},
               {"reward": 0.7, "cost": {"total_wall": 4.0, "overhead": 1.5, "wall": {"model": 2.0, "reward": 0.5}}}]
    rows = [{"tag": "single_object", "correct": c, "prompt": f"a{i}", "metadata": f"a{i}"}
            for i, c in enumerate([True, True, False])]
    rows.append({"tag": "counting", "correct": True, "prompt": "b", "metadata": "b"})
    s = summarize(records, rows)
    # overhead 1.0 s of 3.0 s per prompt
    assert s["cost_per_prompt"]["overhead_fraction"] == pytest.approx(1 / 3)
    # each phase's wall time is a mean over the prompts (0 where a prompt spent none)
    assert s["cost_per_prompt"]["wall_model"] == pytest.approx(1.5)
    assert s["cost_per_prompt"]["wall_reward"] == pytest.approx(0.25)
    # Agresti-Coull per tag: 2 of 3 -> p~ = 4/7 over 7; 1 of 1 -> p~ = 3/5 over 5
    assert s["tags"]["single_object"]["se"] == pytest.approx(math.sqrt(4 / 7 * 3 / 7 / 7))
    assert s["tags"]["counting"]["se"] == pytest.approx(math.sqrt(3 / 5 * 2 / 5 / 5))
    assert s["overall_se"] == pytest.approx(math.sqrt(4 / 7 * 3 / 7 / 7 + 3 / 5 * 2 / 5 / 5) / 2)


# -- trajectories ---------------------------------------------------------------------------------------------------
def test_record_writes_the_column_it_is_given_even_an_earlier_one():
    from arscale.generators.trajectories import Trajectories

    traj = Trajectories.for_prompts(["p"], 2, seed=0)
    traj.record("reward", 2, torch.tensor([1.0, 2.0]))
    traj.record("reward", 0, torch.tensor([3.0, 4.0]))  # an earlier column: the history is not grown
    h = traj.history["reward"]
    assert h.shape == (2, 3)
    assert h[:, 0].tolist() == [3.0, 4.0] and h[:, 2].tolist() == [1.0, 2.0]
    assert torch.isnan(h[:, 1]).all()


# -- the next-token generator ---------------------------------------------------------------------------------------
def test_next_token_sample_draws_token_t_from_the_stream_of_key_and_t():
    # generator docs: `sample(traj)` draws on each row's own generator, seeded by the row key and step; ScalingAR
    # draws its own tokens with sample_per_row(..., traj.seed_key, t), so both must name the same stream
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar
    from arscale.generators.sampling import sample_per_row

    gen = random_shapeworld_ar(3, grid=4, vocab_size=32, cfg=2.0, top_k=0)
    traj = gen.start(["a photo of a red circle", "a photo of two squares"], 2, seed=5)
    for t in range(3):
        expected = sample_per_row(gen.guided_logits(traj), traj.seed_key, t, temperature=gen.temperature,
                                  top_k=gen.top_k, top_p=gen.top_p)
        tokens = gen.sample(traj)
        assert torch.equal(tokens, expected)
        gen.advance(traj, tokens)


# -- the next-scale loop --------------------------------------------------------------------------------------------
def test_next_scale_sample_draws_scale_si_from_the_stream_of_key_and_si():
    # seeding.py: a row's draws at a step come from mix(key, step); the loop's `sample` names scale si's stream si
    from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

    from arscale.generators.sampling import sample_per_row

    gen = build_tiny_var(*tiny_var_configs())
    traj = gen.start(["a photo of a red circle", "a photo of two squares"], 2, seed=11)
    for si in range(gen.num_scales):
        guided = gen.guide(traj, gen.forward_scale(traj))
        expected = sample_per_row(guided, traj.seed_key, si, **gen.sampler_options(si))
        tokens = gen.sample(traj, guided)
        assert torch.equal(tokens.reshape(len(traj), -1), expected.reshape(len(traj), -1))
        gen.commit(traj, tokens)


# -- VAR's upstream CFG formula -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [1.5, 1.3])  # 1.3 is no float32: upstream's t = cfg * ratio uses the double
def test_var_upstream_guidance_is_bitwise_upstreams_formula_at_ten_scales(cfg):
    # MODELS.md: ratio = si/(K−1), t = cfg·ratio, (1+t)·cond − t·uncond, with Python floats (VAR's released
    # models have K = 10 scales; 1.5 is VARGenerator's default cfg); var.py promises bitwise parity
    from tiny_families import randomised

    from arscale.generators.next_scale.generator import SamplingConfig
    from arscale.generators.next_scale.var import (
        VQVAE,
        VARGenerator,
        VARModel,
        VQVAEConfig,
        var_transformer_config,
    )

    pn = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    model = VARModel(var_transformer_config(depth=1, embed_dim=64, num_heads=1, patch_nums=pn, vocab_size=16,
                                            code_dim=4), num_classes=4)
    vae = VQVAE(VQVAEConfig(vocab_size=16, code_dim=4, ch=32, ch_mult=(1, 1), num_res_blocks=1, patch_nums=pn))
    randomised(model, 2)
    gen = VARGenerator(model, vae, SamplingConfig(cfg=cfg, cfg_schedule="linear"))
    for traj in (gen.start([0, 1], 1, seed=0), gen.start([0, 1], 1, seed=0, cfg=cfg)):  # the model's, or given
        g = torch.Generator().manual_seed(0)
        for si in range(len(pn)):
            logits = torch.randn(2 * len(traj), 3, 64, generator=g) * 4
            traj.step = si  # guide reads only the scale index, the rows' cfg and the logits
            t = cfg * (si / (len(pn) - 1))
            expected = (1 + t) * logits[:2] - t * logits[2:]  # VAR's autoregressive_infer_cfg
            assert torch.equal(gen.guide(traj, logits, upstream=True), expected), f"scale {si}"


def test_cfg_mix_per_row_scale_follows_the_logits_dtype_and_matches_each_rows_scalar_mix():
    from arscale.generators.sampling import cfg_mix

    torch.manual_seed(0)
    cond, uncond = torch.randn(3, 5, 7).bfloat16(), torch.randn(3, 5, 7).bfloat16()
    scale = torch.tensor([1.0, 2.0, 4.0])
    out = cfg_mix(cond, uncond, scale)
    assert out.dtype == torch.bfloat16
    for r, s in enumerate([1.0, 2.0, 4.0]):
        assert torch.equal(out[r], cfg_mix(cond[r], uncond[r], s))


def test_a_prefix_preview_shows_code_zero_as_drawn_and_only_ungenerated_positions_as_background():
    # decode_prefix: positions that are negative (not generated) are shown as background; code 0 is a real code
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar

    gen = random_shapeworld_ar(3, grid=4, vocab_size=32, cfg=1.0, top_k=0)
    background = gen.background_code
    code = 0 if background != 0 else 1
    tokens = torch.full((1, gen.num_tokens), -1, dtype=torch.long)
    tokens[0, :5] = code
    full = tokens.clone()
    full[full < 0] = background
    assert torch.equal(gen.decode_prefix(tokens), gen.tokenizer.decode_codes(full))
