"""The ShapeWorld tokenizers' convolutional autoencoder builds at any width."""

import torch

from arscale.generators.conv_autoencoder import Decoder, Encoder, _norm


def test_group_norm_groups_divide_any_width_and_keep_the_shipped_ones():
    """min(32, ch // 4) groups where that divides the width (every shipped model), else the largest count below
    that does: a width of 136 builds instead of failing inside torch."""
    assert [_norm(ch).num_groups for ch in (4, 12, 64, 128, 256)] == [1, 3, 16, 32, 32]
    assert _norm(136).num_groups == 17  # 136 = 8 x 17; 32 does not divide it
    torch.manual_seed(0)
    z = Encoder(4, ch=68, ch_mult=(1, 2))(torch.zeros(1, 3, 8, 8))
    assert Decoder(4, ch=68, ch_mult=(1, 2))(z).shape == (1, 3, 8, 8)
