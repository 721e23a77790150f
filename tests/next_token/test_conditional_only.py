"""A next-token model whose guidance needs no unconditional logits (cfg 1; LlamaGen: cfg <= 1) runs only the
conditional half for the strategies that sample with the generator's own guidance: same tokens, half the
transformer compute, a KV cache that still follows `select`."""

import math

import pytest
import torch
from tiny_families import sample_to_end

from arscale.errors import ArscaleError
from arscale.generators.next_token.generator import left_pad
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.search.best_of_n import BestOfN
from arscale.search.raw import Raw
from arscale.search.scaling_ar import ScalingAR

PROMPTS = ["a photo of a red circle", "a photo of a blue square left of a circle"]


def _shapeworld(cfg):
    return random_shapeworld_ar(3, grid=4, vocab_size=32, cfg=cfg, top_k=0)


def _llamagen(cfg, null_class=True, seed=4, **upstream_args):
    """A tiny random LlamaGen (c2i unless `upstream_args` say otherwise)."""
    args = {"model_type": "c2i", "dim": 64, "n_layer": 1, "n_head": 2, "n_kv_head": None, "vocab_size": 32,
            "block_size": 16, "num_classes": 10, "caption_dim": 2048, "multiple_of": 64, "norm_eps": 1e-5,
            "rope_base": 10000, "ffn_dim_multiplier": None, "class_dropout_prob": 0.1 if null_class else 0.0,
            **upstream_args}
    torch.manual_seed(seed)
    gpt = LlamaGenGPT(LlamaGenConfig.from_upstream(args))
    for p in gpt.parameters():
        p.data = torch.randn(p.shape) * (0.5 if p.dim() < 2 else 1 / p.shape[-1] ** 0.5)
    vq = VQGAN(VQGANConfig(codebook_size=32, codebook_embed_dim=4, z_channels=32, ch=32, ch_mult=(1, 2),
                           num_res_blocks=1, image_size=8))
    return LlamaGenGenerator(gpt.eval(), vq.eval(), cfg=cfg, top_k=16)




@pytest.mark.parametrize("make, prompts, cfg", [(_shapeworld, PROMPTS, 1.0), (_llamagen, [3, 7], 1.0),
                                                (_llamagen, [3, 7], 0.5)])
def test_conditional_half_alone_draws_the_same_tokens(make, prompts, cfg):
    gen = make(cfg)
    both = sample_to_end(gen, gen.start(prompts, 3, seed=2))
    alone = gen.start(prompts, 3, seed=2, unconditional=False)
    assert (both.halves, alone.halves) == (2, 1)
    seen = []
    sample_to_end(gen, alone, seen)
    assert torch.equal(alone.rows["tokens"], both.rows["tokens"])
    assert alone.cache.keys[0].shape[0] == len(alone)  # one cache row per candidate, not two
    assert all(c is u for c, u in seen)  # the conditional logits stand in for both halves
    assert alone.extra["transformer_flops"] == pytest.approx(both.extra["transformer_flops"] / 2)


@pytest.mark.parametrize("make, cfg", [(_shapeworld, 2.5), (_shapeworld, 0.5), (_llamagen, 1.5)])
def test_guidance_that_mixes_keeps_both_halves(make, cfg):
    # cfg_mix below 1 still reads the unconditional logits; LlamaGen mixes only above 1
    gen = make(cfg)
    prompts = PROMPTS if make is _shapeworld else [1, 2]
    assert gen.start(prompts, 1, seed=0, unconditional=False).halves == 2


def test_conditional_only_refuses_guidance_that_needs_the_other_half():
    gen = _shapeworld(1.0)
    traj = gen.start(PROMPTS, 2, seed=0, unconditional=False)
    gen.advance(traj, gen.sample(traj), guidance=1.0)  # cfg 1 mixes nothing: allowed
    before = traj.rows["guidance"].clone()
    with pytest.raises(ArscaleError, match="without its unconditional half"):
        gen.advance(traj, gen.sample(traj), guidance=torch.tensor([1.0, 1.0, 3.0, 1.0]))
    assert traj.step == 1 and torch.equal(traj.rows["guidance"], before)  # the refused call changed nothing


def test_plain_generate_runs_only_the_conditional_half_at_cfg_one():
    gen, batches = _shapeworld(1.0), []
    hook = gen.transformer.register_forward_hook(lambda module, inputs, output: batches.append(output.shape[0]))
    try:
        gen.generate(PROMPTS, 2, seed=0)
    finally:
        hook.remove()
    assert set(batches) == {4}  # 2 prompts x 2 rows, never the 8 rows of two halves
    assert not gen.encode_condition(PROMPTS)[0].requires_grad  # the condition is encoded without gradients


