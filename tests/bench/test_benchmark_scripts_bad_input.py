"""The benchmark scripts against what they promise: bad input gets one line, as
`where_shapes_break.py`, `decoder_on_samples.py` and `ar_implicit_classifier.py` already give it, not a traceback,
a NaN table or a crash deep in the run."""

import runpy
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_script(monkeypatch, name: str, *args: str) -> None:
    """`python benchmarks/<name>.py ARGS`, in this process (its `__main__` block included); torch's thread count, the
    thread variables a script sets and the benchmark modules it imports (precision.py imports generation.py) are
    restored afterwards."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / f"{name}.py"), *args])
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads, modules = torch.get_num_threads(), set(sys.modules)
    try:
        runpy.run_path(str(BENCHMARKS / f"{name}.py"), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
        for module in set(sys.modules) - modules:
            if str(getattr(sys.modules[module], "__file__", "")).startswith(str(BENCHMARKS)):
                del sys.modules[module]


def one_line_error(excinfo, capsys) -> str:
    """The message a script exited with: SystemExit's text, or argparse's `error:` line (exit status 2)."""
    code = excinfo.value.code
    if isinstance(code, str):
        message = code
    else:
        assert code == 2, f"exit status {code!r}"
        message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "\n" not in message and "Traceback" not in message
    return message


MISSING = "/nonexistent-s29-review-f"

CASES = [
    ("shapeworld_ar_sweep", ["sweep", "--per-tag", "1", "--weights", MISSING], "is not a folder"),
    ("kv_memory", ["--per-tag", "1", "--n", "2", "--weights", MISSING], "is not a folder"),
    ("scaling_ar_signals", ["--per-tag", "1", "--n", "2", "--weights", MISSING], "is not a folder"),
    ("reward_accuracy", ["--per-tag", "1", "--weights", MISSING], "no ShapeWorld reward weights"),
    ("reward_consistency", ["--per-tag", "1", "--n", "2", "--reward-weights", MISSING], "no ShapeWorld reward weights"),
    ("conditional_only", ["--per-tag", "0"], "per_tag must be a positive integer"),
    ("generation", ["--model", "no-such-model", "--batch-sizes", "1"], "unknown model 'no-such-model'"),
    ("reward_consistency", ["--model", "shapeworld-ar", "--per-tag", "1", "--n", "2"], "next-scale"),
    ("reward_consistency", ["--per-tag", "1", "--n", "1"], "--n"),
    ("reward_accuracy", ["--per-tag", "0"], "--per-tag"),
    ("where_shapes_break", ["--per-class", "0"], "--per-class"),
    ("shapeworld", ["--repeats", "0"], "--repeats"),
    ("conditional_only", ["--per-tag", "1", "--n", "1", "--repeats", "0"], "--repeats"),
    ("generation", ["--threads", "-1", "--batch-sizes", "1"], "--threads"),
    ("precision", ["--threads", "100000", "--models", "var-d16"], "--threads"),
    ("precision", ["--threads", "0", "--models", "var-d16"], "--threads"),
]


@pytest.mark.parametrize("name, args, expected", CASES, ids=[f"{n}:{i}" for i, (n, _, _) in enumerate(CASES)])
def test_benchmark_scripts_answer_bad_input_in_one_line(monkeypatch, capsys, name, args, expected):
    """A wrong folder, model or count given to a benchmark script exits with one line naming it."""
    with pytest.raises(SystemExit) as excinfo:
        run_script(monkeypatch, name, *args)
    assert expected in one_line_error(excinfo, capsys)


def test_generation_benchmark_takes_device_auto(monkeypatch, capsys):
    """benchmarks/generation.py --device auto (what every arscale command takes) runs and prints its table row."""
    run_script(monkeypatch, "generation", "--device", "auto", "--batch-sizes", "1", "--threads", "1")
    out = capsys.readouterr().out
    assert "shapeworld-var on cpu" in out or "shapeworld-var on cuda" in out
    assert any(line.startswith("| 1 |") for line in out.splitlines())
