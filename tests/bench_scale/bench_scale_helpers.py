"""A tiny random-weight ShapeWorld-VAR saved as a weights folder (for `arscale bench --model-weights`),
and helpers to run the bench CLI as a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

PATCH_NUMS = (1, 2, 3, 4)


def save_tiny_var(directory: Path) -> Path:
    tokenizer, model = tiny_var_configs(PATCH_NUMS, vocab_size=16, depth=1)
    gen = build_tiny_var(tokenizer, model)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(model))
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer))
    save_file({k: v.contiguous() for k, v in gen.tokenizer.state_dict().items()},
              str(directory / "tokenizer.safetensors"))
    body = torch.nn.ModuleDict({"transformer": gen.transformer, "conditioner": gen.conditioner})
    save_file({k: v.contiguous() for k, v in body.state_dict().items()}, str(directory / "model.safetensors"))
    return directory


def bench_argv(weights: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "arscale.cli", "bench", "--model-weights", str(weights), "--out", str(out),
            "--strategies", "raw,best-of-n", "--n", "1,2", "--prompts", "draw:2:5", "--limit", "12",
            "--batch-prompts", "2", "--seed", "3", "--quiet", *extra]


# a subprocess bench takes about 10 s alone; a CI machine busy with other work took over 120 s once
SUBPROCESS_TIMEOUT = 600


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def run_bench(weights: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(bench_argv(weights, out, *extra), env=env or clean_env(), capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc
