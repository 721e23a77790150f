"""Host-device syncs on the hot paths, counted on a CPU.

`SyncCounter` tracks the tensors that would live on the accelerator (the generator's parameters and buffers, what ops
compute from them, factories told `device=<the model's>`) and counts what would make the host wait for it: a read of
a device tensor's data (`_local_scalar_dense`: item / bool / int / float), ops whose output size depends on the data
(nonzero, boolean-mask indexing, unique, bincount, ...), copies to the host (`.cpu()`, `.tolist()`, `.numpy()` of a
device tensor: "d2h") and blocking copies of a host tensor to the model's device (`.to(x.device)`: "h2d", which
torch also synchronises). A check made on a CPU only (its line tests `device.type == "cpu"`) is not counted.
"""

from __future__ import annotations

import collections
import linecache
import re
import sys

import pytest
import torch
from tiny_families import BrightnessScorer, tiny_infinity, tiny_llamagen, tiny_var
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from arscale.search.base import make_strategy

aten = torch.ops.aten
_DATA_DEPENDENT = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
                   aten._unique2.default, aten.unique_dim.default, aten.unique_consecutive.default,
                   aten.bincount.default, aten.repeat_interleave.Tensor, aten.equal.default, aten.is_nonzero.default}
_GATHERS = {aten.index_select.default, aten.index.Tensor, aten.gather.default}
_BOOL_INDEXED = {aten.index.Tensor, aten.index_put_.default, aten.index_put.default}
_TO_ARG = re.compile(r"\.to\((?:device=)?([\w.\[\]\"']+)")
_DEVICE_ARG = re.compile(r"device\s*=\s*([\w.\[\]\"']+)")


def _arscale_frame():
    frame = sys._getframe(1)
    while frame is not None and ("/arscale/" not in frame.f_code.co_filename or frame.f_code.co_filename == __file__):
        frame = frame.f_back
    return frame


class SyncCounter(TorchDispatchMode):
    """`with SyncCounter(*modules) as c:` ... `c.count("d2h")`, `c.count("h2d")`, `c.sites` (kind @ file:line)."""

    def __init__(self, *modules: torch.nn.Module):
        super().__init__()
        self.device = WeakIdKeyDictionary()
        self.sites: collections.Counter = collections.Counter()
        for m in modules:
            for t in [*m.parameters(), *m.buffers()]:
                self.device[t] = True

    def count(self, kind: str, where: str = "") -> int:
        return sum(n for site, n in self.sites.items() if site.split(" @ ")[0] == kind and where in site)

    def on_device(self, *tensors) -> bool:
        return any(isinstance(t, torch.Tensor) and t in self.device for t in tensors)

    def _record(self, kind: str) -> None:
        frame = _arscale_frame()
        line = "" if frame is None else linecache.getline(frame.f_code.co_filename, frame.f_lineno)
        if 'device.type == "cpu"' in line:
            return  # a check made on a CPU only: on a GPU the code takes a branch without it
        where = "outside arscale" if frame is None else \
            f"{frame.f_code.co_filename.split('/arscale/')[-1]}:{frame.f_lineno} {frame.f_code.co_name}"
        self.sites[f"{kind} @ {where}"] += 1

    def _names_model_device(self, pattern: re.Pattern) -> bool:
        """Whether the arscale line of this call names the model's device (`self.device`, `x.device` of a device
        tensor), read from the line and evaluated in its frame."""
        frame = _arscale_frame()
        match = frame and pattern.search(linecache.getline(frame.f_code.co_filename, frame.f_lineno))
        if not match or "cpu" in match.group(1):
            return False
        expr = match.group(1).rstrip(",)")
        if not expr.endswith(".device"):
            return True
        try:
            owner = eval(expr[: -len(".device")], frame.f_globals, frame.f_locals)
        except Exception:  # noqa: BLE001 (a line it cannot evaluate: counted, the safe side)
            return True
        return not isinstance(owner, torch.Tensor) or self.on_device(owner)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        device = self.on_device(*tensors)
        if device and func in _DATA_DEPENDENT:
            self._record("d2h")
        if device and func in _BOOL_INDEXED and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else [])):
            self._record("d2h")
        out = func(*args, **kwargs)
        if func in _GATHERS:  # a host tensor indexed by a device index stays on the host (as torch allows)
            device = self.on_device(args[0])
        if not device and not tensors and "device" in kwargs:
            device = self._names_model_device(_DEVICE_ARG)
        if device:
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    self.device[t] = True
            if func._schema.is_mutable and args and isinstance(args[0], torch.Tensor):
                target = args[0]
                while target is not None:  # written through a view: its base holds device data now
                    self.device[target] = True
                    target = target._base
        return out

    def __enter__(self):
        counter = self
        self._saved = {name: getattr(torch.Tensor, name) for name in ("cpu", "tolist", "numpy", "to")}
        cpu, tolist, numpy, to = (self._saved[n] for n in ("cpu", "tolist", "numpy", "to"))

        def host_cpu(t, *a, **k):
            if counter.on_device(t):
                counter._record("d2h")
                with _disable_current_modes():
                    return t.detach().clone()  # a host copy, as on a GPU
            return cpu(t, *a, **k)

        def host_tolist(t):
            if counter.on_device(t):
                counter._record("d2h")
            return tolist(t)

        def host_numpy(t, *a, **k):
            if counter.on_device(t):
                counter._record("d2h")
            return numpy(t, *a, **k)

        def host_to(t, *a, **k):
            out = to(t, *a, **k)
            named = [v for v in (*a, k.get("device")) if isinstance(v, (str, torch.device))]
            if named and not counter.on_device(t) and counter._names_model_device(_TO_ARG):
                counter._record("h2d")
                if out is t:
                    with _disable_current_modes():
                        out = t.clone()
                counter.device[out] = True
            return out

        torch.Tensor.cpu, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.to = \
            host_cpu, host_tolist, host_numpy, host_to
        return super().__enter__()

    def __exit__(self, *exc):
        for name, fn in self._saved.items():
            setattr(torch.Tensor, name, fn)
        return super().__exit__(*exc)


