"""The released-model loaders build their modules with meta parameters that the files fill (`meta_build`): what
they load must be bit for bit what an eager build plus a copy (the loaders' former path) holds — every parameter,
every buffer the file does not carry (RoPE tables, masks, level indices, zero key biases), every plain attribute —
and sample the same images, in fp32 and in bf16. Tiny checkpoints in the released file layouts, the factories'
architectures shrunk by monkeypatching."""

from __future__ import annotations

import threading

import pytest
import torch
from tiny_families import fake_t5, finished_images, randomised, shrink_released_var
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators import loading
from arscale.generators.meta_build import meta_tensors, parameters_on_meta
from arscale.generators.next_scale import infinity as infinity_module
from arscale.generators.next_scale import var as var_module
from arscale.generators.next_scale.bsq import BSQAutoEncoder
from arscale.generators.next_scale.infinity_schedule import scale_schedule
from arscale.generators.next_token import llamagen as llamagen_module
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig

TINY_INFINITY = infinity_module.InfinityConfig(embed_dim=64, depth=2, num_heads=2, text_channels=128, text_maxlen=8,
                                               codebook_dim=4)


class TinyBSQ(BSQAutoEncoder):
    """Infinity's VAE at a test size, whatever the loader asks for."""

    def __init__(self, **_):
        super().__init__(codebook_dim=4, base_ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_size=2)


def _tiny_vq_config(image_size=8):
    return VQGANConfig(codebook_size=32, codebook_embed_dim=4, z_channels=32, ch=32, ch_mult=(1, 2), num_res_blocks=1,
                       image_size=8)


# -- each family: its files written, then (the loader's generator, the eager build with the same files) -----------
def _var(monkeypatch, tmp_path, dtype):
    shrink_released_var(monkeypatch, depth=2)
    model = randomised(var_module.VARModel(var_module.var_transformer_config(), 1000), 2)
    released = {k.split(".", 1)[1]: v for k, v in model.state_dict().items()}  # the flat upstream names
    released["blocks.0.attn.zero_k_bias"] = torch.zeros(32)  # stored upstream, checked and dropped
    torch.save(released, tmp_path / "var_d16.pth")
    vae_sd = randomised(var_module.VQVAE(var_module.VQVAEConfig()), 3).state_dict()
    torch.save({k.replace("quantize.phis.", "quantize.quant_resi.qresi_ls."): v for k, v in vae_sd.items()},
               tmp_path / var_module.VAE_FILE)
    new = var_module.load_var(16, weights=tmp_path, dtype=dtype, top_k=8)

    old = var_module.VARModel(var_module.var_transformer_config(), 1000)
    old.load_released(loading.read_checkpoint(tmp_path / "var_d16.pth"))
    vae = var_module.VQVAE(var_module.VQVAEConfig())
    loading.load_strict(vae, var_module.vqvae_state(loading.read_checkpoint(tmp_path / var_module.VAE_FILE)),
                        ignore=loading.VAR_VAE_IGNORED)
    return new, var_module.VARGenerator(old.to(dtype), vae, new.sampling, name=new.name).eval()


def _infinity(monkeypatch, tmp_path, dtype):
    monkeypatch.setattr(infinity_module, "INFINITY_2B", TINY_INFINITY)
    monkeypatch.setattr(infinity_module, "BSQAutoEncoder", TinyBSQ)
    model = randomised(infinity_module.InfinityTransformer(TINY_INFINITY), 0)
    released = {}
    for k, v in model.state_dict().items():  # the released chunked layout, in bf16 as released
        if k.startswith("blocks."):
            i, rest = k.split(".", 2)[1:]
            k = f"block_chunks.{i}.module.0.{rest}"
        released[k] = v.to(torch.bfloat16)
    torch.save({"model": released}, tmp_path / infinity_module.MODEL_FILE)
    torch.save({"vae": randomised(TinyBSQ(), 1).state_dict()}, tmp_path / infinity_module.VAE_FILE)
    schedule = scale_schedule(1.0, "0.06M")[:4]
    new = infinity_module.load_infinity_2b(str(tmp_path), text_encoder=fake_t5(128), dtype=dtype, schedule=schedule)

    old = infinity_module.InfinityTransformer(TINY_INFINITY)
    loading.load_strict(old, loading.infinity_state(loading.read_checkpoint(tmp_path / infinity_module.MODEL_FILE),
                                                    TINY_INFINITY.text_maxlen), ignore=loading.INFINITY_IGNORED)
    vae = TinyBSQ()
    loading.load_strict(vae, loading.infinity_vae_state(loading.read_checkpoint(tmp_path / infinity_module.VAE_FILE),
                                                        vae.state_dict().keys()), ignore=loading.INFINITY_VAE_IGNORED)
    return new, infinity_module.InfinityGenerator(old.to("cpu", dtype), vae, new.sampling,
                                                  text_encoder=new.text_encoder, name=new.name)


