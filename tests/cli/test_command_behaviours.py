"""Mutation audit of the CLI commands `arscale compare`, `eval shapeworld`, `shapeworld suite|render` and
`bench`: the behaviours the other tests left unpinned (default names and strategies, refusals in one line,
damaged leftovers, counts in notes)."""

import json
from pathlib import Path

import numpy as np
import pytest
from bench_records import write_records

from arscale.cli import main
from arscale.errors import ArscaleError


def _write(root, label, n, correct, prompt="prompt"):
    write_records(root, label, n, correct, prompt=prompt)


def _one_line(capsys, *needles) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("arscale: error: "), err
    assert all(n in lines[0] for n in needles), err
    return lines[0]


def _draw(root: Path, raw: list, run: list) -> Path:
    _write(root, "raw", 1, raw, prompt=root.name)
    _write(root, "best-of-n", 2, run, prompt=root.name)
    return root


# arscale compare

def test_compare_within_one_folder_names_the_columns_baseline_and_run(tmp_path, capsys):
    """Without --names, one folder's (and --pooled's) columns are the baseline label and 'run', not A and B."""
    first = _draw(tmp_path / "first", [True, False], [True, True])
    assert main(["compare", str(first)]) == 0
    assert "| run % | run − raw ± paired SE (points) |" in capsys.readouterr().out
    second = _draw(tmp_path / "second", [False, False], [True, False])
    assert main(["compare", str(first), str(second), "--pooled"]) == 0
    out = capsys.readouterr().out
    assert "| run − raw ± paired SE (points) |" in out and "| run − raw ± SE (points) |" in out


def test_pooled_checks_every_draw_against_the_first_described(tmp_path, capsys):
    """--pooled refuses a third draw of another setup even when the second matches the first."""
    draws = [_draw(tmp_path / name, [True, False], [True, True]) for name in ("d1", "d2", "d3")]
    for folder, model in zip(draws, ("shapeworld-ar", "shapeworld-ar", "shapeworld-var")):
        (folder / "manifest.json").write_text(json.dumps({"model": {"id": model}, "seed": 0}))
    assert main(["compare", *map(str, draws), "--pooled"]) == 2
    _one_line(capsys, "draw d3 is not a bench of the same setup as d1")


def test_pooled_notes_no_partial_pooling_for_a_run_no_draw_judged(tmp_path, capsys):
    """The 'compared in k of the n draws' note is for 0 < k < n: a run judged in no draw is not 'pooled'."""
    first = _draw(tmp_path / "first", [True, False], [True, True])
    second = _draw(tmp_path / "second", [False, True], [True, True])
    for root in (first, second):
        _write(root, "importance", 2, [None, None], prompt=root.name)
    assert main(["compare", str(first), str(second), "--pooled"]) == 0
    assert "compared in 0 of" not in capsys.readouterr().err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_json_file_that_cannot_be_written_is_one_line(tmp_path, capsys):
    """An OSError while writing --json (here: a full device) is a one-line error, not a traceback."""
    _draw(tmp_path, [True, False], [True, True])
    assert main(["compare", str(tmp_path), "--json", "/dev/full"]) == 2
    _one_line(capsys, "cannot write --json /dev/full")


# arscale eval shapeworld

@pytest.fixture
def rendered(tmp_path, capsys) -> Path:
    suite, out = tmp_path / "s.jsonl", tmp_path / "r"
    assert main(["shapeworld", "suite", "--per-tag", "1", "--seed", "4", "--out", str(suite)]) == 0
    assert main(["shapeworld", "render", "--prompts", str(suite), "--out", str(out), "--per-prompt", "1",
                 "--no-progress"]) == 0
    capsys.readouterr()
    return out


def test_an_evaluator_error_names_the_metadata_file(rendered, capsys):
    """A prompt the evaluator cannot judge is reported with the path of its metadata.jsonl."""
    (rendered / "00000" / "metadata.jsonl").write_text(json.dumps(
        {"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"}))
    assert main(["eval", "shapeworld", str(rendered), "--no-progress"]) == 2
    _one_line(capsys, f"{rendered / '00000' / 'metadata.jsonl'}: ", "'dog'")


@pytest.mark.parametrize("earlier", ['{"overall": ', "[1, 2]"])
def test_a_damaged_or_foreign_summary_is_replaced(rendered, capsys, earlier):
    """eval writes a fresh summary.json over one that is not JSON or not an object, instead of failing."""
    (rendered / "summary.json").write_text(earlier)
    assert main(["eval", "shapeworld", str(rendered), "--no-progress"]) == 0
    summary = json.loads((rendered / "summary.json").read_text())
    assert summary["overall"] == 1.0 and summary["images"] == 6


