"""The samplers' overflow guards at their edges: a row of -inf logits stays refused (VAR's upstream guidance for a
cfg that float32 cannot hold: test_machinery_where_mutants_survived.py)."""

import pytest
import torch

from arscale.generators.next_scale.infinity import _likelier_bit_where_overflowed
from arscale.generators.sampling import sample_batch, sample_per_row

NEG_INF = float("-inf")


@pytest.mark.parametrize("temperature", [1.0, 1e-40])
def test_a_row_of_only_minus_inf_logits_is_refused_not_sampled_uniformly(temperature):
    logits = torch.randn(2, 6, generator=torch.Generator().manual_seed(0))
    logits[1] = NEG_INF
    with pytest.raises(RuntimeError):
        sample_batch(logits, torch.Generator().manual_seed(0), temperature=temperature)
    with pytest.raises(RuntimeError):
        sample_per_row(logits, [0, 1], 0, temperature=temperature)


def test_an_infinity_bit_with_both_logits_minus_inf_stays_unsampleable():
    logits = torch.tensor([[[0.5, -0.5], [NEG_INF, NEG_INF]]])
    out = _likelier_bit_where_overflowed(logits / 1e-40, lambda: logits.double())
    assert torch.equal(out[0, 0], torch.tensor([0.0, NEG_INF]))  # the overflowed bit takes its likelier value
    assert out[0, 1].softmax(-1).isnan().all()  # no likelier value: NaN probabilities, which the sampler refuses
