"""Each real family (tiny random configs, no fixtures needed) runs under the shared strategies."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_families import BrightnessScorer, fake_t5, tiny_infinity, tiny_llamagen, tiny_var

from arscale.errors import ArscaleError
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.search.base import make_strategy

N = 4  # candidates asked of every strategy


def _brightness_at_16(image) -> float:
    """BrightnessScorer's reward of a uint8 [H, W, 3] image resized to its 16-pixel input. The search scored the
    float image before uint8 rounding (at most 1/510 per pixel, averaging out over the image): a few 1e-5 apart."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    if x.shape[-1] != 16:
        x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False, antialias=x.shape[-1] > 16)
    return float(x.mean())


def final_count(strategy: str) -> int:
    """Final candidates per prompt at N = 4. raw: 1 (candidate 0, whatever N); best-of-n: N; importance: N (it
    resamples N rows with replacement); tts-var: its schedule's last batch, which for the default pattern (8 rows
    -> ... -> 1) started from N rows is max(1, round-half-up(N · 1/8)) = 1 on both tiny next-scale models
    (5 scales: 4, 3, 2, 1, 1; 7 scales: 4, 4, 3, 3, 2, 1, 1)."""
    return {"raw": 1, "best-of-n": N, "importance": N, "tts-var": 1}[strategy]


def _check(result, strategy, prompts, gen):
    assert len(result.candidates) == len(prompts)
    size = gen.image_size
    for p in range(len(prompts)):
        cands = result.candidates[p]
        for c in cands:
            assert c.image.dtype.name == "uint8" and c.image.shape == (size, size, 3)
        chosen = result.chosen(p)
        if strategy == "scaling-ar":  # its survivors: every candidate it did not terminate
            traces = result.telemetry["prompts"][p]
            assert len(traces) == N and len(cands) == sum(tr["ended"] is None for tr in traces) >= 1
        else:
            assert len(cands) == final_count(strategy)
        if strategy == "raw":
            assert chosen.score is None
            continue
        assert chosen.score == max(c.score for c in cands)  # the best reward (scaling-ar: the best final confidence)
        if strategy != "scaling-ar":  # scores are BrightnessScorer rewards of each candidate's own final image
            for c in cands:
                assert c.score == pytest.approx(_brightness_at_16(c.image), abs=3e-4)
        if strategy == "best-of-n":  # N independent samples, not N copies of one
            assert len({c.image.tobytes() for c in cands}) == N
    assert result.cost.transformer_flops > 0


@pytest.mark.parametrize("strategy", ["raw", "best-of-n", "importance", "tts-var"])
def test_infinity_under_strategies(strategy):
    gen, prompts = tiny_infinity(), ["a red cube", "two green balls on a table"]
    extra = {"tts-var": {"record_previews": False}}.get(strategy, {})
    kwargs = {"feature_scorer": BrightnessScorer()} if strategy == "tts-var" else {}
    s = make_strategy(strategy, extra)
    if kwargs:
        s.feature_scorer = kwargs["feature_scorer"]
    _check(s.run(gen, prompts, N, seed=3, scorer=BrightnessScorer()), strategy, prompts, gen)


def test_infinity_rows_do_not_depend_on_the_batch():
    gen = tiny_infinity()
    together = make_strategy("raw", {}).run(gen, ["a", "bb"], 2, seed=1)
    alone = make_strategy("raw", {}).run(gen, ["bb"], 2, seed=1, prompt_offset=1)
    assert (together.chosen(1).image == alone.chosen(0).image).all()


@pytest.mark.parametrize("strategy", ["raw", "best-of-n", "importance", "tts-var"])
def test_var_under_strategies(strategy):
    s = make_strategy(strategy, {"record_previews": False} if strategy == "tts-var" else {})
    if strategy == "tts-var":
        s.feature_scorer = BrightnessScorer()
    gen = tiny_var()
    _check(s.run(gen, [3, 7], N, seed=0, scorer=BrightnessScorer()), strategy, [3, 7], gen)


@pytest.mark.parametrize("strategy", ["raw", "best-of-n", "importance", "scaling-ar"])
def test_llamagen_under_strategies(strategy):
    gen = tiny_llamagen()
    _check(make_strategy(strategy, {}).run(gen, [1, 4], N, seed=0, scorer=BrightnessScorer()), strategy, [1, 4], gen)


def test_infinity_previews_decode_only_what_the_scorer_needs():
    gen = tiny_infinity()
    traj = gen.start(["a red cube"], 2, seed=0)
    for _ in range(3):
        gen.step(traj)
    full = gen.preview(traj)
    assert torch.allclose(full, ((gen.decode(traj) + 1) / 2).clamp(0, 1))
    small = gen.preview(traj, 16)
    assert small.shape == (2, 3, 16, 16) and 0 <= small.min() and small.max() <= 1
    assert gen.preview_latent(16) == (8, 8) and gen.decode_flops(2, 16) < gen.decode_flops(2) / 3
    gen.sampling.preview_decode = "full"
    assert gen.preview_latent(16) == (16, 16)
    assert not torch.allclose(gen.preview(traj, 16), small)


def test_llamagen_rows_sample_from_the_hf_style_distribution_on_their_own_streams():
    gen = tiny_llamagen()
    gen.top_p = 0.5
    traj = gen.start([1, 1, 4], 1, seed=0)
    probs = gen.probs_upstream(gen.guided_logits(traj))
    tokens = gen.sample(traj)
    assert all(probs[r, tokens[r]] > 0 for r in range(3))  # never a token the nucleus filter removed
    alone = gen.start([4], 1, seed=0, prompt_offset=2)
    assert gen.sample(alone)[0] == tokens[2]


