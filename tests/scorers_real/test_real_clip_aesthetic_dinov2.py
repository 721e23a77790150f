"""CLIPScore, PickScore, LAION aesthetic and DINOv2 features on tiny random transformers configs."""

from __future__ import annotations

import copy
import os

import pytest
import torch
from torch.nn import functional as F

transformers = pytest.importorskip("transformers")

from real_tiny import PROMPTS, images, word_tokenizer

from arscale.errors import ArscaleError
from arscale.scorers import aesthetic, clip, dinov2
from arscale.scorers.base import SCORERS, load_scorer
from arscale.scorers.imagereward import RewardHead
from arscale.scorers.preprocess import IMAGENET_MEAN, IMAGENET_STD, normalize


@pytest.fixture(scope="module")
def tokenizer():
    return word_tokenizer()


def tiny_clip_config(tok):
    text = {"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": 16, "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    vision = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
              "num_hidden_layers": 2, "num_attention_heads": 4}
    return transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)


@pytest.fixture(scope="module")
def clip_model(tokenizer):
    torch.manual_seed(0)
    return transformers.CLIPModel(tiny_clip_config(tokenizer)).eval()


def model_logits(model, scorer, tok, imgs, prompts):
    """The diagonal of CLIPModel's own `logits_per_image` (= logit_scale.exp() * cos) for paired inputs."""
    t = tok(list(prompts), padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=t["input_ids"], attention_mask=t["attention_mask"], pixel_values=scorer.transform(imgs))
    return out.logits_per_image.diagonal()


def test_pickscore_is_the_model_logit(clip_model, tokenizer):
    scorer = clip.ClipSimilarityScorer(clip_model, tokenizer, name="pickscore", scale=None, clamp_at_zero=False)
    imgs = images(3, 40, seed=4)
    got = scorer.reward(imgs, PROMPTS)
    torch.testing.assert_close(got, model_logits(clip_model, scorer, tokenizer, imgs, PROMPTS), atol=1e-4, rtol=1e-4)
    assert scorer.input_size == 32


def test_clipscore_is_100_cos_clamped_at_zero(clip_model, tokenizer):
    scorer = clip.ClipSimilarityScorer(clip_model, tokenizer)
    imgs = images(3, 32, seed=5)
    cos = model_logits(clip_model, scorer, tokenizer, imgs, PROMPTS) / clip_model.logit_scale.exp()
    torch.testing.assert_close(scorer.reward(imgs, PROMPTS), (100 * cos).clamp_min(0), atol=1e-3, rtol=1e-4)
    # the clamp must bite on negative cosines: negating the text projection flips every cosine's sign
    raw = clip.ClipSimilarityScorer(clip_model, tokenizer, clamp_at_zero=False).reward(imgs, PROMPTS)
    flipped = copy.deepcopy(clip_model)
    flipped.text_projection.weight.data.neg_()
    assert (raw != 0).all()
    torch.testing.assert_close(scorer.reward(imgs, PROMPTS), raw.clamp_min(0))
    torch.testing.assert_close(clip.ClipSimilarityScorer(flipped, tokenizer).reward(imgs, PROMPTS), (-raw).clamp_min(0))