def test_a_summary_that_is_not_utf8_is_replaced_too(rendered, capsys):
    """A summary.json of bytes that are not UTF-8 is damaged like one that is not JSON: eval replaces it."""
    (rendered / "summary.json").write_bytes(b"\xff\xfe not text")
    assert main(["eval", "shapeworld", str(rendered), "--no-progress"]) == 0
    assert json.loads((rendered / "summary.json").read_text())["images"] == 6


def test_the_size_note_gives_width_by_height(rendered, capsys):
    """The note on images of another size says WxH (width first), as image sizes are written."""
    from PIL import Image

    sample = rendered / "00001" / "samples" / "00000.png"
    Image.open(sample).resize((50, 40)).save(sample)
    assert main(["eval", "shapeworld", str(rendered), "--no-progress"]) == 0
    assert f"(e.g. {sample}, 50x40)" in capsys.readouterr().err


# arscale shapeworld suite | render

def test_negative_seeds_are_refused_in_one_line(tmp_path, capsys):
    """suite and render refuse --seed < 0 before drawing anything."""
    assert main(["shapeworld", "suite", "--per-tag", "1", "--seed", "-1", "--out", str(tmp_path / "s.jsonl")]) == 2
    _one_line(capsys, "--seed")
    assert not (tmp_path / "s.jsonl").exists()
    assert main(["shapeworld", "suite", "--per-tag", "1", "--seed", "3", "--out", str(tmp_path / "s.jsonl")]) == 0
    capsys.readouterr()
    assert main(["shapeworld", "render", "--prompts", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "r"),
                 "--seed", "-1", "--no-progress"]) == 2
    _one_line(capsys, "--seed must be non-negative")


def test_a_suite_file_below_a_file_is_one_line(tmp_path, capsys):
    """An --out whose folder is a file fails in one line naming --out."""
    (tmp_path / "afile").write_text("")
    assert main(["shapeworld", "suite", "--per-tag", "1", "--seed", "3", "--out", str(tmp_path / "afile" / "s.jsonl")]) == 2
    _one_line(capsys, "cannot write --out")


def test_the_default_suite_is_the_public_one(tmp_path, capsys):
    """`shapeworld suite` without --per-tag / --seed draws the public suite, record for record."""
    from arscale.shapeworld.suite import PUBLIC_SUITE, load_suite

    assert main(["shapeworld", "suite", "--out", str(tmp_path / "s.jsonl")]) == 0
    assert load_suite(tmp_path / "s.jsonl") == load_suite(PUBLIC_SUITE)


def test_render_defaults_to_seed_0_and_counts_every_image(tmp_path, capsys):
    """render's default seed is 0 (its help) and the printed count is prompts × --per-prompt."""
    from arscale.bench.geneval_layout import read_image
    from arscale.shapeworld import build_suite, render, sample_scene

    assert main(["shapeworld", "suite", "--per-tag", "1", "--seed", "3", "--out", str(tmp_path / "s.jsonl")]) == 0
    capsys.readouterr()
    out = tmp_path / "r"
    assert main(["shapeworld", "render", "--prompts", str(tmp_path / "s.jsonl"), "--out", str(out),
                 "--per-prompt", "2", "--no-progress"]) == 0
    assert f"wrote 12 images for 6 prompts to {out}" in capsys.readouterr().out
    md = build_suite(1, 3)[2]
    expected = render(sample_scene(md, np.random.default_rng([0, 2, 1])))
    assert (read_image(out / "00002" / "samples" / "00001.png") == expected).all()


def test_every_stale_prompt_folder_of_a_larger_render_is_counted(tmp_path, capsys):
    """Rendering 6 prompts where 12 were: the note counts all 6 leftover prompt folders (indices 6 to 11)."""
    for per_tag in (2, 1):
        suite = tmp_path / f"s{per_tag}.jsonl"
        assert main(["shapeworld", "suite", "--per-tag", str(per_tag), "--seed", "3", "--out", str(suite)]) == 0
        assert main(["shapeworld", "render", "--prompts", str(suite), "--out", str(tmp_path / "r"),
                     "--per-prompt", "1", "--no-progress"]) == 0
    assert "also holds 6 prompt folder(s) or sample(s) of an earlier render" in capsys.readouterr().err


# arscale bench

@pytest.mark.parametrize("model, strategies", [("shapeworld-var", "raw,best-of-n,importance,tts-var"),
                                               ("shapeworld-ar", "raw,best-of-n,importance,scaling-ar")])
def test_bench_defaults_are_the_models_own_method_and_the_baselines(tmp_path, capsys, monkeypatch, model, strategies):
    """Without --strategies a bench runs raw, best-of-n, importance and the model kind's own method (README),
    over N = 1,2,4,8 and with the ShapeWorld reward."""
    from arscale.bench import runner

    seen = {}

    def stop(labels, configs):
        seen["strategies"] = labels
        raise ArscaleError("stop here")

    monkeypatch.setattr(runner, "parse_runs", stop)
    assert main(["bench", "--model", model, "--out", str(tmp_path / "o")]) == 2
    assert seen == {"strategies": strategies} and not (tmp_path / "o").exists()


