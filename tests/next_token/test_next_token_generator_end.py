"""Once every token is generated the next-token generator has no next logits: asking for them (or advancing) is
an error, not the stale logits of the last step."""

import pytest
from tiny_families import sample_to_end

from arscale.errors import ArscaleError
from arscale.generators.next_token.shapeworld import random_shapeworld_ar


@pytest.mark.parametrize("unconditional", [True, False])
def test_no_next_logits_after_the_last_token(unconditional):
    gen = random_shapeworld_ar(0, grid=4, vocab_size=32, cfg=1.0)
    traj = sample_to_end(gen, gen.start(["a photo of a red circle"], 2, seed=0, unconditional=unconditional))
    assert traj.step == gen.num_tokens
    with pytest.raises(ArscaleError, match=f"all {gen.num_tokens} tokens are generated"):
        gen.next_logits(traj)
    with pytest.raises(ArscaleError, match="all .* tokens are generated"):
        gen.sample(traj)
    with pytest.raises(ArscaleError, match="all .* tokens are generated"):
        gen.advance(traj, traj.rows["tokens"][:, 0])
    assert gen.finish(traj).shape == (2, 3, gen.image_size, gen.image_size)