def test_scaling_ar_draws_from_the_same_sampler_as_raw_on_llamagen():
    # with its scheduler and termination off, ScalingAR is raw sampling: same HF-style filter, same streams
    gen = tiny_llamagen()
    gen.top_p = 0.0  # LlamaGen keeps only the top token here; the generic filter reads 0 as "off"
    raw = make_strategy("raw", {}).run(gen, [1, 4], 1, seed=5)
    plain = make_strategy("scaling-ar", {"terminate": False, "schedule_guidance": False}).run(gen, [1, 4], 1, seed=5)
    for p in range(2):
        assert (raw.chosen(p).image == plain.chosen(p).image).all()


def test_infinity_bills_each_prompts_own_text_length():
    # the fake T5 gives "a red cube" 5 text tokens and "two green balls" 6 (3 + len % 4)
    gen = tiny_infinity()
    lengths = {p: 3 + len(p) % 4 for p in ("a red cube", "two green balls")}
    assert len(set(lengths.values())) == 2
    traj = gen.start(list(lengths), 3, seed=0)
    for k in range(gen.num_scales):
        alone = sum(gen.flops_per_scale(3, text_tokens=L)[k] for L in lengths.values())
        assert gen.scale_flops(traj, k) == pytest.approx(alone, rel=1e-12)
        # one text token more on every row adds the text's K/V projection and attention over it, per block
        one_more = gen.flops_per_scale(6, text_tokens=1)[k] - gen.flops_per_scale(6, text_tokens=0)[k]
        c = gen.model.cfg
        assert one_more == pytest.approx(2 * 6 * c.depth * (4 * c.embed_dim ** 2 + 4 * gen.sizes[k] * c.embed_dim))
    result = make_strategy("best-of-n", {}).run(gen, list(lengths), 3, seed=0, scorer=BrightnessScorer())
    assert result.cost.transformer_flops == pytest.approx(sum(gen.scale_flops(traj, k) for k in range(gen.num_scales)))


def test_a_counting_text_encoder_is_billed_once_per_prompt():
    class CountingEncoder:  # like T5TextEncoder: `flops_spent` grows with every forward
        def __init__(self):
            self.flops_spent, self.encode = 0.0, fake_t5(128)

        def __call__(self, prompts):
            self.flops_spent += 1000.0 * len(prompts)
            return self.encode(prompts)

    gen, plain = tiny_infinity(), tiny_infinity()
    gen.text_encoder = CountingEncoder()
    prompts = ["a red cube", "two green balls"]
    counted = make_strategy("best-of-n", {}).run(gen, prompts, 3, seed=0, scorer=BrightnessScorer())
    base = make_strategy("best-of-n", {}).run(plain, prompts, 3, seed=0, scorer=BrightnessScorer())
    assert counted.cost.transformer_flops - base.cost.transformer_flops == pytest.approx(2000.0)  # not per row


class PromptRecordingScorer(BrightnessScorer):
    reads_prompts = True

    def __init__(self):
        self.seen = []

    def reward(self, images, prompts):
        self.seen += list(prompts)
        return super().reward(images, prompts)


@pytest.mark.parametrize("family", [tiny_var, tiny_llamagen])
def test_a_class_conditional_model_shows_scorers_its_class_names(family):
    gen, scorer = family(), PromptRecordingScorer()
    with pytest.raises(ArscaleError, match="is class-conditional: a scorer that reads text needs each class's name"):
        make_strategy("best-of-n", {}).run(gen, [3, 7], 2, seed=0, scorer=scorer)
    assert scorer.seen == []  # refused before anything was generated
    assert make_strategy("raw", {}).run(gen, [3, 7], 1, seed=0).cost.transformer_flops > 0  # no scorer: no names
    gen.class_names = [f"class {i}" for i in range(10)]
    make_strategy("best-of-n", {}).run(gen, [3, "7"], 2, seed=0, scorer=scorer)
    assert sorted(set(scorer.seen)) == ["class 3", "class 7"]


def test_class_names_come_from_a_file_and_only_for_class_conditional_models(tmp_path, capsys):
    from arscale.cli import main
    from arscale.generators.class_names import use_class_names

    names = tmp_path / "names.txt"
    names.write_text("tench\ngoldfish\n\n")
    gen = tiny_var()
    use_class_names(gen, str(names))
    assert gen.class_names == ["tench", "goldfish"] and gen.prompt_text(1) == "goldfish"
    with pytest.raises(ArscaleError, match="class 5 has no name"):
        gen.prompt_text(5)
    with pytest.raises(ArscaleError, match="not a file"):
        use_class_names(gen, str(tmp_path / "missing.txt"))
    assert main(["generate", "a photo of a red circle", "--class-names", str(names), "--out", str(tmp_path / "o")]) == 2
    assert "--class-names is for class-conditional models" in capsys.readouterr().err
    gpt = LlamaGenGPT(LlamaGenConfig("t2i", dim=64, n_layer=1, n_head=2, vocab_size=32, block_size=16,
                                     caption_dim=8, multiple_of=8))
    t2i = LlamaGenGenerator(gpt, tiny_llamagen().tokenizer, cfg=2.0, text_encoder=lambda prompts: None)
    assert not t2i.class_conditional and tiny_llamagen().class_conditional
    with pytest.raises(ArscaleError, match="--class-names is for class-conditional models"):
        use_class_names(t2i, str(names))
