"""The benchmark scripts still run. A tiny run of each script no other test runs, each checked
for a well-formed table, and the shell scripts' command lines (arscale options, the scripts they call, their strategy
configs) checked against today's parsers."""

import importlib.util
import json
import os
import re
import runpy
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture(autouse=True)
def benchmark_modules_dropped():
    """The benchmark modules a test imported (a script's siblings: load_time, process_memory, generation) are
    dropped afterwards, so another test imports its own."""
    before = set(sys.modules)
    yield
    for module in set(sys.modules) - before:
        if str(getattr(sys.modules[module], "__file__", "")).startswith(str(BENCHMARKS)):
            del sys.modules[module]


def load_script(monkeypatch, name: str):
    """benchmarks/<name>.py as a module, with benchmarks/ on the path as when it runs as a script (its sibling
    imports: load_time, process_memory, generation); the sibling modules it imports are dropped afterwards."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    for sibling in ("load_time", "process_memory", "generation"):
        monkeypatch.delitem(sys.modules, sibling, raising=False)
    spec = importlib.util.spec_from_file_location(f"s33m_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(monkeypatch, name: str, *args: str) -> None:
    """`python benchmarks/<name>.py ARGS` in this process; torch's thread count and the thread variables a script
    sets are restored afterwards."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / f"{name}.py"), *args])
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(BENCHMARKS / f"{name}.py"), run_name="__main__")
    finally:
        torch.set_num_threads(threads)


def table_rows(out: str) -> list[list[str]]:
    """The cells of every markdown table row, header and separator left out; every row has the header's columns."""
    rows = []
    for line in out.splitlines():
        if not line.startswith("| ") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append(cells)
    header = rows[0]
    assert all(len(r) == len(header) for r in rows), rows  # one cell per column in every row
    return rows[1:]


@pytest.fixture
def tiny_ar(monkeypatch):
    """`load_shapeworld_ar` gives a tiny random ShapeWorld-AR (64 tokens), seeded: the scripts' loops run in
    seconds."""
    from tiny_shapeworld_ar import TINY_AR, TINY_VQ

    from arscale.generators.next_token import shapeworld as sw_ar
    from arscale.generators.next_token.tokenizer import VQConfig, VQTokenizer

    torch.manual_seed(0)
    gen = sw_ar.build_generator(sw_ar.ShapeWorldAR(sw_ar.ShapeWorldARConfig.from_dict(TINY_AR)).eval(),
                                VQTokenizer(VQConfig(**TINY_VQ)).eval())
    monkeypatch.setattr(sw_ar, "load_shapeworld_ar", lambda weights=None, **overrides: gen)
    return gen


# -- a script that no longer ran ----------------------------------------------------------------------------------
def test_scorer_load_time_imports_and_reads_the_memory(monkeypatch):
    import arscale.scorers.hpsv2
    import arscale.scorers.imagereward  # noqa: F401  (imported before the stand-in below)

    m = load_script(monkeypatch, "scorer_load_time")
    # measure() imports transformers' model classes first (not part of the load): a stand-in keeps this test fast
    monkeypatch.setitem(sys.modules, "transformers", types.SimpleNamespace(
        BlipVisionModel=None, BlipTextModel=None, CLIPModel=None))
    torch.manual_seed(0)
    tiny = torch.nn.Linear(3, 2)
    monkeypatch.setattr(m, "load_new", lambda scorer, path: tiny)  # the load itself is not what is checked here
    row = m.measure("new", "imagereward", Path("unused.pt"))
    assert row["rss_before_mb"] > 10 and row["peak_mb"] >= row["rss_before_mb"]
    assert re.fullmatch(r"[0-9a-f]{16}", row["digest"])