def test_clip_batch_of_three_equals_single_calls_and_truncates_long_prompts(clip_model, tokenizer):
    scorer = clip.ClipSimilarityScorer(clip_model, tokenizer, batch_size=2)
    imgs = images(3, 32, seed=7)
    batched = scorer.reward(imgs, PROMPTS)
    single = torch.cat([scorer.reward(imgs[i: i + 1], [PROMPTS[i]]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=1e-4)
    long = " ".join(["red"] * 40)  # longer than the 16 positions of the tiny text tower
    assert torch.isfinite(scorer.reward(imgs[:1], [long])).all()
    feats = scorer.features(imgs)
    assert feats.shape == (3, 16)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(3))


def test_aesthetic_is_the_head_on_normalised_clip_embeddings(tmp_path):
    torch.manual_seed(1)
    vision = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, projection_dim=24))
    head = RewardHead(24).eval()  # dropout off, as in the scorer
    # the released file layout: `layers.N.*` as saved from upstream's MLP(nn.Module).layers
    torch.save({f"layers.{k}": v for k, v in head.state_dict().items()}, tmp_path / "aesthetic-model.pth")
    loaded = aesthetic.load_head(tmp_path / "aesthetic-model.pth", width=24)
    scorer = aesthetic.AestheticScorer(vision, loaded)
    imgs = images(3, 32, seed=8)
    with torch.no_grad():
        emb = vision(pixel_values=scorer.transform(imgs)).image_embeds
        want = head(emb / emb.norm(dim=-1, keepdim=True)).squeeze(-1)
    torch.testing.assert_close(scorer.reward(imgs), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(scorer.reward(imgs, PROMPTS), want, atol=1e-5, rtol=1e-5)  # prompts ignored
    single = torch.cat([scorer.reward(imgs[i: i + 1]) for i in range(3)])
    torch.testing.assert_close(single, want, atol=1e-5, rtol=1e-5)
    torch.save({"layers.0.weight": torch.zeros(1024, 24)}, tmp_path / "broken.pth")
    with pytest.raises(ArscaleError, match="missing keys"):
        aesthetic.load_head(tmp_path / "broken.pth", width=24)


@pytest.fixture(scope="module")
def dino_model():
    torch.manual_seed(2)
    config = transformers.Dinov2WithRegistersConfig(image_size=28, patch_size=7, hidden_size=32,
                                                     num_hidden_layers=2, num_attention_heads=4,
                                                     mlp_ratio=2, num_register_tokens=4)
    return transformers.Dinov2WithRegistersModel(config).eval()


def test_dinov2_features_are_patch_tokens_after_registers(dino_model):
    feats = dinov2.Dinov2Features(dino_model, input_size=28)
    imgs = images(3, 40, seed=9)
    got = feats.features(imgs)
    assert got.shape == (3, (28 // 7) ** 2, 32)
    # TTS-VAR: stretch to input_size (no crop), bilinear antialias, ImageNet statistics
    pixels = normalize(F.interpolate(imgs, size=(28, 28), mode="bilinear", antialias=True).clamp(0, 1),
                       IMAGENET_MEAN, IMAGENET_STD)
    with torch.no_grad():
        hidden = dino_model(pixel_values=pixels).last_hidden_state
    assert hidden.shape[1] == 1 + 4 + 16
    torch.testing.assert_close(got, hidden[:, 5:], atol=1e-5, rtol=1e-5)
    single = torch.cat([feats.features(imgs[i: i + 1]) for i in range(3)])
    torch.testing.assert_close(single, got, atol=1e-5, rtol=1e-5)
    with pytest.raises(ArscaleError, match="feature extractor"):
        feats.reward(imgs, PROMPTS)


def test_dinov2_at_another_resolution_interpolates_positions(dino_model):
    feats = dinov2.Dinov2Features(dino_model, input_size=14)
    assert feats.features(images(2, 32)).shape == (2, 4, 32)
    with pytest.raises(ArscaleError, match="multiple of the DINOv2 patch size"):
        dinov2.Dinov2Features(dino_model, input_size=30)


def test_registry_names_and_offline_errors(tmp_path, monkeypatch):
    for name in ("imagereward", "clip", "pickscore", "aesthetic", "dinov2"):
        assert name in SCORERS
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ArscaleError, match="CLIP model"):
        load_scorer("clip", weights=tmp_path / "no-clip")
    with pytest.raises(ArscaleError, match="DINOv2 model"):
        load_scorer("dinov2", weights=tmp_path / "no-dino")
    with pytest.raises(ArscaleError, match="aesthetic predictor head"):
        load_scorer("aesthetic", weights=tmp_path)


def test_saved_tiny_models_load_through_the_registry(tmp_path, clip_model, tokenizer, dino_model):
    """The from_pretrained path end to end, on directories written here (what a hub snapshot looks like)."""
    clip_model.save_pretrained(tmp_path / "clip")
    tokenizer.save_pretrained(tmp_path / "clip")
    scorer = load_scorer("pickscore", weights=tmp_path / "clip", tokenizer=tmp_path / "clip")
    imgs = images(2, 32, seed=10)
    direct = clip.ClipSimilarityScorer(clip_model, tokenizer, scale=None, clamp_at_zero=False)
    torch.testing.assert_close(scorer.reward(imgs, PROMPTS[:2]), direct.reward(imgs, PROMPTS[:2]), atol=1e-5, rtol=1e-5)
    dino_model.save_pretrained(tmp_path / "dino")
    feats = load_scorer("dinov2", weights=tmp_path / "dino", input_size=28)
    assert feats.features(imgs).shape == (2, 16, 32)


def _real(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        pytest.skip(f"set {var} to a local copy of the released weights")
    return value


@pytest.mark.real_weights
def test_released_clip_prefers_the_matching_prompt():
    scorer = clip.load_clip(_real("ARSCALE_CLIP"))
    red = torch.zeros(1, 3, 224, 224)
    red[:, 0] = 1.0
    r = scorer.reward(red.repeat(2, 1, 1, 1), ["a plain red image", "a photo of a dog on grass"])
    assert r[0] > r[1] and 10 < r[0] < 40


@pytest.mark.real_weights
def test_released_pickscore_prefers_the_matching_prompt():
    scorer = clip.load_pickscore(_real("ARSCALE_PICKSCORE"), tokenizer=_real("ARSCALE_PICKSCORE_PROCESSOR"))
    red = torch.zeros(1, 3, 224, 224)
    red[:, 0] = 1.0
    r = scorer.reward(red.repeat(2, 1, 1, 1), ["a plain red image", "a photo of a dog on grass"])
    assert r[0] > r[1]


@pytest.mark.real_weights
def test_released_aesthetic_range():
    scorer = aesthetic.load_aesthetic(_real("ARSCALE_AESTHETIC_HEAD"), clip=_real("ARSCALE_CLIP"))
    r = scorer.reward(images(2, 224))
    assert ((r > 0) & (r < 10)).all()


@pytest.mark.real_weights
def test_released_dinov2_shape():
    feats = dinov2.load_dinov2(_real("ARSCALE_DINOV2"))
    assert feats.features(images(2, 256)).shape == (2, 256, 1024)


def test_hub_ids_do_not_download_in_tests(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(ArscaleError, match="HF_HUB_OFFLINE"):
        load_scorer("imagereward", weights="THUDM/ImageReward")
    with pytest.raises(ArscaleError, match="HF_HUB_OFFLINE"):
        load_scorer("dinov2", weights="facebook/dinov2-with-registers-large")


def test_every_tiny_scorer_satisfies_the_scorer_protocol(clip_model, tokenizer, dino_model):
    from arscale.scorers.base import Scorer

    made = [clip.ClipSimilarityScorer(clip_model, tokenizer), dinov2.Dinov2Features(dino_model, input_size=28)]
    for scorer in made:
        assert isinstance(scorer, Scorer) and isinstance(scorer.name, str) and scorer.input_size > 0
