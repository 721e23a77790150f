"""A generator moves as a whole: `TokenGenerator.to` (transformer, tokenizer and condition encoder; a dtype casts
the transformer only, as the loaders' `dtype=`), and Infinity's Flan-T5, which nn.Module does not see."""

from __future__ import annotations

import torch
from tiny_families import randomised, tiny_llamagen, tiny_llamagen_vq

from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.shapeworld import random_shapeworld_ar

PROMPTS = ["a photo of a red circle", "a photo of two crosses"]


def _ar():
    return random_shapeworld_ar(0, grid=4, vocab_size=32)


def test_a_next_token_generator_moved_to_the_cpu_draws_what_it_drew():
    from arscale.search.base import make_strategy

    reference = _ar()
    expected = reference.generate(PROMPTS, 2, seed=3)
    expected_search = make_strategy("scaling-ar", {}).run(reference, PROMPTS, 2, seed=3)
    gen = _ar()
    assert gen.to("cpu") is gen and gen.to(torch.device("cpu")) is gen and gen.device == torch.device("cpu")
    assert torch.equal(gen.generate(PROMPTS, 2, seed=3), expected)
    search = make_strategy("scaling-ar", {}).run(gen, PROMPTS, 2, seed=3)
    assert all((a == b).all() for a, b in zip(search.images, expected_search.images, strict=True))


def test_a_next_token_generator_cast_to_float64_and_back_draws_what_it_drew():
    expected = _ar().generate(PROMPTS, 2, seed=5)
    gen = _ar()
    gen.to(dtype=torch.float64)
    assert {p.dtype for p in gen.transformer.parameters()} == {torch.float64}
    assert gen.transformer.rope.dtype == torch.float32  # the RoPE angles stay fp32, as the loaders' casts leave them
    assert {p.dtype for p in gen.tokenizer.parameters()} == {torch.float32}  # the tokenizer decodes in fp32
    assert gen.to(torch.float32) is gen  # nn.Module's spelling: a dtype alone
    assert {p.dtype for p in gen.transformer.parameters()} == {torch.float32}
    assert torch.equal(gen.generate(PROMPTS, 2, seed=5), expected)


def test_every_part_of_a_next_token_generator_moves_and_its_cached_background_code_is_dropped():
    gen = _ar()
    assert isinstance(gen.background_code, int)  # found on the CPU and cached
    gen.to("meta")
    assert gen.device.type == "meta"
    parts = (gen.transformer, gen.tokenizer, gen.encode_condition.model.text_encoder)
    assert {t.device.type for part in parts for t in [*part.parameters(), *part.buffers()]} == {"meta"}
    assert gen._background_code is None  # found again where the tokenizer now is


def test_llamagen_cast_by_to_draws_as_the_loader_casts_it():
    """`load_llamagen_*(dtype="bfloat16")` casts the GPT and leaves the VQ in fp32; `.to(dtype=)` does the same."""
    gpt = randomised(LlamaGenGPT(LlamaGenConfig("c2i", dim=64, n_layer=2, n_head=2, vocab_size=32, block_size=16,
                                                num_classes=10)), 4)
    loaded = LlamaGenGenerator(gpt.to("cpu", torch.bfloat16), tiny_llamagen_vq(), cfg=2.0, top_k=16, top_p=1.0)
    gen = tiny_llamagen().to("cpu", torch.bfloat16)
    assert {p.dtype for p in gen.gpt.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in gen.tokenizer.parameters()} == {torch.float32}
    assert torch.equal(gen.generate([1, 7], 2, seed=0), loaded.generate([1, 7], 2, seed=0))


def test_llamagen_moves_its_text_encoder_but_leaves_its_dtype():
    class Encoder:  # a T5 stand-in that records its moves
        def __init__(self):
            self.moves = []

        def to(self, *args, **kwargs):
            self.moves.append((args, kwargs))
            return self

        def llamagen(self, prompts):
            raise AssertionError("not called")

    encoder = Encoder()
    gen = tiny_llamagen()
    gen.text_encoder = encoder.llamagen
    gen.to(torch.device("meta"), torch.float16)
    assert encoder.moves == [((torch.device("meta"),), {})]


def test_the_t5_text_encoder_moves_and_keeps_its_dtype():
    from types import SimpleNamespace

    from arscale.generators.t5_text import T5TextEncoder

    model = torch.nn.Linear(2, 2).to(torch.bfloat16)
    model.config = SimpleNamespace(d_model=2)
    t5 = T5TextEncoder(model, tokenizer=None, dtype="bfloat16")
    assert t5.to("meta") is t5
    assert t5.device == torch.device("meta") and model.weight.device.type == "meta"
    assert model.weight.dtype == torch.bfloat16


def test_infinity_moves_its_flan_t5_with_it_and_casts_only_its_transformer():
    """Infinity reads T5 through a bound `encode`, a plain attribute: `.to(device)` must move it too."""
    from tiny_families import tiny_infinity

    class Encoder:  # a T5TextEncoder stand-in: a device, a `.to`, an `encode`
        device = torch.device("cpu")

        def to(self, device):
            self.device = torch.device(device)
            return self

        def encode(self, prompts):
            raise AssertionError("not called")

    encoder = Encoder()
    gen = tiny_infinity()
    gen.text_encoder = encoder.encode
    gen.to(torch.float64)
    assert encoder.device == torch.device("cpu")  # a cast alone leaves T5 where and as it was
    gen.to("meta")
    assert encoder.device == torch.device("meta") and gen.device.type == "meta"
