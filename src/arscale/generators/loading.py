"""Reading released checkpoints: where the file is, which container holds the weights, which keys to rename.

Everything goes through `torch.load(weights_only=True)` or safetensors: no code is ever unpickled.
The one object that older LlamaGen training checkpoints carry besides tensors, an `argparse.Namespace`,
is allowed explicitly through `torch.serialization.safe_globals`.

Loading is strict: after the family's renames, every key the model expects must be present and every
key in the file must be used, apart from an explicit list of buffers that upstream stores but that we
recompute (masks, level indices, all-zero key biases). Anything else is an `ArscaleError` that names
the keys. The released-model loaders build their modules with meta parameters (`meta_build`), which
`load_strict` fills with the file's own tensors: no random init, one copy of the weights.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators.meta_build import meta_tensors

# The containers released checkpoints use, in the order they are tried.
GPT_CONTAINERS = ("model", "module", "state_dict")
VAE_CONTAINERS = ("vae",)

# Buffers the released files carry that our modules rebuild themselves. `zero_k_bias` entries are checked
# to be zero (our attention has no key bias), the rest are ignored.
VAR_IGNORED = ("lvl_1L", "attn_bias_for_masking", "blocks.*.attn.zero_k_bias")
VAR_VAE_IGNORED = ("quantize.ema_vocab_hit_SV",)
INFINITY_IGNORED = (
    "lvl_1L", "attn_bias_for_masking", "Infinity_visible_kvlen", "Infinity_invisible_qlen",
    "blocks.*.sa.zero_k_bias", "blocks.*.ca.zero_k_bias", "text_proj_for_sos.ca.zero_k_bias",
)
INFINITY_VAE_IGNORED = ("quantizer.lfq.mask", "quantize.lfq.mask")
LLAMAGEN_IGNORED = ("freqs_cis", "causal_mask", "layers.*.attention.kv_cache.*")
LLAMAGEN_VQ_IGNORED = ("quantize.codebook_used",)  # present only when trained with codebook_show_usage
ZERO_CHECKED = ("*zero_k_bias",)

_BLOCK_CHUNK = re.compile(r"^block_chunks\.(\d+)\.module\.(\d+)\.(.*)$")
_WRAPPED_VAE = re.compile(r"\.(conv|norm)\.(weight|bias)$")


# -- finding and reading files ------------------------------------------------------------------------
_HUB_RECORDS: list[dict[str, Path]] = []  # open `recording_hub_files` blocks


def transformer_dtype(model: str, dtype: str | torch.dtype | None) -> torch.dtype:
    """A released model's `dtype=` (a name or a torch dtype): one the transformer's autocast runs in, checked in one
    line before any file is read."""
    from arscale.scorers.hf import as_dtype

    dtype = as_dtype(dtype)
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ArscaleError(f"{model} runs in float32, bfloat16 or float16, not {dtype}")
    return dtype


def check_text_dtype(dtype: str | torch.dtype | None) -> None:
    """A text-to-image loader's `text_dtype=`, checked before the (large) transformer is built: a misspelt name is one
    line at once, not after minutes of loading."""
    from arscale.scorers.hf import as_dtype

    as_dtype(dtype)


@contextmanager
def recording_hub_files() -> Iterator[dict[str, Path]]:
    """Collect every hub file `resolve` hands out inside the block, as {"owner/repo/file": local copy}: what a
    model loaded from the hub, so a bench can hash it like a local folder."""
    seen: dict[str, Path] = {}
    _HUB_RECORDS.append(seen)
    try:
        yield seen
    finally:
        _HUB_RECORDS.remove(seen)


def recording() -> bool:
    """Whether a `recording_hub_files` block is open (so finding a hub file's local copy is worth the trouble)."""
    return bool(_HUB_RECORDS)


def record_hub_file(key: str, path: str | os.PathLike) -> None:
    """Note a hub file ("owner/repo/file") and its local copy in every open `recording_hub_files` block."""
    for record in _HUB_RECORDS:
        record[key] = Path(path)


def is_hub_id(source: str | os.PathLike | None) -> bool:
    """`owner/repo` that is not a local path: what `resolve` fetches through huggingface_hub."""
    try:
        if source is None or Path(source).expanduser().exists():
            return False
    except RuntimeError:  # "~nobody/x": a home folder that does not exist, so a path, not a hub id
        return False
    text = str(source)
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", text)) and not text.startswith((".", "/"))


def resolve(source: str | os.PathLike, filename: str | None = None, *, beside: bool = False) -> Path:
    """A local file, a directory holding `filename`, or a hub id `owner/repo` (downloaded through huggingface_hub).

    `beside`: `filename` is a companion of the checkpoint `source` names (its VAE or VQ tokenizer), so a file
    given there means the folder it lies in."""
    path = Path(source).expanduser()
    if path.is_file() and beside and filename is not None and path.name != filename:
        if (path.parent / filename).is_file():
            return path.parent / filename
        raise ArscaleError(f"{filename} is not beside {path}; download it there or name it itself "
                           "(vae_weights= / vq_weights=)")
    if path.is_file():
        return path
    if path.is_dir():
        if filename is None:
            raise ArscaleError(f"{path} is a directory; name the checkpoint file inside it")
        if (path / filename).is_file():
            return path / filename
        raise ArscaleError(f"{path} has no {filename}; download it there or pass the file itself")
    text = str(source)
    if is_hub_id(text):
        if filename is None:
            raise ArscaleError(f"hub id {text!r} needs a file name inside the repository")
        try:
            from huggingface_hub import hf_hub_download
        except ImportError as exc:  # optional dependency: only real-weight users need it
            raise ArscaleError(
                f"{text!r} is not a local file and huggingface_hub is not installed; "
                "`pip install arscale[real]` or pass a local path"
            ) from exc
        try:
            path = Path(hf_hub_download(repo_id=text, filename=filename))
        except Exception as exc:  # network, auth, missing file: one clear line for the user
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArscaleError(f"no local path {text} exists, and {filename} could not be fetched from the hub "
                               f"repository {text} either: {first}") from exc
        record_hub_file(f"{text}/{filename}", path)
        return path
    raise ArscaleError(f"checkpoint {text!r} not found (neither a local file nor a hub id owner/repo)")


def read_safetensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a damaged or cut-off one fails in one line naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if Path(path).is_dir():  # else safetensors says only "No such device (os error 19)"
        raise ArscaleError(f"cannot read {path}: it is a folder, not a safetensors file")
    try:
        return load_file(str(path), device=str(device))
    except OSError as exc:
        raise ArscaleError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (SafetensorError, RuntimeError, ValueError) as exc:  # a bad header, a truncated body
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArscaleError(f"{path} is not a readable safetensors file ({reason}): damaged or only partly "
                           "copied?") from None


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file (a model's config); a broken one fails in one line naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ArscaleError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ArscaleError(f"{path} is not valid JSON ({exc})") from None


def read_checkpoint(path: str | os.PathLike) -> Any:
    """The object stored in a checkpoint file, tensors on the CPU, without unpickling any code."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:
        if "Namespace" not in str(first):
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(first)).strip()  # torch colours some of its messages
            stored = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)  # or a blocked module's
            if stored:  # intact, but it pickles Python objects beside the tensors
                raise ArscaleError(f"{path} stores {stored.group(1)} objects beside its tensors, and arscale reads "
                                   "only tensor-only checkpoints (torch.load with weights_only=True): save the "
                                   "state_dict alone") from first
            message = text.splitlines()[0] if text else ""
            # some failures say only a number (a missing record's offset): name the exception too
            reason = message if any(ch.isalpha() for ch in message) else f"{type(first).__name__} {message}".strip()
            raise ArscaleError(f"{path} cannot be read as a tensor-only checkpoint ({reason}): damaged, only partly "
                               "copied, or not a PyTorch checkpoint?") from first
        # LlamaGen training checkpoints carry their argparse.Namespace next to the weights.
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, Mapping) or not obj:  # named here: `unwrap` does not know which file it was
        what = "an empty dict" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        raise ArscaleError(f"{path} holds {what}, not a state dict (a dict of tensors)")
    return obj


# -- containers and renames ---------------------------------------------------------------------------
def unwrap(obj: Any, containers: Iterable[str]) -> dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint container (`{'model': sd}`, `{'vae': sd}`, ...) or a flat one."""
    if not isinstance(obj, Mapping):
        raise ArscaleError(f"a checkpoint must hold a dict of tensors, got {type(obj).__name__}")
    for key in containers:
        if key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ArscaleError(
            f"no tensors found; expected a flat state_dict or one under {', '.join(map(repr, containers))}; "
            f"top-level keys: {', '.join(list(map(str, obj))[:10])}"
        )
    return tensors


def flatten_block_chunks(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Infinity's `block_chunks.{c}.module.{j}.*` -> `blocks.{c*per_chunk+j}.*`, the chunk count read from the keys."""
    found = [(int(m.group(1)), int(m.group(2))) for k in sd if (m := _BLOCK_CHUNK.match(k))]
    if not found:
        return dict(sd)
    chunks = max(c for c, _ in found) + 1
    per_chunk = max(j for _, j in found) + 1
    if set(found) != {(c, j) for c in range(chunks) for j in range(per_chunk)}:  # every block of every chunk
        raise ArscaleError(f"block_chunks keys are not a full {chunks}x{per_chunk} grid; the checkpoint is damaged")
    out = {}
    for k, v in sd.items():
        m = _BLOCK_CHUNK.match(k)
        out[f"blocks.{int(m.group(1)) * per_chunk + int(m.group(2))}.{m.group(3)}" if m else k] = v
    return out


def bare_vae_key(key: str) -> str:
    """Infinity VAE: the wrapped name `...conv1.conv.weight` in its bare form `...conv1.weight`."""
    return _WRAPPED_VAE.sub(r".\2", key)


def match_vae_keys(sd: Mapping[str, torch.Tensor], expected: Iterable[str]) -> dict[str, torch.Tensor]:
    """Accept both Infinity VAE key forms: a key is taken as is or as the bare form of an expected key."""
    by_bare: dict[str, str] = {}
    for name in expected:
        by_bare.setdefault(bare_vae_key(name), name)
    expected = set(expected)
    out = {}
    for k, v in sd.items():
        out[k if k in expected else by_bare.get(k, k)] = v
    return out


def drop(sd: Mapping[str, torch.Tensor], patterns: Iterable[str]) -> dict[str, torch.Tensor]:
    patterns = tuple(patterns)
    return {k: v for k, v in sd.items() if not any(fnmatch.fnmatchcase(k, p) for p in patterns)}


def upcast(sd: Mapping[str, torch.Tensor], dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Floating tensors to `dtype` (released weights may be bf16/fp16); integer buffers unchanged."""
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}


# -- strict loading -----------------------------------------------------------------------------------
def _listing(keys: list[str], limit: int = 8) -> str:
    head = ", ".join(keys[:limit])
    return head + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


# Key fragments only one kind of released checkpoint holds, for naming a file given in place of another.
_FAMILY_KEYS = (("a LlamaGen transformer", ("tok_embeddings", "cls_embedding", "attention.wqkv")),
                ("an Infinity transformer", ("cfg_uncond", "text_norm", "text_proj_for_sos")),
                ("a VAR transformer", ("class_emb", "word_embed", "attn.mat_qkv")),
                ("an image tokenizer (VQ / VAE)", ("post_quant_conv", "quant_conv", "quantize.", "quantizer.")))


def checkpoint_family(sd: Mapping[str, Any]) -> str | None:
    """Which kind of released checkpoint a state dict looks like, from its key names (None: none known)."""
    for family, fragments in _FAMILY_KEYS:
        if any(fragment in key for key in sd for fragment in fragments):
            return family
    return None


def load_strict(module: nn.Module, sd: Mapping[str, torch.Tensor], *, ignore: Iterable[str] = (),
                what: str = "checkpoint") -> None:
    """Load `sd` into `module`; every expected key must be present and every given key used.

    Keys matching `ignore` may be present or absent; those that also match `*zero_k_bias` must be zero.
    A module built inside `meta_build.parameters_on_meta()` takes the tensors of `sd` themselves (cast to its
    parameters' dtypes, copied only where the layout differs): no second copy of the weights is made, and names
    that share one parameter (a tie) still share one.
    """
    ignore = tuple(ignore)
    expected = module.state_dict()
    ignored = {k for k in sd if k not in expected and any(fnmatch.fnmatchcase(k, p) for p in ignore)}
    for k in ignored:
        if any(fnmatch.fnmatchcase(k, p) for p in ZERO_CHECKED) and torch.count_nonzero(sd[k]) > 0:
            raise ArscaleError(f"{what}: {k} is expected to be all zero (a fixed key bias) but is not")
    leftover = sorted(k for k in sd if k not in expected and k not in ignored)
    missing = sorted(k for k in expected if k not in sd)
    if missing and len(missing) == len(expected):
        family = checkpoint_family(sd)
        guess = (f"it looks like {family}: is it the right file?" if family else
                 "is it a training checkpoint instead of the released weights?")
        raise ArscaleError(f"{what}: none of the model's keys are in this file (it holds {_listing(sorted(sd), 4)}); "
                           f"{guess}")
    if missing or leftover:
        parts = []
        if missing:
            parts.append(f"missing keys: {_listing(missing)}")
        if leftover:
            parts.append(f"unexpected keys: {_listing(leftover)}")
        raise ArscaleError(f"{what} does not fit the model; " + "; ".join(parts))
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(expected[k].shape)}" for k in expected
             if tuple(sd[k].shape) != tuple(expected[k].shape)]
    if wrong:
        raise ArscaleError(f"{what} has tensors of the wrong shape for this config: {_listing(wrong, 4)}")
    if not meta_tensors(module):  # built eagerly: copied into the module's own tensors
        module.load_state_dict({k: v for k, v in sd.items() if k in expected}, strict=True)
        return
    # built by `parameters_on_meta`: the file's tensors become the module's, cast to the dtype each one was given
    ties = _tied_names(module, expected)
    module.load_state_dict(_assignable(sd, expected), strict=True, assign=True)
    _retie(module, ties)
    left = meta_tensors(module)
    if left:  # a buffer the constructor left on the meta device: it would fail only at the first forward
        raise ArscaleError(f"{what}: {_listing(left)} got no values (left on the meta device)")


def _assignable(sd: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of `sd` that `expected` names, in the dtype and the memory layout a copy into a freshly
    built module would have: each is contiguous, 64-byte aligned (as the CPU allocator aligns) and starts at its
    own address, so no kernel sees another layout than the eager path's and no two parameters overlap (a tensor
    overlapping one handed out before is copied). Slices of one fused tensor of the file that do not overlap
    (HPSv2's q / k / v from `in_proj`) stay views into it, side by side: one copy of the weights fewer."""
    out, spans = {}, {}  # storage -> the byte ranges of it already handed out
    for k, target in expected.items():
        v = sd[k].to(target.dtype)
        start = v.data_ptr()
        end = start + v.numel() * v.element_size()
        taken = spans.get(v.untyped_storage().data_ptr(), [])
        if not v.is_contiguous() or start % 64 or any(s == start or (s < end and start < e) for s, e in taken):
            v = v.clone(memory_format=torch.contiguous_format)
            start, end = v.data_ptr(), v.data_ptr() + v.numel() * v.element_size()
        spans.setdefault(v.untyped_storage().data_ptr(), []).append((start, end))
        out[k] = v
    return out


def _tied_names(module: nn.Module, expected: Mapping[str, torch.Tensor]) -> list[list[str]]:
    """The state-dict names that share one parameter or buffer object (tied weights), grouped, each group in the
    state dict's order."""
    order = {name: i for i, name in enumerate(expected)}
    groups: dict[int, list[str]] = {}
    for name, tensor in [*module.named_parameters(remove_duplicate=False),
                         *module.named_buffers(remove_duplicate=False)]:
        if name in order:
            groups.setdefault(id(tensor), []).append(name)
    return [sorted(names, key=order.__getitem__) for names in groups.values() if len(names) > 1]


def _retie(module: nn.Module, groups: list[list[str]]) -> None:
    """Assigning gave each name of a tied group its own tensor: point them all at the one loaded last, which is what
    an eager load (each key copied, in state-dict order, into the one shared tensor) leaves in it."""
    for *others, last in groups:
        owner, leaf = _owner(module, last)
        kept = owner._parameters[leaf] if leaf in owner._parameters else owner._buffers[leaf]
        for name in others:
            holder, key = _owner(module, name)
            (holder._parameters if key in holder._parameters else holder._buffers)[key] = kept


def _owner(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    prefix, _, leaf = name.rpartition(".")
    return (module.get_submodule(prefix) if prefix else module), leaf


# -- per-family preparation (container -> our key names) --------------------------------------------
def fit_length(t: torch.Tensor, length: int) -> torch.Tensor:
    """Truncate or zero-pad dim 0 to `length` (Infinity's cfg_uncond against the model's text_maxlen)."""
    if t.shape[0] >= length:
        return t[:length]
    return torch.cat([t, t.new_zeros(length - t.shape[0], *t.shape[1:])])


def infinity_state(obj: Any, text_maxlen: int | None = None) -> dict[str, torch.Tensor]:
    """The file's tensors in their own dtype: `load_strict` casts each one to its parameter's, so a bf16 file loaded
    with `dtype="bfloat16"` is taken as it is, without an fp32 copy of its 2 B parameters in between."""
    sd = flatten_block_chunks(unwrap(obj, GPT_CONTAINERS))
    if text_maxlen is not None and "cfg_uncond" in sd:
        sd["cfg_uncond"] = fit_length(sd["cfg_uncond"], text_maxlen)
    return sd


def infinity_vae_state(obj: Any, expected: Iterable[str]) -> dict[str, torch.Tensor]:
    return upcast(match_vae_keys(unwrap(obj, VAE_CONTAINERS), expected))


def var_state(obj: Any) -> dict[str, torch.Tensor]:
    return upcast(unwrap(obj, GPT_CONTAINERS))


def llamagen_state(obj: Any) -> dict[str, torch.Tensor]:
    sd = unwrap(obj, GPT_CONTAINERS)
    # torch.compile and DDP wrappers, nested either way (DDP(compile(model)) saves "module._orig_mod.")
    sd = {re.sub(r"^(?:_orig_mod\.|module\.)+", "", k): v for k, v in sd.items()}
    return upcast(drop(sd, ("freqs_cis",)))


def shapeworld_folder_holds(folder: str | os.PathLike) -> str:
    """What a ShapeWorld weights folder (or training state) holds, read from its config files: the folder of
    another model then gets an error that says so, not a dataclass's complaint about a field."""
    folder = Path(folder)

    def keys(name: str) -> set[str]:
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        if name == "state.json":  # a training state keeps its model's config under "config"
            data = data.get("config", {}) if isinstance(data, dict) else {}
        return set(data) if isinstance(data, dict) else set()

    config, tokenizer = keys("config.json") | keys("state.json"), keys("tokenizer_config.json")
    if "text_encoder" in config:
        return "a ShapeWorld-VAR model"
    if "preview_fill" in config or {"text", "transformer"} <= config:
        return "a ShapeWorld-AR model"
    if "fusion_depth" in config:
        return "a ShapeWorld reward"
    if "patch_nums" in config | tokenizer:
        return "a ShapeWorld-VAR tokenizer"
    if "tokenizer" in config | tokenizer or "codebook_size" in config:
        return "a ShapeWorld-AR tokenizer"
    return "no ShapeWorld model arscale knows"


@contextmanager
def shapeworld_folder(folder: str | os.PathLike, wanted: str) -> Iterator[None]:
    """Build a model from `folder`'s config: a config of another kind fails in one line naming what it holds."""
    try:
        yield
    except ArscaleError as exc:  # a model's own check (sizes that disagree): say which folder it came from
        if str(folder) in str(exc):
            raise
        raise ArscaleError(f"{folder}: {exc}") from None
    except (TypeError, KeyError, ValueError, AttributeError, AssertionError) as exc:  # a field of the wrong kind
        holds, detail = shapeworld_folder_holds(folder), f"{type(exc).__name__}: {exc}"
        if holds == wanted:  # the right kind, but a config this version cannot build
            raise ArscaleError(f"{folder} holds {wanted} whose config this arscale cannot build ({detail})") from None
        if holds.startswith("no "):
            raise ArscaleError(f"{folder} holds {holds}, not {wanted} (its config: {detail})") from None
        raise ArscaleError(f"{folder} holds {holds}, not {wanted}") from None  # the kind says it all
