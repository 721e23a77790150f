"""What a strategy, a generator or a command does with input a user could well give: prompts that are not text or
class indices, class indices from numpy or torch, seeds outside the range, checkpoints that do not fit together,
configs out of range. Each is refused in one line naming the value, or accepted and used as it reads."""

import json
import re

import numpy as np
import pytest
import torch
from tiny_families import randomised

from arscale.cli import main
from arscale.errors import ArscaleError
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.seeding import check_seed
from arscale.search.base import make_strategy, strategy_extras


def tiny_c2i(vocab_size: int = 32, codebook_size: int = 32) -> LlamaGenGenerator:
    gpt = LlamaGenGPT(LlamaGenConfig("c2i", dim=64, n_layer=2, n_head=2, vocab_size=vocab_size, block_size=16,
                                     num_classes=10))
    vq = VQGAN(VQGANConfig(codebook_size=codebook_size, codebook_embed_dim=4, z_channels=32, ch=32, ch_mult=(1, 2),
                           num_res_blocks=1, image_size=8))
    return LlamaGenGenerator(randomised(gpt, 4), randomised(vq, 5), cfg=2.0, top_k=16, top_p=1.0)


@pytest.fixture(scope="module")
def c2i():
    return tiny_c2i()


@pytest.mark.parametrize("prompt, shown", [(None, "None (the unconditional branch"), (True, "True (bool)"),
                                           (2.5, "2.5 (float)"), (["a"], "['a'] (list)")])
@pytest.mark.parametrize("strategy", ["raw", "scaling-ar"])
def test_a_prompt_that_is_neither_text_nor_a_class_index_is_refused(c2i, prompt, shown, strategy):
    with pytest.raises(ArscaleError, match="prompt 1 is " + re.escape(shown)):
        make_strategy(strategy).run(c2i, [3, prompt], 2, seed=0)


def test_class_indices_from_numpy_torch_or_digits_are_the_same_classes(c2i):
    raw = make_strategy("raw")
    plain = raw.run(c2i, [3, 7], 1, seed=1)
    for labels in ([np.int64(3), np.int32(7)], [torch.tensor(3), torch.tensor(7)], ["3", " 7"]):
        other = raw.run(c2i, labels, 1, seed=1)
        assert other.prompts == [3, 7]
        assert all((a[0].image == b[0].image).all() for a, b in zip(plain.candidates, other.candidates, strict=True))
    # every strategy reports the prompts as the generator read them
    assert make_strategy("scaling-ar").run(c2i, [3, "7"], 2, seed=1).prompts == [3, 7]
    with pytest.raises(ArscaleError, match=r"class label must be an integer in \[0, 10\), got 10"):
        raw.run(c2i, [np.int64(10)], 1)


