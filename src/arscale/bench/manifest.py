"""The run manifest: everything needed to say what produced a bench folder, and to refuse mixing runs.

`manifest.json` (one per run folder; a job-array shard writes `manifest.shard-<i>-of-<N>.json`) holds
the arscale version and git commit (and whether the tree had changes), model id + weights path + sha256 of
each weights file (sampled for files over 256 MB, see `sha256_file`), every label's full strategy config, scorer, seed, budgets, the prompt suite (as given,
and a sha256 of every prompt and its metadata), torch / numpy / Pillow versions, the device used,
hardware, timings and shard. Only the *identity* part (model + weights hash, resolved configs, scorer and
its weights — the hub files it read, where both runs hashed them —, the model's --cfg, --dtype and
--text-dtype where given, seed, the suite's hash, suite kind,
batch_prompts, layout, the cost accounting's version; the device type and, on a CPU, the thread count)
must agree for a resume or a merge;
the suite as typed, --limit, versions, hardware and timings may differ between machines and invocations.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from arscale.atomic_files import atomic_write_text
from arscale.errors import ArscaleError

MANIFEST_FILE = "manifest.json"
SHARD_MANIFEST_GLOB = "manifest.shard-*.json"
# batch_prompts: see runner.blocks
IDENTITY_KEYS = ("model", "scorer", "scorer_weights", "seed", "suite", "kind", "batch_prompts", "cost_accounting")
# bumped when what the cost record counts changes, so a resume never averages two ways of counting:
# 2 = scorer FLOPs, VAR's AdaLN and embedding, LlamaGen's decoder attention (2026-12-06)
# 3 = attention inside scorers counted on a CPU, Infinity's real text lengths, per-prompt ScalingAR FLOPs (2026-12-06)
# 4 = a ScalingAR candidate terminated at step t no longer draws token t nor runs its forward (2026-12-06)
# 5 = the ShapeWorld text encoders' FLOPs, and one CFG half at cfg 1 for raw / Best-of-N / importance (2026-12-06)
# 6 = next-scale models too run one CFG half where their guidance is 1 throughout, TTS-VAR included (2026-12-06)
# 7 = Infinity's AdaLN modulations and bit embedding (2026-12-07)
# 8 = a scorer that resizes itself scores finished images at their own size, its preprocessing counted (2026-12-07)
# 9 = the next-token caption embedder in the prefill, the next-scale FFN at its built width, a next-token forward
#     billed for the rows it ran (2026-12-07)
COST_ACCOUNTING = 9


def manifest_name(array_shards: int, array_index: int) -> str:
    return MANIFEST_FILE if array_shards <= 1 else f"manifest.shard-{array_index}-of-{array_shards}.json"


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file():  # an installed copy: any repository above it is not arscale's
        return None
    try:
        out = subprocess.run(["git", *args], check=False, cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit() -> str:
    head = (_git("rev-parse", "HEAD") or "").strip()
    return head or "unknown"


def git_dirty() -> bool | None:
    """Whether the source tree had uncommitted changes to tracked files (None: not a git checkout)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status.strip())


def suite_hash(prompts: Any) -> str:
    """sha256 of every prompt of a suite with its index and metadata: what the suite *is*, wherever its file lies."""
    digest = hashlib.sha256()
    for sp in prompts:
        digest.update(json.dumps([sp.index, sp.prompt, sp.metadata], sort_keys=True, default=str).encode())
    return digest.hexdigest()


FULL_HASH_BYTES = 256 << 20  # larger files (released checkpoints, several GB each) are hashed by samples
SAMPLE_BYTES = 8 << 20


