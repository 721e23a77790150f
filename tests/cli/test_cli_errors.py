"""Command-line errors are one line: an --out a file is in the way of (checked before any work), a usage error."""

import pytest

from arscale.cli import main


@pytest.mark.parametrize("argv", [
    ["generate", "a photo of a red circle", "--n", "1"],
    ["bench", "--prompts", "draw:1:5", "--strategies", "raw", "--n", "1"],
    ["train", "shapeworld-ar", "--steps", "1"],
    ["shapeworld", "render", "--prompts", "shapeworld-v1-eval"],
])
@pytest.mark.parametrize("where", ["file", "below a file"])
def test_an_output_folder_blocked_by_a_file_is_one_line(argv, where, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    out = blocker if where == "file" else blocker / "sub"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err
    assert ("exists and is not a folder" if where == "file" else "cannot create --out") in err
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("argv, needle", [
    (["generate", "a photo of a red circle", "--strategy", "bst-of-n"], "invalid choice: 'bst-of-n'"),
    (["generate", "a photo of a red circle", "--n", "eight"], "invalid int value: 'eight'"),
    (["frob"], "invalid choice: 'frob'"),
])
def test_usage_errors_are_one_line_too(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "--help" in err


def test_a_strategy_config_is_inline_json_or_an_existing_file(tmp_path, capsys):
    from arscale.errors import ArscaleError
    from arscale.search.base import read_config

    with pytest.raises(ArscaleError, match="'missing.json' is neither inline JSON"):
        read_config("missing.json")
    with pytest.raises(ArscaleError, match="not valid JSON .*line 1 column 9"):
        read_config('{"lam": }')
    with pytest.raises(ArscaleError, match="a JSON object of fields, got list"):
        read_config(str(tmp_path / "c.json")) if (tmp_path / "c.json").write_text("[1]") else None
    (tmp_path / "ok.json").write_text('{"lam": 2}')
    assert read_config(str(tmp_path / "ok.json")) == {"lam": 2} == read_config(' {"lam": 2}')
    assert main(["bench", "--strategies", "raw", "--config", "raw=nope.json", "--out", str(tmp_path / "b")]) == 2
    assert "--config raw: 'nope.json' is neither" in capsys.readouterr().err and not (tmp_path / "b").exists()


@pytest.mark.parametrize("option", ["--batch-prompts", "--threads"])
def test_bench_counts_below_one_are_refused(option, tmp_path, capsys):
    assert main(["bench", "--prompts", "draw:1:5", "--strategies", "raw", option, "0", "--out", str(tmp_path)]) == 2
    assert f"{option} must be at least 1, got 0" in capsys.readouterr().err


def test_an_interrupted_bench_keeps_its_time_in_the_manifest(tmp_path, monkeypatch):
    import json

    from arscale.bench.runner import Bench

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Bench, "run", interrupted)
    assert main(["bench", "--prompts", "draw:1:5", "--strategies", "raw", "--n", "1", "--scorer", "",
                 "--out", str(tmp_path)]) == 130
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["timings"]["wall_seconds"] > 0 and "finished" not in manifest["timings"]
    assert manifest["device"] == "cpu" and manifest["suite"]["sha256"] and "numpy_version" in manifest


def test_bench_merge_into_a_blocked_out_is_one_line(tmp_path, capsys):
    shard = tmp_path / "shard"
    shard.mkdir()
    (shard / "manifest.json").write_text('{"timings": {}}')
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert main(["bench", "merge", str(shard), "--out", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "exists and is not a folder" in err


def test_a_checkpoint_files_companions_are_hashed_with_it(tmp_path):
    from arscale.bench.manifest import weight_hashes

    (tmp_path / "var_d16.pth").write_bytes(b"transformer")
    (tmp_path / "vae_ch160v4096z32.pth").write_bytes(b"vae")
    (tmp_path / "model.ckpt").write_bytes(b"odd suffix")
    assert set(weight_hashes(tmp_path / "var_d16.pth")) == {"var_d16.pth", "vae_ch160v4096z32.pth"}
    assert set(weight_hashes(tmp_path / "model.ckpt")) == {"var_d16.pth", "vae_ch160v4096z32.pth", "model.ckpt"}


def _one_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(n in err for n in needles), err
    return err


def test_bench_refuses_a_folder_that_is_not_a_benchs(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["bench", "--prompts", "draw:1:5", "--strategies", "raw", "--n", "1", "--out", str(tmp_path)]) == 2
    _one_line(capsys, "holds other files and no bench manifest")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_first_bench_that_fails_on_its_prompts_leaves_nothing_to_resume(tmp_path, capsys):
    bad = tmp_path / "dragon.jsonl"
    bad.write_text('{"prompt": "a photo of a dragon", "tag": "single_object", "include": []}\n')
    out = tmp_path / "b"
    argv = ["bench", "--strategies", "raw", "--n", "1", "--scorer", "", "--threads", "1", "--quiet", "--out", str(out)]
    assert main([*argv, "--prompts", f"geneval:{bad}"]) == 2
    _one_line(capsys, "unknown word 'dragon'")
    assert not out.exists()  # no manifest, not even the folder: the mended command starts afresh
    weights = tmp_path / "no-such-weights"
    assert main([*argv, "--prompts", "shapeworld-v1-eval", "--limit", "1", "--model-weights", str(weights)]) == 2
    assert not out.exists()  # the model failed to load into an --out this run made
    out.mkdir()
    assert main([*argv, "--prompts", "shapeworld-v1-eval", "--limit", "1", "--model-weights", str(weights)]) == 2
    assert out.is_dir()  # a folder that was there stays
    bad.write_text('{"prompt": "a photo of a circle", "tag": "single_object", "include": [{"class": "circle", "count": 1}]}\n')
    assert main([*argv, "--prompts", f"geneval:{bad}"]) == 0


@pytest.mark.parametrize("argv, needle", [
    (["bench", "--model", "foo"], "unknown model 'foo'; choose from shapeworld-var"),
    (["bench", "--n", "1,,2"], "--n expects comma-separated integers"),
    (["bench", "--strategies", "raw,,best-of-n"], "empty or repeated label"),
    (["bench", "--strategies", "raw@"], "name the variant after @"),
    (["generate", "a photo of a circle", "--cfg", "inf"], "--cfg must be a finite number ≥ 0, got inf"),
    (["generate", "a photo of a circle", "--out", ""], "--out is empty"),
    (["bench", "--n", "2,2"], "--n names a budget twice: '2,2'"),
    (["bench", "--prompts", "draw:0:1"], "draw:PER_TAG:SEED takes PER_TAG ≥ 1 prompts per tag"),
    (["shapeworld", "suite", "--per-tag", "0"], "--per-tag must be at least 1"),
    (["generate", "a photo of a circle", "--strategy", "best-of-n", "--config", "[1, 2]"],
     "a config is a JSON object of fields {...}, got a list"),
])
def test_values_a_command_cannot_use_are_one_line(argv, needle, tmp_path, capsys):
    if "--out" not in argv:
        argv = [*argv, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    _one_line(capsys, needle)


def test_a_variant_without_its_config_is_noted(tmp_path, capsys):
    from arscale.bench.runner import parse_runs

    specs = parse_runs("raw,best-of-n@big")
    assert [s.label for s in specs] == ["raw", "best-of-n@big"] and specs[1].config == {}
    assert "note: best-of-n@big has no --config best-of-n@big=...: it runs best-of-n's defaults" in capsys.readouterr().err


def test_a_prompt_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    latin = tmp_path / "latin1.jsonl"
    head = '{"prompt": "a photo of a caf'
    latin.write_bytes((head + '\xe9", "tag": "x", "include": []}\n').encode("latin-1"))
    assert main(["bench", "--prompts", f"geneval:{latin}", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, f"is not UTF-8 text (byte {len(head)})")


def test_damaged_weights_are_named_in_one_line(tmp_path, capsys):
    import shutil

    from arscale.generators.next_token.shapeworld import WEIGHTS_DIR

    folder = tmp_path / "ar"
    shutil.copytree(WEIGHTS_DIR, folder)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:1000])  # a copy cut short
    argv = ["generate", "a photo of a circle", "--model", "shapeworld-ar", "--weights", str(folder), "--out",
            str(tmp_path / "o")]
    assert main(argv) == 2
    _one_line(capsys, "model.safetensors is not a readable safetensors file", "partly copied")
    (folder / "model.safetensors").write_bytes(data)
    (folder / "config.json").write_text('{"transformer": ')
    assert main(argv) == 2
    _one_line(capsys, "config.json is not valid JSON")


def test_reruns_into_one_folder_say_what_is_left_from_before(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["generate", "a photo of a circle", "--n", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["generate", "a photo of a circle", "--n", "1", "--out", str(out)]) == 0
    assert "also holds 4 image or JSON file(s) of an earlier run" in capsys.readouterr().err  # 2 samples, x1 and x4
    suite = tmp_path / "s.jsonl"
    assert main(["shapeworld", "suite", "--per-tag", "1", "--seed", "3", "--out", str(suite)]) == 0
    render = ["shapeworld", "render", "--prompts", str(suite), "--out", str(tmp_path / "r"), "--no-progress"]
    assert main([*render, "--per-prompt", "2"]) == 0 and main([*render, "--per-prompt", "1"]) == 0
    assert "also holds 6 prompt folder(s) or sample(s) of an earlier render" in capsys.readouterr().err


def test_misdirected_paths_say_what_they_are(tmp_path, capsys):
    assert main(["bench", "--prompts", "draw:1:5", "--scorer-weights", str(tmp_path / "none"), "--out",
                 str(tmp_path / "o")]) == 2
    _one_line(capsys, "none is not a folder")
    assert main(["shapeworld", "render", "--prompts", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    _one_line(capsys, "is a folder, not a prompt file")
    run = tmp_path / "bench" / "raw" / "n1"
    run.mkdir(parents=True)
    (run / "summary.json").write_text("{}")
    assert main(["eval", "shapeworld", str(tmp_path / "bench")]) == 2
    _one_line(capsys, "this is a bench folder, whose runs each hold one, e.g. ", str(run))


def test_eval_says_when_images_are_not_shapeworld_sized(tmp_path, capsys):
    from PIL import Image

    suite = tmp_path / "s.jsonl"
    assert main(["shapeworld", "suite", "--per-tag", "1", "--seed", "4", "--out", str(suite)]) == 0
    assert main(["shapeworld", "render", "--prompts", str(suite), "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", "shapeworld", str(tmp_path / "r")]) == 0
    assert "note:" not in capsys.readouterr().err
    sample = tmp_path / "r" / "00002" / "samples" / "00000.png"
    Image.open(sample).resize((50, 50)).save(sample)
    assert main(["eval", "shapeworld", str(tmp_path / "r")]) == 0
    assert f"note: 1 of 24 images are not 64x64 (e.g. {sample}, 50x50)" in capsys.readouterr().err  # 4 renders each


def test_a_trainer_names_a_damaged_starting_point_in_one_line(tmp_path, capsys):
    import shutil

    from arscale.scorers.shapeworld import WEIGHTS_DIR

    folder = tmp_path / "reward"
    shutil.copytree(WEIGHTS_DIR, folder)
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:500])
    assert main(["train", "shapeworld-reward", "--init", str(folder), "--steps", "1", "--batch-size", "2",
                 "--threads", "1", "--out", str(tmp_path / "out")]) == 2
    _one_line(capsys, "model.safetensors is not a readable safetensors file")


def test_a_weights_path_from_the_environment_is_named_as_such(tmp_path, monkeypatch, capsys):
    missing = str(tmp_path / "nowhere")
    monkeypatch.setenv("ARSCALE_VAR_WEIGHTS", missing)
    assert main(["generate", "207", "--model", "var-d16", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, f"(the path comes from $ARSCALE_VAR_WEIGHTS={missing})")
    assert main(["generate", "207", "--model", "var-d16", "--weights", missing, "--out", str(tmp_path / "o")]) == 2
    assert "$ARSCALE_VAR_WEIGHTS" not in capsys.readouterr().err  # typed: nothing to explain


def test_a_run_with_its_own_reward_and_one_without_differ_in_words():
    from arscale.bench.manifest import differences

    own = {"scorer_weights": {"weights_path": "rw", "weights_sha256": {"model.safetensors": "ab" * 32}}}
    assert differences({"scorer_weights": None}, own) == ["scorer_weights: the shipped reward vs --scorer-weights"]
    assert differences(own, {}) == ["scorer_weights: --scorer-weights vs the shipped reward"]
