"""TTS-VAR's wiring around the pure functions: the history="all" scoring window, the clustering random streams,
and the phase that latent features are billed to."""

import time

from search_fakes import CodedNextScale, FakeNextScale, FakeScorer, TableScorer

from arscale.search import tts_var
from arscale.search.tts_var import TTSVAR, TTSVARConfig

PROMPTS = ["a red circle", "two blue squares"]


def test_history_all_records_the_scales_between_two_resamplings():
    # resampling after scales 2 and 5 (8 -> 2 -> 1 rows): with history="all", scales 3 and 4 are scored too, so DIFF
    # at scale 5 is r5 - r4. Every row's reward is 1 at scale 4, its candidate index at scale 5, 0 elsewhere.
    table = {4: [1.0] * 8, 5: [float(c) for c in range(8)]}

    def run(history):
        cfg = TTSVARConfig(cluster_at=[], resample_at=[2, 5], potential="diff", lam=1.0, history=history,
                           record_previews=False)
        return TTSVAR(cfg, feature_scorer=FakeScorer()).run(CodedNextScale(), PROMPTS, 8, seed=0,
                                                            scorer=TableScorer(table))

    full, ours = run("all"), run("resample")
    assert full.telemetry["schedule"]["batch"] == [8, 8, 8, 2, 2, 2, 1]
    last = full.telemetry["operations"][-1]
    assert last["scale"] == 5
    assert last["potential"] == [r - 1.0 for r in last["reward"]]  # r5 - r4, not r5 - r2 (= r5 - 0)
    # extra decodes per prompt: scales 0, 1 (8 rows) and 3, 4 (2 rows)
    assert full.cost.decode_count - ours.cost.decode_count == len(PROMPTS) * (8 + 8 + 2 + 2)


def _cluster_seeds(monkeypatch, prompts, prompt_offset):
    seen = []
    real = tts_var.select_diverse

    def spy(features, k, generator, reduction="pca"):
        seen.append(generator.initial_seed())
        return real(features, k, generator, reduction)

    monkeypatch.setattr(tts_var, "select_diverse", spy)
    cfg = TTSVARConfig(record_previews=False)  # 7 scales, N = 8: clusterings after scales 1 and 3
    TTSVAR(cfg, feature_scorer=FakeScorer()).run(FakeNextScale(), prompts, 8, seed=3, prompt_offset=prompt_offset,
                                                 scorer=FakeScorer())
    return seen


def test_each_clustering_of_each_prompt_draws_its_own_stream(monkeypatch):
    seeds = _cluster_seeds(monkeypatch, PROMPTS, 0)  # order: (scale 1: p0, p1), (scale 3: p0, p1)
    assert len(seeds) == 4 and len(set(seeds)) == 4
    # a prompt's streams come from its global index, not its place in the batch
    alone = _cluster_seeds(monkeypatch, PROMPTS[1:], 1)
    assert alone == [seeds[1], seeds[3]]


class SlowLatent(FakeNextScale):
    delay = 0.2

    def latent(self, traj):
        time.sleep(self.delay)
        return super().latent(traj)


def test_reading_latent_features_is_billed_as_features_not_selection():
    cfg = TTSVARConfig(features="latent", record_previews=False)
    res = TTSVAR(cfg).run(SlowLatent(), PROMPTS[:1], 8, seed=0, scorer=FakeScorer())
    assert [op["op"] for op in res.telemetry["operations"]][:2] == ["cluster", "cluster"]
    assert res.cost.wall["features"] >= 2 * SlowLatent.delay
    assert res.cost.wall["selection"] < SlowLatent.delay