def test_select_on_a_conditional_only_batch_equals_recomputation():
    gen = _shapeworld(1.0)
    traj = gen.start(PROMPTS, 3, seed=5, unconditional=False)
    for _ in range(5):
        gen.advance(traj, gen.sample(traj))
    keep = [4, 0, 0, 3]  # reordered, duplicated, rows of both prompts
    traj.select(keep, reason="test")
    assert traj.paired["prefix_mask"].shape[0] == len(keep)
    seen = []
    sample_to_end(gen, traj, seen)
    features, mask = left_pad(*gen.encode_condition(list(traj.prompts)))
    t, idx = gen.transformer, traj.prompt_index
    with torch.no_grad():
        ref = t.teacher_forced_logits(t.embed_condition(features[idx]), mask[idx], traj.rows["tokens"])[:, 5:]
    assert torch.allclose(torch.stack([c for c, _ in seen], 1), ref, atol=1e-5)


class MeanRed:
    name, input_size = "mean-red", 16

    def reward(self, images, prompts):
        return images[:, 0].mean((1, 2))


def _uint8(images):
    return images.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_raw_at_cfg_one_bills_half_the_transformer_for_the_same_images():
    gen = _llamagen(1.0, null_class=False)  # a c2i model without a null class can only run at cfg <= 1
    result = Raw().run(gen, [2, 5], 1, seed=1)
    full_pair = sum(gen.flops_per_token(2, p) for p in range(gen.num_tokens))
    assert result.cost.transformer_flops == pytest.approx(full_pair / 2)
    assert result.cost.generated_tokens == 2 * gen.num_tokens
    both = _uint8(gen.finish(sample_to_end(gen, gen.start([2, 5], 1, seed=1))))
    for got, want in zip(result.images, both):
        assert abs(got.astype(int) - want.astype(int)).max() <= 1


def test_best_of_n_at_cfg_one_bills_half_the_transformer():
    gen = _shapeworld(1.0)
    result = BestOfN().run(gen, PROMPTS, 3, seed=1, scorer=MeanRed())
    full_pair = sum(gen.flops_per_token(6, p) for p in range(gen.num_tokens))
    text = gen.encode_condition.model.text_encoder
    assert result.cost.transformer_flops == pytest.approx(full_pair / 2 + text.forward_flops(2))  # no empty text
    at_cfg_2 = BestOfN().run(_shapeworld(2.0), PROMPTS, 3, seed=1, scorer=MeanRed())
    assert at_cfg_2.cost.transformer_flops == pytest.approx(full_pair + text.forward_flops(3))


def test_scaling_ar_keeps_both_halves_at_cfg_one():
    # ScalingAR reads KL(cond || uncond) and sets its own guidance, so it always runs both halves
    gen = _shapeworld(1.0)
    result = ScalingAR().run(gen, PROMPTS[:1], 2, seed=0)
    kl = [k for trace in result.telemetry["prompts"][0] for k in trace["K"] if not math.isnan(k)]
    assert kl and max(abs(k) for k in kl) > 1e-6  # a conditional-only batch would give KL 0 everywhere


class _Wrapped:
    def __init__(self, inner, start):
        self.inner, self.start = inner, start

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_start_that_swallows_keywords_or_hides_its_signature_is_not_asked():
    # only a start that names `unconditional` is passed it: **kwargs may forward it somewhere that refuses it
    gen, seen = _shapeworld(1.0), []

    def swallowing(prompts, rows, seed, **kwargs):
        seen.append(dict(kwargs))
        return gen.start(prompts, rows, seed, prompt_offset=kwargs.get("prompt_offset", 0))

    Raw().run(_Wrapped(gen, swallowing), PROMPTS, 1, seed=0)
    assert "unconditional" not in seen[0]

    class Opaque:
        __signature__ = "not a signature"

        def __call__(self, prompts, rows, seed, *, prompt_offset=0):
            return gen.start(prompts, rows, seed, prompt_offset=prompt_offset)

    assert len(Raw().run(_Wrapped(gen, Opaque()), PROMPTS, 1, seed=0).images) == 2


