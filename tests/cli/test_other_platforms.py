"""Other platforms: what a Mac or a Windows machine trips over that Linux does not, reproduced here by
simulation: a stdout in cp1252 (Windows, redirected), files that live tensors map (Windows cannot replace them),
folder names a case-insensitive or Windows file system takes for another."""

import io
import os
import sys
from pathlib import Path

import pytest
import torch
from bench_records import write_records

from arscale.bench.runner import parse_runs
from arscale.cli import main
from arscale.errors import ArscaleError
from arscale.train.common import TrainState, load_optimizer, save_optimizer

MAPS = Path("/proc/self/maps")


@pytest.fixture
def windows_replace(monkeypatch):
    """os.replace as on Windows: a file that live tensors still map cannot be replaced (Linux lists the maps)."""
    if not MAPS.is_file():
        pytest.skip("needs /proc/self/maps to see which files are mapped")
    real = os.replace

    def replace(src, dst, **kwargs):
        target = " " + str(Path(dst).resolve())
        if any(line.rstrip().endswith(target) for line in MAPS.read_text().splitlines()):
            raise PermissionError(13, "a mapped section is open on it (Windows refuses)", str(dst))
        return real(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def test_compare_prints_its_table_to_a_cp1252_stdout(tmp_path, monkeypatch):
    """`arscale compare A B > file` with Windows' cp1252 stdout prints the table instead of a UnicodeEncodeError."""
    write_records(tmp_path / "a", "raw", 1, [True, False, True])
    write_records(tmp_path / "b", "raw", 1, [True, True, False])
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="cp1252", newline="\n")
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    stdout.flush()
    assert "| raw | 1 | raw N=1 | 3 | 66.7 | 66.7 |" in stdout.buffer.getvalue().decode("cp1252")
    assert stdout.errors == "strict"  # the caller's stream is given back as it was


def test_a_resumed_optimizer_saves_again_where_mapped_files_cannot_be_replaced(tmp_path, windows_replace):
    """The moments `load_optimizer` restores are copies, so the resumed run's next save can replace the file."""
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(32, 32))
    opt = torch.optim.AdamW([weight])
    weight.grad = torch.randn_like(weight)
    opt.step()
    save_optimizer(opt, tmp_path / "optimizer.safetensors")
    resumed = torch.optim.AdamW([torch.nn.Parameter(weight.detach().clone())])
    assert load_optimizer(resumed, tmp_path)
    save_optimizer(resumed, tmp_path / "optimizer.safetensors")  # the resumed run's first checkpoint
    assert load_optimizer(torch.optim.AdamW([torch.nn.Parameter(weight.detach().clone())]), tmp_path)


def test_a_resumed_trainer_state_saves_again_where_mapped_files_cannot_be_replaced(tmp_path, windows_replace):
    """What `extra()` returns (a trainer keeps it all run: code usage, the running loss) does not block the save."""
    torch.manual_seed(0)
    model, state = torch.nn.Linear(2, 2), TrainState(tmp_path)
    state.save(model, None, step=1, config={}, elapsed=0.0, extra={"usage": torch.arange(8.0)})
    carried, _ = state.extra()
    state.save(model, None, step=2, config={}, elapsed=0.0, extra={"usage": carried["usage"] + 1})
    assert TrainState(tmp_path).extra()[0]["usage"].tolist() == [float(k) for k in range(1, 9)]


def test_bench_labels_that_differ_only_by_case_are_refused():
    """`tts-var@a,tts-var@A` would write one folder on a case-insensitive disk: refused like a repeated label."""
    with pytest.raises(ArscaleError, match="repeated label"):
        parse_runs("tts-var@a,tts-var@A", ["tts-var@a={}", "tts-var@A={}"])


@pytest.mark.parametrize("label", ["raw@v1\\pca", "raw@lam:1"])
def test_bench_labels_windows_cannot_name_a_folder_by_are_refused(label):
    """A variant with '\\' (a subfolder on Windows, left out of table.md) or ':' is refused as '/' is."""
    with pytest.raises(ArscaleError, match="names a folder under --out"):
        parse_runs(label)
