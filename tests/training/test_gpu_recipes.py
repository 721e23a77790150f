"""The larger-model recipe in benchmarks/gpu/ builds, matches the shipped tokenizers and, once trained,
would still fit the 30 MB budget for all shipped weights."""

import json
from pathlib import Path

from arscale.generators.next_scale.shapeworld import build_shapeworld_var
from arscale.generators.next_token.shapeworld import ShapeWorldAR, ShapeWorldARConfig
from arscale.train.var import full_config

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "benchmarks" / "gpu"
WEIGHTS = ROOT / "src" / "arscale" / "weights"


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _params(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def test_larger_models_fit_the_shipped_budget():
    tok = _json(WEIGHTS / "shapeworld-var" / "tokenizer_config.json")
    shipped_var = build_shapeworld_var(tok, _json(WEIGHTS / "shapeworld-var" / "config.json"))
    large_var = build_shapeworld_var(tok, full_config(tok, _json(RECIPES / "shapeworld-var-large.json")))
    shipped_ar = ShapeWorldAR(ShapeWorldARConfig.from_dict(_json(WEIGHTS / "shapeworld-ar" / "config.json")))
    large_ar = ShapeWorldAR(ShapeWorldARConfig.from_dict(_json(RECIPES / "shapeworld-ar-large.json")))

    var_params = _params(large_var.transformer, large_var.conditioner)
    assert var_params > 2 * _params(shipped_var.transformer, shipped_var.conditioner)
    assert _params(large_ar) > 2 * _params(shipped_ar)
    # the AR trainer refuses a decoder whose vocabulary / grid differ from the (shipped) tokenizer's
    assert large_ar.config.transformer.vocab_size == shipped_ar.config.transformer.vocab_size
    assert large_ar.config.transformer.grid == shipped_ar.config.transformer.grid
    unchanged = ["shapeworld-reward/model.safetensors", "shapeworld-var/tokenizer.safetensors",
                 "shapeworld-ar/tokenizer.safetensors"]
    total = sum((WEIGHTS / f).stat().st_size for f in unchanged) + 2 * (var_params + _params(large_ar))  # fp16
    assert total <= 30 * 2**20, f"{total / 2**20:.1f} MB"


def test_the_recipe_runs_end_to_end_when_made_tiny(tmp_path):
    """Each stage of retrain_larger.sh, with two steps at batch 4 on one CPU thread: the flags it passes exist, the
    weights it returns load, and the evaluation writes its tables."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               ROOT=str(tmp_path / "gpu"), OUT=str(tmp_path / "out"), MINUTES="5", VAR_STEPS="2", AR_STEPS="2",
               COOLDOWN="1", VAR_BATCH="4", AR_BATCH="4", WORKERS="1", LIMIT="2",
               THREADS="1")  # the recipe's 4 and 8 threads would oversubscribe a small CI machine
    for stage in ("var", "ar", "eval"):
        done = subprocess.run(["bash", str(RECIPES / "retrain_larger.sh"), stage], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    var_out, ar_out = tmp_path / "out" / "shapeworld-var-large", tmp_path / "out" / "shapeworld-ar-large"
    assert _json(var_out / "config.json")["training"]["steps"] == 2
    assert _json(var_out / "config.json")["transformer"]["width"] == _json(RECIPES / "shapeworld-var-large.json")[
        "transformer"]["width"]
    assert (ar_out / "model.safetensors").exists() and (ar_out / "tokenizer.safetensors").exists()
    tables = sorted(p.name for p in (tmp_path / "out" / "eval").iterdir())
    assert tables == ["shapeworld-ar-large.md", "shapeworld-ar.md", "shapeworld-var-large.md", "shapeworld-var.md"]
    from arscale.generators.registry import load_generator

    assert load_generator("shapeworld-var", weights=str(var_out)).generate(["a photo of a red circle"], 1,
                                                                          seed=0).shape == (1, 3, 64, 64)