def _modules(gen) -> list[torch.nn.Module]:
    own = [m for m in vars(gen).values() if isinstance(m, torch.nn.Module)]
    return own + ([gen] if isinstance(gen, torch.nn.Module) else [])


def _counted(gen, strategy: str, config: dict | None = None, n: int = 8, prompts=(3, 5)):
    with torch.no_grad(), SyncCounter(*_modules(gen)) as counter:
        result = make_strategy(strategy, config).run(gen, list(prompts), n, seed=0, scorer=BrightnessScorer())
    return counter, result


# -- what the code documents, pinned (they held before the count) --------------------------------------------
@pytest.mark.parametrize("strategy", ["raw", "best-of-n"])
def test_next_token_baselines_sync_once_per_token(strategy):
    gen = tiny_llamagen()
    counter, _ = _counted(gen, strategy)
    # advance's range check (one per token), the reward read once, the images once
    assert counter.count("d2h") <= gen.num_tokens + 2, counter.sites
    assert counter.count("d2h", "advance") == gen.num_tokens, counter.sites


def test_the_sync_counter_sees_a_read_of_a_device_tensor_and_not_of_a_host_one():
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad(), SyncCounter(layer) as counter:
        y = layer(torch.ones(3, 2))
        torch.ones(3).tolist()
        y.sum().item(), y.cpu(), y[y > 0]
    assert counter.count("d2h", "outside arscale") == 3


# -- ScalingAR -------------------------------------------------------------------------------------------------
def test_scaling_ar_reads_the_device_once_per_token_besides_advance():
    gen = tiny_llamagen()
    counter, result = _counted(gen, "scaling-ar", {"record_previews": False})
    T = gen.num_tokens
    assert any(tr["ended"] is not None for per in result.telemetry["prompts"] for tr in per)  # it terminated some
    # the profile's one read, advance's range check, the last token's pmi and the images: inherent
    assert counter.count("d2h") <= 2 * T + 2, counter.sites


