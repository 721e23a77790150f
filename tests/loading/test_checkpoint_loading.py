"""The checkpoint loader on tiny random models: files, containers, renames, strictness, clear errors."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators import loading
from arscale.generators.next_scale.bsq import BSQAutoEncoder
from arscale.generators.next_scale.infinity import InfinityConfig, InfinityTransformer


class NotAllowed:
    """A class a checkpoint must not be able to make us import and run."""


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))


def test_reads_safetensors_and_tensor_only_torch_files(tmp_path):
    sd = {k: v.clone() for k, v in _tiny().state_dict().items()}
    save_file(sd, str(tmp_path / "w.safetensors"))
    torch.save(sd, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        got = loading.read_checkpoint(tmp_path / name)
        assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)


def test_a_namespace_next_to_the_weights_is_allowed_but_no_other_object(tmp_path):
    sd = _tiny().state_dict()
    torch.save({"model": sd, "args": argparse.Namespace(lr=1e-4), "steps": 7}, tmp_path / "train.pt")
    got = loading.read_checkpoint(tmp_path / "train.pt")
    assert got["args"].lr == 1e-4 and torch.equal(got["model"]["0.weight"], sd["0.weight"])
    # any other class would need code to be unpickled: refused with a clear error
    torch.save({"model": sd, "extra": NotAllowed()}, tmp_path / "code.pt")
    with pytest.raises(ArscaleError, match="tensor-only"):
        loading.read_checkpoint(tmp_path / "code.pt")


def test_resolve_local_paths_directories_and_hub_ids(tmp_path, monkeypatch):
    f = tmp_path / "model.pth"
    f.write_bytes(b"x")
    assert loading.resolve(f) == f
    assert loading.resolve(tmp_path, "model.pth") == f
    with pytest.raises(ArscaleError, match="has no other.pth"):
        loading.resolve(tmp_path, "other.pth")
    with pytest.raises(ArscaleError, match="name the checkpoint file"):
        loading.resolve(tmp_path)
    with pytest.raises(ArscaleError, match="not found"):
        loading.resolve(tmp_path / "missing" / "file.pth")
    with pytest.raises(ArscaleError, match="needs a file name"):
        loading.resolve("owner/repo")
    import huggingface_hub

    calls = []

    def fake_download(repo_id, filename):  # nothing may download in tests
        calls.append((repo_id, filename))
        return str(f)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert loading.resolve("owner/repo", "model.pth") == f
    assert calls == [("owner/repo", "model.pth")]


def test_a_companion_file_is_looked_for_beside_the_checkpoint_given(tmp_path, monkeypatch):
    release, vae = tmp_path / "var_d16.pth", tmp_path / "vae_ch160v4096z32.pth"
    release.write_bytes(b"x")
    with pytest.raises(ArscaleError, match="vae_ch160v4096z32.pth is not beside .*var_d16.pth"):
        loading.resolve(release, vae.name, beside=True)
    vae.write_bytes(b"y")
    assert loading.resolve(release, vae.name, beside=True) == vae  # weights=FILE: its VAE lies beside it
    assert loading.resolve(vae, vae.name, beside=True) == vae
    assert loading.resolve(release, vae.name) == release  # named itself: taken as given
    import huggingface_hub

    def offline(repo_id, filename):
        raise OSError("We couldn't connect to the Hub.\nSecond line of a long message")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(ArscaleError, match="no local path weights/var exists") as err:  # a mistyped folder
        loading.resolve("weights/var", "var_d16.pth")
    assert "\n" not in str(err.value) and "couldn't connect" in str(err.value)


def test_an_unreadable_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "random.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ArscaleError, match="cannot be read as a tensor-only checkpoint") as err:
        loading.read_checkpoint(bad)
    assert "\n" not in str(err.value) and "damaged, only partly copied, or not a PyTorch checkpoint?" in str(err.value)


def test_a_failure_that_says_only_a_number_is_named(tmp_path, monkeypatch):
    def missing_record(*args, **kwargs):
        raise KeyError(174812789)  # what a damaged zip record can raise

    monkeypatch.setattr(loading.torch, "load", missing_record)
    with pytest.raises(ArscaleError, match=r"checkpoint \(KeyError 174812789\): damaged"):
        loading.read_checkpoint(tmp_path / "ImageReward.pt")


@pytest.mark.parametrize("container", ["model", "module", "state_dict", None])
def test_unwrap_finds_the_weights_in_every_released_container(container):
    sd = _tiny().state_dict()
    obj = dict(sd) if container is None else {container: sd, "optimizer": {"state": {}}, "steps": 3}
    assert set(loading.unwrap(obj, loading.GPT_CONTAINERS)) == set(sd)
    with pytest.raises(ArscaleError, match="no tensors"):
        loading.unwrap({"steps": 3}, loading.GPT_CONTAINERS)


def test_block_chunks_are_flattened_with_the_chunk_count_read_from_the_keys():
    keys = {f"block_chunks.{c}.module.{j}.w": torch.tensor([c * 10 + j]) for c in range(3) for j in range(2)}
    keys["head.w"] = torch.tensor([99])
    flat = loading.flatten_block_chunks(keys)
    assert sorted(k for k in flat if k.startswith("blocks.")) == sorted(f"blocks.{i}.w" for i in range(6))
    assert [int(flat[f"blocks.{i}.w"]) for i in range(6)] == [0, 1, 10, 11, 20, 21]
    assert int(flat["head.w"]) == 99
    del keys["block_chunks.1.module.0.w"]
    keys["block_chunks.1.module.5.w"] = torch.tensor([0])
    with pytest.raises(ArscaleError, match="grid"):
        loading.flatten_block_chunks(keys)
    del keys["block_chunks.1.module.5.w"]  # one block gone, though every chunk and position index still occurs
    with pytest.raises(ArscaleError, match="grid"):
        loading.flatten_block_chunks(keys)


def test_load_strict_names_missing_leftover_and_misshapen_keys():
    model = _tiny()
    sd = dict(model.state_dict())
    with pytest.raises(ArscaleError, match=r"missing keys: 1\.bias"):
        loading.load_strict(model, {k: v for k, v in sd.items() if k != "1.bias"})
    with pytest.raises(ArscaleError, match=r"unexpected keys: 2\.weight"):
        loading.load_strict(model, {**sd, "2.weight": torch.zeros(1)})
    with pytest.raises(ArscaleError, match="wrong shape"):
        loading.load_strict(model, {**sd, "1.bias": torch.zeros(5)})
    with pytest.raises(ArscaleError, match="training checkpoint"):
        loading.load_strict(model, {"trainer.x": torch.zeros(1)})
    # documented buffers may be present; zero key biases must really be zero
    loading.load_strict(model, {**sd, "lvl_1L": torch.zeros(3), "a.zero_k_bias": torch.zeros(4)},
                        ignore=("lvl_1L", "*.zero_k_bias"))
    with pytest.raises(ArscaleError, match="all zero"):
        loading.load_strict(model, {**sd, "a.zero_k_bias": torch.ones(4)}, ignore=("*.zero_k_bias",))


def test_llamagen_state_drops_freqs_cis_and_wrapper_prefixes():
    sd = {"_orig_mod.norm.weight": torch.ones(2), "module.output.weight": torch.ones(2, 2),
          "freqs_cis": torch.zeros(4, 2)}
    got = loading.llamagen_state({"model": sd, "args": argparse.Namespace()})
    assert set(got) == {"norm.weight", "output.weight"}


def test_infinity_vae_accepts_wrapped_and_bare_key_forms():
    torch.manual_seed(1)
    vae = BSQAutoEncoder(codebook_dim=4, base_ch=32, ch_mult=(1, 1), num_res_blocks=1, patch_size=2)
    wrapped = {k: torch.randn_like(v) for k, v in vae.state_dict().items()}
    assert any(".conv.weight" in k for k in wrapped) and any(".norm.weight" in k for k in wrapped)
    bare = {loading.bare_vae_key(k): v for k, v in wrapped.items()}
    assert "encoder.down.0.downsample.conv.weight" in bare  # the regex strips only one wrapper segment
    loaded = []
    for form in (wrapped, bare):
        fresh = BSQAutoEncoder(codebook_dim=4, base_ch=32, ch_mult=(1, 1), num_res_blocks=1, patch_size=2)
        sd = loading.infinity_vae_state({"vae": form, "ema": {}}, fresh.state_dict().keys())
        loading.load_strict(fresh, {**sd, "quantizer.lfq.mask": torch.arange(4)}, ignore=loading.INFINITY_VAE_IGNORED)
        loaded.append(fresh.state_dict())
    for k in loaded[0]:
        assert torch.equal(loaded[0][k], loaded[1][k]) and torch.equal(loaded[0][k], wrapped[k])
    with pytest.raises(ArscaleError, match="decoder.mystery"):
        loading.load_strict(vae, loading.infinity_vae_state({"vae": {**bare, "decoder.mystery.weight": torch.ones(1)}},
                                                            vae.state_dict().keys()))


def test_infinity_transformer_round_trips_through_the_released_chunked_layout():
    torch.manual_seed(2)
    cfg = InfinityConfig(embed_dim=64, depth=4, num_heads=2, text_channels=128, text_maxlen=8, codebook_dim=4)
    model = InfinityTransformer(cfg)
    for p in model.parameters():
        p.data.normal_()
    per_chunk = 2
    released = {}
    for k, v in model.state_dict().items():
        if k.startswith("blocks."):
            i, rest = k.split(".", 2)[1:]
            k = f"block_chunks.{int(i) // per_chunk}.module.{int(i) % per_chunk}.{rest}"
        released[k] = v.to(torch.bfloat16)
    released["block_chunks.0.module.0.sa.zero_k_bias"] = torch.zeros(64)
    released["cfg_uncond"] = torch.randn(20, 128).to(torch.bfloat16)  # the official file is longer: truncated
    fresh = InfinityTransformer(cfg)
    loading.load_strict(fresh, loading.infinity_state(released, cfg.text_maxlen), ignore=loading.INFINITY_IGNORED)
    assert fresh.cfg_uncond.dtype == torch.float32 and fresh.cfg_uncond.shape == (8, 128)
    assert torch.equal(fresh.cfg_uncond, released["cfg_uncond"][:8].float())  # the first text_maxlen rows
    assert torch.equal(fresh.blocks[3].ffn.fc1.weight, model.blocks[3].ffn.fc1.weight.bfloat16().float())
    assert torch.equal(loading.fit_length(torch.ones(2, 3), 4)[2:], torch.zeros(2, 3))


@pytest.mark.parametrize("factory, module, built, release, companion", [
    ("load_var_d16", "arscale.generators.next_scale.var", "VARModel", "var_d16.pth", "vae_ch160v4096z32.pth"),
    ("load_infinity_2b", "arscale.generators.next_scale.infinity", "InfinityTransformer", "infinity_2b_reg.pth",
     "infinity_vae_d32reg.pth"),
    ("load_llamagen_c2i_b", "arscale.generators.next_token.llamagen", "LlamaGenGPT", "c2i_B_256.pt",
     "vq_ds16_c2i.pt"),
])
def test_a_missing_file_fails_before_the_model_is_built(factory, module, built, release, companion, tmp_path,
                                                         monkeypatch):
    import importlib

    mod = importlib.import_module(module)
    if factory == "load_infinity_2b":
        release, companion = mod.MODEL_FILE, mod.VAE_FILE

    def never(*args, **kwargs):
        raise AssertionError("the model was built before its files were found")

    monkeypatch.setattr(mod, built, never)
    (tmp_path / release).write_bytes(b"x")
    options = {"text_encoder": None} if "infinity" in factory else {}
    with pytest.raises(ArscaleError, match=f"has no {companion}"):
        getattr(mod, factory)(weights=str(tmp_path), **options)
    with pytest.raises(ArscaleError, match=f"{companion} is not beside"):  # the checkpoint file itself
        getattr(mod, factory)(weights=str(tmp_path / release), **options)


def test_a_checkpoint_of_another_family_is_named():
    gpt_like = {"tok_embeddings.weight": torch.zeros(2, 2), "layers.0.attention.wqkv.weight": torch.zeros(2, 2)}
    assert loading.checkpoint_family(gpt_like) == "a LlamaGen transformer"
    assert loading.checkpoint_family({"post_quant_conv.weight": torch.zeros(1)}) == "an image tokenizer (VQ / VAE)"
    assert loading.checkpoint_family({"step": torch.zeros(1)}) is None
    with pytest.raises(ArscaleError, match="it looks like a LlamaGen transformer: is it the right file"):
        loading.load_strict(_tiny(), gpt_like, what="VAR-d16 weights")


def test_an_intact_checkpoint_with_python_objects_is_not_called_damaged(tmp_path):
    path = tmp_path / "extra.pt"
    torch.save({"weight": torch.zeros(2), "step": np.float64(3.0)}, path)  # intact, but more than tensors
    with pytest.raises(ArscaleError, match="stores numpy.* objects beside its tensors") as err:
        loading.read_checkpoint(path)
    assert "damaged" not in str(err.value) and "\x1b[" not in str(err.value) and "\n" not in str(err.value)
