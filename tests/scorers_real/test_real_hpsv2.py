"""HPSv2 on transformers' CLIP: open_clip keys convert strictly, and the converted model computes what
open_clip's CLIP computes (a plain-torch reference written from the open_clip key names)."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch.nn import functional as F

transformers = pytest.importorskip("transformers")

from real_tiny import PROMPTS, images, word_tokenizer

from arscale.errors import ArscaleError
from arscale.scorers import hpsv2
from arscale.scorers.base import SCORERS

CTX, W_TEXT, W_VIS, EMBED, PATCH, SIZE, HEADS, LAYERS = 16, 24, 32, 12, 8, 32, 4, 2


def open_clip_state_dict(vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under open_clip CLIP's key names (what HPS_v2*.pt holds under 'state_dict')."""
    g = torch.Generator().manual_seed(seed)

    def t(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    def block(prefix, width, sd):
        for ln in ("ln_1", "ln_2"):
            sd[f"{prefix}.{ln}.weight"] = 1 + t(width, scale=0.1)
            sd[f"{prefix}.{ln}.bias"] = t(width, scale=0.1)
        sd[f"{prefix}.attn.in_proj_weight"] = t(3 * width, width, scale=1 / math.sqrt(width))
        sd[f"{prefix}.attn.in_proj_bias"] = t(3 * width, scale=0.05)
        sd[f"{prefix}.attn.out_proj.weight"] = t(width, width, scale=1 / math.sqrt(width))
        sd[f"{prefix}.attn.out_proj.bias"] = t(width, scale=0.05)
        sd[f"{prefix}.mlp.c_fc.weight"] = t(4 * width, width, scale=1 / math.sqrt(width))
        sd[f"{prefix}.mlp.c_fc.bias"] = t(4 * width, scale=0.05)
        sd[f"{prefix}.mlp.c_proj.weight"] = t(width, 4 * width, scale=1 / math.sqrt(4 * width))
        sd[f"{prefix}.mlp.c_proj.bias"] = t(width, scale=0.05)

    sd: dict[str, torch.Tensor] = {}
    grid = SIZE // PATCH
    sd["visual.class_embedding"] = t(W_VIS)
    sd["visual.positional_embedding"] = t(grid * grid + 1, W_VIS)
    sd["visual.proj"] = t(W_VIS, EMBED)
    sd["visual.conv1.weight"] = t(W_VIS, 3, PATCH, PATCH, scale=0.05)
    for name in ("visual.ln_pre", "visual.ln_post", "ln_final"):
        width = W_TEXT if name == "ln_final" else W_VIS
        sd[f"{name}.weight"] = 1 + t(width, scale=0.1)
        sd[f"{name}.bias"] = t(width, scale=0.1)
    for i in range(LAYERS):
        block(f"visual.transformer.resblocks.{i}", W_VIS, sd)
        block(f"transformer.resblocks.{i}", W_TEXT, sd)
    sd["token_embedding.weight"] = t(vocab, W_TEXT)
    sd["positional_embedding"] = t(CTX, W_TEXT)
    sd["text_projection"] = t(W_TEXT, EMBED)
    sd["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    return sd


def open_clip_reference(sd, pixels, ids):
    """open_clip CLIP.forward (GELU, LayerNorm eps 1e-5, nn.MultiheadAttention blocks) -> cosine per pair."""
    def ln(x, p):
        return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], 1e-5)

    def tower(x, prefix, mask):
        x = x.transpose(0, 1)  # LND, as open_clip runs nn.MultiheadAttention
        for i in range(LAYERS):
            p = f"{prefix}.{i}"
            y = ln(x, f"{p}.ln_1")
            a, _ = F.multi_head_attention_forward(
                y, y, y, x.shape[-1], HEADS, sd[f"{p}.attn.in_proj_weight"], sd[f"{p}.attn.in_proj_bias"],
                None, None, False, 0.0, sd[f"{p}.attn.out_proj.weight"], sd[f"{p}.attn.out_proj.bias"],
                training=False, need_weights=False, attn_mask=mask)
            x = x + a
            h = F.gelu(ln(x, f"{p}.ln_2") @ sd[f"{p}.mlp.c_fc.weight"].T + sd[f"{p}.mlp.c_fc.bias"])
            x = x + h @ sd[f"{p}.mlp.c_proj.weight"].T + sd[f"{p}.mlp.c_proj.bias"]
        return x.transpose(0, 1)

    x = F.conv2d(pixels, sd["visual.conv1.weight"], stride=PATCH).flatten(2).transpose(1, 2)
    x = torch.cat([sd["visual.class_embedding"].expand(len(x), 1, -1), x], 1) + sd["visual.positional_embedding"]
    x = tower(ln(x, "visual.ln_pre"), "visual.transformer.resblocks", None)
    image = ln(x[:, 0], "visual.ln_post") @ sd["visual.proj"]
    causal = torch.full((ids.shape[1], ids.shape[1]), float("-inf")).triu_(1)
    t = tower(sd["token_embedding.weight"][ids] + sd["positional_embedding"][: ids.shape[1]], "transformer.resblocks",
              causal)
    text = ln(t, "ln_final")[torch.arange(len(ids)), ids.argmax(-1)] @ sd["text_projection"]
    return (F.normalize(image, dim=-1) * F.normalize(text, dim=-1)).sum(-1)


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer(eos_last=True)


