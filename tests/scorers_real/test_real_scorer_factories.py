"""Audit (mutation testing) of the released-model scorers on tiny random transformers configs: what the
factories pass on, which crop each scorer uses on non-square images, and the loaders' guards."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

transformers = pytest.importorskip("transformers")

from arscale.errors import ArscaleError
from arscale.scorers import aesthetic, clip, dinov2, hpsv2
from arscale.scorers import imagereward as ir
from arscale.scorers.base import load_scorer
from arscale.scorers.preprocess import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, normalize

WORDS = ["a", "photo", "of", "red", "blue", "green", "circle", "square", "triangle", "left", "right", "the", "and"]
PROMPTS = ["a photo of a red circle", "a blue square left of a green triangle", "the red and the blue"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", "<s>"] + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                       special_tokens=[("</s>", 1), ("<s>", 3)])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                                unk_token="<unk>", bos_token="<s>")


def bert_tokenizer(directory: Path):
    (directory / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    return ir.blip_tokenizer(directory)


def images(count: int, height: int, width: int | None = None, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(count, 3, 4, 4, generator=g)
    return F.interpolate(low, size=(height, width or height), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer()


@pytest.fixture(scope="module")
def clip_model(tok):
    torch.manual_seed(0)
    text = {"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
            "num_attention_heads": 4, "max_position_embeddings": 16, "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    vision = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
              "num_hidden_layers": 1, "num_attention_heads": 4}
    return transformers.CLIPModel(transformers.CLIPConfig(text_config=text, vision_config=vision,
                                                          projection_dim=16)).eval()


@pytest.fixture(scope="module")
def clip_dirs(tmp_path_factory, clip_model, tok):
    """A CLIPModel folder without a tokenizer, and a tokenizer folder beside it."""
    root = tmp_path_factory.mktemp("clip")
    clip_model.save_pretrained(root / "model")
    tok.save_pretrained(root / "tokenizer")
    return root / "model", root / "tokenizer"


def _cos(model, tok, pixels, prompts):
    t = tok(list(prompts), padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=t["input_ids"], attention_mask=t["attention_mask"], pixel_values=pixels)
    return out.logits_per_image.diagonal() / model.logit_scale.exp()


# -- clip / pickscore ------------------------------------------------------------------------------------
def test_load_clip_is_100_cos_clamped_and_takes_its_own_tokenizer(clip_dirs, clip_model, tok):
    model_dir, tok_dir = clip_dirs
    scorer = load_scorer("clip", weights=model_dir, tokenizer=tok_dir)  # the model folder has no tokenizer
    assert scorer.name == "clip"
    imgs = images(3, 32, seed=1)
    cos = _cos(clip_model, tok, scorer.transform(imgs), PROMPTS)
    assert (cos > 0).any()
    torch.testing.assert_close(scorer.reward(imgs, PROMPTS), (100 * cos).clamp_min(0), atol=1e-3, rtol=1e-4)
    # the clamp is the clip scorer's: with the text projection negated every cosine flips sign
    flipped = load_scorer("clip", weights=model_dir, tokenizer=tok_dir)
    flipped.model.text_projection.weight.data.neg_()
    torch.testing.assert_close(flipped.reward(imgs, PROMPTS), (-100 * cos).clamp_min(0), atol=1e-3, rtol=1e-4)


def test_clip_factories_pass_the_backend_on(clip_dirs):
    model_dir, tok_dir = clip_dirs
    assert load_scorer("clip", weights=model_dir, tokenizer=tok_dir, backend="pil").transform.backend == "pil"
    assert load_scorer("pickscore", weights=model_dir, tokenizer=tok_dir, backend="pil").transform.backend == "pil"


def test_clip_crops_with_floored_offsets_like_clip_image_processor(clip_model, tok):
    scorer = clip.ClipSimilarityScorer(clip_model, tok)
    img = images(1, 32, 35, seed=2)  # shorter side already 32: no resize; (35 - 32) // 2 = 1, round(1.5) = 2
    torch.testing.assert_close(scorer.transform(img), normalize(img[..., :, 1:33], CLIP_MEAN, CLIP_STD))


def test_default_released_weights():
    assert clip.CLIP_WEIGHTS == "openai/clip-vit-large-patch14"
    assert clip.PICKSCORE_WEIGHTS == "yuvalkirstain/PickScore_v1"
    assert clip.PICKSCORE_PROCESSOR == "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
    assert hpsv2.FILES == {"v2.1": "HPS_v2.1_compressed.pt", "v2.0": "HPS_v2_compressed.pt"}
    assert aesthetic.CLIP_WEIGHTS == "openai/clip-vit-large-patch14"
    assert dinov2.WEIGHTS == "facebook/dinov2-with-registers-large"
    assert (ir.HUB_REPO, ir.FILENAME, ir.TOKENIZER) == ("THUDM/ImageReward", "ImageReward.pt", "bert-base-uncased")


# -- hpsv2 -----------------------------------------------------------------------------------------------
def test_hps_version_picks_its_file(tmp_path):
    with pytest.raises(ArscaleError, match=r"has no HPS_v2_compressed\.pt"):
        hpsv2.load_hpsv2(tmp_path, version="v2.0")
    with pytest.raises(ArscaleError, match=r"has no HPS_v2\.1_compressed\.pt"):
        hpsv2.load_hpsv2(tmp_path, version="v2.1")


def test_vit_h_14_config_is_open_clip_vit_h_14():
    c = hpsv2.vit_h_14_config()
    v, t = c.vision_config, c.text_config
    assert (v.image_size, v.patch_size, v.hidden_size, v.intermediate_size, v.num_hidden_layers,
            v.num_attention_heads, v.hidden_act) == (224, 14, 1280, 5120, 32, 16, "gelu")
    assert (t.vocab_size, t.hidden_size, t.intermediate_size, t.num_hidden_layers, t.num_attention_heads,
            t.max_position_embeddings, t.hidden_act) == (49408, 1024, 4096, 24, 16, 77, "gelu")
    assert c.projection_dim == 1024


def test_open_clip_conversion_strips_the_data_parallel_prefix():
    proj = torch.randn(4, 3)
    out = hpsv2.convert_open_clip_state_dict({"module.visual.proj": proj, "module.logit_scale": torch.tensor(2.0)})
    assert set(out) == {"visual_projection.weight", "logit_scale"}
    assert torch.equal(out["visual_projection.weight"], proj.T)


def test_hpsv2_scorer_pads_non_square_images_with_unclamped_bicubic(clip_model, tok):
    scorer = hpsv2.Hpsv2Scorer(clip_model, tok)
    step = torch.zeros(1, 3, 32, 64)
    step[..., 32:] = 1.0  # 32x64: longer side to 32 -> 16x32, then 8 black rows above and below
    got = scorer.transform(step)
    resized = F.interpolate(step, size=(16, 32), mode="bicubic", antialias=True, align_corners=False)
    assert resized.min() < 0 or resized.max() > 1  # the overshoot that must survive (torchvision on tensors)
    want = normalize(F.pad(resized, (0, 0, 8, 8)), CLIP_MEAN, CLIP_STD)
    torch.testing.assert_close(got, want)


# -- aesthetic -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vision():
    torch.manual_seed(1)
    return transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
        num_attention_heads=4, projection_dim=24)).eval()


def test_aesthetic_refuses_a_head_of_another_width(vision):
    with pytest.raises(ArscaleError, match="reads 16-d embeddings but the CLIP tower projects to 24"):
        aesthetic.AestheticScorer(vision, ir.RewardHead(16))


def test_aesthetic_checks_the_prompt_count_when_given(vision):
    scorer = aesthetic.AestheticScorer(vision, ir.RewardHead(24))
    with pytest.raises(ArscaleError, match="one prompt per image"):
        scorer.reward(images(2, 32), PROMPTS)


def test_aesthetic_crops_with_torchvision_rounding(vision):
    scorer = aesthetic.AestheticScorer(vision, ir.RewardHead(24))
    img = images(1, 35, 32, seed=3)  # round(1.5) = 2 rows off the top (OpenAI CLIP's CenterCrop)
    torch.testing.assert_close(scorer.transform(img), normalize(img[..., 2:34, :], CLIP_MEAN, CLIP_STD))


def test_load_aesthetic_bfloat16_tower_keeps_an_fp32_head(tmp_path):
    torch.manual_seed(2)
    head = ir.RewardHead(768).eval()  # load_aesthetic reads the released 768-wide head
    torch.save({f"layers.{k}": v for k, v in head.state_dict().items()}, tmp_path / "aesthetic-model.pth")
    transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
        num_attention_heads=4, projection_dim=768)).save_pretrained(tmp_path / "clip")
    fp32 = aesthetic.load_aesthetic(tmp_path, clip=tmp_path / "clip")
    bf16 = aesthetic.load_aesthetic(tmp_path, clip=tmp_path / "clip", dtype="bf16", backend="pil", batch_size=1)
    assert bf16.transform.backend == "pil" and bf16.batch_size == 1
    assert next(bf16.vision.parameters()).dtype is torch.bfloat16
    assert next(bf16.head.parameters()).dtype is torch.float32
    imgs = images(2, 32, seed=4)
    torch.testing.assert_close(bf16.reward(imgs), fp32.reward(imgs), atol=0.05, rtol=0.05)


# -- dinov2 ----------------------------------------------------------------------------------------------
def _dino(registers: int):
    torch.manual_seed(3)
    if registers:
        config = transformers.Dinov2WithRegistersConfig(image_size=28, patch_size=7, hidden_size=32,
                                                         num_hidden_layers=1, num_attention_heads=4, mlp_ratio=2,
                                                         num_register_tokens=registers)
        return transformers.Dinov2WithRegistersModel(config).eval()
    config = transformers.Dinov2Config(image_size=28, patch_size=7, hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=4, mlp_ratio=2)
    return transformers.Dinov2Model(config).eval()


@pytest.mark.parametrize("registers", [0, 2])
def test_dinov2_stretches_non_square_images_and_skips_cls_and_registers(registers):
    model = _dino(registers)
    feats = dinov2.Dinov2Features(model, input_size=28)
    img = images(2, 30, 50, seed=5)
    pixels = normalize(F.interpolate(img, size=(28, 28), mode="bilinear", antialias=True).clamp(0, 1),
                       IMAGENET_MEAN, IMAGENET_STD)
    with torch.no_grad():
        hidden = model(pixel_values=pixels).last_hidden_state
    got = feats.features(img)
    assert got.shape == (2, 16, 32)
    torch.testing.assert_close(got, hidden[:, 1 + registers:], atol=1e-5, rtol=1e-5)


def test_load_dinov2_passes_the_backend_on(tmp_path):
    _dino(2).save_pretrained(tmp_path / "dino")
    assert load_scorer("dinov2", weights=tmp_path / "dino", input_size=28, backend="pil").transform.backend == "pil"


# -- imagereward -----------------------------------------------------------------------------------------
TINY = ir.ImageRewardConfig(image_size=32, patch_size=16, vision_width=32, vision_layers=1, vision_heads=4,
                            vision_mlp=64, text_width=24, text_layers=1, text_heads=4, text_mlp=48,
                            vocab_size=20, max_positions=40, head_sizes=(16, 8, 8, 4))


@pytest.fixture(scope="module")
def released():
    torch.manual_seed(4)
    model = ir.ImageRewardModel(TINY)
    sd = {}
    for key, value in model.state_dict().items():  # back to the released key names
        if key.startswith("head."):
            sd["mlp.layers." + key[len("head."):]] = value
        elif key.startswith("text."):
            sd["blip.text_encoder." + key[len("text."):]] = value
    names = {"vision.embeddings.class_embedding": "blip.visual_encoder.cls_token",
             "vision.embeddings.position_embedding": "blip.visual_encoder.pos_embed"}
    for key, value in model.state_dict().items():
        if not key.startswith("vision."):
            continue
        if key in names:
            sd[names[key]] = value
        elif key.startswith("vision.embeddings.patch_embedding."):
            sd["blip.visual_encoder.patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("vision.post_layernorm."):
            sd["blip.visual_encoder.norm." + key.rsplit(".", 1)[1]] = value
        else:
            index, rest = key[len("vision.encoder.layers."):].split(".", 1)
            for old, new in ir._BLOCK_RENAMES:
                if rest.startswith(new):
                    sd[f"blip.visual_encoder.blocks.{index}.{old}{rest[len(new):]}"] = value
                    break
    for key in ir.UNUSED_KEYS:
        sd[key] = torch.zeros(1)
    sd["blip.text_encoder.embeddings.position_ids"] = torch.arange(TINY.max_positions).unsqueeze(0)
    return sd


def test_released_round_trip_loads(released):
    ir.load_released(ir.ImageRewardModel(TINY), dict(released))


def test_position_ids_that_are_not_a_range_are_refused(released):
    bad = dict(released)
    bad["blip.text_encoder.embeddings.position_ids"] = torch.arange(TINY.max_positions).flip(0).unsqueeze(0)
    with pytest.raises(ArscaleError, match="this is not an ImageReward checkpoint"):
        ir.convert_released_state_dict(bad)


def test_two_keys_onto_one_parameter_are_refused(released):
    bad = dict(released)
    bad["module.mlp.layers.0.weight"] = bad["mlp.layers.0.weight"].clone()
    with pytest.raises(ArscaleError, match="two checkpoint keys map onto head.0.weight"):
        ir.convert_released_state_dict(bad)


def test_vocabulary_larger_than_the_model_is_refused(tmp_path):
    tokenizer = bert_tokenizer(tmp_path)  # 20 tokens with [DEC] and [ENC]
    small = ir.ImageRewardConfig(**{**TINY.__dict__, "vocab_size": 19})
    with pytest.raises(ArscaleError, match="the tokenizer has 20 tokens but the model's vocabulary is 19"):
        ir.ImageRewardScorer(ir.ImageRewardModel(small), tokenizer)


def test_layer_norm_epsilons_are_upstreams():
    model = ir.ImageRewardModel(TINY)
    assert model.vision.config.layer_norm_eps == 1e-6  # timm ViT
    assert model.text.config.layer_norm_eps == 1e-12  # BERT


def test_prompts_are_padded_and_truncated_at_35_tokens(tmp_path, released):
    scorer = ir.ImageRewardScorer(ir.load_released(ir.ImageRewardModel(TINY), dict(released)),
                                  bert_tokenizer(tmp_path))
    ids, mask = scorer.tokenize(["red", " ".join(["red"] * 60)])
    assert ids.shape == mask.shape == (2, 35)
    assert mask[0].sum() == 3 and mask[1].all()


def test_imagereward_crops_with_torchvision_rounding(tmp_path, released):
    scorer = ir.ImageRewardScorer(ir.load_released(ir.ImageRewardModel(TINY), dict(released)),
                                  bert_tokenizer(tmp_path))
    img = images(1, 32, 35, seed=6)  # round(1.5) = 2 columns off the left (BLIP's CenterCrop)
    torch.testing.assert_close(scorer.transform(img), normalize(img[..., :, 2:34], CLIP_MEAN, CLIP_STD))


def test_load_imagereward_passes_its_options_on(tmp_path, released, monkeypatch):
    torch.save(dict(released), tmp_path / "ImageReward.pt")
    bert_tokenizer(tmp_path)  # writes vocab.txt beside it
    full_size = ir.ImageRewardModel
    monkeypatch.setattr(ir, "ImageRewardModel", lambda config=None: full_size(config or TINY))  # not ViT-L + BERT
    scorer = ir.load_imagereward(tmp_path, tokenizer=tmp_path, backend="pil", batch_size=1, dtype="bf16")
    assert scorer.transform.backend == "pil" and scorer.batch_size == 1 and scorer.dtype is torch.bfloat16
    assert math.isfinite(float(scorer.reward(images(1, 40), PROMPTS[:1])[0]))
