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