def tiny_config(tok):
    return hpsv2.vit_h_14_config(
        text={"vocab_size": len(tok), "hidden_size": W_TEXT, "intermediate_size": 4 * W_TEXT, "num_hidden_layers": LAYERS,
              "num_attention_heads": HEADS, "max_position_embeddings": CTX, "bos_token_id": tok.bos_token_id,
              "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id},
        vision={"image_size": SIZE, "patch_size": PATCH, "hidden_size": W_VIS, "intermediate_size": 4 * W_VIS,
                "num_hidden_layers": LAYERS, "num_attention_heads": HEADS},
        projection_dim=EMBED)


@pytest.fixture(scope="module")
def released(tokenizer):
    return open_clip_state_dict(len(tokenizer))


@pytest.fixture(scope="module")
def scorer(released, tokenizer):
    model = hpsv2.load_open_clip_weights(transformers.CLIPModel(tiny_config(tokenizer)), dict(released))
    return hpsv2.Hpsv2Scorer(model, tokenizer)


def test_conversion_is_complete_and_splits_qkv(released, tokenizer):
    model = transformers.CLIPModel(tiny_config(tokenizer))
    converted = hpsv2.convert_open_clip_state_dict(released)
    assert set(converted) == set(model.state_dict())
    q, k, v = released["transformer.resblocks.1.attn.in_proj_weight"].chunk(3)
    for name, part in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
        assert torch.equal(converted[f"text_model.encoder.layers.1.self_attn.{name}.weight"], part)
    assert torch.equal(converted["visual_projection.weight"], released["visual.proj"].T)


def test_score_matches_open_clip_forward(scorer, released, tokenizer):
    imgs = images(3, SIZE, seed=11)
    ids = tokenizer(PROMPTS, padding="max_length", max_length=CTX, truncation=True, return_tensors="pt")["input_ids"]
    want = open_clip_reference(released, scorer.transform(imgs), ids)
    got = scorer.reward(imgs, PROMPTS)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert (got.abs() <= 1).all() and got.std() > 1e-3  # a cosine, not a logit
    single = torch.cat([scorer.reward(imgs[i: i + 1], [PROMPTS[i]]) for i in range(3)])
    torch.testing.assert_close(single, got, atol=1e-5, rtol=1e-5)


def test_preprocessing_pads_the_shorter_side_with_black(tmp_path):
    transform = hpsv2.hps_transform(8)
    img = torch.ones(1, 3, 4, 8)  # white, 4 high and 8 wide: no resize, 2 rows of padding above and below
    out = transform(img)
    mean = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(3, 1)
    std = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(3, 1)
    torch.testing.assert_close(out[0, :, 0], (0 - mean) / std * torch.ones(3, 8))
    torch.testing.assert_close(out[0, :, 3], (1 - mean) / std * torch.ones(3, 8))
    assert torch.equal(out[0, :, :2], out[0, :, 6:])  # symmetric padding
    # larger images are resized on the longer side: 12x24 -> 4x8, then padded
    assert transform(torch.rand(2, 3, 12, 24)).shape == (2, 3, 8, 8)
    with pytest.raises(ArscaleError, match="backend='torch'"):
        hpsv2.hps_transform(8, backend="pil")
    with pytest.raises(ArscaleError, match="backend='torch'"):  # before it looks for weights that are not there
        hpsv2.load_hpsv2(tmp_path / "missing", backend="pil")


def test_leftover_key_and_registry(released, tokenizer, tmp_path):
    bad = dict(released)
    bad["visual.attn_pool.query"] = torch.zeros(3)
    with pytest.raises(ArscaleError, match="unexpected keys: visual.attn_pool.query"):
        hpsv2.load_open_clip_weights(transformers.CLIPModel(tiny_config(tokenizer)), bad)
    assert SCORERS["hpsv2"] == "arscale.scorers.hpsv2:load_hpsv2"
    with pytest.raises(ArscaleError, match="HPSv2.1 weights"):
        hpsv2.load_hpsv2(tmp_path)
    with pytest.raises(ArscaleError, match="unknown HPS version"):
        hpsv2.load_hpsv2(tmp_path, version="v3")


@pytest.mark.real_weights
def test_released_hpsv21_prefers_the_matching_prompt():
    """ARSCALE_HPSV2: HPS_v2.1_compressed.pt; ARSCALE_CLIP_H_TOKENIZER: laion/CLIP-ViT-H-14-laion2B-s32B-b79K dir."""
    path, tok = os.environ.get("ARSCALE_HPSV2"), os.environ.get("ARSCALE_CLIP_H_TOKENIZER")
    if not path or not tok:
        pytest.skip("set ARSCALE_HPSV2 and ARSCALE_CLIP_H_TOKENIZER to run against the released weights")
    scorer = hpsv2.load_hpsv2(path, tokenizer=tok)
    red = torch.zeros(2, 3, 224, 224)
    red[:, 0] = 1.0
    r = scorer.reward(red, ["a plain red image", "a photo of a dog on grass"])
    assert r[0] > r[1] and 0.0 < r[0] < 0.5
