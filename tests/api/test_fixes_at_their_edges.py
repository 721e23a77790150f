"""Refusals and restores at their edges: each test fails when one part of a check or a restore is weakened (a
dropped condition, an off-by-one, a partly restored state), where the tests beside the fixes let it through."""

from __future__ import annotations

import json
import math
import signal

import pytest
import torch
from cli_output import one_error_line
from tiny_families import BrightnessScorer, fake_t5, tiny_llamagen, tiny_var

from arscale.bench import geneval_layout as gl
from arscale.bench.suites import load_prompts
from arscale.cli import main
from arscale.errors import ArscaleError
from arscale.generators.next_scale.generator import SamplingConfig
from arscale.generators.next_scale.infinity import InfinitySampling
from arscale.generators.next_token.llamagen import LlamaGenGenerator
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer
from arscale.generators.registry import load_generator
from arscale.search.tts_var import TTSVAR, TTSVARConfig
from arscale.shapeworld import metadata_from_prompt, render
from arscale.shapeworld.scene import Scene, SceneObject
from arscale.train import checkpoint

PROMPT = "a photo of a red circle"



def test_merge_refuses_an_empty_input_beside_a_real_one(tmp_path, monkeypatch, capsys):
    """`bench merge SHARD "" --out M` (one unset variable among several) is refused, not merged from the cwd."""
    here = tmp_path / "here"
    here.mkdir()
    (here / "manifest.json").write_text('{"timings": {}}', encoding="utf-8")
    monkeypatch.chdir(here)
    merged = tmp_path / "merged"
    assert main(["bench", "merge", str(here), "", "--out", str(merged)]) == 2
    assert "merge input is empty" in one_error_line(capsys)
    assert not merged.exists()


def test_a_plain_txt_prompt_file_splits_only_at_newlines(tmp_path):
    """A plain .txt prompt holding U+2028 stays one prompt, as the JSONL and CompBench readers keep it."""
    f = tmp_path / "prompts.txt"
    f.write_text("a dog\u2028on a mat\x85\r\na cat\n", encoding="utf-8")
    kind, prompts = load_prompts(str(f))
    assert kind == "plain" and [p.prompt for p in prompts] == ["a dog\u2028on a mat", "a cat"]  # strip() takes U+0085


def test_main_gives_back_the_callers_cuda_random_states(fake_cuda, monkeypatch, tmp_path):
    """On an initialised CUDA machine `main` puts back the per-GPU RNG states it found (a trainer reseeds them)."""
    fake_cuda(2)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    states, restored = [torch.tensor([1], dtype=torch.uint8), torch.tensor([2], dtype=torch.uint8)], []
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda value: restored.append(value))
    taken = tmp_path / "a-file"
    taken.write_text("", encoding="utf-8")
    assert main(["generate", PROMPT, "--device", "cuda:1", "--out", str(taken)]) == 2  # a bad --out
    assert restored == [states]


def test_main_that_starts_cuda_leaves_its_generators_seeded_as_the_callers_stream(fake_cuda, monkeypatch, tmp_path):
    """A command that is first to start CUDA leaves its generators as the caller's first CUDA use would have found
    them: seeded with the CPU stream's seed (`torch.manual_seed` seeds both), not as the command left them."""
    started, reseeded = [], []
    current = fake_cuda(2)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: bool(current))  # made current: started
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current[-1] if current else 0)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: started.append("read") or [])
    torch.manual_seed(1234)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: reseeded.append(seed))
    taken = tmp_path / "a-file"
    taken.write_text("", encoding="utf-8")
    assert main(["generate", PROMPT, "--device", "cuda:1", "--out", str(taken)]) == 2  # a bad --out
    assert current[0] == 1 and started == [] and reseeded == [1234]


def _layout(root):
    gl.write_prompt(root, 0, metadata_from_prompt("a photo of a circle"),
                    [render(Scene([SceneObject("circle", "red", 16, 20, 20)]))])
    return root