def test_bench_merge_without_folders_or_with_another_action_is_one_line(tmp_path, capsys):
    """`bench merge --out X` with no shard folder, or an unknown action, is refused in one line."""
    assert main(["bench", "merge", "--out", str(tmp_path / "m")]) == 2
    _one_line(capsys, "needs at least one shard folder")
    assert main(["bench", "mrege", str(tmp_path), "--out", str(tmp_path / "m")]) == 2
    _one_line(capsys, "unexpected arguments 'mrege", "did you mean")


def test_bench_option_defaults():
    """A plain `arscale bench --out X` runs N = 1,2,4,8 on the public suite, seed 0, blocks of 8 prompts, one
    CPU thread, GenEval layout (its help): a changed default would start another run on --resume."""
    from arscale.cli import build_parser

    args = build_parser().parse_args(["bench", "--out", "x"])
    assert (args.n, args.prompts, args.seed, args.batch_prompts, args.threads, args.device, args.layout) == (
        "1,2,4,8", "shapeworld-v1-eval", 0, 8, 1, "cpu", "geneval")


def test_bench_time_adds_up_over_resumes_and_a_complete_merge_has_no_note(tmp_path, capsys, monkeypatch):
    """manifest timings: wall_seconds adds each call's time to the earlier calls', `finished` is set once a call
    finishes; `bench merge` of a complete run notes nothing incomplete."""
    from arscale.bench.runner import Bench

    out = tmp_path / "b"
    argv = ["bench", "--prompts", "draw:1:5", "--strategies", "raw", "--n", "1", "--scorer", "", "--limit", "1",
            "--quiet", "--out", str(out)]
    with monkeypatch.context() as patch:
        patch.setattr(Bench, "run", lambda self, *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
        assert main(argv) == 130
    manifest = json.loads((out / "manifest.json").read_text())
    assert "finished" not in manifest["timings"]
    manifest["timings"]["wall_seconds"] = 1000.0  # as if the first call had run that long
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main([*argv, "--resume"]) == 0
    timings = json.loads((out / "manifest.json").read_text())["timings"]
    assert timings["wall_seconds"] > 1000.0 and "finished" in timings
    capsys.readouterr()
    assert main(["bench", "merge", str(out), "--out", str(tmp_path / "m")]) == 0
    assert "incomplete" not in capsys.readouterr().out


@pytest.fixture
def manifest_kwargs(monkeypatch) -> dict:
    """Stops `arscale bench` where it builds its manifest (nothing loaded or run) and keeps what it was given."""
    from arscale.bench import manifest as mf

    seen: dict = {}

    def stop(**kwargs):
        seen.update(kwargs)
        raise ArscaleError("stop here")

    monkeypatch.setattr(mf, "build_manifest", stop)
    return seen


def test_bench_scores_shapeworld_with_its_reward_unless_told_otherwise(tmp_path, capsys, manifest_kwargs):
    """A ShapeWorld model's bench uses shapeworld-reward by default; --scorer '' means none."""
    assert main(["bench", "--prompts", "draw:1:5", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, "stop here")
    assert manifest_kwargs["scorer"] == "shapeworld-reward"
    assert main(["bench", "--prompts", "draw:1:5", "--scorer", "", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, "stop here")
    assert manifest_kwargs["scorer"] is None


def test_bench_of_another_model_must_name_its_scorer(tmp_path, capsys, monkeypatch):
    """Another family's bench without --scorer is refused before anything loads (the ShapeWorld reward knows
    only ShapeWorld)."""
    from arscale.bench import runner

    monkeypatch.setattr(runner, "parse_runs", lambda *args: (_ for _ in ()).throw(ArscaleError("stop here")))
    assert main(["bench", "--model", "llamagen-t2i-xl", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, "--scorer: name the reward for llamagen-t2i-xl's images")


def test_bench_refuses_a_negative_limit_an_empty_suite_and_stray_label_folders(tmp_path, capsys, manifest_kwargs):
    """--limit < 0, a suite of no prompts, and an --out holding a label's folder but no manifest (a single
    process: not another rank's) are each refused in one line before the manifest."""
    assert main(["bench", "--prompts", "draw:1:5", "--limit", "-1", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, "--limit must be ≥ 0, got -1")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["bench", "--prompts", f"geneval:{empty}", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, "the prompt suite is empty")
    (tmp_path / "stray" / "raw").mkdir(parents=True)
    assert main(["bench", "--prompts", "draw:1:5", "--strategies", "raw", "--out", str(tmp_path / "stray")]) == 2
    _one_line(capsys, "holds other files and no bench manifest")
    assert manifest_kwargs == {}
