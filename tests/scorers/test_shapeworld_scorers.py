import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from arscale import shapeworld as sw
from arscale.errors import ArscaleError
from arscale.scorers.base import Scorer, load_scorer
from arscale.scorers.shapeworld import WEIGHTS_DIR, RewardConfig, RewardModel, load_features, load_reward
from arscale.train.reward import batch_loss, degrade, hard_negative_prompts, make_batch

PROMPTS = ["a photo of a red circle", "a photo of two squares"]


@pytest.fixture(scope="module")
def weights_dir(tiny_reward_weights):
    return tiny_reward_weights(RewardConfig(shift=0.5, scale=2.0))


def test_scorer_protocol_shapes_and_standardisation(weights_dir):
    reward, features = load_reward(weights=weights_dir), load_features(weights=weights_dir)
    assert isinstance(reward, Scorer) and reward.name == "shapeworld-reward"
    assert features.name == "shapeworld-features" and features.input_size == 64
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    r = reward.reward(images, PROMPTS)
    assert r.shape == (2,) and torch.isfinite(r).all()
    raw = reward.model.logits(images, PROMPTS)
    assert torch.allclose(r, (raw - 0.5) / 2.0, atol=1e-5)
    assert features.features(images).shape == (2, 64, 96)
    small = torch.nn.functional.interpolate(images, size=(32, 32), mode="area")
    assert reward.reward(small, PROMPTS).shape == (2,)  # resized to the input size
    one = reward.reward(images, PROMPTS[0])  # a single prompt string serves the whole batch
    assert torch.allclose(one, reward.reward(images, [PROMPTS[0]] * 2))


def test_scorer_errors(weights_dir, tmp_path):
    reward = load_reward(weights=weights_dir)
    with pytest.raises(ArscaleError, match="one prompt per image"):
        reward.reward(torch.rand(2, 3, 64, 64), PROMPTS[:1])
    with pytest.raises(ArscaleError, match="arscale train shapeworld-reward"):
        load_reward(weights=tmp_path)
    with pytest.raises(ArscaleError, match="unknown word"):
        reward.reward(torch.rand(1, 3, 64, 64), ["a photo of a dog"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((weights_dir / "config.json").read_text())
    save_file({"extra.weight": torch.zeros(1)}, str(bad / "model.safetensors"))
    with pytest.raises(ArscaleError, match="leftover"):
        load_reward(weights=bad)


@pytest.mark.parametrize("tag", sw.TAGS)
def test_hard_negatives_are_grammatical_and_really_wrong(tag):
    rng = np.random.default_rng(5)
    for _ in range(6):
        md = sw.random_metadata(rng, tag)
        image = sw.render(sw.sample_scene(md, rng))
        negatives = hard_negative_prompts(md)
        assert negatives and md["prompt"] not in negatives
        for p in negatives:
            neg = sw.metadata_from_prompt(p)  # raises on anything outside the grammar
            assert not sw.evaluate(image, neg).correct, (md["prompt"], p)


def test_training_batch_and_a_few_steps_reduce_the_loss():
    torch.manual_seed(0)
    batch = make_batch(2, np.random.default_rng(0), negatives=3)
    assert len(batch.labels) == 4 * 4 and float(batch.labels.sum()) == 4
    model = RewardModel()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first, _ = batch_loss(model, batch, torch.device("cpu"))
    for _ in range(12):
        loss, _ = batch_loss(model, batch, torch.device("cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first.item() * 0.9
    images = degrade(batch.images, torch.Generator().manual_seed(0), p=1.0)
    assert images.shape == batch.images.shape and not torch.equal(images, batch.images)


def test_shipped_reward_prefers_the_true_prompt_on_clean_renders():
    # the weights ship with the package (git-tracked): missing weights are a failure, not a skip
    assert (WEIGHTS_DIR / "model.safetensors").is_file()
    scorer = load_scorer("shapeworld-reward")
    rng = np.random.default_rng(12345)  # not the training stream
    images, true, wrong = [], [], []
    for tag in sw.TAGS:
        for _ in range(10):
            md = sw.random_metadata(rng, tag)
            negs = hard_negative_prompts(md)
            images.append(sw.render(sw.sample_scene(md, rng)))
            true.append(md["prompt"])
            wrong.append(negs[int(rng.integers(len(negs)))])
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    wins = (scorer.reward(x, true) > scorer.reward(x, wrong)).float().mean()
    assert wins > 0.75


def test_use_weights_redirects_reward_and_features_together(weights_dir, tmp_path):
    from arscale.scorers import shapeworld as sws

    try:
        assert sws.use_weights(weights_dir) == weights_dir
        assert load_reward().model is load_reward(weights=weights_dir).model
        assert load_features().model is load_reward().model  # one image tower for reward and features
    finally:
        sws.use_weights(None)
    assert load_reward().model is not load_reward(weights=weights_dir).model  # back to the shipped weights
    with pytest.raises(ArscaleError, match="missing config.json"):
        sws.use_weights(tmp_path)


def test_generate_scores_with_scorer_weights_for_that_command_alone(weights_dir, tmp_path):
    from arscale.cli import main
    from arscale.scorers import shapeworld as sws

    def scores(out, *extra):
        args = ["generate", "a photo of a red circle", "--strategy", "best-of-n", "--n", "2",
                "--scorer", "shapeworld-reward", "--out", str(tmp_path / out), *extra]
        assert main(args) == 0
        return json.loads((tmp_path / out / "result.json").read_text())

    shipped = scores("shipped")
    own = scores("own", "--scorer-weights", str(weights_dir))
    assert own["scorer_weights"] == str(weights_dir) and "scorer_weights" not in shipped
    assert own["scores"] != shipped["scores"]  # the same two images, scored by the other reward
    assert sws.weights_in_use() == sws.WEIGHTS_DIR  # the next command (or test) is back on the shipped weights
    assert scores("again")["scores"] == shipped["scores"]  # and the scorer loaded for it is not reused
