"""Cost accounting: the text encoder is billed, and next-token step FLOPs follow the causal context."""
import pytest

from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.trajectories import Trajectories
from arscale.search.rollout import Search


class _TextEncodedGen:
    """A next-token generator whose start reports what its text encoder spent (like Infinity / LlamaGen t2i)."""

    num_tokens = 4
    image_size = 8
    device = "cpu"

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0):
        traj = Trajectories.for_prompts(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)
        traj.extra["text_flops"] = 1234.0 * len(prompts)
        return traj

    def next_logits(self, traj):  # unused here
        raise AssertionError


def test_the_text_encoding_is_part_of_the_transformer_cost():
    # methods/TTSVAR.md, "an honest cost model should count, per prompt: ... the T5 encoding";
    # rollout.Search.start: "a T5 encoder's, once per prompt"
    search = Search(_TextEncodedGen(), seed=0, prompt_offset=0)
    search.start(["a", "b"], 3)
    assert search.cost.transformer_flops == pytest.approx(2 * 1234.0)


def test_step_flops_continue_the_prefills_causal_context():
    # transformer.flops_per_position(context): one position attending to `context` keys. The prefill's position i
    # attends i + 1 keys; image token s is fed at position prefix_len + s, so it attends prefix_len + s + 1 keys.
    gen = random_shapeworld_ar(0, grid=4, vocab_size=32)
    t, P, T = gen.transformer, gen.prefix_len, gen.num_tokens
    assert gen.step_flops(1, 0) == pytest.approx(2 * t.flops_per_position(P + 1))
    whole = gen.prefill_flops(3) + sum(gen.step_flops(3, s) for s in range(T - 1))
    one_pass = t.condition_flops() + sum(t.flops_per_position(i) for i in range(1, P + T))  # + the caption projection
    assert whole == pytest.approx(2 * 3 * one_pass)
    # flops_per_position grows with the context, so an off-by-one in the context shows up
    assert t.flops_per_position(P + 2) > t.flops_per_position(P + 1)
