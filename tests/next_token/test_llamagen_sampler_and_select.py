"""Trajectories.select seeds for copies; LlamaGen's sampler (shared/methods/MODELS.md, LlamaGen section)."""
import torch
from tiny_families import randomised

from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig
from arscale.generators.sampling import cfg_mix, filter_logits_hf
from arscale.generators.trajectories import Trajectories

ARGS = {"model_type": "c2i", "dim": 64, "n_layer": 1, "n_head": 2, "n_kv_head": None, "vocab_size": 32,
        "block_size": 16, "num_classes": 10, "caption_dim": 2048, "multiple_of": 64, "norm_eps": 1e-5,
        "rope_base": 10000, "ffn_dim_multiplier": None, "class_dropout_prob": 0.1}


def _generator(**kw):
    gpt = randomised(LlamaGenGPT(LlamaGenConfig.from_upstream(ARGS)), 4)
    vq = randomised(VQGAN(VQGANConfig(codebook_size=32, codebook_embed_dim=4, z_channels=32, ch=32, ch_mult=(1, 2),
                                       num_res_blocks=1, image_size=8)), 5)
    return LlamaGenGenerator(gpt, vq, **{"cfg": 2.0, "top_k": 16, "top_p": 1.0, **kw})


def test_every_copy_of_a_selected_row_gets_its_own_seed_key():
    # seeding.py: "A row duplicated by `select` gets a fresh key derived from its parent's, so copies diverge";
    # Trajectories.select: "further copies become child nodes with fresh seed keys"
    traj = Trajectories.for_prompts(["a", "b"], 2, seed=0)
    original = traj.seed_key[1]
    traj.select([1, 1, 1, 2])
    assert traj.seed_key[0] == original
    assert len(set(traj.seed_key)) == 4


def test_top_k_applies_when_top_p_is_one():
    # MODELS.md: top-k keeps values >= the k-th largest; top-p is applied only if < 1 (c2i default: top_k 2000, top_p 1)
    gen = _generator(top_k=3, top_p=1.0)
    logits = torch.randn(2, 32, generator=torch.Generator().manual_seed(0))
    probs = gen.probs_upstream(logits)
    assert ((probs > 0).sum(-1) == 3).all()


def test_temperature_divides_the_logits():
    # MODELS.md: "logits / max(T, 1e-5)"
    gen = _generator(top_k=0, top_p=1.0, temperature=0.5)
    logits = torch.randn(2, 32, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(gen.probs_upstream(logits), (logits / 0.5).softmax(-1))
    gen.top_k = 5
    assert torch.allclose(gen.probs_upstream(logits), filter_logits_hf(logits / 0.5, 5, 1.0).softmax(-1))


def test_cfg_interval_counts_decode_steps_after_the_prefill():
    # MODELS.md: "After step cfg_interval (if > -1) the cond logits are used alone"; upstream's decode loop index
    # i = 0 produces the second token (the first comes from the prefill, always guided): cond-only once i > interval
    gen = _generator(cfg_interval=0)
    traj = gen.start([1, 4], 1, seed=0)
    seen = []
    for _ in range(3):
        cond, uncond = gen.next_logits(traj)
        guided = gen.guided_logits(traj)
        seen.append("cond" if torch.equal(guided, cond) else
                     "mixed" if torch.allclose(guided, cfg_mix(cond, uncond, 2.0)) else "?")
        gen.advance(traj, gen.sample(traj))
    assert seen == ["mixed", "mixed", "cond"]  # token 0 (prefill), token 1 (i = 0), token 2 (i = 1 > 0)
