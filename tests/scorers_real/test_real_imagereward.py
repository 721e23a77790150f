"""ImageReward on transformers' BLIP towers: the released key layout loads strictly, and the loaded model
computes what upstream's BLIP ViT + med.py BERT + MLP compute (an independent plain-torch reference
written from the released key names below)."""

from __future__ import annotations

import itertools
import math
import os

import pytest
import torch
from torch.nn import functional as F

pytest.importorskip("transformers")


from real_tiny import PROMPTS, bert_tokenizer, images

from arscale.errors import ArscaleError
from arscale.scorers import imagereward as ir

TINY = ir.ImageRewardConfig(image_size=32, patch_size=16, vision_width=32, vision_layers=2, vision_heads=4,
                            vision_mlp=64, text_width=24, text_layers=2, text_heads=4, text_mlp=48,
                            vocab_size=20, max_positions=40, head_sizes=(16, 8, 8, 4))


def released_state_dict(c: ir.ImageRewardConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the key names and shapes of THUDM's ImageReward.pt (BLIP_Pretrain + MLP)."""
    g = torch.Generator().manual_seed(seed)

    def t(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    def ln(prefix, width, sd):
        sd[prefix + ".weight"] = 1 + t(width, scale=0.1)
        sd[prefix + ".bias"] = t(width, scale=0.1)

    def linear(prefix, out, inp, sd):
        sd[prefix + ".weight"] = t(out, inp, scale=1 / math.sqrt(inp))
        sd[prefix + ".bias"] = t(out, scale=0.05)

    sd: dict[str, torch.Tensor] = {}
    W, T, P = c.vision_width, c.text_width, c.patch_size
    n = (c.image_size // P) ** 2
    v = "blip.visual_encoder"
    sd[f"{v}.cls_token"] = t(1, 1, W)
    sd[f"{v}.pos_embed"] = t(1, n + 1, W)
    sd[f"{v}.patch_embed.proj.weight"] = t(W, 3, P, P, scale=0.05)
    sd[f"{v}.patch_embed.proj.bias"] = t(W, scale=0.05)
    for i in range(c.vision_layers):
        b = f"{v}.blocks.{i}"
        ln(f"{b}.norm1", W, sd)
        linear(f"{b}.attn.qkv", 3 * W, W, sd)
        linear(f"{b}.attn.proj", W, W, sd)
        ln(f"{b}.norm2", W, sd)
        linear(f"{b}.mlp.fc1", c.vision_mlp, W, sd)
        linear(f"{b}.mlp.fc2", W, c.vision_mlp, sd)
    ln(f"{v}.norm", W, sd)
    e = "blip.text_encoder"
    sd[f"{e}.embeddings.word_embeddings.weight"] = t(c.vocab_size, T)
    sd[f"{e}.embeddings.position_embeddings.weight"] = t(c.max_positions, T)
    ln(f"{e}.embeddings.LayerNorm", T, sd)
    sd[f"{e}.embeddings.position_ids"] = torch.arange(c.max_positions).unsqueeze(0)
    for i in range(c.text_layers):
        b = f"{e}.encoder.layer.{i}"
        for kind, kv_width in (("attention", T), ("crossattention", W)):
            linear(f"{b}.{kind}.self.query", T, T, sd)
            linear(f"{b}.{kind}.self.key", T, kv_width, sd)
            linear(f"{b}.{kind}.self.value", T, kv_width, sd)
            linear(f"{b}.{kind}.output.dense", T, T, sd)
            ln(f"{b}.{kind}.output.LayerNorm", T, sd)
        linear(f"{b}.intermediate.dense", c.text_mlp, T, sd)
        linear(f"{b}.output.dense", T, c.text_mlp, sd)
        ln(f"{b}.output.LayerNorm", T, sd)
    linear("blip.vision_proj", 256, W, sd)
    linear("blip.text_proj", 256, T, sd)
    sizes = (T,) + tuple(c.head_sizes) + (1,)
    for index, (inp, out) in zip((0, 2, 4, 6, 7), itertools.pairwise(sizes)):
        linear(f"mlp.layers.{index}", out, inp, sd)
    return sd


def reference_reward(sd, c, pixels, ids, mask):
    """Upstream's forward, written from the released names: timm ViT -> med BERT (cross-attn) -> MLP."""
    def lin(x, p):
        return x @ sd[p + ".weight"].T + sd[p + ".bias"]

    def lnorm(x, p, eps):
        return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], eps)

    def heads(x, h):
        return x.view(x.shape[0], x.shape[1], h, -1).transpose(1, 2)

    v = "blip.visual_encoder"
    x = F.conv2d(pixels, sd[f"{v}.patch_embed.proj.weight"], sd[f"{v}.patch_embed.proj.bias"],
                 stride=c.patch_size).flatten(2).transpose(1, 2)
    x = torch.cat([sd[f"{v}.cls_token"].expand(len(x), -1, -1), x], 1) + sd[f"{v}.pos_embed"]
    for i in range(c.vision_layers):
        b = f"{v}.blocks.{i}"
        y = lnorm(x, f"{b}.norm1", 1e-6)
        B, N, C = y.shape
        q, k, vv = lin(y, f"{b}.attn.qkv").reshape(B, N, 3, c.vision_heads, C // c.vision_heads).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-1, -2)) * (C // c.vision_heads) ** -0.5).softmax(-1) @ vv
        x = x + lin(a.transpose(1, 2).reshape(B, N, C), f"{b}.attn.proj")
        x = x + lin(F.gelu(lin(lnorm(x, f"{b}.norm2", 1e-6), f"{b}.mlp.fc1")), f"{b}.mlp.fc2")
    img = lnorm(x, f"{v}.norm", 1e-6)

    e = "blip.text_encoder"
    L = ids.shape[1]
    h = sd[f"{e}.embeddings.word_embeddings.weight"][ids] + sd[f"{e}.embeddings.position_embeddings.weight"][:L]
    h = lnorm(h, f"{e}.embeddings.LayerNorm", 1e-12)
    additive = (1.0 - mask[:, None, None, :].float()) * -10000.0  # med.py's extended mask
    d = c.text_width // c.text_heads
    for i in range(c.text_layers):
        b = f"{e}.encoder.layer.{i}"
        for kind, kv, bias in (("attention", h, additive), ("crossattention", img, 0.0)):
            q = heads(lin(h, f"{b}.{kind}.self.query"), c.text_heads)
            k = heads(lin(kv, f"{b}.{kind}.self.key"), c.text_heads)
            vv = heads(lin(kv, f"{b}.{kind}.self.value"), c.text_heads)
            a = ((q @ k.transpose(-1, -2)) / math.sqrt(d) + bias).softmax(-1) @ vv
            a = a.transpose(1, 2).reshape(h.shape)
            h = lnorm(lin(a, f"{b}.{kind}.output.dense") + h, f"{b}.{kind}.output.LayerNorm", 1e-12)
        f = lin(F.gelu(lin(h, f"{b}.intermediate.dense")), f"{b}.output.dense")
        h = lnorm(f + h, f"{b}.output.LayerNorm", 1e-12)
    r = h[:, 0]
    for index in (0, 2, 4, 6, 7):
        r = lin(r, f"mlp.layers.{index}")
    return (r.squeeze(-1) - ir.REWARD_MEAN) / ir.REWARD_STD


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return bert_tokenizer(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def released():
    return released_state_dict(TINY)


@pytest.fixture(scope="module")
def scorer(released, tokenizer):
    torch.manual_seed(0)
    return ir.ImageRewardScorer(ir.load_released(ir.ImageRewardModel(TINY), dict(released)), tokenizer)


def test_loader_fills_every_key_and_uses_every_file_key(released):
    model = ir.ImageRewardModel(TINY)
    converted = ir.convert_released_state_dict(released)
    assert set(converted) == set(model.state_dict())
    dropped = set(released) - {k for k in released if ir.released_to_model_key(k) is not None}
    assert dropped == set(ir.UNUSED_KEYS) | {"blip.text_encoder.embeddings.position_ids"}
    ir.load_released(model, dict(released))
    sd = model.state_dict()
    assert torch.equal(sd["vision.encoder.layers.1.self_attn.qkv.weight"], released["blip.visual_encoder.blocks.1.attn.qkv.weight"])
    assert torch.equal(sd["text.encoder.layer.0.crossattention.self.key.weight"],
                       released["blip.text_encoder.encoder.layer.0.crossattention.self.key.weight"])
    assert torch.equal(sd["head.7.bias"], released["mlp.layers.7.bias"])


def test_loader_names_a_leftover_key(released):
    bad = dict(released)
    bad["blip.visual_encoder.blocks.0.attn.extra_scale"] = torch.ones(1)
    with pytest.raises(ArscaleError, match="unexpected keys: blip.visual_encoder.blocks.0.attn.extra_scale"):
        ir.load_released(ir.ImageRewardModel(TINY), bad)


def test_loader_names_a_missing_key(released):
    bad = dict(released)
    del bad["mlp.layers.4.weight"]
    with pytest.raises(ArscaleError, match="missing keys: head.4.weight"):
        ir.load_released(ir.ImageRewardModel(TINY), bad)


def test_reward_matches_the_upstream_forward_with_normalisation(scorer, released, tokenizer):
    imgs = images(3, 48, seed=1)  # 48 -> resize 32 + crop exercises the pipeline
    got = scorer.reward(imgs, PROMPTS)
    pixels = scorer.transform(imgs)
    tokens = tokenizer(PROMPTS, padding="max_length", truncation=True, max_length=35, return_tensors="pt")
    assert tokens["input_ids"].shape == (3, 35) and tokens["input_ids"][0, 0] == tokenizer.cls_token_id
    want = reference_reward(released, TINY, pixels, tokens["input_ids"], tokens["attention_mask"])
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # the standardisation constants are applied on top of the MLP output
    torch.testing.assert_close(got, (scorer.raw(imgs, PROMPTS) - 0.16717362830052426) / 1.0333394966054072)
    assert got.std() > 1e-3  # different images and prompts give different rewards


def test_reward_depends_on_the_prompt_and_padding_does_not_leak(scorer):
    imgs = images(1, 32, seed=2).repeat(2, 1, 1, 1)
    r = scorer.reward(imgs, ["a red circle", "a blue square"])
    assert abs(float(r[0] - r[1])) > 1e-5
    # prompts longer than 35 tokens are truncated, not rejected
    long = " ".join(["red"] * 60)
    assert torch.isfinite(scorer.reward(imgs[:1], [long])).all()


def test_batch_of_three_equals_three_single_calls(scorer):
    imgs = images(3, 32, seed=3)
    batched = scorer.reward(imgs, PROMPTS)
    single = torch.cat([scorer.reward(imgs[i: i + 1], PROMPTS[i: i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    chunked = ir.ImageRewardScorer(scorer.model, scorer.tokenizer, batch_size=2).reward(imgs, PROMPTS)
    torch.testing.assert_close(batched, chunked, atol=1e-5, rtol=1e-5)


def test_features_are_the_vit_tokens(scorer):
    feats = scorer.features(images(2, 32))
    assert feats.shape == (2, 1 + (32 // 16) ** 2, TINY.vision_width)


def test_bfloat16_option_runs_close_to_fp32(released, tokenizer):
    model = ir.load_released(ir.ImageRewardModel(TINY), dict(released))
    fp32 = ir.ImageRewardScorer(model, tokenizer).reward(images(2, 32), PROMPTS[:2])
    model = ir.load_released(ir.ImageRewardModel(TINY), dict(released))
    bf16 = ir.ImageRewardScorer(model, tokenizer, dtype="bfloat16").reward(images(2, 32), PROMPTS[:2])
    assert bf16.dtype == torch.float32
    torch.testing.assert_close(bf16, fp32, atol=0.1, rtol=0.1)


def test_prompt_count_must_match(scorer):
    with pytest.raises(ArscaleError, match="one prompt per image"):
        scorer.reward(images(2, 32), ["a red circle"] * 3)


def test_missing_weights_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ArscaleError, match="ImageReward weights"):
        ir.load_imagereward(tmp_path / "nowhere.pt")
    with pytest.raises(ArscaleError, match="ImageReward weights"):
        ir.load_imagereward(tmp_path)  # a directory without ImageReward.pt


@pytest.mark.real_weights
def test_released_imagereward_golden():
    """ARSCALE_IMAGEREWARD: path to ImageReward.pt; ARSCALE_BERT_TOKENIZER: a bert-base-uncased directory."""
    path = os.environ.get("ARSCALE_IMAGEREWARD")
    tok = os.environ.get("ARSCALE_BERT_TOKENIZER")
    if not path or not tok:
        pytest.skip("set ARSCALE_IMAGEREWARD and ARSCALE_BERT_TOKENIZER to run against the released weights")
    scorer = ir.load_imagereward(path, tokenizer=tok, backend="pil")
    red = torch.zeros(1, 3, 256, 256)
    red[:, 0] = 1.0
    r = scorer.reward(torch.cat([red, red]), ["a red square", "a photo of a dog"])
    assert r.shape == (2,) and torch.isfinite(r).all()
    assert r[0] > r[1]  # a plain red image fits "a red square" better than "a dog"
