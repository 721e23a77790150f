"""Audit (mutation testing of src/arscale/train): what the reward trainer is taught (which pairs are labelled
matching, its hard negatives, which images are degraded), the metrics it reports, the batches it steps through,
and the calibration it ships."""

import json

import numpy as np
import pytest
import torch

from arscale import shapeworld as sw
from arscale.cli import build_parser
from arscale.cli import main as cli
from arscale.train import common, reward


def _pairs(batch):
    """(image row, group position, text, label, does the exact evaluator accept the text for the image?)"""
    pixels = (batch.images * 255).round().byte().permute(0, 2, 3, 1).numpy()
    return [(i, n % batch.positive_first, batch.texts[t], label, sw.evaluate(pixels[i], batch.texts[t]).correct)
            for n, (i, t, label) in enumerate(zip(batch.image_index.tolist(), batch.text_index.tolist(),
                                                   batch.labels.tolist()))]


def test_the_label_says_whether_the_text_describes_the_image():
    batch = reward.make_batch(3, np.random.default_rng(1), negatives=3)
    groups = batch.labels.view(-1, batch.positive_first)
    assert groups[:, 0].eq(1).all() and groups[:, 1:].eq(0).all()  # the positive first in every group
    for i, j, text, label, correct in _pairs(batch):
        if i < 3 or j != 1:  # (the partner images' second text: see the test below)
            assert correct == (label == 1.0), (i, j, text)


def test_a_partner_image_is_never_labelled_against_a_prompt_it_satisfies():
    # image 3 is the partner of image 0, rendered from one of its hard negatives; its group's second text is
    # image 0's prompt. Here image 0 is 'a photo of a circle' and its partner two circles, which GenEval's
    # rule (at least the named objects) accepts for 'a photo of a circle'.
    batch = reward.make_batch(3, np.random.default_rng(1), negatives=3)
    for i, j, text, label, correct in _pairs(batch):
        assert correct == (label == 1.0), (i, j, text)


def test_a_count_is_contradicted_by_one_more_and_one_fewer():
    md = sw.metadata_from_prompt("a photo of three circles")
    negatives = reward.hard_negative_prompts(md)
    assert "a photo of two circles" in negatives and "a photo of four circles" in negatives


class _FakeReward:
    """A reward whose pair logits are given: the model's tower outputs do not matter here."""

    def __init__(self, logits):
        self.logits = torch.tensor(logits)

    def image(self, images):
        return torch.zeros(len(images), 1)

    def encode_text(self, texts):
        return torch.zeros(len(texts), 1), torch.ones(len(texts), 1, dtype=torch.bool)

    def pair_logits(self, image_tokens, text_tokens, mask):
        return self.logits

    def eval(self):
        return self

    def train(self):
        return self


def test_group_accuracy_counts_the_groups_whose_positive_scores_highest():
    batch = reward.make_batch(1, np.random.default_rng(0), negatives=2)  # 2 images, groups of 3
    model = _FakeReward([3.0, 1.0, 2.0, 0.0, 1.0, 5.0])  # right in group 0, wrong in group 1
    loss, metrics = reward.batch_loss(model, batch, torch.device("cpu"))
    assert metrics["group_acc"] == 0.5
    assert loss.item() == pytest.approx(metrics["bce"] + metrics["ce"])


def test_images_not_picked_for_degradation_are_left_exactly_as_rendered():
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(reward.degrade(images, torch.Generator().manual_seed(1), p=0.0), images)


def test_partial_decode_options_default_to_half_the_images_from_scale_two():
    args = build_parser().parse_args(["train", "shapeworld-reward", "--out", "unused", "--partial-tokenizer", "x"])
    reward.check_args(args)
    assert (args.partial_share, args.partial_first_scale) == (0.5, 2)


def test_each_step_draws_its_own_batch_a_resume_draws_the_same_and_the_calibration_is_shipped(tmp_path, monkeypatch):
    texts = []
    make = reward.make_batch

    def recording(batch_size, rng, negatives=4):
        batch = make(batch_size, rng, negatives)
        texts.append(batch.texts)
        return batch

    monkeypatch.setattr(reward, "make_batch", recording)
    monkeypatch.setattr(reward, "calibrate", lambda *args, **kwargs: (0.25, 2.0))  # 512 scenes: not the point here
    run = ["train", "shapeworld-reward", "--batch-size", "1"]
    assert cli([*run, "--steps", "2", "--out", str(tmp_path / "whole")]) == 0
    assert texts[0] != texts[1]
    assert cli([*run, "--steps", "1", "--out", str(tmp_path / "split")]) == 0
    assert cli([*run, "--steps", "2", "--out", str(tmp_path / "split")]) == 0
    assert texts[2:] == texts[:2]
    config = json.loads((tmp_path / "split" / "config.json").read_text())
    assert (config["shift"], config["scale"]) == (0.25, 2.0)
    assert common.TrainState(tmp_path / "split" / "train_state" / "shapeworld-reward").info()["step"] == 2


def test_a_resumed_run_degrades_its_images_as_the_whole_run_would(tmp_path, monkeypatch):
    """The augmentation generator is seeded per step: step 2 of a resumed run sees the images step 2 of an
    uninterrupted run saw (one generator seeded once would replay step 1's degradations after the resume)."""
    seen = []
    mix = reward.augment

    def recording(images, generator, partial):
        out = mix(images, generator, partial)
        seen.append(out.clone())
        return out

    monkeypatch.setattr(reward, "augment", recording)
    monkeypatch.setattr(reward, "calibrate", lambda *args, **kwargs: (0.0, 1.0))
    run = ["train", "shapeworld-reward", "--batch-size", "4"]
    assert cli([*run, "--steps", "2", "--out", str(tmp_path / "whole")]) == 0
    assert cli([*run, "--steps", "1", "--out", str(tmp_path / "split")]) == 0
    assert cli([*run, "--steps", "2", "--out", str(tmp_path / "split")]) == 0
    whole, split = seen[:2], seen[2:]
    assert torch.equal(whole[0], split[0]) and torch.equal(whole[1], split[1])


def test_a_reward_state_with_nothing_to_train_keeps_its_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(reward, "calibrate", lambda *args, **kwargs: (0.0, 1.0))
    run = ["train", "shapeworld-reward", "--batch-size", "1", "--steps", "1", "--out", str(tmp_path / "out")]
    state = common.TrainState(tmp_path / "out" / "train_state" / "shapeworld-reward")
    assert cli(run) == 0
    trained = state.info()["metrics"]
    assert set(trained) == {"bce", "ce", "group_acc"}
    assert cli(run) == 0  # already at --steps: the weights are exported again
    assert state.info()["metrics"] == trained