def test_eval_that_cannot_write_its_summary_is_one_line(tmp_path, capsys):
    """`eval shapeworld DIR` where summary.json cannot be written (a folder in the way) is one line naming it."""
    root = _layout(tmp_path / "gt")
    (root / "summary.json").mkdir()
    assert main(["eval", "shapeworld", str(root), "--no-progress"]) == 2
    assert "summary.json" in one_error_line(capsys)


def test_generate_that_cannot_write_its_grid_is_one_line(tmp_path, capsys):
    """`generate` whose grid.png cannot be written (a folder in the way) is one line naming grid.png, exit 2."""
    out = tmp_path / "g"
    (out / "grid.png").mkdir(parents=True)
    assert main(["generate", PROMPT, "--strategy", "raw", "--n", "1", "--out", str(out)]) == 2
    assert "grid.png" in one_error_line(capsys)


def test_next_scale_sampling_takes_cfg_zero_and_refuses_a_cfg_that_is_no_number():
    """cfg 0 (a finite number ≥ 0) is accepted; cfg None or "high" is refused naming cfg."""
    assert SamplingConfig(cfg=0.0).cfg == 0.0
    for bad in (None, "high"):
        with pytest.raises(ArscaleError, match="invalid sampling: cfg"):
            SamplingConfig(cfg=bad)


def test_infinity_refuses_a_bool_top_k_and_counts_per_scale_lists_exactly():
    """top_k=True is refused; a 12-entry cfg / tau list is refused for 13 scales, a 13-entry one is accepted."""
    with pytest.raises(ArscaleError, match="top_k"):
        InfinitySampling(top_k=True)
    for what in ("cfg", "tau"):
        with pytest.raises(ArscaleError, match=f"{what} list has 12 entries for 13 scales"):
            InfinitySampling(**{what: [0.5] * 12})
        assert len(getattr(InfinitySampling(**{what: [0.5] * 13}), what)) == 13


@pytest.mark.parametrize("option", [{"top_k": 2.5}, {"top_p": math.nan}], ids=["top_k", "top_p"])
def test_infinity_loader_refuses_top_k_top_p_before_its_files_by_their_message(option, tmp_path_factory):
    """The Infinity loader refuses a bad top_k / top_p with that option's message before it looks for weights
    (matched on the message: a folder name holding "top_k" would match the missing-weights error too)."""
    weights = tmp_path_factory.mktemp("weights")
    with pytest.raises(ArscaleError, match=f"Infinity's {next(iter(option))} must be"):
        load_generator("infinity-2b", weights=str(weights), text_encoder=fake_t5(128), **option)


def test_advance_refuses_bool_tokens():
    """Boolean tokens are refused like float ones, not written as codes 1 and 0."""
    gen = random_shapeworld_ar(0, grid=4, vocab_size=32, cfg=2.0)
    traj = gen.start([PROMPT], 2, seed=3)
    with pytest.raises(ArscaleError, match="integer"):
        gen.advance(traj, torch.tensor([True, False]))
    assert traj.step == 0


@pytest.mark.parametrize("value", [None, math.nan, True])
def test_llamagen_cfg_interval_is_refused_by_its_own_message(value, tmp_path_factory):
    """cfg_interval None / NaN / True is refused with cfg_interval's message, by the generator and the loader
    (matched on the message, not on a folder name that happens to hold "cfg_interval")."""
    gen = tiny_llamagen()
    with pytest.raises(ArscaleError, match="cfg_interval must be a number"):
        LlamaGenGenerator(gen.gpt, gen.tokenizer, cfg=2.0, cfg_interval=value)
    weights = tmp_path_factory.mktemp("weights")
    with pytest.raises(ArscaleError, match="cfg_interval must be a number"):
        load_generator("llamagen-c2i-b", weights=str(weights), cfg_interval=value)