def _llamagen(kind):
    def build(monkeypatch, tmp_path, dtype):
        real = llamagen_module.LlamaGenConfig
        monkeypatch.setattr(llamagen_module, "LlamaGenConfig", lambda *a, **k: real(
            a[0], dim=64, n_layer=2, n_head=2, vocab_size=32, block_size=16, num_classes=10, caption_dim=16))
        monkeypatch.setattr(llamagen_module, "VQGANConfig", _tiny_vq_config)
        gpt = randomised(llamagen_module.LlamaGenGPT(llamagen_module.LlamaGenConfig(kind)), 0)
        sd = gpt.state_dict()
        if kind == "t2i":  # a buffer the file carries: not zeros, so a missed assignment shows
            sd["cls_embedding.uncond_embedding"] = torch.randn(120, 16, generator=torch.Generator().manual_seed(6))
        model_file, vq_file = (("t2i_XL_stage2_512.pt", "vq_ds16_t2i.pt") if kind == "t2i" else
                               ("c2i_B_256.pt", "vq_ds16_c2i.pt"))
        torch.save({"model": {**sd, "freqs_cis": torch.ones(3)}}, tmp_path / model_file)
        torch.save({"model": randomised(VQGAN(_tiny_vq_config()), 1).state_dict()}, tmp_path / vq_file)
        options = {"text_encoder": fake_t5(16)} if kind == "t2i" else {}
        loader = llamagen_module.load_llamagen_t2i_xl if kind == "t2i" else llamagen_module.load_llamagen_c2i_b
        new = loader(weights=tmp_path, dtype=dtype, top_k=8, **options)

        old = llamagen_module.LlamaGenGPT(llamagen_module.LlamaGenConfig(kind))
        loading.load_strict(old, llamagen_module.gpt_state(loading.read_checkpoint(tmp_path / model_file)),
                            ignore=loading.LLAMAGEN_IGNORED)
        vq = VQGAN(_tiny_vq_config())
        loading.load_strict(vq, loading.upcast(loading.unwrap(loading.read_checkpoint(tmp_path / vq_file),
                                                              loading.GPT_CONTAINERS)),
                            ignore=loading.LLAMAGEN_VQ_IGNORED)
        return new, llamagen_module.LlamaGenGenerator(old.to("cpu", dtype), vq, name=new.name, cfg=new.cfg, top_k=8,
                                                      text_encoder=new.text_encoder)
    return build


FAMILIES = {"var": _var, "infinity": _infinity, "llamagen-c2i": _llamagen("c2i"), "llamagen-t2i": _llamagen("t2i")}
PROMPTS = {"var": [3, 7], "infinity": ["a red cube", "two dogs"], "llamagen-c2i": [3, 7],
           "llamagen-t2i": ["a red cube", "two dogs"]}


# -- comparing two loaded modules -------------------------------------------------------------------------
def _bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bit pattern (so -0.0 differs from 0.0 and NaNs compare)."""
    if not t.is_floating_point():
        return t
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def _same(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert not a.is_meta and a.device == b.device and a.dtype == b.dtype, where
        assert a.shape == b.shape and a.stride() == b.stride(), where
        assert type(a) is type(b) and a.requires_grad == b.requires_grad, where
        assert torch.equal(_bits(a), _bits(b)), where
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    else:
        assert a == b, where


def assert_same_modules(new: nn.Module, old: nn.Module) -> None:
    """Parameters, buffers (non-persistent ones too) and every plain attribute of every submodule are equal."""
    assert meta_tensors(new) == []
    tensors = [dict([*m.named_parameters(), *m.named_buffers()]) for m in (new, old)]
    assert tensors[0].keys() == tensors[1].keys()
    for name in tensors[0]:
        _same(tensors[0][name], tensors[1][name], name)
    modules = [dict(m.named_modules()) for m in (new, old)]
    assert modules[0].keys() == modules[1].keys()
    for name, module in modules[0].items():
        attributes = [{k: v for k, v in vars(m).items() if k not in ("_parameters", "_buffers", "_modules")}
                      for m in (module, modules[1][name])]
        assert type(module) is type(modules[1][name]), name
        _same(attributes[0], attributes[1], name or "<root>")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_loaded_model_is_bit_identical_to_an_eager_build_and_copy(family, dtype, monkeypatch, tmp_path):
    """Every tensor and attribute of the loader's generator (transformer, conditioner, tokenizer) equals the eager
    path's, each load_strict the loader made filled a skeleton, and both sample the same images."""
    real_load_strict, skeletons = loading.load_strict, []

    def watching(module, sd, **options):
        skeletons.append(bool(meta_tensors(module)))
        return real_load_strict(module, sd, **options)

    monkeypatch.setattr(loading, "load_strict", watching)
    new, old = FAMILIES[family](monkeypatch, tmp_path, dtype)
    assert skeletons[:2] == [True, True]  # the loader's two modules were built without weights, then filled
    monkeypatch.setattr(loading, "load_strict", real_load_strict)
    if isinstance(new, nn.Module):  # the next-scale generators, with their own attributes (Infinity's RoPE table)
        assert_same_modules(new, old)
    else:
        assert_same_modules(new.transformer, old.transformer)
        assert_same_modules(new.tokenizer, old.tokenizer)
    assert {p.dtype for p in new.transformer.parameters()} == {dtype}
    assert torch.equal(_bits(finished_images(new, PROMPTS[family])), _bits(finished_images(old, PROMPTS[family])))


