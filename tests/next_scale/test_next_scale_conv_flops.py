"""`conv_flops` counts 2 FLOPs per multiply-add of every convolution (grouped convs by their group width)."""

import torch
from torch import nn

from arscale.generators.conv_autoencoder import conv_flops


def test_conv_flops_are_two_per_multiply_add():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.SiLU(), nn.Conv2d(8, 8, 3, padding=1, groups=4),
                        nn.Conv2d(8, 4, 1, stride=2))
    expected = 2 * (3 * 9 * 8 * 16 * 16) + 2 * (2 * 9 * 8 * 16 * 16) + 2 * (8 * 4 * 8 * 8)
    assert conv_flops(net, (1, 3, 16, 16)) == expected