def sha256_file(path: Path) -> str:
    """sha256 of a file; of a large one, of its size and three 8 MB samples (start, middle, end), marked
    "sampled:" — enough to tell checkpoints apart without reading tens of GB before every bench run."""
    digest = hashlib.sha256()
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        if size <= FULL_HASH_BYTES:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
            return digest.hexdigest()
        digest.update(str(size).encode())
        for offset in (0, size // 2, size - SAMPLE_BYTES):
            f.seek(offset)
            digest.update(f.read(SAMPLE_BYTES))
    return "sampled:" + digest.hexdigest()


def weights_directory(model: str, weights: str | None) -> Path | None:
    """The folder the model loads from: `--model-weights`, else the environment variable a released model's
    factory reads, else the factory module's WEIGHTS_DIR if any."""
    from arscale.generators.registry import MODELS, weights_from_environment

    weights = weights or weights_from_environment(model)
    if weights:
        return Path(weights)

    target = MODELS.get(model)
    if not target:
        return None
    # a plugin may register the factory itself (docs/extending.md): its module is where it was defined
    name = target.split(":", 1)[0] if isinstance(target, str) else getattr(target, "__module__", None)
    try:
        module = importlib.import_module(name) if name else None
    except ImportError:
        return None
    directory = getattr(module, "WEIGHTS_DIR", None)
    return Path(directory) if directory is not None else None


# `bench --dtype` / `--text-dtype`: recorded when given; absent means the loaders' default, fp32, so a run that
# names float32 is the same run as one from before the options (`_identity`)
PRECISION_KEYS = ("dtype", "text_dtype")
DEFAULT_PRECISION = "float32"


def model_entry(model: str, weights: str | None, revision: str | None = None, *,
                cfg: float | None = None, dtype: str | None = None, text_dtype: str | None = None) -> dict[str, Any]:
    from arscale.generators.loading import is_hub_id

    directory = weights_directory(model, weights)
    entry = {"id": model, "revision": revision, "weights_path": str(directory) if directory else None,
             "weights_sha256": weight_hashes(directory)}
    if cfg is not None:  # `bench --cfg`: part of the model's identity (absent: its own, as before the option)
        entry["cfg"] = cfg
    for key, value in zip(PRECISION_KEYS, (dtype, text_dtype), strict=True):
        if value is not None:
            entry[key] = value
    t5 = os.environ.get("ARSCALE_T5_WEIGHTS")
    if t5 and model.startswith(("infinity-", "llamagen-t2i-")) and Path(t5).expanduser().is_dir():
        # a local text encoder is part of the weights (one named by a hub id is hashed once loaded)
        entry["text_encoder_path"] = t5
        entry["text_encoder_sha256"] = weight_hashes(Path(t5).expanduser())
    if directory is not None and is_hub_id(directory.as_posix()):  # hashed once loaded: `add_hub_hashes`
        entry["weights_from_hub"] = True
    return entry


def add_hub_hashes(manifest: dict, files: dict[str, Path], found: list[tuple[Path, dict]], where: str) -> None:
    """Once the model has loaded: the hashes of the hub files it read (`loading.recording_hub_files`) go into
    `manifest`, and an earlier run's manifest with other hashes is refused, as for local weights. Weights named
    by a hub id take them as their `weights_sha256`; local weights keep their folder's, and what they read from
    the hub beside it (Infinity's T5 named by a hub id) goes under MODEL_HUB_KEY."""
    if not files:
        return
    if not manifest["model"].get("weights_from_hub"):
        add_side_hub_hashes(manifest, MODEL_HUB_KEY, files, found, where, f"model {manifest['model'].get('id')}")
        return
    hashes = {key: sha256_file(path) for key, path in sorted(files.items())}
    for path, old in found:
        changed = changed_hub_files((old.get("model") or {}).get("weights_sha256"), hashes)
        if changed:
            raise ArscaleError(f"{where} ({path.name}) was produced by a different run (model: the hub files "
                               f"differ: {', '.join(changed)}; the repository changed since); use another --out "
                               "(and, to keep a run's files fixed, download them and pass their folder)")
    manifest["model"]["weights_sha256"] = hashes


# Hub files read beside what the identity keys hash: not identity keys themselves, so a manifest from before they
# were hashed resumes; where two manifests both recorded a file, its contents must agree (`differences`).
SCORER_HUB_KEY = "scorer_hub_sha256"  # the scorers' (`--scorer` and those strategy configs name)
MODEL_HUB_KEY = "model_hub_sha256"  # a model's with local weights (a text encoder named by a hub id)
SIDE_HUB_KEYS = (MODEL_HUB_KEY, SCORER_HUB_KEY)


def add_scorer_hub_hashes(manifest: dict, files: dict[str, Path], found: list[tuple[Path, dict]], where: str) -> None:
    """Once the scorer has loaded: the hashes of the hub files it read go into `manifest[SCORER_HUB_KEY]`, and an
    earlier run's manifest whose scorer read other contents is refused."""
    add_side_hub_hashes(manifest, SCORER_HUB_KEY, files, found, where, f"scorer {manifest.get('scorer')}")


def add_side_hub_hashes(manifest: dict, key: str, files: dict[str, Path], found: list[tuple[Path, dict]],
                        where: str, what: str) -> None:
    if not files:  # shipped or local files only, or no scorer
        return
    hashes = {name: sha256_file(path) for name, path in sorted(files.items())}
    for path, old in found:
        changed = changed_hub_files(old.get(key), hashes)
        if changed:
            raise ArscaleError(f"{where} ({path.name}) was produced by a different run ({what}: the hub files "
                               f"differ: {', '.join(changed)}; the repository changed since); use another --out "
                               "(and, to keep such files fixed, download them and load them from their folder: "
                               "docs/scorers.md, docs/models.md)")
    manifest[key] = hashes


def changed_hub_files(old: dict | None, new: dict | None) -> list[str]:
    """The hub files two runs both recorded with other contents. A file only one of them recorded is no
    difference: a transformers load records its whole cached snapshot, which is one commit (so a file both saw
    differs only when the repository moved), while the cache may gain files a model never reads, and a manifest
    from before such loads were recorded lacks them."""
    old, new = old or {}, new or {}
    return sorted(key for key in set(old) & set(new) if old[key] != new[key])


def scorer_weights_entry(directory: str | None) -> dict[str, Any] | None:
    """`--scorer-weights`: where the ShapeWorld reward/features came from and their hashes (None: shipped)."""
    if not directory:
        return None
    return {"weights_path": str(directory), "weights_sha256": weight_hashes(Path(directory))}


def weight_hashes(directory: Path | None) -> dict[str, str]:
    hashes: dict[str, str] = {}
    if directory is not None and directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.is_file() and path.suffix in (".safetensors", ".json", ".bin", ".pt", ".pth"):
                hashes[path.name] = sha256_file(path)
    elif directory is not None and directory.is_file():  # a checkpoint file: its VAE / tokenizer lies beside it
        hashes = weight_hashes(directory.parent)
        hashes.setdefault(directory.name, sha256_file(directory))
    return hashes


def hardware() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cpu_count": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    import torch

    if torch.cuda.is_available():
        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def build_manifest(*, model: dict, strategies: dict[str, dict], scorer: str | None, seed: int, ns: list[int],
                   suite: dict, kind: str, shard: dict, batch_prompts: int, layout: str = "geneval",
                   scorer_weights: dict | None = None, device: str | None = None,
                   threads: int | None = None) -> dict[str, Any]:
    import numpy
    import PIL
    import torch

    import arscale

    return {"arscale_version": getattr(arscale, "__version__", "unknown"), "git_commit": git_commit(),
            "git_dirty": git_dirty(),
            "model": model, "strategies": strategies, "scorer": scorer, "scorer_weights": scorer_weights,
            "seed": seed, "ns": list(ns),
            "suite": suite, "kind": kind, "batch_prompts": batch_prompts, "layout": layout,
            "cost_accounting": COST_ACCOUNTING, "torch_version": torch.__version__,
            "numpy_version": numpy.__version__, "pillow_version": PIL.__version__, "device": device,
            "threads": threads, "hardware": hardware(), "shard": shard, "timings": {"started": time.time()}}


def _identity(manifest: dict, key: str) -> Any:
    value = manifest.get(key)
    if key in ("model", "scorer_weights") and isinstance(value, dict):  # where weights lie may differ between nodes
        value = {k: v for k, v in value.items() if k not in ("weights_path", "text_encoder_path")  # hashes compared
                 and not (k in PRECISION_KEYS and v == DEFAULT_PRECISION)}
    if key == "suite" and isinstance(value, dict):  # what the prompts are, not how the path was typed or cut
        value = {k: v for k, v in value.items() if k == "sha256"}
    return value


def _draw_differences(old: dict, new: dict) -> list[str]:
    """What decides the images besides the identity keys, where both manifests recorded it: the device type (a
    CUDA generator draws other numbers than a CPU one for the same seed; cuda:0 and cuda:1 draw the same) and, on
    a CPU, the thread count (kernels split their sums by it, as by the batch: see `runner.blocks`)."""
    kinds = [str(m.get("device") or "").split(":")[0] for m in (old, new)]
    if all(kinds) and kinds[0] != kinds[1]:
        return [f"device: {kinds[0]} vs {kinds[1]} (their random generators draw other numbers)"]
    threads = [m.get("threads") for m in (old, new)]
    if kinds == ["cpu", "cpu"] and all(threads) and threads[0] != threads[1]:
        return [f"threads: {threads[0]} vs {threads[1]} (CPU kernels round otherwise with another thread count)"]
    return []


def differences(old: dict, new: dict) -> list[str]:
    """Human-readable identity differences between two manifests (empty when compatible)."""
    drawn = _draw_differences(old, new)
    both_hub = all(isinstance(m.get("model"), dict) and _from_hub(m["model"]) for m in (old, new))
    side_files = {key: changed_hub_files(old.get(key), new.get(key)) for key in SIDE_HUB_KEYS}  # shards merged
    typed = [(m.get("suite") or {}).get("spec") if isinstance(m.get("suite"), dict) else None for m in (old, new)]
    old = {k: _identity(old, k) for k in IDENTITY_KEYS} | {k: old.get(k) for k in ("layout", "strategies")}
    new = {k: _identity(new, k) for k in IDENTITY_KEYS} | {k: new.get(k) for k in ("layout", "strategies")}
    a, b = old["model"], new["model"]
    hub_files: list[str] = []
    if both_hub:
        # the flag itself is new: a manifest from before it is a hub run all the same. The hashes compare on the
        # files both recorded (`changed_hub_files`: a machine's cache may hold more of a snapshot), and not at
        # all where one side has not loaded yet (`add_hub_hashes` checks then)
        hub_files = changed_hub_files(a.get("weights_sha256"), b.get("weights_sha256"))
        old["model"], new["model"] = ({k: v for k, v in m.items() if k not in ("weights_from_hub", "weights_sha256")}
                                      for m in (a, b))
    if not (old["suite"] and new["suite"]):  # a manifest from before suites were hashed: nothing to compare
        old["suite"] = new["suite"] = None
    diffs = [_difference(key, old.get(key), new.get(key)) for key in IDENTITY_KEYS if old.get(key) != new.get(key)]
    diffs += drawn
    if hub_files:
        diffs.insert(0, f"model: {a.get('id')}'s weights differ ({', '.join(hub_files)})")
    if all(typed) and old["suite"] != new["suite"]:  # what the user typed, not two hashes
        said = f"{typed[0]} vs {typed[1]}" if typed[0] != typed[1] else f"{typed[0]} in both, with other contents"
        diffs = [f"suite: {said} (other prompts)" if d.startswith("suite:") else d for d in diffs]
    if side_files[MODEL_HUB_KEY]:
        diffs.append(f"model: the hub files beside its weights differ ({', '.join(side_files[MODEL_HUB_KEY])})")
    if side_files[SCORER_HUB_KEY]:
        diffs.append(f"scorer: the hub files differ ({', '.join(side_files[SCORER_HUB_KEY])})")
    if (old.get("layout") or "geneval") != (new.get("layout") or "geneval"):  # none recorded: GenEval's
        diffs.append(f"layout: {old.get('layout')} vs {new.get('layout')}")
    old_s, new_s = old.get("strategies") or {}, new.get("strategies") or {}
    for label in sorted(set(old_s) & set(new_s)):
        a, b = _comparable(old_s[label], new_s[label])
        if a == b:
            continue
        for key in sorted(set(a) | set(b)):  # name the fields that differ, not two whole configs
            x, y = a.get(key), b.get(key)
            if isinstance(x, dict) and isinstance(y, dict):
                diffs += [f"strategy {label} {field}: {json.dumps(x.get(field))} vs {json.dumps(y.get(field))}"
                          for field in sorted(set(x) | set(y)) if x.get(field) != y.get(field)]
            elif x != y:
                diffs.append(f"strategy {label} {key}: {json.dumps(x, sort_keys=True)} vs {json.dumps(y, sort_keys=True)}")
    return diffs


def _from_hub(entry: dict) -> bool:
    """A model entry for weights named by a hub id (marked so, or written before the mark: no hashes and a
    `weights_path` that is an owner/repo and no local path)."""
    from arscale.generators.loading import is_hub_id

    if entry.get("weights_from_hub"):
        return True
    return not entry.get("weights_sha256") and bool(entry.get("weights_path")) and is_hub_id(entry["weights_path"])


def _difference(key: str, old: Any, new: Any) -> str:
    """One identity difference in words: what a user can act on, not two JSON blobs of hashes."""
    if key in ("model", "scorer_weights") and isinstance(old, dict) and isinstance(new, dict):
        if old.get("id") != new.get("id"):
            return f"{key}: {old.get('id')} vs {new.get('id')}"
        for hashes, part in (("weights_sha256", "weights"), ("text_encoder_sha256", "text encoder files")):
            a, b = old.get(hashes) or {}, new.get(hashes) or {}
            changed = sorted(name for name in set(a) | set(b) if a.get(name) != b.get(name))
            if changed:
                what = f"{old.get('id')}'s" if old.get("id") else "the"
                return f"{key}: {what} {part} differ ({', '.join(changed)})"
        settings = [f"cfg {old.get('cfg', 'default')} vs {new.get('cfg', 'default')}"] \
            if old.get("cfg") != new.get("cfg") else []  # `bench --cfg`; absent: the model's own
        settings += [f"{name} {old.get(name, DEFAULT_PRECISION)} vs {new.get(name, DEFAULT_PRECISION)}"
                     for name in PRECISION_KEYS if old.get(name) != new.get(name)]  # `--dtype`, `--text-dtype`
        if settings:
            return f"{key}: {', '.join(settings)}"
    if key == "scorer_weights" and (old is None or new is None):  # --scorer-weights in one run only
        return f"scorer_weights: {'the shipped reward' if old is None else '--scorer-weights'} vs " \
               f"{'the shipped reward' if new is None else '--scorer-weights'}"
    if key == "cost_accounting":
        return (f"cost_accounting: {old} vs {new} (an arscale of another version counted compute differently, so "
                "its costs cannot be averaged with this one's: use a new --out)")
    return f"{key}: {json.dumps(old, sort_keys=True)} vs {json.dumps(new, sort_keys=True)}"


def _comparable(old: dict, new: dict) -> tuple[dict, dict]:
    """Two manifests' entries for one strategy label, cut to the keys both record, so an entry key a later
    arscale added (`reward_used`) does not block a resume. The resolved config is compared whole (a field
    added to it may change what the strategy does); the config as typed is not, so writing out a default
    is the same run."""
    keys = (set(old) & set(new)) - ({"config"} if "resolved" in old and "resolved" in new else set())
    return {k: old[k] for k in keys}, {k: new[k] for k in keys}


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
        raise ArscaleError(f"cannot read manifest {path}: {exc}") from None
    if not isinstance(manifest, dict):
        raise ArscaleError(f"cannot read manifest {path}: not a JSON object (was it written by `arscale bench`?)")
    return manifest


def check_compatible(old: dict, new: dict, where: str) -> None:
    diffs = differences(old, new)
    if diffs:
        raise ArscaleError(f"{where} was produced by a different run ({'; '.join(diffs)}); "
                           "use another --out or the same settings")


def combine(old: dict, new: dict) -> dict:
    """`new` with the union of strategies and budgets (a resume may add labels or N)."""
    out = dict(new)
    out["strategies"] = {**old.get("strategies", {}), **new.get("strategies", {})}
    for key in SIDE_HUB_KEYS:  # kept where a resume recorded none (e.g. loaded locally), gathered over shards
        files = {**old.get(key, {}), **new.get(key, {})}
        if files:
            out[key] = files
    out["ns"] = sorted(set(old.get("ns", [])) | set(new.get("ns", [])))
    timings = dict(old.get("timings", {}))
    timings.setdefault("started", new.get("timings", {}).get("started"))
    timings["resumed"] = timings.get("resumed", []) + ([new["timings"]["started"]] if "started" in old.get(
        "timings", {}) else [])
    out["timings"] = timings
    return out


def shard_timings(found: list[tuple[Path, dict]]) -> dict[str, Any]:
    """A merged folder's timings: each shard's own, once (a merged manifest contributes the shards it lists,
    so merging again adds nothing; where a shard's own manifest is among `found`, its timings replace the copy an
    earlier merge kept, which may predate the shard's end or a resume), and their sum, the run's total compute
    time."""
    shards: dict[str, dict] = {}
    for _, manifest in found:  # a merged manifest's copies first: a shard's own manifest is newer than them
        shards.update(manifest.get("timings", {}).get("shards", {}))
    for path, manifest in found:
        timings = manifest.get("timings", {})
        if "shards" not in timings:
            shards[str(Path(path).resolve())] = timings
    started = [t["started"] for t in shards.values() if t.get("started")]
    finished = [t["finished"] for t in shards.values() if t.get("finished")]
    return {"shards": shards, "wall_seconds": sum(t.get("wall_seconds", 0.0) for t in shards.values()),
            "started": min(started, default=None), "finished": max(finished, default=None)}


def write_manifest(path: Path, manifest: dict) -> None:
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
