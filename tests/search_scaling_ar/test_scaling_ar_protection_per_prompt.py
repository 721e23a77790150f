"""The arg-max-C protection and the survivor count are per prompt (SCALINGAR.md §3.1: never terminate a prompt's
current arg-max-C candidate, keep >= 1 per prompt), also when another prompt's candidates are more confident."""

import torch

from arscale.search.scaling_ar import ScalingARConfig
from arscale.search.scaling_ar_termination import TerminationPolicy


def _policy(**kw):
    cfg = ScalingARConfig(prune_quantile=0.99, lambda_theta=0.2, threshold_pool="active", **kw)
    pol = TerminationPolicy(cfg, num_prompts=2, window=1)
    pol.theta = [5.0, 5.0]  # every row is below theta
    return pol


def test_each_prompt_protects_its_own_best_candidate():
    pol = _policy()
    prompt = torch.tensor([0, 0, 1, 1, 1])
    c = torch.tensor([0.9, 0.8, 0.3, 0.1, 0.2])  # prompt 1's best (row 2) is below every row of prompt 0
    # rows 0-3 are due (flagged at step 0, window 1); row 4 is flagged only now, so prompt 1 has room for two cuts
    flagged, since = torch.tensor([True, True, True, True, False]), torch.tensor([0, 0, 0, 0, -1])
    _, doomed = pol.step(4, c, torch.zeros(5), prompt, flagged, since)
    assert sorted(doomed) == [1, 3]  # row 0 (prompt 0's best) and row 2 (prompt 1's best) are kept


def test_a_prompt_keeps_a_survivor_even_unprotected_while_another_prompt_has_many():
    pol = _policy(protect_best=False)
    prompt = torch.tensor([0, 0, 0, 1, 1])
    c = torch.tensor([0.9, 0.8, 0.7, 0.2, 0.1])
    # both of prompt 1's candidates are due: room for one cut in prompt 1, whatever prompt 0 holds
    flagged, since = torch.tensor([False, False, False, True, True]), torch.tensor([-1, -1, -1, 0, 0])
    events, doomed = pol.step(4, c, torch.zeros(5), prompt, flagged, since)
    assert doomed == [4] and (3, "terminate") not in events  # the more confident of the two stays