# -- scripts that no test ran --------------------------------------------------------------------------------------
def test_load_time_table_old_and_new_agree(monkeypatch, capsys):
    """load_time.py's fresh-process measurement, its median row and its table, on a tiny module for both paths."""
    m = load_script(monkeypatch, "load_time")
    torch.manual_seed(0)
    tiny = torch.nn.Linear(3, 2)
    monkeypatch.setattr(m, "load_old", lambda folder, depth, dtype: tiny)
    monkeypatch.setattr(m, "load_new", lambda folder, depth, dtype: tiny)
    runs = {("float32", path): [m.measure(path, Path("unused"), 16, "float32") for _ in range(2)]
            for path in ("old", "new")}
    m.print_table("dtype", {key: m.combined(rs) for key, rs in runs.items()})
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("float32 ")]
    assert [r[1] for r in rows] == ["old", "new"] and len({r[-1] for r in rows}) == 1  # one digest
    assert all(float(r[4]) >= float(r[3]) > 0 for r in rows)  # peak RSS >= RSS before
    assert "float32: old and new load the same weights and buffers" in out


def test_flops_real_table(monkeypatch, capsys):
    """flops_real.py: six rows; TTS-VAR with 224-px previews stays within 1.5× one raw image, the official loop
    costs more, ScalingAR's upper bound is N = 8 raw images: the ratios RESULTS.md and the README quote."""
    run_main(monkeypatch, "flops_real")
    rows = table_rows(capsys.readouterr().out)
    assert len(rows) == 6
    ratio = {r[1]: float(r[-1]) for r in rows}
    preview = next(v for k, v in ratio.items() if "224 px" in k)
    official = next(v for k, v in ratio.items() if "official loop" in k)
    assert ratio["raw, 1 image"] == 1.0 and 1.0 < preview <= 1.5 < official
    assert (preview, official) == (1.35, 5.52)  # RESULTS.md, "Real model sizes: analytic FLOPs"
    assert next(v for k, v in ratio.items() if k.startswith("ScalingAR N=8")) == pytest.approx(8.0)


def test_strategy_wall_split_table(monkeypatch, capsys, tiny_ar):
    """strategy_wall_split.py (on a tiny ShapeWorld-AR): a row per run, tokens as each strategy spends them, shares
    that are percentages."""
    run_main(monkeypatch, "strategy_wall_split", "--per-tag", "1", "--seed", "4101", "--n", "2", "--threads", "1")
    rows = table_rows(capsys.readouterr().out)
    assert [r[0] for r in rows] == ["raw", "best-of-n", "scaling-ar", "scaling-ar, no previews"]
    tokens = {r[0]: float(r[1]) for r in rows}
    t = tiny_ar.num_tokens
    assert tokens["raw"] == t and tokens["best-of-n"] == 2 * t  # raw: one sample per prompt at any N
    assert tokens["scaling-ar"] == tokens["scaling-ar, no previews"] <= 2 * t  # the previews change no draw
    for r in rows:
        shares = [int(c.rstrip("%")) for c in r[3:7]]
        assert all(0 <= s <= 100 for s in shares) and sum(shares) <= 102  # rounding


def test_generate_batches_table(monkeypatch, capsys):
    """generate_batches.py: one row per --batch and for one batch of all N, every image equal to the latter's."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    run_main(monkeypatch, "generate_batches", "--n", "2", "--batch", "1", "--models", "shapeworld-var",
             "--threads", "1")
    rows = table_rows(capsys.readouterr().out)
    assert [(r[0], r[1], r[2]) for r in rows] == [("shapeworld-var", "2", "1"), ("shapeworld-var", "2", "2")]
    assert all(r[-1] == "2 / 2" and float(r[3]) > 0 for r in rows)


def test_conditional_only_table(monkeypatch, capsys):
    """conditional_only.py on ShapeWorld-VAR: the conditional half alone bills half the FLOPs, same images."""
    run_main(monkeypatch, "conditional_only", "--model", "shapeworld-var", "--per-tag", "1", "--n", "2",
             "--repeats", "1")
    rows = table_rows(capsys.readouterr().out)
    assert [r[0] for r in rows] == ["both (before)", "conditional only", "ratio"]
    assert rows[1][3] == "identical" and rows[2][1] == "0.50x"


def test_decode_memory_table(monkeypatch, capsys):
    """decode_memory.py (tiny VQVAE): one row per setting from its own process, and the two settings' images agree."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    run_main(monkeypatch, "decode_memory", "--tiny", "--rows", "5", "--chunk", "2")
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [r[0] for r in rows] == ["one call (5 rows)", "chunks of 2"]
    assert all(float(r[1]) >= 0 and float(r[2]) > 0 for r in rows)
    difference = float(re.search(r"largest pixel difference between the two settings: (\S+)", out).group(1))
    assert difference < 1e-4
    with pytest.raises(SystemExit):  # a chunk larger than the rows is refused by the parser
        run_main(monkeypatch, "decode_memory", "--tiny", "--rows", "2", "--chunk", "3")