def test_a_shifted_llamagen_rope_table_and_the_zero_key_biases_are_computed_as_before():
    """The buffers a constructor computes (a c2i RoPE table shifted by cls_token_num 3, VAR's masks, level indices
    and zero key biases) are built on the CPU inside `parameters_on_meta`, exactly as eagerly."""
    config = llamagen_module.LlamaGenConfig("c2i", dim=64, n_layer=1, n_head=2, vocab_size=32, block_size=16,
                                            num_classes=10, c2i_rope_prefix=3)
    var_config = var_module.var_transformer_config(depth=2, embed_dim=32, num_heads=2, patch_nums=(1, 2, 3),
                                                   vocab_size=16, code_dim=4)
    for build in (lambda: llamagen_module.LlamaGenGPT(config), lambda: var_module.VARModel(var_config, 10)):
        sd = {k: v.clone() for k, v in randomised(build(), 7).state_dict().items()}
        with parameters_on_meta():
            skeleton = build()
        assert all(p.is_meta for p in skeleton.parameters()) and not any(b.is_meta for b in skeleton.buffers())
        eager = build()
        for module in (skeleton, eager):
            loading.load_strict(module, sd)
        assert_same_modules(skeleton, eager)


def test_load_strict_refuses_a_skeleton_file_in_the_same_words():
    """Missing, unexpected and misshapen keys, another model's file and a nonzero key bias: the same one-line
    messages for a meta skeleton as for an eager module, and the skeleton is left unfilled."""
    def build():
        return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))

    sd = {k: v.clone() for k, v in randomised(build(), 1).state_dict().items()}
    bad = [({k: v for k, v in sd.items() if k != "1.bias"}, {}, "missing keys: 1.bias"),
           ({**sd, "2.weight": torch.zeros(1)}, {}, "unexpected keys: 2.weight"),
           ({**sd, "1.bias": torch.zeros(5)}, {}, "wrong shape"),
           ({"tok_embeddings.weight": torch.zeros(2, 2)}, {}, "looks like a LlamaGen transformer"),
           ({**sd, "a.zero_k_bias": torch.ones(4)}, {"ignore": ("*.zero_k_bias",)}, "all zero")]
    for given, options, words in bad:
        with parameters_on_meta():
            skeleton = build()
        messages = []
        for module in (skeleton, build()):
            with pytest.raises(ArscaleError) as err:
                loading.load_strict(module, given, what="VAR-d16 weights", **options)
            messages.append(str(err.value))
        assert messages[0] == messages[1] and words in messages[0] and "\n" not in messages[0]
        assert len(meta_tensors(skeleton)) == 4
    with parameters_on_meta():
        skeleton = build()
    eager = build()
    for module in (skeleton, eager):  # an all-zero key bias is checked and dropped
        loading.load_strict(module, {**sd, "a.zero_k_bias": torch.zeros(4)}, ignore=("*.zero_k_bias",))
    assert_same_modules(skeleton, eager)


def test_a_buffer_left_on_the_meta_device_is_an_error():
    """A module whose computed buffer is on the meta device (not something `parameters_on_meta` does, but what a
    constructor building from a meta tensor would leave) fails at load in one line naming the buffer."""
    with torch.device("meta"):
        module = nn.Linear(2, 2)
        module.register_buffer("table", torch.ones(3), persistent=False)
    with pytest.raises(ArscaleError, match=r"^m: table got no values \(left on the meta device\)$"):
        loading.load_strict(module, {"weight": torch.ones(2, 2), "bias": torch.zeros(2)}, what="m")


