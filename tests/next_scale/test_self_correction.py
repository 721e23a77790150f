"""Self-correcting teacher forcing: corrupted prefixes, a scale sampled by the model itself, re-quantised
targets, and the trainer flags."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs, write_tiny_training_configs

from arscale.cli import main as cli
from arscale.errors import ArscaleError
from arscale.generators.next_scale.quantizer import MultiScaleResidualQuantizer, resize
from arscale.generators.sampling import cfg_mix
from arscale.train import common
from arscale.train.self_correction import (
    corrupted_teacher_batch,
    teacher_batch_from_prefix,
    with_sampled_scale,
)


def quantizer_and_latent(vocab: int = 32, seed: int = 0):
    torch.manual_seed(seed)
    q = MultiScaleResidualQuantizer(vocab, 4, (1, 2, 3, 4))
    torch.nn.init.normal_(q.embedding.weight)  # spread codes, so neighbours differ from the best code
    return q.eval(), torch.randn(6, 4, 4, 4)


def split(q, flat):
    return flat.split([p * p for p in q.patch_nums], 1)


def test_zero_strength_is_plain_teacher_forcing():
    q, f = quantizer_and_latent()
    batch = corrupted_teacher_batch(q, f, 0.0, 8)
    indices = q.encode(f)
    assert torch.equal(batch.inputs, q.teacher_inputs(indices))
    assert torch.equal(batch.targets, torch.cat([i.flatten(1) for i in indices], 1))
    assert all(torch.equal(u, i) for u, i in zip(batch.used, indices))


def test_targets_are_requantised_after_the_corrupted_prefix():
    q, f = quantizer_and_latent()
    batch = corrupted_teacher_batch(q, f, 1.0, 3, torch.Generator().manual_seed(1))
    targets = split(q, batch.targets)
    changed = [(u.flatten(1) != t).float().mean().item() for u, t in zip(batch.used, targets)]
    assert max(changed[:-1]) > 0.2, "strength 1 must corrupt a visible share of the prefix tokens"
    assert changed[-1] == 0, "the last scale is never an input, so it is never corrupted"
    # inputs are built from the codes the prefix really accumulated ...
    assert torch.allclose(batch.inputs, q.teacher_inputs(batch.used))
    # ... and every target is the best code for what that corrupted prefix left of f
    for si, pn in enumerate(q.patch_nums):
        rest = f - q.indices_to_fhat(batch.used[:si]) if si else f
        assert torch.equal(targets[si].view(-1, pn, pn), q.lookup(resize(rest, pn, q.down_mode)))
    # the plain targets differ once the prefix is wrong: that is what teaches the repair
    plain = torch.cat([i.flatten(1) for i in q.encode(f)], 1)
    assert not torch.equal(batch.targets, plain)


def test_replacements_are_near_misses_of_the_residual():
    q, f = quantizer_and_latent(vocab=64)
    k = 2
    batch = corrupted_teacher_batch(q, f, 1.0, k, torch.Generator().manual_seed(2))
    f_hat = torch.zeros_like(f)
    e = q.embedding.weight
    for si, pn in enumerate(q.patch_nums[:-1]):
        z = resize(f - f_hat, pn, q.down_mode).permute(0, 2, 3, 1).reshape(-1, q.dim)
        ranks = torch.cdist(z, e).argsort(1)
        used = batch.used[si].flatten()
        replaced = used != ranks[:, 0]
        assert replaced.any()
        assert (ranks[replaced, 1:k + 1] == used[replaced, None]).any(1).all()
        f_hat = f_hat + q.embed_scale(si, batch.used[si])


def test_corruption_is_seeded_and_bad_settings_fail_clearly():
    q, f = quantizer_and_latent()
    a = corrupted_teacher_batch(q, f, 0.5, 0, torch.Generator().manual_seed(3))
    b = corrupted_teacher_batch(q, f, 0.5, 0, torch.Generator().manual_seed(3))
    assert torch.equal(a.targets, b.targets) and torch.equal(a.inputs, b.inputs)
    c = corrupted_teacher_batch(q, f, 0.5, 0, torch.Generator().manual_seed(4))
    assert not torch.equal(a.targets, c.targets)  # the generator, not a fixed stream, picks the corruption
    with pytest.raises(ArscaleError, match="strength"):
        corrupted_teacher_batch(q, f, 1.5, 8)
    with pytest.raises(ArscaleError, match="neighbours"):
        corrupted_teacher_batch(q, f, 0.3, -1)


def test_var_trainer_with_self_correction_runs_and_records_it(tmp_path, capsys):
    tok_json, var_json = write_tiny_training_configs(tmp_path)
    out = tmp_path / "weights"
    base = ["--batch-size", "4", "--out", str(out), "--eval-every", "1000"]
    assert cli(["train", "shapeworld-tokenizer", "--steps", "1", "--config", str(tok_json),
                "--state-dir", str(tmp_path / "tok_state"), *base]) == 0
    var = ["train", "shapeworld-var", "--config", str(var_json), "--tokenizer", str(out),
           "--state-dir", str(tmp_path / "var_state"), *base]
    assert cli([*var, "--steps", "2", "--self-correction", "-0.1"]) != 0
    assert "self-correction strength must be in [0, 1], got -0.1" in capsys.readouterr().err
    assert not (tmp_path / "var_state").exists(), "a bad flag must fail before any state is written"
    assert cli([*var, "--steps", "2", "--sampled-prefix", "0.5", "--sampled-prefix-from", "2"]) != 0
    assert "earliest sampled scale must be in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "var_state").exists()
    assert cli([*var, "--steps", "2", "--self-correction", "0.3", "--sampled-prefix", "0.5",
                "--sampled-prefix-from", "1"]) == 0
    training = json.loads((out / "config.json").read_text())["training"]
    assert training["self_correction"] == 0.3 and training["self_correction_neighbours"] == 8
    assert training["sampled_prefix"] == 0.5 and training["sampled_prefix_from"] == 1
    assert common.TrainState(tmp_path / "var_state").info()["step"] == 2


def test_a_kept_prefix_is_used_as_given_and_everything_after_it_is_requantised():
    q, f = quantizer_and_latent()
    corrupted = corrupted_teacher_batch(q, f, 1.0, 3, torch.Generator().manual_seed(4))
    K = q.num_scales
    # keeping every scale reproduces the batch the prefix came from; keeping none is plain teacher forcing
    same = teacher_batch_from_prefix(q, f, corrupted.used, torch.full((6,), K - 1))
    assert torch.equal(same.inputs, corrupted.inputs) and torch.equal(same.targets, corrupted.targets)
    plain = teacher_batch_from_prefix(q, f, corrupted.used, torch.full((6,), -1))
    assert torch.equal(plain.targets, corrupted_teacher_batch(q, f, 0.0, 8).targets)
    keep = torch.tensor([0, 1, 2, 0, 1, 2])
    mixed = teacher_batch_from_prefix(q, f, corrupted.used, keep)
    targets = split(q, mixed.targets)
    for si, pn in enumerate(q.patch_nums):
        kept = keep >= si
        assert torch.equal(mixed.used[si][kept], corrupted.used[si][kept])
        assert torch.equal(mixed.used[si][~kept], targets[si].view(-1, pn, pn)[~kept])
        rest = f - q.indices_to_fhat(mixed.used[:si]) if si else f
        assert torch.equal(targets[si].view(-1, pn, pn), q.lookup(resize(rest, pn, q.down_mode)))
    assert torch.allclose(mixed.inputs, q.teacher_inputs(mixed.used))


def test_the_sampled_scale_holds_the_models_own_guided_tokens():
    tok_cfg, model_cfg = tiny_var_configs((1, 2, 3, 4), sampling={"cfg": 3.0, "top_k": 1})  # top-k 1: greedy
    gen = build_tiny_var(tok_cfg, model_cfg)
    q, K = gen.tokenizer.quantizer, gen.num_scales
    prompts = ["a photo of a red circle", "a photo of two blue squares", "a photo of a green cross", "a photo of a square"]
    f = gen.tokenizer.latent(torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(5)))
    teacher = corrupted_teacher_batch(q, f, 0.0, 8)
    assert with_sampled_scale(gen, f, teacher, prompts, 0.0, 1) is teacher
    out = with_sampled_scale(gen, f, teacher, prompts, 1.0, 1, torch.Generator().manual_seed(6))
    both = gen.conditioner(prompts + [None] * 4)
    cond, uncond = gen.transformer(both.pooled, teacher.inputs.repeat(2, 1, 1), both.context,
                                   both.context_mask).chunk(2)
    greedy = cfg_mix(cond, uncond, 3.0).argmax(-1)
    for row in range(4):
        # the first scale where the row leaves the clean prefix is the sampled one, in [1, K - 2]
        j = next(si for si in range(K) if not torch.equal(out.used[si][row], teacher.used[si][row]))
        assert 1 <= j <= K - 2
        begin, end = gen.begin_ends[j]
        assert torch.equal(out.used[j][row].flatten(), greedy[row, begin:end])
    assert torch.allclose(out.inputs, q.teacher_inputs(out.used))
    with pytest.raises(ArscaleError, match="earliest sampled scale"):
        with_sampled_scale(gen, f, teacher, prompts, 0.5, K - 1)
    with pytest.raises(ArscaleError, match="share"):
        with_sampled_scale(gen, f, teacher, prompts, 1.5, 1)