def test_scaling_ar_copies_the_guidance_to_the_device_once_per_token():
    gen = tiny_llamagen()
    counter, _ = _counted(gen, "scaling-ar", {"record_previews": False})
    assert counter.count("h2d", "scaling_ar.py") <= gen.num_tokens, counter.sites


# -- selection -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rows", [[0, 0, 1, 3], [0, 2, 3]], ids=["gather", "prune"])
def test_select_copies_its_index_to_the_device_once_per_kind_of_state(rows):
    gen = tiny_llamagen()  # two layers: a KV cache of 4 buffers
    with torch.no_grad(), SyncCounter(*_modules(gen)) as counter:
        traj = gen.start([3, 5], 2, seed=0)
        gen.advance(traj, gen.sample(traj))
        before = counter.count("h2d")
        traj.select(rows)
    # rows' index, the paired index, and the cache's (pruning: its index and the moved rows' from / to)
    assert counter.count("h2d") - before <= (3 if rows == [0, 0, 1, 3] else 5), counter.sites


# -- Infinity --------------------------------------------------------------------------------------------------
def test_infinity_overflow_guard_reads_nothing_off_a_cpu():
    from arscale.generators.next_scale.infinity import _likelier_bit_where_overflowed

    mixed = torch.randn(2, 6, 2, generator=torch.Generator().manual_seed(0))
    plain = _likelier_bit_where_overflowed(mixed, lambda: mixed.double())
    assert torch.equal(plain, mixed)  # nothing overflowed: unchanged
    # a tensor that is not on the CPU (meta: no data, as a GPU's for the host) must not be read
    out = _likelier_bit_where_overflowed(mixed.to("meta"), lambda: mixed.double().to("meta"))
    assert out.shape == mixed.shape and out.device.type == "meta"


def test_infinity_bills_its_scales_without_reading_the_device():
    gen = tiny_infinity()
    counter, result = _counted(gen, "raw", prompts=["a cat", "a red dog"])
    assert counter.count("d2h", "scale_flops") == 0, counter.sites
    # at most the images once, and what the sampler reads (step commits its own tokens unchecked)
    assert counter.count("d2h") <= gen.num_scales + 1, counter.sites
    assert result.cost.transformer_flops > 0


@pytest.mark.parametrize("family", ["var", "infinity"])
def test_a_next_scale_step_commits_its_own_tokens_without_a_range_check(family):
    """`commit` checks tokens from outside (a device sync); `step`'s own sampled ones need none."""
    gen = tiny_var() if family == "var" else tiny_infinity()
    counter, _ = _counted(gen, "raw", prompts=[3, 5] if family == "var" else ["a cat", "a red dog"])
    assert counter.count("d2h", "_checked_tokens") == 0, counter.sites


def test_infinity_copies_its_rope_table_to_the_device_once():
    gen = tiny_infinity()
    counter, _ = _counted(gen, "raw", prompts=["a cat", "a red dog"])
    assert counter.count("h2d", "next_scale/infinity.py") <= 1 + 2, counter.sites  # the rope once; the text (start)


def test_infinity_text_count_matches_the_mask():
    gen = tiny_infinity()
    with torch.no_grad():
        traj = gen.start(["a cat", "a red dog"], [2, 3], seed=0)
        traj.select([0, 4, 4, 1])
    mask = traj.paired["context_mask"]
    text = traj.paired.get("text_tokens", mask)
    assert float(text.sum()) == float(mask.sum())
    assert gen.scale_flops(traj, 2) == gen._scale_flops(2, 2 * len(traj), float(mask.sum()))


# -- next-token previews ---------------------------------------------------------------------------------------
def test_decode_prefix_fills_the_background_without_a_sync():
    gen = tiny_llamagen()
    with torch.no_grad(), SyncCounter(*_modules(gen)) as counter:
        _ = gen.background_code  # found once (one read, cached)
        traj = gen.start([3], 2, seed=0)
        gen.advance(traj, gen.sample(traj))
        before = counter.count("d2h")
        images = gen.preview(traj, 8)
    assert images.shape == (2, 3, 8, 8)
    assert counter.count("d2h") == before, counter.sites
