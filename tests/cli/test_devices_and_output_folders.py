"""`--device` picking and output-folder tidying: cases a mutation audit found untested (no GPU needed)."""

from __future__ import annotations

import os

import pytest
import torch

from arscale.devices import MAX_THREADS, check_threads, pick_device
from arscale.errors import ArscaleError
from arscale.folders import remove_empty_folders


@pytest.fixture
def one_gpu(fake_cuda):
    return fake_cuda(1)


def test_auto_picks_cuda_when_present(one_gpu):
    assert pick_device("auto").type == "cuda"


def test_auto_and_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu") == pick_device("cpu")


def test_a_cuda_index_must_exist_and_becomes_the_current_device(one_gpu):
    assert pick_device("cuda:0") == torch.device("cuda:0")
    assert one_gpu == [0]  # the cost record's timers wait on the current device
    with pytest.raises(ArscaleError, match="'cuda:1': this machine has 1 CUDA device"):
        pick_device("cuda:1")
    assert pick_device("cuda").index is None and one_gpu == [0]


def test_cuda_without_cuda_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ArscaleError, match="CUDA is not available; use --device cpu"):
        pick_device("cuda")


def test_unknown_and_unsupported_devices_are_refused():
    with pytest.raises(ArscaleError, match="unknown device 'gpu'"):
        pick_device("gpu")
    with pytest.raises(ArscaleError, match="device 'meta' is not supported"):
        pick_device("meta")


def test_mps_without_the_backend_is_refused(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ArscaleError, match="no MPS backend"):
        pick_device("mps")


def test_a_linked_out_folder_is_not_tidied_through_the_link(tmp_path):
    # `bench` tidies its --out (keep_root=True); a --out that is a link must not lose the target's empty folders
    target = tmp_path / "mine"
    (target / "empty").mkdir(parents=True)
    link = tmp_path / "link"
    os.symlink(target, link)
    remove_empty_folders(link, keep_root=True)
    remove_empty_folders(link)
    assert (target / "empty").is_dir()


def test_threads_limit_is_inclusive():
    """`--threads` takes at most MAX_THREADS: MAX_THREADS itself passes, one more is refused in one line."""
    check_threads(MAX_THREADS)
    with pytest.raises(ArscaleError, match=f"more than {MAX_THREADS}"):
        check_threads(MAX_THREADS + 1)
