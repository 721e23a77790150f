"""The cost record's wall time per phase, its total, the scorer-call count of a feature scorer, and the
guidance the shared next-token sampler applies."""

import time

import torch
from search_fakes import FakeNextScale, FakeNextToken, FakeScorer

from arscale.generators.sampling import cfg_mix, sample_per_row
from arscale.search.best_of_n import BestOfN
from arscale.search.importance import Importance, ImportanceConfig
from arscale.search.rollout import Search

PROMPTS = ["a photo of a red circle", "a photo of two squares"]
PAUSE = 0.1


class SlowDecodes(FakeNextScale):
    """Every decode (partial or final) takes PAUSE seconds; decode FLOPs stated, so nothing is repeated."""

    def preview(self, traj, size=None):
        time.sleep(PAUSE)
        return super().preview(traj, size)

    def finish(self, traj):
        time.sleep(PAUSE)
        return super().finish(traj)


class SlowScorer(FakeScorer):
    """Every reward call takes PAUSE seconds; its FLOPs stated, so nothing is repeated under the counter."""

    def reward(self, images, prompts):
        time.sleep(PAUSE)
        return super().reward(images, prompts)

    def reward_flops(self, rows, size):
        return 1.0 * rows


def test_decodes_are_billed_to_the_decode_phase():
    # rollout.py: "wall time per phase"; Search.decode (partial) and Search.finish (final) are decodes
    res = Importance(ImportanceConfig(resample_at=[2, 4])).run(SlowDecodes(), PROMPTS, 2, seed=0,
                                                                scorer=FakeScorer())
    decodes = 3  # two partial decodes for the resamplings, one final
    assert res.cost.wall["decode"] >= decodes * PAUSE
    assert res.cost.wall["model"] < PAUSE / 2 and res.cost.wall["selection"] < PAUSE / 2


def test_scorer_calls_are_billed_to_the_reward_phase():
    res = BestOfN().run(FakeNextScale(), PROMPTS, 2, seed=0, scorer=SlowScorer())
    assert res.cost.wall["reward"] >= PAUSE
    assert res.cost.wall["selection"] < PAUSE / 2
    assert res.cost.overhead < PAUSE / 2  # a scorer's time is not overhead


class UncountedSlowDecode(FakeNextScale):
    """No `decode_flops`: the FLOPs are counted on a repeat of the (slow) final decode, which is not the method's time."""

    decode_flops = None
    finishes = 0

    def finish(self, traj):
        type(self).finishes += 1
        time.sleep(3 * PAUSE)
        return super().finish(traj)


def test_the_flop_counting_repeat_is_not_part_of_total_wall():
    # rollout.count_decode: "returns the seconds that repeat took (not part of the method's wall time)"
    UncountedSlowDecode.finishes = 0
    res = BestOfN().run(UncountedSlowDecode(), PROMPTS, 2, seed=0, scorer=FakeScorer())
    assert UncountedSlowDecode.finishes == 2  # the decode, then its repeat under torch's FLOP counter
    assert res.cost.wall["decode"] >= 3 * PAUSE
    assert res.cost.total_wall - res.cost.wall["decode"] < 1.5 * PAUSE  # the repeat (3 pauses) left out


def test_feature_scorer_calls_are_counted_per_image():
    # CostRecord.scorer_calls: "images passed through a scorer (reward or features)"
    search = Search(FakeNextScale(), seed=0, prompt_offset=0, reward=FakeScorer(), features=FakeScorer())
    traj = search.start(PROMPTS, 3)
    search.run_to(traj, 2)
    search.features(search.decode(traj, 16))
    assert search.cost.scorer_calls == 6
    search.rewards(traj, search.decode(traj, 16))
    assert search.cost.scorer_calls == 12


def test_the_shared_next_token_sampler_applies_the_generators_guidance():
    # rollout.py: without a `sample` of its own, a next-token generator's tokens are drawn from its `next_logits`
    # mixed by classifier-free guidance at `cfg`, per row seeded by the row's key and the token index
    gen = FakeNextToken()  # cfg 2
    search = Search(gen, seed=4, prompt_offset=0)
    traj = search.start(PROMPTS, 8)
    cond, uncond = gen.next_logits(traj)
    want = sample_per_row(cfg_mix(cond, uncond, gen.cfg), traj.seed_key, 0)
    unguided = sample_per_row(cond, traj.seed_key, 0)
    assert not torch.equal(want, unguided)  # the test can tell the two apart
    search.advance(traj)
    assert torch.equal(traj.rows["tokens"][:, 0], want)


def test_resizing_finished_images_for_the_scorer_is_billed_to_the_reward_phase(monkeypatch):
    from arscale.scorers import base  # `sized_for`, which resizes finished images for a scorer

    def slow_interpolate(*args, **kwargs):
        time.sleep(PAUSE)
        return torch.nn.functional.interpolate(*args, **kwargs)

    monkeypatch.setattr(base, "F", type("F", (), {"interpolate": staticmethod(slow_interpolate)}))
    scorer = FakeScorer()
    gen = FakeNextScale()
    gen.image_size = 2 * scorer.input_size
    assert gen.image_size != scorer.input_size  # the final images must be resized for this scorer
    res = BestOfN().run(gen, PROMPTS[:1], 2, seed=0, scorer=scorer)
    assert res.cost.wall["reward"] >= PAUSE and res.cost.overhead < PAUSE / 2