def test_the_confidence_plot_titles_a_class_index(c2i, tmp_path):
    strategy = make_strategy("scaling-ar")
    paths = strategy_extras(strategy)(strategy.run(c2i, [5, 6], 3, seed=0), tmp_path)
    assert [p.name for p in paths] == ["confidence_00000.png", "confidence_00001.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_a_text_model_refuses_a_number_in_one_line():
    gen = random_shapeworld_ar(1, grid=8, vocab_size=32, cfg=2.0)
    with pytest.raises(ArscaleError, match=r"ShapeWorld models take text prompts .* got 3 \(int\)"):
        make_strategy("raw").run(gen, [3], 1)


def test_a_transformer_predicting_codes_the_tokenizer_lacks_is_refused():
    with pytest.raises(ArscaleError, match="predicts 64 codes but the tokenizer's codebook has 32"):
        tiny_c2i(vocab_size=64, codebook_size=32)
    assert tiny_c2i(vocab_size=16, codebook_size=32).vocab_size == 16  # fewer codes used than exist is fine


def test_seeds_are_whole_numbers_in_range(c2i):
    assert check_seed(np.int64(5)) == 5 and check_seed(2**64 - 1) == 2**64 - 1
    for bad, needle in ((-1, r"lie in \[0, 2\*\*64\), got -1"), (2**64, "got 18446744073709551616"),
                        (1.5, "whole number, got 1.5"), ("0", "whole number, got '0'"), (None, "got None"),
                        (True, "got True")):
        with pytest.raises(ArscaleError, match=needle):
            make_strategy("raw").run(c2i, [1], 1, seed=bad)


@pytest.mark.parametrize("command", ["generate", "bench"])
def test_a_negative_seed_stops_a_command_before_it_writes(command, tmp_path, capsys):
    argv = ["generate", "a photo of a red circle"] if command == "generate" else ["bench", "--prompts", "draw:1:5"]
    assert main([*argv, "--seed", "-3", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "seed must lie in [0, 2**64), got -3" in err
    assert not (tmp_path / "out").exists()


def test_a_failed_generate_leaves_no_empty_folder_but_keeps_one_that_was_there(tmp_path, capsys):
    assert main(["generate", "a photo of a red blorp", "--out", str(tmp_path / "new")]) == 2
    assert "unknown word 'blorp'" in capsys.readouterr().err and not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    assert main(["generate", "a photo of a red blorp", "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine").is_dir()


@pytest.mark.parametrize("strategy, config, needle", [
    ("scaling-ar", {"recovery_window": -3}, "recovery_window must be >= 0, got -3"),
    ("scaling-ar", {"variance_window": 0}, "variance_window must be >= 1, got 0"),
    ("importance", {"lam": -1.0}, r"lam \(λ\) must be a finite number ≥ 0, got -1.0"),
    ("tts-var", {"lam": float("nan")}, r"lam \(λ\) must be a finite number ≥ 0, got nan"),
    ("importance", {"lam": float("inf")}, r"lam \(λ\) must be a finite number ≥ 0, got inf"),
    ("raw", {"lam": 3}, "RawConfig has no fields: this strategy takes no config, got .lam."),
    ("importance", {"checkpoints": [0.5, 1.0]}, r"checkpoints must be fractions in \(0, 1\) .* got \[1.0\]"),
])
def test_configs_out_of_range_name_the_field_and_value(strategy, config, needle):
    with pytest.raises(ArscaleError, match=needle):
        make_strategy(strategy, config)


def test_importance_says_which_rows_each_resampling_kept(c2i):
    res = make_strategy("importance", {"reward": "brightness"}).run(c2i, [1, 2], 4, seed=0, scorer=_Brightness())
    ops = res.telemetry["operations"]
    assert len(ops) == 2
    for op in ops:
        assert len(op["kept"]) == len(op["kept_nodes"]) == 8
        # a kept row keeps its node the first time it is drawn; a second draw is a new child of it
        for row, node in zip(op["kept"], op["kept_nodes"], strict=True):
            parent = op["nodes"][row]
            assert node == parent or res.tree.parent[node] == parent


def test_summary_json_is_strict_json_without_a_reward(tmp_path):
    out = tmp_path / "b"
    assert main(["bench", "--model", "shapeworld-ar", "--scorer", "", "--prompts", "draw:1:5", "--limit", "2",
                 "--strategies", "raw", "--n", "1", "--threads", "1", "--quiet", "--out", str(out)]) == 0

    def refuse(constant):
        raise AssertionError(f"bare {constant} in strict JSON")

    summary = json.loads((out / "raw" / "n1" / "summary.json").read_text(), parse_constant=refuse)
    assert summary["mean_reward"] is None and summary["prompts_done"] == 2
    for record in out.glob("raw/n1/*/record.json"):
        json.loads(record.read_text(), parse_constant=refuse)


def test_a_limit_that_drops_tags_says_so(tmp_path, capsys):
    assert main(["bench", "--model", "shapeworld-ar", "--scorer", "", "--prompts", "draw:1:5", "--limit", "2",
                 "--strategies", "raw", "--n", "1", "--threads", "1", "--quiet", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "note: --limit 2 takes the first prompts in suite order, which leaves out the tags" in err
    assert "counting" in err and "single_object" not in err.split("leaves out the tags")[1].split(":")[0]


class _Brightness:
    name, input_size = "brightness", 8
    reads_prompts = False

    def reward(self, images, prompts):
        return images.mean(dim=(1, 2, 3))
