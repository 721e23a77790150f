"""A review of `dtype=` on the released loaders, `--dtype` / `--text-dtype` and loading without a random fp32 build,
from a user's seat: a low-precision model cast back to fp32, two loads at once from two threads, and the one-CFG-half
paths of every strategy on low-precision models. Tiny checkpoints in the released file layouts, the factories'
architectures shrunk by monkeypatching. No bug was found; these guard what was checked and no other test covers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from tiny_families import BrightnessScorer, finished_images, randomised, shrink_released_var
from torch import nn

from arscale.generators import meta_build
from arscale.generators.next_scale import var as var_module
from arscale.generators.next_token import llamagen as llamagen_module
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig
from arscale.generators.registry import load_generator
from arscale.search.base import make_strategy

PATCH_NUMS = (1, 2, 3, 4, 5)  # five scales: TTS-VAR's default schedule needs them
C2I_FILES = ("c2i_B_256.pt", "vq_ds16_c2i.pt")


def _tiny_vq_config(image_size=8):
    return VQGANConfig(codebook_size=32, codebook_embed_dim=4, z_channels=32, ch=32, ch_mult=(1, 2), num_res_blocks=1,
                       image_size=8)


def _write_var(monkeypatch, folder, transform=lambda t: t):
    """VAR-d16's two files at a test size (flat upstream keys), `transform` applied to the transformer's tensors."""
    shrink_released_var(monkeypatch, patch_nums=PATCH_NUMS)
    model = randomised(var_module.VARModel(var_module.var_transformer_config(), 1000), 2)
    torch.save({k.split(".", 1)[1]: transform(v) for k, v in model.state_dict().items()}, folder / "var_d16.pth")
    torch.save(randomised(var_module.VQVAE(var_module.VQVAEConfig()), 3).state_dict(), folder / var_module.VAE_FILE)


def _write_llamagen(monkeypatch, folder, transform=lambda t: t):
    """LlamaGen c2i-B's two files at a test size ({"model": state_dict}), `transform` applied to the GPT's tensors."""
    real = llamagen_module.LlamaGenConfig
    monkeypatch.setattr(llamagen_module, "LlamaGenConfig", lambda *a, **k: real(
        a[0], dim=64, n_layer=1, n_head=2, vocab_size=32, block_size=16, num_classes=10))
    monkeypatch.setattr(llamagen_module, "VQGANConfig", _tiny_vq_config)
    gpt = randomised(llamagen_module.LlamaGenGPT(llamagen_module.LlamaGenConfig("c2i")), 0)
    torch.save({"model": {k: transform(v) for k, v in gpt.state_dict().items()}}, folder / C2I_FILES[0])
    torch.save({"model": randomised(VQGAN(_tiny_vq_config()), 1).state_dict()}, folder / C2I_FILES[1])


FAMILIES = {"var-d16": _write_var, "llamagen-c2i-b": _write_llamagen}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("model", list(FAMILIES))
def test_a_low_precision_model_cast_back_to_fp32_is_the_fp32_load_of_its_rounded_weights(model, dtype, monkeypatch,
                                                                                       tmp_path):
    """`.float()` on a bf16/fp16-loaded model gives fp32 weights, an fp32 RoPE table and the images of an fp32 load
    of the same file rounded to that dtype, bit for bit (no autocast or rounded buffer left behind)."""
    low_dir, ref_dir = tmp_path / "low", tmp_path / "rounded"
    low_dir.mkdir(), ref_dir.mkdir()
    FAMILIES[model](monkeypatch, low_dir)
    FAMILIES[model](monkeypatch, ref_dir, lambda t: t.to(dtype).float() if t.is_floating_point() else t)
    low = load_generator(model, weights=str(low_dir), dtype=dtype)
    assert {p.dtype for p in low.transformer.parameters()} == {dtype}
    (low if isinstance(low, nn.Module) else low.transformer).float()
    ref = load_generator(model, weights=str(ref_dir))
    tensors = [dict([*g.transformer.named_parameters(), *g.transformer.named_buffers()]) for g in (low, ref)]
    assert tensors[0].keys() == tensors[1].keys()
    for name, t in tensors[1].items():
        assert tensors[0][name].dtype == t.dtype and torch.equal(tensors[0][name], t), name
    assert torch.equal(finished_images(low, [1, 3], 2), finished_images(ref, [1, 3], 2))


def test_two_loads_at_once_from_two_threads_match_sequential_loads(monkeypatch, tmp_path):
    """A bf16 LlamaGen and an fp32 VAR loaded concurrently (three times each) hold the weights of one-at-a-time loads;
    modules the main thread builds meanwhile get real weights; the register_parameter patch is gone afterwards."""
    folders = {"llamagen-c2i-b": tmp_path / "lg", "var-d16": tmp_path / "var"}
    for model, folder in folders.items():
        folder.mkdir()
        FAMILIES[model](monkeypatch, folder)
    dtypes = {"llamagen-c2i-b": torch.bfloat16, "var-d16": torch.float32}
    expected = {m: load_generator(m, weights=str(f), dtype=dtypes[m]).transformer.state_dict()
                for m, f in folders.items()}

    def load(model):
        return [load_generator(model, weights=str(folders[model]), dtype=dtypes[model]) for _ in range(3)]

    built = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {m: pool.submit(load, m) for m in folders}
        built.append(nn.Linear(3, 3))  # at least one, however fast the loads are
        while not all(f.done() for f in futures.values()):
            built.append(nn.Linear(3, 3))
        loaded = {m: f.result() for m, f in futures.items()}  # re-raises a thread's error here
    assert not any(m.weight.is_meta for m in built)
    assert nn.Module.register_parameter is meta_build._register_parameter
    for model, gens in loaded.items():
        assert len(gens) == 3
        for gen in gens:
            state = gen.transformer.state_dict()
            assert state.keys() == expected[model].keys()
            for name, t in expected[model].items():
                assert state[name].dtype == t.dtype and torch.equal(state[name], t), (model, name)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("model, cfg, strategies", [
    ("var-d16", 0.0, ["raw", "best-of-n", "importance", "tts-var"]),  # VAR's ramp starts at 1: no guidance at 0
    ("llamagen-c2i-b", 1.0, ["raw", "best-of-n", "importance", "scaling-ar"]),
])
def test_every_strategy_runs_the_one_cfg_half_path_of_a_low_precision_model(model, cfg, strategies, dtype,
                                                                            monkeypatch, tmp_path):
    """At the cfg that needs no guidance, every strategy of the family runs on a bf16/fp16-loaded model (one CFG half,
    reduced-precision KV cache) and returns uint8 images with finite scores."""
    FAMILIES[model](monkeypatch, tmp_path)
    gen = load_generator(model, weights=str(tmp_path), dtype=dtype, cfg=cfg)
    with torch.no_grad():
        traj = gen.start([1, 3], 2, seed=0, unconditional=False)
        if hasattr(gen, "num_scales"):  # a next-scale model fills its cache with the first scale
            gen.step(traj)
    assert traj.halves == 1 and traj.cache.keys[0].dtype == getattr(torch, dtype)
    for name in strategies:
        strategy = make_strategy(name, {"record_previews": False} if name == "tts-var" else {})
        if name == "tts-var":
            strategy.feature_scorer = BrightnessScorer()
        result = strategy.run(gen, [1, 3], 4, seed=0, scorer=BrightnessScorer())
        for p in range(2):
            candidates = result.candidates[p]
            assert candidates, (name, p)
            assert all(c.image.dtype == np.uint8 and c.image.shape == (gen.image_size,) * 2 + (3,)
                       for c in candidates), name
            assert all(np.isfinite(c.score) for c in candidates if c.score is not None), name
