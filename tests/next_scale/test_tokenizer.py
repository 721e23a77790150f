"""Multi-scale residual quantizer and tokenizer round trips on tiny configs."""

from __future__ import annotations

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.generators.next_scale.quantizer import MultiScaleResidualQuantizer, phi_ticks
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizer, MultiScaleTokenizerConfig


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_config_module):
    torch.manual_seed(0)
    tok = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(tiny_tokenizer_config_module)).eval()
    tok.quantizer.embedding.weight.data.normal_()  # a spread codebook so indices vary
    return tok


def test_indices_rebuild_the_quantizer_fhat(tokenizer):
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        f = tokenizer.latent(images)
        f_hat, idx_train, _ = tokenizer.quantizer(f)
    idx = tokenizer.encode(images)
    assert [tuple(i.shape) for i in idx] == [(3, 1, 1), (3, 2, 2), (3, 3, 3), (3, 4, 4)]
    for a, b in zip(idx, idx_train):
        assert torch.equal(a, b)
    rebuilt = tokenizer.quantizer.indices_to_fhat(idx)
    assert torch.allclose(rebuilt, f_hat, atol=1e-5)
    assert len(torch.unique(torch.cat([i.flatten() for i in idx]))) > 3


def test_decode_shapes_and_range(tokenizer):
    idx = tokenizer.encode(torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        full = tokenizer.decode_indices(idx)
        assert full.shape == (2, 3, 16, 16)
        assert full.min() >= 0 and full.max() <= 1
        for k in range(1, 5):  # a partial prefix decodes at any requested size
            for size in (4, 16, 32):
                assert tokenizer.decode_indices(idx[:k], size).shape == (2, 3, size, size)
    with pytest.raises(ArscaleError, match="takes 16×16"):
        tokenizer.encode(torch.rand(1, 3, 8, 8))


def test_teacher_inputs_match_the_inference_update(tokenizer):
    q = tokenizer.quantizer
    idx = tokenizer.encode(torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2)))
    teacher = q.teacher_inputs(idx)
    assert teacher.shape == (2, 4 + 9 + 16, 8)
    f_hat, parts = torch.zeros(2, 8, 4, 4), []
    for si in range(3):
        f_hat = f_hat + q.embed_scale(si, idx[si])
        parts.append(q.next_input(si, f_hat))
    assert torch.allclose(torch.cat(parts, 1), teacher, atol=1e-6)


def test_phi_selection_follows_var_ticks():
    assert phi_ticks(4) == pytest.approx([1 / 12, 1 / 12 + 10 / 36, 1 / 12 + 20 / 36, 11 / 12])
    assert phi_ticks(3) == pytest.approx([1 / 6, 1 / 2, 5 / 6])
    q = MultiScaleResidualQuantizer(16, 4, (1, 2, 3, 4, 5, 6, 8, 10, 13, 16), num_phi=4)
    assert q.phi_for_scale[0] == 0 and q.phi_for_scale[-1] == 3
    assert sorted(set(q.phi_for_scale)) == [0, 1, 2, 3]
    assert q.phi_for_scale == sorted(q.phi_for_scale)
    no_phi = MultiScaleResidualQuantizer(16, 4, (1, 2), num_phi=0)
    h = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(no_phi.phi(0, h), h)


def _var_vae(**quant):
    from arscale.generators.next_scale.var import VQVAE, VQVAEConfig
    torch.manual_seed(0)
    return VQVAE(VQVAEConfig(vocab_size=16, code_dim=4, ch=32, ch_mult=(1, 1), num_res_blocks=1,
                             patch_nums=(1, 2, 3, 4), **quant)).eval()


def test_var_vqvae_phi_count_and_ratio_follow_its_constructor():
    # share_quant_resi 0 builds default_qresi_counts φ when it is set, else one per scale
    assert len(_var_vae(share_quant_resi=0).quantize.phis) == 4
    six = _var_vae(share_quant_resi=0, default_qresi_counts=6).quantize
    assert len(six.phis) == 6 and six.phi_for_scale[0] == 0 and six.phi_for_scale[-1] == 5
    assert six.phi_for_scale == sorted(six.phi_for_scale) and len(set(six.phi_for_scale)) == 4
    assert len(_var_vae(share_quant_resi=1).quantize.phis) == 1
    # a ratio of 0 makes every φ the identity, with no weights to load
    none = _var_vae(quant_resi=0.0)
    assert not any("phis" in k for k in none.state_dict())
    h = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(none.quantize.phi(1, h), h)
    # the sign of quant_resi does not matter: φ mixes with its absolute value
    pos, neg = _var_vae(quant_resi=0.4), _var_vae(quant_resi=-0.4)
    neg.load_state_dict(pos.state_dict())
    assert torch.equal(pos.quantize.phi(2, h), neg.quantize.phi(2, h))
    assert not torch.equal(pos.quantize.phi(2, h), h)


def test_bad_schedules():
    with pytest.raises(ArscaleError, match="strictly increasing"):
        MultiScaleResidualQuantizer(16, 4, (1, 3, 2))
    q = MultiScaleResidualQuantizer(16, 4, (1, 2, 4))
    with pytest.raises(ArscaleError, match="does not fit the quantizer"):
        q.encode(torch.randn(1, 4, 8, 8))


def test_training_pass_gives_gradients_to_encoder_codebook_and_phi(tiny_tokenizer_config):
    torch.manual_seed(3)
    tok = MultiScaleTokenizer(MultiScaleTokenizerConfig.from_dict(tiny_tokenizer_config))
    images = torch.rand(2, 3, 16, 16)
    recon, vq_loss, _ = tok(images)
    (torch.nn.functional.mse_loss(recon, images) + vq_loss).backward()
    assert tok.encoder.net[0].weight.grad.abs().sum() > 0
    assert tok.quantizer.embedding.weight.grad.abs().sum() > 0
    assert tok.quantizer.phis[0].weight.grad.abs().sum() > 0


def test_znorm_lookup_is_by_cosine_similarity():
    q = MultiScaleResidualQuantizer(2, 2, (1,), num_phi=0)
    q.embedding.weight.data = torch.tensor([[10.0, 0.0], [0.1, 0.1]])
    z = torch.tensor([3.0, 0.5]).view(1, 2, 1, 1)
    assert q.lookup(z).item() == 1  # L2-nearest
    q.using_znorm = True
    assert q.lookup(z).item() == 0  # most similar direction
