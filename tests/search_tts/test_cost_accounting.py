"""What the cost record counts beyond the generator: scorer FLOPs, and what it leaves out (loading)."""

from __future__ import annotations

import gc
import time

import torch
from search_fakes import FakeNextScale, FakeScorer

from arscale.scorers.base import SCORERS
from arscale.search import rollout
from arscale.search.best_of_n import BestOfN
from arscale.search.raw import Raw
from arscale.search.tts_var import TTSVAR, TTSVARConfig


class MatmulScorer(FakeScorer):
    """A scorer whose FLOPs are known by hand: one [B, 3·16·16] x [3·16·16, 8] matmul per call."""

    name = "matmul"

    def __init__(self):
        super().__init__()
        self.weight = torch.ones(3 * 16 * 16, 8)

    def reward(self, images, prompts):
        self.calls.append(len(images))
        return (images.flatten(1) @ self.weight).mean(1)


def test_scorer_flops_are_counted_once_per_scorer_and_size_off_the_clock():
    scorer = MatmulScorer()
    result = BestOfN().run(FakeNextScale(), ["a", "bb"], 3, seed=0, scorer=scorer)
    per_image = 2 * 3 * 16 * 16 * 8
    assert result.cost.scorer_calls == 6 and result.cost.scorer_flops == 6 * per_image
    assert scorer.calls == [6, 6]  # the call, then one repeat under torch's FLOP counter
    again = BestOfN().run(FakeNextScale(), ["a"], 4, seed=0, scorer=scorer)  # cached per image from now on
    assert again.cost.scorer_flops == 4 * per_image and scorer.calls == [6, 6, 4]
    assert Raw().run(FakeNextScale(), ["a"], 4, seed=0, scorer=scorer).cost.scorer_flops == 0


class AttentionScorer(FakeScorer):
    """Self-attention over the 16 rows of an image, through the fused kernel a CPU runs (which torch's counter
    does not see): FLOPs by hand are q·k and weights·v, 2 · 2 · L · L · D per image and channel-head."""

    name = "attention"

    def reward(self, images, prompts):
        self.calls.append(len(images))
        # images [B, 3, 16, 16] read as 3 heads of L = 16 rows of D = 16
        return torch.nn.functional.scaled_dot_product_attention(images, images, images).mean((1, 2, 3))


def test_a_scorers_fused_attention_is_counted_on_a_cpu():
    result = BestOfN().run(FakeNextScale(), ["a"], 2, seed=0, scorer=AttentionScorer())
    per_image = 3 * 2 * 2 * 16 * 16 * 16
    assert result.cost.scorer_flops == 2 * per_image


class EncoderLayerScorer(FakeScorer):
    """One `nn.TransformerEncoderLayer` over the 16 rows of an image: in inference torch runs it as one fused
    kernel, which its FLOP counter cannot see into."""

    name = "encoder-layer"

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.TransformerEncoderLayer(48, 2, 64, dropout=0.0, batch_first=True).eval()

    @torch.no_grad()
    def reward(self, images, prompts):
        self.calls.append(len(images))
        rows = images.permute(0, 2, 1, 3).flatten(2)  # [B, L = 16 rows, 48 = 3 channels x 16 columns]
        return self.layer(rows).mean((1, 2))


def test_a_scorers_fused_transformer_layers_are_counted():
    result = BestOfN().run(FakeNextScale(), ["a"], 2, seed=0, scorer=EncoderLayerScorer())
    L, d, ff = 16, 48, 64
    per_image = 2 * L * d * 3 * d + 2 * L * d * d + 2 * 2 * L * L * d + 2 * 2 * L * d * ff  # qkv, out, attention, FFN
    assert result.cost.scorer_flops == 2 * per_image
    assert torch.backends.mha.get_fastpath_enabled()  # switched back on after counting


def test_a_scorer_may_state_its_flops():
    class Stated(FakeScorer):
        def reward_flops(self, rows, size):
            return 1000.0 * rows * size

    result = BestOfN().run(FakeNextScale(), ["a"], 3, seed=0, scorer=Stated())
    assert result.cost.scorer_flops == 1000.0 * 3 * 16


def test_loading_a_feature_scorer_is_not_the_methods_time(monkeypatch):
    def slow_features(device="cpu"):
        time.sleep(1.0)
        return FakeScorer()

    monkeypatch.setitem(SCORERS, "slow-features", slow_features)
    config = TTSVARConfig(features="slow-features", record_previews=False)
    t0 = time.perf_counter()
    result = TTSVAR(config).run(FakeNextScale(), ["a"], 8, seed=0, scorer=MatmulScorer())
    assert time.perf_counter() - t0 >= 1.0 > result.cost.total_wall  # the fake search itself takes ~10 ms
    assert result.cost.scorer_flops > 0  # the resampling scales' rewards


def test_per_object_caches_die_with_their_object():
    cache = rollout._PerObject()

    class Thing:
        pass

    a = Thing()
    cache.of(a)["x"] = 1.0
    assert cache.of(a) == {"x": 1.0}
    del a
    gc.collect()
    assert len(cache._weak) == 0  # a new object at the same address starts empty
    assert cache.of([1, 2]) == {}  # not weakly referable: kept by identity instead


def test_bench_compute_axis_includes_the_scorers():
    from arscale.bench.metrics import summarize

    record = {"cost": {"transformer_flops": 1.0, "decode_flops": 2.0, "scorer_flops": 4.0, "total_wall": 1.0,
                       "overhead": 0.0}, "reward": None}
    assert summarize([record], [])["cost_per_prompt"]["flops"] == 7.0


def test_a_single_image_reward_may_be_a_scalar():
    class Scalar(FakeScorer):
        def reward(self, images, prompts):
            return super().reward(images, prompts)[0]

    result = BestOfN().run(FakeNextScale(), ["a"], 1, seed=0, scorer=Scalar())
    assert result.chosen(0).score == BestOfN().run(FakeNextScale(), ["a"], 1, seed=0, scorer=FakeScorer()).chosen(0).score



def test_total_flops_is_the_compute_bench_tabulates():
    """`CostRecord.total_flops`: transformer + decode + scorer FLOPs, the sum bench's summaries and plots use."""
    from arscale.bench.metrics import summarize
    from arscale.search.result import CostRecord

    cost = CostRecord(transformer_flops=3.0e9, decode_flops=0.5e9, scorer_flops=0.25e9)
    assert cost.total_flops == 3.75e9 and CostRecord().total_flops == 0.0
    assert summarize([{"cost": cost.to_dict()}], [])["cost_per_prompt"]["flops"] == cost.total_flops
