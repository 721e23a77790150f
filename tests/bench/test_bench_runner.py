import json

import numpy as np
import pytest
import torch
from PIL import Image
from search_fakes import FakeNextScale, FakeScorer
from torch.nn import functional as F

from arscale.bench.geneval_layout import sample_path
from arscale.bench.merge import write_reports
from arscale.bench.plots import plot_all
from arscale.bench.runner import Bench, collect_summaries, contiguous_batches, parse_ns, parse_runs
from arscale.bench.suites import SuitePrompt
from arscale.bench.table import format_table
from arscale.errors import ArscaleError
from arscale.scorers.base import SCORERS
from arscale.shapeworld import build_suite


@pytest.fixture
def setup(monkeypatch):
    monkeypatch.setitem(SCORERS, "fake-features", lambda device="cpu": FakeScorer())  # a registered scorer
    gen = FakeNextScale()
    gen.image_size = 64
    prompts = [SuitePrompt(i, md["prompt"], md) for i, md in enumerate(build_suite(1, 3))]
    specs = parse_runs("raw,best-of-n,tts-var", [
        'best-of-n={"reward": "fake-reward"}',
        'tts-var={"features": "fake-features", "record_previews": false}'])
    return gen, prompts, specs


def test_bench_writes_layout_summaries_and_resumes(setup, tmp_path):
    gen, prompts, specs = setup
    bench = Bench(gen, FakeScorer(), kind="shapeworld", seed=1, batch_prompts=4, quiet=True)
    summaries = bench.run(specs, [1, 2], prompts, tmp_path)
    assert len(summaries) == 6
    for s in summaries:
        assert s["prompts_done"] == len(prompts) and s["images"] == len(prompts)
        assert 0.0 <= s["overall"] <= 1.0 and s["overall_se"] >= 0
        assert s["cost_per_prompt"]["total_wall"] > 0
    tts = next(s for s in summaries if s["label"] == "tts-var" and s["n"] == 2)
    bon = next(s for s in summaries if s["label"] == "best-of-n" and s["n"] == 2)
    assert tts["cost_per_prompt"]["transformer_flops"] > bon["cost_per_prompt"]["transformer_flops"] / 10
    root = tmp_path / "tts-var" / "n2"
    assert sample_path(root, 5, 0).is_file()
    assert json.loads((root / "00005" / "metadata.jsonl").read_text())["prompt"] == prompts[5].prompt
    assert len((root / "results.jsonl").read_text().splitlines()) == len(prompts)

    # resume: delete one prompt's record; only that prompt is recomputed, identically
    rec = root / "00003" / "record.json"
    before = json.loads(rec.read_text())
    rec.unlink()
    png = sample_path(root, 3, 0).read_bytes()
    again = bench.run([specs[2]], [2], prompts, tmp_path, resume=True)
    after = json.loads(rec.read_text())
    assert after["reward"] == before["reward"] and sample_path(root, 3, 0).read_bytes() == png
    assert again[0]["overall"] == tts["overall"]

    summaries = collect_summaries(tmp_path)
    table = format_table(summaries)
    assert table.count("\n") == 2 + 6 and "tts-var" in table
    # the written table adds each run's paired difference from raw sampling at the same N
    text, plots = write_reports(tmp_path)
    written = text.splitlines()
    head = [c.strip() for c in written[0].split("|")]
    col, tokens = head.index("− raw, paired ± SE"), head.index("tokens/prompt")
    rows = {(cells[1], cells[2]): cells for cells in ([c.strip() for c in line.split("|")] for line in written[2:])}
    for s in summaries:
        cells = rows[(s["label"], str(s["n"]))]
        assert float(cells[tokens]) == pytest.approx(s["cost_per_prompt"]["generated_tokens"], abs=0.5)
        if s["label"] == "raw":
            assert cells[col] == "–"
            continue
        raw = next(r for r in summaries if r["label"] == "raw" and r["n"] == s["n"])
        diff = float(cells[col].split(" ± ")[0])
        assert diff == pytest.approx(100 * (s["overall"] - raw["overall"]), abs=0.051)  # same prompts
    assert plots == plot_all(summaries, tmp_path) == [tmp_path / "score_vs_n.png", tmp_path / "score_vs_compute.png"]


def test_parsing_errors():
    with pytest.raises(ArscaleError, match="unknown strategy"):
        parse_runs("raw,beam")
    with pytest.raises(ArscaleError, match="not in --strategies"):
        parse_runs("raw", ['tts-var={"lam": 1}'])
    with pytest.raises(ArscaleError, match="at least 1"):
        parse_ns("1,0")
    assert [s.label for s in parse_runs("tts-var,tts-var@lam1", ['tts-var@lam1={"lam": 1}'])] == \
        ["tts-var", "tts-var@lam1"]


