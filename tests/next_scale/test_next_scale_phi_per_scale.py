"""The shared quantizer picks, for scale si of K, the φ whose tick is nearest si/(K-1): the first scale takes the
first φ, the last the last, and the ones between follow their position on [0, 1] (ties at 0.5 left out: the
float rounding of the ticks decides them)."""

import pytest

from arscale.generators.next_scale.quantizer import MultiScaleResidualQuantizer


@pytest.mark.parametrize("patch_nums, num_phi, expected", [
    ((1, 2, 3, 4), 4, {0: 0, 1: 1, 2: 2, 3: 3}),  # si/3 = 0, .33, .67, 1 against ticks 1/12, .36, .64, 11/12
    ((1, 2, 3, 4, 6), 4, {0: 0, 1: 1, 3: 2, 4: 3}),  # si/4 = .25 -> tick .36; .75 -> tick .64
    ((1, 2, 3, 4, 5, 6, 8), 3, {0: 0, 1: 0, 3: 1, 5: 2, 6: 2}),  # ticks 1/6, 1/2, 5/6
])
def test_phi_for_scale_is_the_tick_nearest_si_over_k_minus_1(patch_nums, num_phi, expected):
    q = MultiScaleResidualQuantizer(16, 4, patch_nums, num_phi=num_phi)
    assert {si: q.phi_for_scale[si] for si in expected} == expected
