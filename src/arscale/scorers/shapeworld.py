"""The ShapeWorld scorers: a small learned image–text reward and the spatial features of its image tower.

- `shapeworld-reward` plays ImageReward's role in the paper: `reward(images, prompts)` is a learned
  estimate of "this image satisfies this prompt", trained by `arscale train shapeworld-reward`
  contrastively against hard negatives from the grammar. Like ImageReward, its output is
  standardised (mean 0, std 1 over a calibration set of matching and hard-negative pairs), so the
  paper's λ values keep their meaning. The exact evaluator is never used as a reward.
- `shapeworld-features` plays DINOv2's role: `features(images)` are the image tower's 8×8 patch
  tokens [B, 64, width] (ask for `pool` / `pca` reductions in the clustering, not here).

Architecture: a conv stem to an 8×8 grid of tokens + one transformer layer (image tower); the
ShapeWorld `TextEncoder` (text tower); a fusion of a learned query plus the text tokens that
self-attend and cross-attend to the image tokens; a linear head on the query.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from arscale.devices import device_key
from arscale.errors import ArscaleError
from arscale.generators.loading import read_json, read_safetensors, shapeworld_folder
from arscale.generators.text import TextEncoder, TextEncoderConfig
from arscale.scorers.base import scorer_repr
from arscale.scorers.hf import check_prompts
from arscale.scorers.preprocess import check_images

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights" / "shapeworld-reward"


@dataclass
class RewardConfig:
    image_size: int = 64
    width: int = 96
    heads: int = 4
    image_depth: int = 1
    fusion_depth: int = 2
    text: dict = field(default_factory=lambda: asdict(TextEncoderConfig(width=96, depth=2, heads=4)))
    # standardisation of the raw logit, set after training on a calibration set
    shift: float = 0.0
    scale: float = 1.0

    @classmethod
    def from_dict(cls, data: dict) -> RewardConfig:
        return cls(**data)


class _Res(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, ch), nn.GELU(), nn.Conv2d(ch, ch, 3, padding=1),
                                  nn.GroupNorm(8, ch), nn.GELU(), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ImageTower(nn.Module):
    """[B,3,64,64] in [0,1] → tokens [B, 64, width] on the 8×8 grid."""

    def __init__(self, c: RewardConfig):
        super().__init__()
        w = c.width
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.GELU(),
            nn.Conv2d(32, 48, 4, stride=2, padding=1), _Res(48),  # 32×32
            nn.Conv2d(48, 64, 4, stride=2, padding=1), _Res(64),  # 16×16
            nn.Conv2d(64, w, 4, stride=2, padding=1),  # 8×8
        )
        grid = c.image_size // 8
        self.pos = nn.Parameter(torch.zeros(1, grid * grid, w))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(w, c.heads, 4 * w, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, c.image_depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(images * 2 - 1).flatten(2).transpose(1, 2) + self.pos
        return self.norm(self.blocks(x))


class RewardModel(nn.Module):
    def __init__(self, config: RewardConfig | None = None):
        super().__init__()
        c = self.config = config or RewardConfig()
        self.image = ImageTower(c)
        self.text = TextEncoder(TextEncoderConfig(**c.text))
        tw = self.text.config.width
        self.text_proj = nn.Linear(tw, c.width)
        self.query = nn.Parameter(torch.zeros(1, 1, c.width))
        layer = nn.TransformerDecoderLayer(c.width, c.heads, 4 * c.width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.fusion = nn.TransformerDecoder(layer, c.fusion_depth)
        self.head = nn.Sequential(nn.LayerNorm(c.width), nn.Linear(c.width, 1))

    def encode_text(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, mask, _ = self.text(list(prompts))
        return self.text_proj(tokens), mask

    def pair_logits(self, image_tokens: torch.Tensor, text_tokens: torch.Tensor,
                    text_mask: torch.Tensor) -> torch.Tensor:
        """Raw logits for aligned pairs: image_tokens [P,T,W], text_tokens [P,L,W] → [P]."""
        q = torch.cat([self.query.expand(len(text_tokens), -1, -1), text_tokens], 1)
        pad = torch.cat([torch.zeros_like(text_mask[:, :1]), ~text_mask], 1)
        out = self.fusion(q, image_tokens, tgt_key_padding_mask=pad)
        return self.head(out[:, 0]).squeeze(-1)

    def logits(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        text, mask = self.encode_text(prompts)
        return self.pair_logits(self.image(images), text, mask)

    def standardise(self, logits: torch.Tensor) -> torch.Tensor:
        return (logits - self.config.shift) / self.config.scale


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class ShapeWorldScorer:
    """`Scorer` protocol over a RewardModel; `name` tells which role it was loaded for."""

    resizes_itself = True  # any size: its own preprocessing brings it to input_size
    __repr__ = scorer_repr

    def __init__(self, model: RewardModel, name: str, batch_size: int = 256):
        self.model = model.eval()
        self.name = name
        self.input_size = model.config.image_size
        self.batch_size = batch_size
        self.device = next(model.parameters()).device

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        return _resize(check_images(images).float().to(self.device), self.input_size)  # the real scorers' contract

    @torch.no_grad()
    def reward(self, images: torch.Tensor, prompts: Sequence[str] | str) -> torch.Tensor:
        images = self._check(images)
        prompts = check_prompts(prompts, len(images))  # one string serves the whole batch, as for the real scorers
        out = []
        for i in range(0, len(images), self.batch_size):
            chunk = images[i : i + self.batch_size]
            out.append(self.model.standardise(self.model.logits(chunk, prompts[i : i + self.batch_size])))
        return torch.cat(out).float().cpu() if out else torch.zeros(0)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        images = self._check(images)
        out = [self.model.image(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        if not out:  # no images: an empty batch shaped like a full one, as reward() gives
            return torch.zeros(0, *self.model.image.pos.shape[1:])
        return torch.cat(out).float().cpu()


_LOADED: dict[tuple[str, str], tuple[tuple, weakref.ref]] = {}  # (folder, device) -> (its files' stamp, model)
_RECENT: list[RewardModel] = []  # the last models asked for, kept alive; an older one lives while a caller holds it
_DEFAULT_DIR: list[Path] = [WEIGHTS_DIR]


def use_weights(directory: str | Path | None) -> Path:
    """Make `directory` (None: the shipped weights) where this process's ShapeWorld reward *and* features
    load from by default (`arscale bench --scorer-weights`): TTS-VAR's clustering features then come
    from the same image tower as its reward, as they do with the shipped model. Call it before the
    scorers are loaded: one loaded before keeps its weights (the search's `cached_scorer` loads anew). Returns
    the folder."""
    target = Path(directory) if directory is not None else WEIGHTS_DIR
    if not target.is_dir():
        raise ArscaleError(f"{target} is not a folder (the ShapeWorld reward's weights are the folder "
                           "`arscale train shapeworld-reward --out` wrote)")
    for name in ("config.json", "model.safetensors"):
        if not (target / name).is_file():
            raise ArscaleError(f"no ShapeWorld reward weights in {target}: missing {name}")
    _DEFAULT_DIR[0] = target
    return target


def weights_in_use() -> Path:
    """The folder the ShapeWorld reward and features load from by default now (`use_weights`)."""
    return _DEFAULT_DIR[0]


def weights_stamp(directory: str | Path | None = None) -> tuple:
    """The size and modification time of a reward folder's files (default: the folder in use): a folder a later
    training run rewrote has another stamp, so what caches its model loads it anew."""
    directory = Path(directory) if directory is not None else _DEFAULT_DIR[0]
    stamp = []
    for name in ("config.json", "model.safetensors"):
        try:
            st = (directory / name).stat()
            stamp.append((st.st_size, st.st_mtime_ns))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


@contextmanager
def restoring_weights() -> Iterator[None]:
    """Undo any `use_weights` inside the block when it ends: a command's `--scorer-weights` must not outlive it
    in a process that runs several (tests, notebooks calling `arscale.cli.main`)."""
    before = _DEFAULT_DIR[0]
    try:
        yield
    finally:
        _DEFAULT_DIR[0] = before


def load_model(weights: str | Path | None = None, device: str | torch.device = "cpu") -> RewardModel:
    """The trained reward model from a weights directory (default: the shipped one, or the folder given
    to `use_weights`); cached per process."""
    directory = Path(weights) if weights is not None else _DEFAULT_DIR[0]
    key, stamp = (str(directory.resolve()), device_key(device)), weights_stamp(directory)
    entry = _LOADED.get(key)
    model = entry[1]() if entry is not None and entry[0] == stamp else None
    if model is not None:
        return _keep(model)
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    if not config_path.exists() or not weights_path.exists():
        raise ArscaleError(f"no ShapeWorld reward weights in {directory} (need config.json and model.safetensors); "
                           "train them with `arscale train shapeworld-reward`")
    with shapeworld_folder(directory, "a ShapeWorld reward"):
        model = RewardModel(RewardConfig.from_dict(read_json(config_path)))
    state = read_safetensors(weights_path)
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or bad:
        raise ArscaleError(f"weights in {directory} do not fit the reward model: missing {missing[:5]}, "
                           f"leftover {extra[:5]}, wrong shape {bad[:5]}")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.to(device).eval()
    for dead in [k for k, (_, ref) in _LOADED.items() if ref() is None]:
        del _LOADED[dead]
    _LOADED[key] = stamp, weakref.ref(model)  # replaces the model of the folder's earlier files
    return _keep(model)


def _keep(model: RewardModel) -> RewardModel:
    """Keep the two models last asked for alive (a sweep over reward folders holds no more than that)."""
    _RECENT[:] = [model, *(m for m in _RECENT if m is not model)][:2]
    return model


def load_reward(device: str | torch.device = "cpu", weights: str | Path | None = None) -> ShapeWorldScorer:
    return ShapeWorldScorer(load_model(weights, device), "shapeworld-reward")


def load_features(device: str | torch.device = "cpu", weights: str | Path | None = None) -> ShapeWorldScorer:
    return ShapeWorldScorer(load_model(weights, device), "shapeworld-features")