def test_a_bf16_skeleton_takes_the_file_cast_once_and_owns_aligned_contiguous_tensors():
    """The dtype given to `parameters_on_meta` is what the floating parameters hold (a cast of the file's values,
    as `.to(bf16)` after an fp32 copy gives); a transposed or shared tensor in the file is copied into a layout of
    its own, an ordinary one is taken as is (no second copy)."""
    weight = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    sd = {"0.weight": weight.t().contiguous().t(), "0.bias": torch.randn(4), "1.weight": torch.ones(4),
          "1.bias": torch.zeros(4)}
    with parameters_on_meta(torch.bfloat16):
        module = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    loading.load_strict(module, sd)
    assert {p.dtype for p in module.parameters()} == {torch.bfloat16}
    assert torch.equal(_bits(module[0].weight), _bits(weight.bfloat16()))
    with parameters_on_meta():
        module = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    shared = {**sd, "1.bias": sd["0.bias"]}
    loading.load_strict(module, shared)
    assert module[0].weight.is_contiguous() and module[0].weight.data_ptr() % 64 == 0
    assert module[0].bias.data_ptr() == sd["0.bias"].data_ptr()  # the file's own tensor: no copy
    assert module[1].bias.data_ptr() != module[0].bias.data_ptr()  # two parameters never share memory
    assert module[0].weight.requires_grad and isinstance(module[0].weight, nn.Parameter)


def test_only_the_block_and_its_thread_build_without_weights():
    """Outside the block, and in another thread while it is open, modules get their usual initialised weights."""
    built = {}
    with parameters_on_meta():
        inside = nn.Linear(2, 2)
        worker = threading.Thread(target=lambda: built.setdefault("other", nn.Linear(2, 2)))
        worker.start()
        worker.join()
        with parameters_on_meta(torch.float16):
            nested = nn.Linear(2, 2)
        after_nested = nn.Linear(2, 2)
    outside = nn.Linear(2, 2)
    assert inside.weight.is_meta and nested.weight.is_meta and after_nested.weight.is_meta
    assert nested.weight.dtype == torch.float16 and after_nested.weight.dtype == torch.float32
    assert not built["other"].weight.is_meta and not outside.weight.is_meta
    assert bool(outside.weight.abs().sum() > 0)


def test_a_bf16_infinity_file_loaded_in_bf16_is_taken_as_it_is(monkeypatch, tmp_path):
    """Infinity's released weights are bf16: `dtype="bfloat16"` assigns the file's own tensors (no fp32 copy of
    2 B parameters in between), and an fp32 load still holds the same values."""
    read, files = loading.read_checkpoint, []
    monkeypatch.setattr(loading, "read_checkpoint", lambda path: files.append(read(path)) or files[-1])
    new, _ = _infinity(monkeypatch, tmp_path, torch.bfloat16)
    file_tensors = {t.data_ptr() for t in files[0]["model"].values()}
    weights = list(new.transformer.parameters())
    assert all(p.dtype == torch.bfloat16 for p in weights)
    assert sum(p.data_ptr() in file_tensors for p in weights) == len(weights)  # the file's storage, not a copy


class _TiedDecoder(nn.Module):
    """An embedding and an output layer that share one weight (a tie made in the constructor)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.decoder = nn.Linear(3, 5)
        self.decoder.weight = self.embed.weight


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_a_tied_weight_stays_one_parameter_holding_what_an_eager_load_leaves(dtype):
    """The skeleton keeps the tie (one meta parameter under both names), and the filled module keeps it too, holding
    the tensor loaded last under it, as copying both keys into the one shared tensor does (here they differ)."""
    g = torch.Generator().manual_seed(3)
    sd = {k: torch.randn(v.shape, generator=g) for k, v in _TiedDecoder().state_dict().items()}
    with parameters_on_meta(dtype):
        skeleton = _TiedDecoder()
    assert skeleton.decoder.weight is skeleton.embed.weight and skeleton.embed.weight.dtype == dtype
    eager = _TiedDecoder()
    for module in (skeleton, eager):
        loading.load_strict(module, sd)
    assert_same_modules(skeleton, eager.to(dtype))
    assert skeleton.decoder.weight is skeleton.embed.weight and isinstance(skeleton.embed.weight, nn.Parameter)
    assert torch.equal(_bits(skeleton.embed.weight), _bits(sd["decoder.weight"].to(dtype)))


class _Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 16, bias=False)
        self.b = nn.Linear(16, 16, bias=False)


def test_overlapping_views_in_a_file_become_independent_parameters():
    """A file whose two keys overlap in one storage loads into independent parameters, as an eager build does."""
    g = torch.Generator().manual_seed(0)
    t = torch.randn(32, 16, generator=g) + 3  # no zeros
    sd = {"a.weight": t[0:16], "b.weight": t[8:24]}  # contiguous, aligned, different starts, rows 8..15 shared
    with parameters_on_meta():
        model = _Pair()
    loading.load_strict(model, sd)
    assert torch.equal(model.b.weight, t[8:24])
    with torch.no_grad():
        model.a.weight.zero_()
    assert not (model.b.weight == 0).any()
