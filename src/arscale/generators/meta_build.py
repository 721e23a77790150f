"""Building a model whose weights a checkpoint will fill: parameters on the meta device, buffers as usual.

A released model is billions of parameters that the checkpoint overwrites at once, so drawing their random init
(in fp32, on the CPU) only costs time and a second copy of the weights in memory. Inside `parameters_on_meta()`
every parameter a module registers is moved to the meta device (a shape and a dtype, no storage), so the
constructors' init calls cost nothing; `loading.load_strict` then assigns the checkpoint's tensors in their place.

Buffers and plain tensor attributes are not touched: the constructors compute them on the CPU exactly as before
(RoPE tables, masks, level indices), so a model built this way holds the same numbers as one built eagerly and
then loaded. A buffer a constructor computed from a parameter would be left on the meta device (`load_strict`
refuses such a model in one line); none of the released families' constructors does that.

A tie (one parameter registered under two names, as `decoder.weight = embeddings.weight`, or transformers'
`tie_weights`) stays one meta parameter, and `load_strict` keeps the two names on one parameter when it assigns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

_register_parameter = nn.Module.register_parameter
_lock = threading.Lock()
_active = 0  # open blocks over all threads: the patch stays installed while any is open
_local = threading.local()  # this thread's open blocks: the dtype each asks for (None: keep the module's)


def _register_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
    _register_parameter(module, name, param)
    dtypes = getattr(_local, "dtypes", None)
    if param is None or not dtypes:  # another thread's module, built while a block is open here: as usual
        return
    dtype = dtypes[-1] if dtypes[-1] is not None and param.is_floating_point() else param.dtype
    if param.is_meta and param.dtype == dtype:  # a skeleton parameter registered again (a tie): it stays one object
        return
    module._parameters[name] = nn.Parameter(torch.empty(param.shape, dtype=dtype, device="meta"),
                                            requires_grad=param.requires_grad)


@contextmanager
def parameters_on_meta(dtype: torch.dtype | None = None) -> Iterator[None]:
    """Modules built inside the block get meta parameters: no storage and no random init to pay for.

    `dtype` (a floating dtype) is what the floating parameters will hold: `load_strict` casts the checkpoint's
    tensors to each parameter's dtype as it assigns them, so a bf16 model never exists in fp32."""
    global _active
    with _lock:
        if _active == 0:
            nn.Module.register_parameter = _register_on_meta
        _active += 1
    _local.dtypes = [*getattr(_local, "dtypes", []), dtype]
    try:
        yield
    finally:
        _local.dtypes = _local.dtypes[:-1]
        with _lock:
            _active -= 1
            if _active == 0:
                nn.Module.register_parameter = _register_parameter


def meta_tensors(module: nn.Module) -> list[str]:
    """Names of the parameters and buffers of `module` that still have no storage (on the meta device)."""
    named = [*module.named_parameters(), *module.named_buffers()]
    return [name for name, tensor in named if tensor.is_meta]