@pytest.mark.parametrize("shape", [(1, 3, 32, 64), (1, 3, 64, 32)], ids=["wider", "taller"])
def test_vq_tokenizer_refuses_an_image_wrong_in_one_side_only(shape):
    """A 32x32 tokenizer refuses a 32x64 or a 64x32 image, not only one wrong in both sides."""
    torch.manual_seed(0)
    tok = VQTokenizer(VQConfig(image_size=32, codebook_size=16, ch=8, z_channels=16)).eval()
    with pytest.raises(ArscaleError, match="32×32"):
        tok.encode(torch.rand(*shape))


class _SmallFeatures(BrightnessScorer):
    """A feature scorer at another input size than the reward's (16): records the sizes it is given."""

    name, input_size = "small-features", 12

    def __init__(self):
        self.sizes = []

    def features(self, images):
        self.sizes.append(tuple(images.shape[-2:]))
        return super().features(images)


def test_tts_var_history_all_decodes_features_at_the_feature_scorers_size():
    """With history="all", a clustering scale reuses the reward decode only at the same size: features still get
    the feature scorer's 12x12 images when the reward scorer reads 16x16."""
    torch.manual_seed(0)
    feats = _SmallFeatures()
    cfg = TTSVARConfig(batch=[4, 4, 2, 2, 1], cluster_at=[1], resample_at=[3], potential="max", history="all",
                       record_previews=False)
    TTSVAR(cfg, feature_scorer=feats).run(tiny_var(), [1, 2], 4, seed=0, scorer=BrightnessScorer())
    assert feats.sizes and set(feats.sizes) == {(12, 12)}


def test_a_shapeworld_var_cast_to_bfloat16_still_decodes_float32_images():
    """After `.to(torch.bfloat16)`, finish() gives float32 images, which a scorer with fp32 weights can read."""
    gen = load_generator("shapeworld-var").to(torch.bfloat16)
    traj = gen.start([PROMPT], 1, seed=0)
    while traj.step < gen.num_scales:
        gen.step(traj)
    images = gen.finish(traj)
    assert images.dtype == torch.float32 and images.shape == (1, 3, 64, 64)


def test_holding_ctrl_c_delivers_a_held_ctrl_c_to_the_handler_it_replaced():
    """A Ctrl-C during a save reaches the handler that was in place (the trainer's), after the block, not lost."""
    got = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        with checkpoint._holding_ctrl_c():
            signal.raise_signal(signal.SIGINT)
            assert got == []  # held while the files are written
        assert got == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_holding_ctrl_c_puts_the_default_back_for_a_handler_python_cannot_restore(monkeypatch):
    """Where the SIGINT handler was not installed from Python (`signal.signal` gives None), the default is put back."""
    real, calls = signal.signal, []

    def as_if_installed_by_c(signum, handler):
        calls.append(handler)
        before = real(signum, handler)
        return None if len(calls) == 1 else before

    original = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(signal, "signal", as_if_installed_by_c)
    try:
        with checkpoint._holding_ctrl_c():
            pass
        assert calls[-1] is signal.SIG_DFL
    finally:
        real(signal.SIGINT, original)


def test_a_trainer_run_after_one_stopped_by_ctrl_c_finishes_with_0(tmp_path, monkeypatch):
    """In one process, a trainer stopped by Ctrl-C exits 130, and the next trainer that runs to its end exits 0."""
    from arscale.train import scene_stream

    torch.manual_seed(0)
    sample, calls = scene_stream.ShapeWorldStream.sample, []

    def sample_then_ctrl_c(self, n):
        calls.append(n)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return sample(self, n)

    monkeypatch.setattr(scene_stream.ShapeWorldStream, "sample", sample_then_ctrl_c)
    args = ["train", "shapeworld-tokenizer", "--batch-size", "2"]
    assert main([*args, "--steps", "40", "--out", str(tmp_path / "stopped")]) == 130
    assert main([*args, "--steps", "1", "--out", str(tmp_path / "whole")]) == 0
    state = tmp_path / "whole" / "train_state" / "shapeworld-tokenizer" / "state.json"
    assert json.loads(state.read_text(encoding="utf-8"))["step"] == 1
