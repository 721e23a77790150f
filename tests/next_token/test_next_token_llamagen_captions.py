"""LlamaGen t2i captions are left-padded: the valid tokens end the 120-position prefix, every one unmasked."""

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.next_token.llamagen import left_pad_captions


def test_left_pad_captions_keeps_every_valid_token_at_the_end():
    a, b = torch.randn(3, 4), torch.randn(6, 4)
    out, mask = left_pad_captions([a, b], length=5)  # b is cut to its first 5 tokens
    assert mask.tolist() == [[False, False, True, True, True], [True] * 5]
    assert torch.equal(out[0, 2:], a) and torch.equal(out[0, :2], torch.zeros(2, 4))
    assert torch.equal(out[1], b[:5])
    assert int(left_pad_captions([torch.randn(7, 2)])[1].sum()) == 7  # default length 120
    with pytest.raises(ArscaleError, match="no caption tokens"):
        left_pad_captions([torch.zeros(0, 4)])