def test_a_generator_whose_start_lacks_the_keyword_still_runs():
    class Plain:
        def __init__(self, inner):
            self.inner = inner
            self.name, self.num_tokens, self.image_size = inner.name, inner.num_tokens, inner.image_size

        def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0):
            return self.inner.start(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    gen = _shapeworld(1.0)
    plain = Raw().run(Plain(gen), PROMPTS, 1, seed=3)
    own = Raw().run(gen, PROMPTS, 1, seed=3)
    text = gen.encode_condition.model.text_encoder
    assert (plain.cost.transformer_flops - text.forward_flops(3)
            == pytest.approx(2 * (own.cost.transformer_flops - text.forward_flops(2))))
    for a, b in zip(plain.images, own.images):
        assert abs(a.astype(int) - b.astype(int)).max() <= 1


def test_llamagen_t2i_conditional_half_alone():
    # captions: the conditional half keeps each row's own padding mask, the empty caption's half is not built
    gen = _llamagen(1.0, seed=6, model_type="t2i", num_classes=1000, cls_token_num=120, caption_dim=16)
    captions = torch.randn(2, 120, 16)
    mask = torch.zeros(2, 120, dtype=torch.bool)
    mask[0, -7:], mask[1, -30:] = True, True  # left-padded, two lengths
    both = sample_to_end(gen, gen.start_from_condition(captions, mask, ["a", "b"], 2, seed=4))
    alone = gen.start_from_condition(captions, mask, ["a", "b"], 2, seed=4, unconditional=False)
    assert alone.halves == 1 and torch.equal(alone.paired["prefix_mask"], mask[alone.prompt_index])
    sample_to_end(gen, alone)
    assert torch.equal(alone.rows["tokens"], both.rows["tokens"])


def test_importance_sampling_at_cfg_one_keeps_its_picks_at_half_the_transformer():
    from arscale.search.importance import Importance, ImportanceConfig
    from arscale.search.rollout import Search

    gen = _shapeworld(1.0)
    strategy = Importance(ImportanceConfig(checkpoints=[0.25, 0.5]))
    alone = strategy.run(gen, PROMPTS, 4, seed=2, scorer=MeanRed())
    original = Search.start
    try:  # the same run with both halves: what every strategy ran before
        Search.start = lambda self, prompts, rows, unconditional=True: original(self, prompts, rows)
        both = strategy.run(gen, PROMPTS, 4, seed=2, scorer=MeanRed())
    finally:
        Search.start = original
    for p in range(len(PROMPTS)):
        assert [c.node for c in alone.candidates[p]] == [c.node for c in both.candidates[p]]
        assert (alone.chosen(p).image == both.chosen(p).image).all()
    text = gen.encode_condition.model.text_encoder
    assert (alone.cost.transformer_flops - text.forward_flops(2)
            == pytest.approx((both.cost.transformer_flops - text.forward_flops(3)) / 2))


def test_a_strategy_on_search_gets_both_halves_unless_it_says_otherwise():
    # a plugin strategy that reads the unconditional logits after `search.start` must not get the conditional twice
    from arscale.search.rollout import Search

    gen = _shapeworld(1.0)
    traj = Search(gen, seed=0, prompt_offset=0).start(PROMPTS, 2)
    cond, uncond = gen.next_logits(traj)
    assert traj.halves == 2 and not torch.allclose(cond, uncond)
    assert Search(gen, seed=0, prompt_offset=0).start(PROMPTS, 2, unconditional=False).halves == 1


def test_guided_logits_at_guidance_one_are_exactly_the_conditional():
    # cfg_mix at 1 equals the conditional only up to rounding; both paths must draw the same tokens, bit for bit
    gen = _shapeworld(1.0)
    traj = gen.start(PROMPTS, 3, seed=1)
    cond, _ = gen.next_logits(traj)
    assert torch.equal(gen.guided_logits(traj), cond)
    traj.rows["guidance"][0] = 2.0
    assert not torch.equal(gen.guided_logits(traj)[0], cond[0])


def test_generate_says_that_scaling_ar_moves_its_guidance_from_cfg(tmp_path, capsys):
    from arscale.cli import main

    assert main(["generate", "a photo of a circle", "--model", "shapeworld-ar", "--strategy", "scaling-ar", "--n", "2",
                 "--cfg", "1", "--out", str(tmp_path)]) == 0
    assert "scaling-ar starts every candidate at --cfg 1" in capsys.readouterr().err
    assert main(["generate", "a photo of a circle", "--model", "shapeworld-ar", "--strategy", "scaling-ar", "--n", "2",
                 "--cfg", "4", "--out", str(tmp_path)]) == 0
    assert "scaling-ar starts" not in capsys.readouterr().err  # a scale that needs both halves anyway: no note
    # a next-scale model also runs one half at cfg 1, but ScalingAR does not take it: its error, not the note
    assert main(["generate", "a photo of a circle", "--model", "shapeworld-var", "--strategy", "scaling-ar",
                 "--cfg", "1", "--out", str(tmp_path / "var")]) == 2
    err = capsys.readouterr().err
    assert "scaling-ar starts" not in err and "next-token" in err


def test_generate_shows_arscales_own_warnings_as_notes(tmp_path, capsys):
    from arscale.cli import main

    assert main(["generate", "a photo of a circle", "--model", "shapeworld-ar", "--strategy", "scaling-ar", "--n", "2",
                 "--cfg", "0", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "note: ScalingAR: clamp_min 1.0 is above the base scale 0.0" in err and "UserWarning" not in err
    import warnings

    from arscale.cli import _as_note

    assert warnings.showwarning is not None and "note" not in getattr(warnings.showwarning, "__name__", "")
    seen = []
    _as_note(lambda *args: seen.append(args))("from torch", UserWarning, __file__, 1)  # not ours: Python's format
    assert len(seen) == 1 and "note:" not in capsys.readouterr().err
