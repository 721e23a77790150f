"""The model registry and checkpoint loading glue: cases a mutation audit found untested (no weights needed)."""

from __future__ import annotations

import importlib
import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators import loading
from arscale.generators.loading import is_hub_id, shapeworld_folder_holds
from arscale.generators.registry import MODELS, load_generator


def test_every_documented_model_is_registered_and_its_factory_exists():
    documented = {"shapeworld-var", "shapeworld-ar", "var-d16", "var-d20", "var-d24", "var-d30", "var-d36",
                  "infinity-2b", "llamagen-c2i-b", "llamagen-c2i-l", "llamagen-c2i-l-384", "llamagen-c2i-xl",
                  "llamagen-c2i-xxl", "llamagen-c2i-3b", "llamagen-t2i-xl"}
    assert documented <= set(MODELS)
    for name, target in MODELS.items():
        module, _, factory = target.partition(":")
        assert callable(getattr(importlib.import_module(module), factory, None)), name


def test_an_unknown_model_is_a_one_line_error_listing_the_known_ones():
    with pytest.raises(ArscaleError, match="unknown model 'shapeworld-vaar'; choose from .*shapeworld-var"):
        load_generator("shapeworld-vaar")


@pytest.mark.parametrize("text", ["../weights", ".cache/model", "./x"])
def test_relative_paths_that_do_not_exist_are_not_hub_ids(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # none of them exists here
    assert not is_hub_id(text)


def test_a_hub_id_is_owner_slash_repo():
    assert is_hub_id("FoundationVision/var") and not is_hub_id("a/b/c") and not is_hub_id(None)


# -- checkpoint reading and strict loading -------------------------------------------------------------

def test_a_safetensors_file_is_read_without_torch_load(tmp_path, monkeypatch):
    # torch >= 2.1 is supported, and older torch.load cannot read safetensors: the suffix must pick the reader
    save_file({"w": torch.ones(2)}, str(tmp_path / "m.safetensors"))

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load used for a safetensors file")

    monkeypatch.setattr(loading.torch, "load", no_pickle)
    assert torch.equal(loading.read_checkpoint(tmp_path / "m.safetensors")["w"], torch.ones(2))


def test_unwrap_skips_a_container_key_that_holds_no_dict():
    sd = {"w": torch.ones(2)}
    assert loading.unwrap({"model": "ema weights elsewhere", "state_dict": sd}, loading.GPT_CONTAINERS) == sd


def test_upcast_leaves_integer_buffers_alone():
    got = loading.upcast({"h": torch.ones(2, dtype=torch.float16), "i": torch.arange(3)})
    assert got["h"].dtype == torch.float32 and got["i"].dtype == torch.int64


def test_a_zero_k_bias_with_a_single_nonzero_entry_is_refused():
    model = nn.Linear(2, 2)
    sd = dict(model.state_dict())
    loading.load_strict(model, {**sd, "a.zero_k_bias": torch.zeros(4)}, ignore=("*.zero_k_bias",))
    one = torch.zeros(4)
    one[2] = 0.5
    with pytest.raises(ArscaleError, match="a.zero_k_bias is expected to be all zero"):
        loading.load_strict(model, {**sd, "a.zero_k_bias": one}, ignore=("*.zero_k_bias",))


def test_vae_keys_in_bare_form_are_matched_to_the_wrapped_names():
    expected = ["enc.conv1.conv.weight", "enc.norm.norm.bias", "quantize.embed"]
    given = {"enc.conv1.weight": torch.ones(1), "enc.norm.bias": torch.ones(1), "quantize.embed": torch.ones(1)}
    assert set(loading.match_vae_keys(given, expected)) == set(expected)


def test_block_chunks_with_a_chunk_missing_are_refused():
    sd = {f"block_chunks.{c}.module.{j}.w": torch.ones(1) for c in (0, 2) for j in (0, 1)}  # chunk 1 lost
    with pytest.raises(ArscaleError, match="not a full 3x2 grid"):
        loading.flatten_block_chunks(sd)


def test_a_path_from_the_t5_environment_variable_is_named(tmp_path, monkeypatch):
    t5 = str(tmp_path / "t5-here")
    (tmp_path / "audit_failing_model.py").write_text(
        "import os\nfrom arscale.errors import ArscaleError\n\n\n"
        "def load(**options):\n    raise ArscaleError(f\"cannot read {os.environ['ARSCALE_T5_WEIGHTS']}\")\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(MODELS, "audit-failing", "audit_failing_model:load")
    monkeypatch.setenv("ARSCALE_T5_WEIGHTS", t5)
    with pytest.raises(ArscaleError, match=r"\(the path comes from \$ARSCALE_T5_WEIGHTS=.*t5-here\)"):
        load_generator("audit-failing", device="cpu")


def test_a_file_that_misses_only_some_keys_lists_them():
    model = nn.Linear(2, 2)
    with pytest.raises(ArscaleError, match="does not fit the model; missing keys: bias") as err:
        loading.load_strict(model, {"weight": torch.zeros(2, 2)})
    assert "none of the model's keys" not in str(err.value)


def test_a_training_state_folder_says_which_model_it_trains(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"step": 10, "config": {"text_encoder": {}, "sampling": {}}}))
    assert shapeworld_folder_holds(tmp_path) == "a ShapeWorld-VAR model"
