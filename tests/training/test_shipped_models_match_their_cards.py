"""The shipped ShapeWorld models' cards against their files, the committed training states
and the trainers' defaults (what the documented training commands build)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import arscale
from arscale.generators.next_scale.tokenizer import MultiScaleTokenizerConfig
from arscale.generators.next_token.tokenizer import VQConfig
from arscale.scorers.shapeworld import RewardConfig
from arscale.train import ar, tokenizer_vq
from arscale.train import var as var_trainer

WEIGHTS = Path(arscale.__file__).resolve().parent / "weights"
REPO = Path(arscale.__file__).resolve().parents[2]  # the checkout (train_state/ lies beside src/)
needs_checkout = pytest.mark.skipif(not (REPO / "pyproject.toml").is_file(),
                                    reason="an installed copy: no checkout (train_state/, README, docs) beside it")


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict


def _count(path: Path, prefix: str = "") -> int:
    return sum(t.numel() for k, t in _tensors(path).items() if k.startswith(prefix))


def test_card_sizes_and_parameter_counts_are_the_shipped_files():
    """Every model card's parameter counts, token count and file sizes are those of the shipped files."""
    var, ar_dir, reward = WEIGHTS / "shapeworld-var", WEIGHTS / "shapeworld-ar", WEIGHTS / "shapeworld-reward"
    card = (var / "MODEL_CARD.md").read_text()
    for n in (_count(var / "tokenizer.safetensors"), _count(var / "model.safetensors", "transformer."),
              _count(var / "model.safetensors", "conditioner.")):
        assert f"{n / 1e6:.2f} M parameters" in card
    patch_nums = _json(var / "tokenizer_config.json")["patch_nums"]
    assert f"**{sum(p * p for p in patch_nums)} tokens per image**" in card
    for name in ("tokenizer.safetensors", "model.safetensors"):
        assert f"| {(var / name).stat().st_size / 1e6:.1f} MB |" in card
    card = (ar_dir / "MODEL_CARD.md").read_text()
    for n in (_count(ar_dir / "tokenizer.safetensors"), _count(ar_dir / "model.safetensors", "transformer."),
              _count(ar_dir / "model.safetensors", "text_encoder.")):
        assert f"{n / 1e6:.2f} M parameters" in card
    grid = _json(ar_dir / "config.json")["transformer"]["grid"]
    assert f"16×16 grid = {grid * grid} tokens" in card and grid == 16
    card = (reward / "MODEL_CARD.md").read_text()
    size = (reward / "model.safetensors").stat().st_size
    assert f"{round(_count(reward / 'model.safetensors') / 1e3)} k parameters, {size / 1e6:.1f} MB)" in card


def test_the_documented_training_commands_build_the_shipped_architectures():
    """The trainers' defaults (VAR with the card's width 160 / depth 4 override) are the shipped configs' shapes."""
    var, ar_dir = WEIGHTS / "shapeworld-var", WEIGHTS / "shapeworld-ar"
    tok = _json(var / "tokenizer_config.json")
    assert json.loads(json.dumps(MultiScaleTokenizerConfig().to_dict())) == tok
    built = var_trainer.full_config(tok, {"transformer": {"width": 160, "depth": 4}})
    shipped = _json(var / "config.json")
    assert built["transformer"] == shipped["transformer"] and built["text_encoder"] == shipped["text_encoder"]
    assert VQConfig(ch_mult=tokenizer_vq.SHIPPED_CH_MULT).to_dict() == _json(ar_dir / "tokenizer_config.json")["tokenizer"]
    built = ar.default_config(ar.load_tokenizer(ar_dir, torch.device("cpu"))).to_dict()
    shipped = _json(ar_dir / "config.json")
    assert built["text"] == shipped["text"]
    assert {k: built["transformer"][k] for k in shipped["transformer"]} == shipped["transformer"]
    assert built["preview_fill"] == shipped["preview_fill"]
    reward = _json(WEIGHTS / "shapeworld-reward" / "config.json")
    assert {k: v for k, v in asdict(RewardConfig()).items() if k not in ("shift", "scale")} == \
        {k: v for k, v in reward.items() if k not in ("shift", "scale")}


def test_a_new_shapeworld_ar_run_writes_the_shipped_sampler():
    """A ShapeWorld-AR trained by the card's commands samples with the card's defaults (CFG 2.5, T 1.0, top-k 64)."""
    ar_dir = WEIGHTS / "shapeworld-ar"
    built = ar.default_config(ar.load_tokenizer(ar_dir, torch.device("cpu"))).to_dict()
    assert built["sampling"] == _json(ar_dir / "config.json")["sampling"]
    assert "CFG 2.5, temperature 1.0, top-k 64, top-p off" in (ar_dir / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("shipped, state, step", [
    ("shapeworld-var/model.safetensors", "shapeworld-var/model.safetensors", 23696),
    ("shapeworld-var/tokenizer.safetensors", "shapeworld-tokenizer/model.safetensors", None),
    ("shapeworld-ar/model.safetensors", "shapeworld-ar/model.safetensors", 8700),
    ("shapeworld-ar/tokenizer.safetensors", "shapeworld-ar/tokenizer/tokenizer.safetensors", None),
])
@needs_checkout
def test_the_committed_training_states_are_the_shipped_weights(shipped, state, step):
    """train_state/ holds the shipped weights (fp32 of the fp16 files), so a resume continues the shipped model."""
    folder = REPO / "train_state"
    assert (folder / state).is_file(), f"{folder / state} is missing from the checkout"
    ours, theirs = _tensors(WEIGHTS / shipped), _tensors(folder / state)
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[k], theirs[k].to(ours[k].dtype)) for k in ours)
    if step is not None:
        assert _json(folder / Path(state).parent / "state.json")["step"] == step
        assert f"step {step}" in (WEIGHTS / Path(shipped).parent / "MODEL_CARD.md").read_text()


@needs_checkout
def test_every_table_in_the_cards_and_docs_has_its_header():
    """Each run of table rows in README, docs/ and the model cards starts with a header and its `|---|` line, and
    keeps one column count (a paragraph inside a table makes its rest render as loose text)."""
    import re

    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(WEIGHTS.glob("*/MODEL_CARD.md"))]
    broken = []
    for page in pages:
        lines = page.read_text().splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("|"):
                i += 1
                continue
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            columns = {row.count("|") - row.count("\\|") - row.count("`|`") for row in block}
            if len(block) < 2 or not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", block[1]) or len(columns) != 1:
                broken.append(f"{page.name}: {block[0][:60]}")
    assert len(pages) >= 7 and not broken, broken
