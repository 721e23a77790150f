"""Audit (mutation testing of src/arscale/train): how strongly self-correction corrupts a prefix, which codes a
corrupted token takes, and that sampling a scale leaves the model in the mode it was in."""

import torch
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.generators.next_scale.quantizer import MultiScaleResidualQuantizer, resize
from arscale.train.self_correction import corrupted_teacher_batch, with_sampled_scale


def _quantizer_and_latent(vocab=32, rows=6, seed=0):
    torch.manual_seed(seed)
    q = MultiScaleResidualQuantizer(vocab, 4, (1, 2, 3, 4))
    torch.nn.init.normal_(q.embedding.weight)
    return q.eval(), torch.randn(rows, 4, 4, 4)


def _replaced(q, batch):
    """Per row, the share of prefix tokens (all scales but the last) that are not the best code."""
    targets = batch.targets.split([p * p for p in q.patch_nums], 1)
    changed = [(u.flatten(1) != t) for u, t in zip(batch.used[:-1], targets[:-1])]
    return torch.cat(changed, 1).float().mean(1)


def test_each_row_is_corrupted_with_a_probability_drawn_up_to_the_strength():
    q, f = _quantizer_and_latent(rows=400)
    share = _replaced(q, corrupted_teacher_batch(q, f, 0.6, 4, torch.Generator().manual_seed(0)))
    assert 0.22 < share.mean() < 0.38  # p ~ U[0, 0.6] per row and scale: 0.3 on average, not 0.6
    assert (share < 0.15).any()  # some rows are barely touched


def test_with_one_neighbour_a_corrupted_token_is_always_the_second_best_code():
    q, f = _quantizer_and_latent(vocab=64)
    batch = corrupted_teacher_batch(q, f, 1.0, 1, torch.Generator().manual_seed(2))
    f_hat = torch.zeros_like(f)
    replaced = 0
    for si, pn in enumerate(q.patch_nums[:-1]):
        z = resize(f - f_hat, pn, q.down_mode).permute(0, 2, 3, 1).reshape(-1, q.dim)
        ranks = torch.cdist(z, q.embedding.weight).argsort(1)
        used = batch.used[si].flatten()
        assert ((used == ranks[:, 0]) | (used == ranks[:, 1])).all()
        replaced += int((used == ranks[:, 1]).sum())
        f_hat = f_hat + q.embed_scale(si, batch.used[si])
    assert replaced > 0


def test_sampling_a_scale_leaves_the_model_training():
    tok_cfg, model_cfg = tiny_var_configs((1, 2, 3, 4))
    gen = build_tiny_var(tok_cfg, model_cfg)
    q = gen.tokenizer.quantizer
    f = gen.tokenizer.latent(torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(5)))
    teacher = corrupted_teacher_batch(q, f, 0.0, 8)
    gen.transformer.train()
    gen.conditioner.train()
    with_sampled_scale(gen, f, teacher, ["a photo of a red circle", "a photo of a square"], 1.0, 1,
                       torch.Generator().manual_seed(6))
    assert gen.transformer.training and gen.conditioner.training  # dropout stays on for the training step
