"""Audit (mutation testing of src/arscale/train): `arscale train` starts each run from a clean slate, so a
failed run tidies only what it made itself."""

from arscale.cli import main as cli
from arscale.train import common


def test_a_failed_run_leaves_folders_made_before_it_alone(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"  # an empty folder made by an earlier trainer call outside `arscale train`
    elsewhere.mkdir()
    common._MADE_FOLDERS.append(elsewhere)
    try:
        code = cli(["train", "shapeworld-reward", "--init", str(tmp_path / "missing"), "--steps", "1",
                    "--batch-size", "1", "--out", str(tmp_path / "new" / "out")])
    finally:
        common._MADE_FOLDERS.clear()
    assert code == 2 and "no model.safetensors there" in capsys.readouterr().err
    assert elsewhere.is_dir()  # not this run's to remove
    assert not (tmp_path / "new").exists()  # what this run made is gone
