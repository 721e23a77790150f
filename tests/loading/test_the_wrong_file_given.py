"""The wrong file given to a loader: each is refused in one line that names the file and what is wrong (an
ArscaleError, so the CLI prints no traceback), and nothing loads silently with random weights."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from arscale.errors import ArscaleError
from arscale.generators import loading
from arscale.generators.registry import load_generator
from arscale.scorers.base import load_scorer
from arscale.scorers.shapeworld import WEIGHTS_DIR as REWARD_DIR
from arscale.scorers.shapeworld import load_reward

SHIPPED = REWARD_DIR.parent  # arscale/weights: shapeworld-var, shapeworld-ar, shapeworld-reward


def _copy(name: str, tmp_path):
    """A copy of a shipped weights folder under a path with a space and a non-ASCII letter."""
    return shutil.copytree(SHIPPED / name, tmp_path / f"my weights é/{name}")


def _edit_config(folder, change):
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(change(config)))


def _one_line(err, folder) -> str:
    message = str(err.value)
    assert "\n" not in message and str(folder) in message
    return message


@pytest.mark.parametrize("how", ["tensor", "config"])
def test_a_reward_folder_whose_sizes_disagree_is_one_line_naming_the_tensor(tmp_path, how):
    """A reward folder with one reshaped tensor, or a config.json of another image size, names the tensor."""
    folder = _copy("shapeworld-reward", tmp_path)
    if how == "tensor":
        state = load_file(str(folder / "model.safetensors"))
        state["image.pos"] = torch.zeros(1, 65, state["image.pos"].shape[-1])
        save_file(state, str(folder / "model.safetensors"))
    else:
        _edit_config(folder, lambda c: {**c, "image_size": 32})  # 4x4 patches, not the file's 8x8
    with pytest.raises(ArscaleError, match="wrong shape.*image.pos") as err:
        load_reward(weights=folder)
    _one_line(err, folder)


@pytest.mark.parametrize("model,change", [
    ("shapeworld-ar", lambda c: {**c, "transformer": {**c["transformer"], "n_head": 3}}),  # 128 / 3
    ("shapeworld-var", lambda c: [c]),  # a JSON list around the config
    ("shapeworld-reward", lambda c: {**c, "heads": 5}),  # 96 / 5
    ("shapeworld-ar", lambda c: {**c, "text": {**c["text"], "max_len": c["text"]["max_len"] + 1}}),  # model's check
])
def test_a_config_json_that_cannot_be_built_is_one_line_naming_the_folder(tmp_path, model, change):
    """An edited config.json the model cannot be built from is an ArscaleError naming its folder."""
    folder = _copy(model, tmp_path)
    _edit_config(folder, change)
    with pytest.raises(ArscaleError) as err:
        load_reward(weights=folder) if model == "shapeworld-reward" else load_generator(model, weights=folder)
    _one_line(err, folder)


def test_a_folder_in_place_of_model_safetensors_says_so(tmp_path):
    """model.safetensors that is a folder is named as a folder, not as 'No such device (os error 19)'."""
    folder = _copy("shapeworld-ar", tmp_path)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").mkdir()
    with pytest.raises(ArscaleError, match="is a folder") as err:
        load_generator("shapeworld-ar", weights=folder)
    _one_line(err, folder / "model.safetensors")


class _RemovesAFile:
    """Unpickled, it would delete the file it names (a module torch blocks outright: os / posix)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.remove, (self.path,)


def test_a_checkpoint_pickling_a_blocked_function_is_refused_as_such_without_running_it(tmp_path):
    """A .pth whose pickle calls os.remove is intact: it is refused for storing that object, and never runs it."""
    sentinel = tmp_path / "keep.txt"
    sentinel.write_text("still here")
    path = tmp_path / "var_d16.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "hook": _RemovesAFile(sentinel)}, path)
    with pytest.raises(ArscaleError, match=r"stores \S*remove objects beside its tensors") as err:
        loading.read_checkpoint(path)
    assert sentinel.exists() and "damaged" not in str(err.value)
    _one_line(err, path)


@pytest.mark.parametrize("content", [[torch.zeros(2)], torch.zeros(2), {}])
def test_a_checkpoint_that_holds_no_state_dict_names_its_file(tmp_path, content):
    """A .pth holding a list, a bare tensor or an empty dict names that file (VAR and Infinity read two)."""
    path = tmp_path / "vae_ch160v4096z32.pth"
    torch.save(content, path)
    with pytest.raises(ArscaleError, match="not a state dict") as err:
        loading.unwrap(loading.read_checkpoint(path), loading.GPT_CONTAINERS)
    _one_line(err, path)


# -- transformers-based scorers (CLIP, PickScore, DINOv2; the aesthetic tower and Flan-T5 load alike) -----------
def _tiny_clip(folder):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    sizes = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4}
    config = transformers.CLIPConfig(text_config={**sizes, "vocab_size": 40, "max_position_embeddings": 16},
                                     vision_config={**sizes, "image_size": 32, "patch_size": 8}, projection_dim=16)
    transformers.CLIPModel(config).save_pretrained(folder)
    return folder


def _tiny_dinov2(folder):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(1)
    config = transformers.Dinov2WithRegistersConfig(image_size=28, patch_size=7, hidden_size=32, num_hidden_layers=1,
                                                     num_attention_heads=4, mlp_ratio=2, num_register_tokens=4)
    transformers.Dinov2WithRegistersModel(config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("how", ["a weight missing", "a DINOv2 folder"])
def test_a_clip_folder_without_all_its_weights_is_refused(tmp_path, monkeypatch, how):
    """A CLIP folder lacking one weight, or another model's folder, is refused instead of loading random weights
    (`hf.from_pretrained` loads the CLIP, PickScore and aesthetic towers, DINOv2 and Flan-T5)."""
    from arscale.scorers import hf

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    transformers = pytest.importorskip("transformers")
    if how == "a weight missing":
        folder = _tiny_clip(tmp_path / "clip")
        hf.from_pretrained(transformers.CLIPModel, folder, what="CLIP model")  # intact, it loads
        state = load_file(str(folder / "model.safetensors"))
        del state["text_model.final_layer_norm.weight"]
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        folder = _tiny_dinov2(tmp_path / "dino")
    with pytest.raises(ArscaleError) as err:
        hf.from_pretrained(transformers.CLIPModel, folder, what="CLIP model")
    _one_line(err, folder)


@pytest.mark.parametrize("how", ["truncated", "a CLIP folder as DINOv2"])
def test_a_damaged_or_foreign_transformers_folder_is_one_line(tmp_path, monkeypatch, how):
    """A cut-off model.safetensors (a partial download) or a CLIP folder given to dinov2 is an ArscaleError."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if how == "truncated":
        folder = _tiny_dinov2(tmp_path / "dino")
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    else:
        folder = _tiny_clip(tmp_path / "clip")
    with pytest.raises(ArscaleError) as err:
        load_scorer("dinov2", weights=folder, input_size=28)
    _one_line(err, folder)