def test_kv_memory_table(monkeypatch, capsys, tiny_ar):
    """kv_memory.py (on a tiny ShapeWorld-AR): five runs; right-sizing ends on a buffer no larger, same images."""
    run_main(monkeypatch, "kv_memory", "--per-tag", "1", "--seed", "99", "--n", "4")
    out = capsys.readouterr().out
    rows = {r[0]: r for r in table_rows(out)}
    assert len(rows) == 5 and float(rows["no termination (all N to the end)"][1]) == 4 * tiny_ar.num_tokens
    kept, right = rows["pruned, buffers kept"], rows["pruned, buffers right-sized (shipped)"]
    assert kept[1] == right[1] and float(right[5]) <= float(kept[5])  # same tokens; final allocation no larger
    assert "buffers kept vs right-sized give identical images: True" in out


def test_reward_accuracy_report(monkeypatch, capsys, tmp_path):
    """reward_accuracy.py with the shipped tokenizer and --partial: a clean, a per-scale and a finished entry."""
    tokenizer = ROOT / "src" / "arscale" / "weights" / "shapeworld-var"
    run_main(monkeypatch, "reward_accuracy", "--per-tag", "1", "--tokenizer", str(tokenizer), "--partial",
             "--json", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    assert json.loads(capsys.readouterr().out) == report
    assert report["clean"]["n"] == report["reconstruction"]["n"] == 6
    assert [p["scale"] for p in report["partial"]] == list(range(6))  # the 7-scale model's scales before the last
    assert all(0 <= p["all"] <= 1 for p in report["partial"])


def test_reward_consistency_report(monkeypatch, capsys, tmp_path):
    """reward_consistency.py: one curve point per scale; at the last scale the best row is the final best."""
    run_main(monkeypatch, "reward_consistency", "--per-tag", "1", "--n", "2", "--json", str(tmp_path / "c.json"))
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["prompts"] == 6 and [c["scale"] for c in report["curve"]] == list(range(7))
    assert report["curve"][-1]["top1_agreement"] == 1.0 and report["curve"][-1]["spearman"] == pytest.approx(1.0)


def test_shapeworld_throughput_table(monkeypatch, capsys):
    """shapeworld.py: a row per operation over the public suite, each with a positive rate."""
    run_main(monkeypatch, "shapeworld", "--repeats", "1")
    rows = table_rows(capsys.readouterr().out)
    assert len(rows) == 8 and rows[0][0] == "sample_scene" and all(float(r[2]) > 0 for r in rows)


@pytest.mark.parametrize("mode", ["sweep", "raw", "recon"])
def test_shapeworld_ar_sweep_modes(monkeypatch, capsys, tmp_path, mode):
    """shapeworld_ar_sweep.py's three modes on ShapeWorld-VAR (its faster model): one JSON line per setting."""
    from arscale import shapeworld

    suite = tmp_path / "suite.jsonl"
    suite.write_text("".join(json.dumps(r) + "\n" for r in shapeworld.build_suite(1, 31)))
    where = ["--per-tag", "1", "--seed", "2024"] if mode == "sweep" else ["--suite", str(suite)]
    run_main(monkeypatch, "shapeworld_ar_sweep", mode, "--model", "shapeworld-var", *where, "--cfg", "3",
             "--temperature", "1.0", "--top-k", "0")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1 and lines[0]["prompts"] == 6 and 0 <= lines[0]["overall"] <= 1
    assert lines[0]["mode"] == mode


@pytest.mark.parametrize("model", ["var-d16", "llamagen-c2i-b"])
def test_precision_rows_on_tiny_models(monkeypatch, tmp_path, model):
    """precision.py's row (one fresh process each, here in-process) on a tiny model of each family in place of the
    released size: bf16 halves the transformer's weights and its KV cache, the first logits stay close to fp32's."""
    from tiny_families import tiny_llamagen, tiny_var
    m = load_script(monkeypatch, "precision")

    def build(name, device, dtype):  # as precision.build: the transformer cast, the decoder in fp32
        gen = tiny_var() if name.startswith("var-d") else tiny_llamagen()
        gen.transformer.to(dtype).eval()
        return gen

    monkeypatch.setattr(m, "build", build)
    rows = {dtype: m.measure_one(model, dtype, [1, 2], torch.device("cpu"), tmp_path / f"{dtype}.pt")
            for dtype in ("float32", "bfloat16")}
    assert rows["bfloat16"]["weights"] == pytest.approx(rows["float32"]["weights"] / 2)
    assert rows["float32"]["cache"] > 0 and rows["bfloat16"]["cache"] == pytest.approx(rows["float32"]["cache"] / 2)
    ref, low = (torch.load(tmp_path / f"{d}.pt", weights_only=True) for d in ("float32", "bfloat16"))
    assert ref.shape == low.shape and 0 < ((low - ref).abs().max() / ref.abs().max()).item() < 0.1


# -- the shell scripts' command lines ------------------------------------------------------------------------------
FAKE = """#!/usr/bin/env bash
printf '%s\\0' "$(basename "$0")" "$@" >> "$RECORD"; printf '\\n' >> "$RECORD"
"""


def recorded_commands(tmp_path, script: Path, *args: str, **env) -> list[list[str]]:
    """Runs a shell script with `arscale` and `python` replaced by fakes that only record their arguments; returns
    each recorded command (its first item "arscale" or "python")."""
    fakes = tmp_path / "fakes"
    fakes.mkdir(exist_ok=True)
    for name in ("arscale", "python", "python3"):
        (fakes / name).write_text(FAKE)
        (fakes / name).chmod(0o755)
    record = tmp_path / "record"
    record.write_text("")
    done = subprocess.run(["bash", str(script), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False,
                          env={**os.environ, "PATH": f"{fakes}{os.pathsep}{os.environ['PATH']}",
                               "RECORD": str(record), "OUT": str(tmp_path / "out"), **env})
    assert done.returncode == 0, done.stderr
    return [line.strip("\0").split("\0") for line in record.read_text().splitlines() if line.strip("\0")]


def parses_as_arscale(argv: list[str]) -> None:
    """The command line parses as today's `arscale` takes it, and each --config holds a config its strategy
    accepts."""
    from arscale.cli import build_parser
    from arscale.search.base import make_strategy

    args = build_parser().parse_args(argv)
    for item in getattr(args, "config", None) or []:
        label, _, config = item.partition("=")
        make_strategy(label.split("@")[0], json.loads(config))


def script_options(name: str) -> set[str]:
    """The options a benchmark script's --help lists."""
    help_text = subprocess.run([sys.executable, str(BENCHMARKS / name), "--help"], capture_output=True, text=True,
                               timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=True).stdout
    return set(re.findall(r"--[a-z][a-z-]*", help_text))


def check_python_call(argv: list[str]) -> None:
    """A `python benchmarks/X.py ...` a shell script runs (from the repository root): the script exists and takes
    every option given."""
    script = ROOT / argv[1]
    assert script.exists(), f"{argv[1]} does not exist"
    unknown = {a for a in argv[2:] if a.startswith("--")} - script_options(script.name)
    assert not unknown, f"{script.name} does not take {sorted(unknown)}"


@pytest.mark.parametrize("mode", ["main", "ablations"])
def test_shapeworld_ar_bench_commands_parse(tmp_path, mode):
    """shapeworld_ar_bench.sh's commands parse; every ablation variant's config is one ScalingAR accepts."""
    commands = recorded_commands(tmp_path, BENCHMARKS / "shapeworld_ar_bench.sh", mode)
    assert len(commands) == 2 and all(c[0] == "arscale" for c in commands)
    for c in commands:
        parses_as_arscale(c[1:])
    if mode == "ablations":  # every variant of the script's table, each with its config
        labels = commands[1][commands[1].index("--strategies") + 1].split(",")
        assert len(labels) == 1 + commands[1].count("--config") >= 10


def test_session22_ablations_commands_parse(tmp_path):
    """The archived Session 22 ablation script still drives shapeworld_ar_bench.sh with commands that parse."""
    script = BENCHMARKS / "results" / "ar16" / "session22-fresh-draws" / "ablations.sh"
    commands = recorded_commands(tmp_path, script, "2201")
    assert len(commands) == 2
    for c in commands:
        parses_as_arscale(c[1:])


@pytest.mark.parametrize("what", ["main", "ablations", "consistency", "reward", "reward-train"])
def test_tts_var_experiments_commands_parse(tmp_path, what):
    """Each stage's arscale commands parse (and their configs fit TTS-VAR's config); the benchmark scripts it calls
    exist and take its options."""
    commands = recorded_commands(tmp_path, BENCHMARKS / "tts_var_experiments.sh", what, "1", JOBS="2")
    assert commands
    for c in commands:
        if c[0] == "arscale":
            parses_as_arscale(c[1:])
        else:
            check_python_call(c)


def test_tts_var_ablation_configs_run_on_the_shipped_model():
    """The ablation table's variants (their batch schedules, clustering and resampling scales) run on the shipped
    ShapeWorld-VAR, as `tts_var_experiments.sh ablations` runs them."""
    from arscale.generators.registry import load_generator
    from arscale.search.base import make_strategy

    text = (BENCHMARKS / "tts_var_experiments.sh").read_text()
    configs = dict(re.findall(r"--config '(tts-var@[^=]+)=(\{[^']*\})'", text))
    assert len(configs) >= 15
    gen = load_generator("shapeworld-var")
    for label, config in configs.items():
        if not {"batch", "cluster_at", "resample_at", "n_counts"} & set(json.loads(config)):
            continue  # the others change no scale: their configs are checked where the commands are parsed
        n = 2 if "final" in label else 8  # as the script runs each: tts-var@final at N = 2, the ablations at 8
        result = make_strategy("tts-var", json.loads(config)).run(gen, ["a photo of a red circle"], n, seed=0)
        assert len(result.candidates) == 1 and result.candidates[0], label


def test_precision_check_command_parses(tmp_path, monkeypatch):
    """gpu/precision_check.sh calls precision.py with options it takes and model names it knows."""
    from arscale.generators.next_scale.var import VAR_RELEASES

    commands = recorded_commands(tmp_path, BENCHMARKS / "gpu" / "precision_check.sh")
    assert len(commands) == 1 and commands[0][1] == "benchmarks/precision.py"
    check_python_call(commands[0])
    models = commands[0][commands[0].index("--models") + 1:]
    assert models == ["var-d16", "var-d30", "llamagen-c2i-b", "llamagen-c2i-xl"]
    known = load_script(monkeypatch, "precision").C2I_MODELS
    assert all(int(m[5:]) in VAR_RELEASES if m.startswith("var-d") else m.removeprefix("llamagen-c2i-") in known
               for m in models)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for a machine without CUDA")
def test_precision_check_without_cuda_fails_in_one_line_and_leaves_no_table(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "MODELS": "var-d16",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu" / "precision_check.sh")], check=False, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "CUDA is not available" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no empty precision.md (nor its part) left behind