def test_contiguous_batches_break_at_gaps():
    sps = [SuitePrompt(i, "p") for i in (0, 1, 2, 5, 6, 9)]
    assert [[s.index for s in b] for b in contiguous_batches(sps, 2)] == [[0, 1], [2], [5, 6], [9]]


def test_cli_reports_bad_arguments_in_one_line(capsys, tmp_path):
    from arscale.cli import main

    assert main(["bench", "--n", "1,x", "--out", str(tmp_path)]) == 2
    assert "--n expects comma-separated integers" in capsys.readouterr().err
    assert main(["bench", "--strategies", "beam", "--out", str(tmp_path)]) == 2
    assert "unknown strategy 'beam'" in capsys.readouterr().err
    out = tmp_path / "tiif"
    assert main(["bench", "--layout", "tiif", "--prompts", "draw:1:5", "--out", str(out)]) == 2
    assert "needs TIIF-Bench prompts" in capsys.readouterr().err and not out.exists()  # nothing half-written
    assert main(["bench", "--device", "gpu", "--prompts", "draw:1:5", "--out", str(out)]) == 2
    assert "unknown device 'gpu'" in capsys.readouterr().err and not out.exists()


def test_the_default_strategies_are_the_models_own_method_and_the_baselines(tmp_path):
    from arscale.cli import main
    from arscale.generators.registry import MODELS, model_kind

    assert {name: model_kind(name) for name in ("shapeworld-var", "infinity-2b", "shapeworld-ar", "llamagen-t2i-xl")} \
        == {"shapeworld-var": "scale", "infinity-2b": "scale", "shapeworld-ar": "token", "llamagen-t2i-xl": "token"}
    built_in = [name for name, where in MODELS.items() if where.startswith("arscale.generators.")]
    assert all(model_kind(name) in ("scale", "token") for name in built_in) and model_kind("mine") is None
    out = tmp_path / "ar"
    assert main(["bench", "--model", "shapeworld-ar", "--prompts", "draw:1:5", "--limit", "1", "--n", "1",
                 "--quiet", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["best-of-n", "importance", "raw", "scaling-ar"]


def test_scaling_ar_records_each_prompts_own_tokens(tmp_path):
    from search_fakes import FakeNextToken

    prompts = [SuitePrompt(i, md["prompt"], md) for i, md in enumerate(build_suite(1, 5))]
    bench = Bench(FakeNextToken(), None, kind="shapeworld", seed=2, batch_prompts=6, quiet=True)
    [summary] = bench.run(parse_runs("scaling-ar", []), [4], prompts, tmp_path)
    costs = [json.loads((tmp_path / "scaling-ar" / "n4" / f"{i:05d}" / "record.json").read_text())["cost"]
             for i in range(len(prompts))]
    for key in ("generated_tokens", "transformer_flops"):
        values = [c[key] for c in costs]
        assert len(set(values)) > 1  # candidates stop at different steps per prompt, not a batch mean
        assert sum(values) / len(values) == pytest.approx(summary["cost_per_prompt"][key])


@pytest.mark.parametrize("model, label", [("ar", "scaling-ar"), ("ar", "best-of-n"), ("scale", "raw")])
def test_every_strategys_written_image_is_scored_the_same_way(tmp_path, model, label):
    # ScalingAR picks by its own confidence, Best-of-N by its reward of a float decode: the reward column holds
    # the bench scorer's reward of the image each one wrote, so it compares like with like
    from search_fakes import FakeNextToken

    prompts = [SuitePrompt(i, md["prompt"], md) for i, md in enumerate(build_suite(1, 5))]
    scorer = FakeScorer()
    gen = FakeNextToken() if model == "ar" else FakeNextScale()
    bench = Bench(gen, scorer, kind="shapeworld", seed=2, batch_prompts=6, quiet=True)
    bench.run(parse_runs(label, []), [4], prompts, tmp_path)
    for i, sp in enumerate(prompts):
        record = json.loads((tmp_path / label / "n4" / f"{i:05d}" / "record.json").read_text())
        image = np.asarray(Image.open(sample_path(tmp_path / label / "n4", i, 0)), dtype=np.float32) / 255
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None]
        if pixels.shape[-1] != 16:
            pixels = F.interpolate(pixels, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
        assert record["reward"] == pytest.approx(float(scorer.reward(pixels, [sp.prompt])[0]), abs=1e-5)
        assert record["scores_are_rewards"] is (label == "best-of-n")  # its own scores: rewards, confidences, none
        final = len(record["candidate_scores"])  # every final candidate: ScalingAR's survivors
        assert final == 1 if label == "raw" else final == 4 if label == "best-of-n" else 1 <= final <= 4


def test_bench_runs_skip_plot_only_previews_unless_asked():
    from arscale.bench.runner import run_config

    default, asked = parse_runs("scaling-ar,scaling-ar@plots", ['scaling-ar@plots={"record_previews": true}'])
    assert run_config(default)["record_previews"] is False and run_config(asked)["record_previews"] is True


def test_runs_counted_another_way_do_not_resume_together():
    from arscale.bench import manifest as mf

    new = {"cost_accounting": mf.COST_ACCOUNTING, "strategies": {}}
    before = {"strategies": {}}  # written before scorer FLOPs were counted
    assert any(d.startswith("cost_accounting") for d in mf.differences(before, new))
    assert mf.differences(new, dict(new)) == []


def test_a_device_this_machine_lacks_is_one_line(capsys, tmp_path):
    import torch

    from arscale.cli import main

    if torch.backends.mps.is_available():  # pragma: no cover - only on Apple machines
        pytest.skip("this machine has an MPS backend, so --device mps is not an unavailable device here")
    assert main(["generate", "a photo of a red circle", "--device", "mps", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no MPS backend" in err and err.count("\n") == 1


def test_the_table_gives_flops_in_a_unit_that_shows_them():
    def summary(flops):
        return {"label": "x", "n": 1, "prompts_done": 1, "overall": 0.5, "overall_se": 0.1, "tags": {},
                "cost_per_prompt": {"transformer_flops": flops, "decode_flops": flops / 10, "scorer_flops": 0}}

    small, large = format_table([summary(3.21e8)]), format_table([summary(4.56e12)])
    assert "GFLOPs/prompt" in small and "| 0.321 + 0.0321 + 0 |" in small
    assert "TFLOPs/prompt" in large and "| 4.56 + 0.456 + 0 |" in large


def test_a_python_bench_takes_labels_and_plain_prompts_and_refuses_an_unknown_kind(setup, tmp_path):
    gen, _, _ = setup
    with pytest.raises(ArscaleError, match="unknown suite kind 'ShapeWorld'"):
        Bench(gen, FakeScorer(), kind="ShapeWorld")
    bench = Bench(gen, FakeScorer(), kind="shapeworld", quiet=True)
    (summary,) = bench.run(["raw"], [1], ["a photo of a circle", "a photo of two squares"], tmp_path)
    assert summary["label"] == "raw" and summary["prompts_done"] == 2 and summary["overall"] is not None
    assert set(summary["tags"]) == {"single_object", "counting"}  # judged by each prompt's parse
    with pytest.raises(ArscaleError, match="dog"):
        bench.run(["raw"], [1], ["a photo of a dog"], tmp_path / "x")


def test_bench_cfg_sets_the_models_guidance_and_is_part_of_its_identity(tmp_path, capsys):
    from arscale.cli import main

    def bench(out, *extra):
        return main(["bench", "--model", "shapeworld-var", "--prompts", "draw:1:5", "--limit", "2", "--n", "1",
                     "--strategies", "raw", "--scorer", "", "--quiet", "--out", str(out), *extra])

    assert bench(tmp_path / "own") == 0 and bench(tmp_path / "one", "--cfg", "1") == 0
    flops = {name: json.loads((tmp_path / name / "raw" / "n1" / "summary.json").read_text())["cost_per_prompt"]
             ["transformer_flops"] for name in ("own", "one")}
    assert flops["one"] < 0.51 * flops["own"]  # no guidance at cfg 1: the conditional half alone
    manifest = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert manifest["model"]["cfg"] == 1.0 and "cfg" not in json.loads((tmp_path / "own" / "manifest.json")
                                                                         .read_text())["model"]
    capsys.readouterr()
    assert bench(tmp_path / "one", "--cfg", "2", "--resume") == 2
    assert "model: cfg 1.0 vs 2.0" in capsys.readouterr().err
    assert bench(tmp_path / "bad", "--cfg", "-1") == 2 and "--cfg must be a finite number" in capsys.readouterr().err
    assert bench(tmp_path / "zero", "--cfg", "0") == 0  # 0 is a guidance scale too (VAR's "none")
    assert json.loads((tmp_path / "zero" / "manifest.json").read_text())["model"]["cfg"] == 0.0
