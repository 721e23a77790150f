"""Packaging and an installed copy: the wheel's package data covers what the code opens at run
time, the declared dependency floors cover the APIs the code calls, and an installed copy does not take the git
commit of whatever repository it happens to be installed under."""

import fnmatch
import importlib.util
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import arscale

PACKAGE = Path(arscale.__file__).resolve().parent
PYPROJECT = PACKAGE.parents[1] / "pyproject.toml"
needs_checkout = pytest.mark.skipif(not PYPROJECT.is_file(), reason="an installed copy: no pyproject.toml beside it")


def _pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text("utf-8"))


def _matches(relative: str, pattern: str) -> bool:
    """setuptools' package-data globs: `*` stays within one path segment."""
    parts, globs = relative.split("/"), pattern.split("/")
    return len(parts) == len(globs) and all(fnmatch.fnmatchcase(p, g) for p, g in zip(parts, globs, strict=True))


def _runtime_data_files() -> set[str]:
    """Every file the package reads from its own folder: the shipped weights each loader needs, the public
    suite, and any other non-Python file that lies in the package (model cards included)."""
    from arscale.generators.next_scale import shapeworld as var
    from arscale.generators.next_token import shapeworld as ar
    from arscale.scorers import shapeworld as reward
    from arscale.shapeworld.suite import PUBLIC_SUITE

    generator_files = ("config.json", "model.safetensors", "tokenizer.safetensors", "tokenizer_config.json")
    needed = {var.WEIGHTS_DIR / name for name in generator_files}
    needed |= {ar.WEIGHTS_DIR / name for name in generator_files}
    needed |= {reward.WEIGHTS_DIR / name for name in ("config.json", "model.safetensors")}
    needed.add(PACKAGE / "shapeworld" / "data" / f"{PUBLIC_SUITE}.jsonl")
    for path in needed:
        assert path.is_file(), f"{path} is read at run time but missing"
    others = {p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
              and "__pycache__" not in p.parts}
    return {p.resolve().relative_to(PACKAGE).as_posix() for p in needed | others}


@needs_checkout
def test_package_data_covers_every_runtime_file():
    """Each data file the code opens (weights, configs, model cards, the public suite) is matched by
    [tool.setuptools.package-data], so a `pip install .` or a wheel carries it."""
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["arscale"]
    files = _runtime_data_files()
    assert len(files) >= 14  # 3 models' weights and configs, 3 model cards, the suite
    missing = sorted(f for f in files if not any(_matches(f, p) for p in patterns))
    assert not missing, f"not in the wheel (add to [tool.setuptools.package-data]): {missing}"


@needs_checkout
def test_reported_version_is_the_packaged_one():
    """`arscale --version` (arscale.__version__) says the version pyproject.toml builds."""
    assert arscale.__version__ == _pyproject()["project"]["version"]


@needs_checkout
def test_declared_pillow_floor_has_load_default_size():
    """The Pillow floor in pyproject.toml is at least 10.1, the first with ImageFont.load_default(size=)."""
    import inspect

    from PIL import ImageFont

    from arscale.commands import generate

    assert "load_default(size=" in inspect.getsource(generate)
    assert "size" in inspect.signature(ImageFont.load_default).parameters
    pillow = next(Requirement(d) for d in _pyproject()["project"]["dependencies"]
                  if Requirement(d).name.lower() == "pillow")
    floors = [Version(s.version) for s in pillow.specifier if s.operator in (">=", "==", "~=")]
    assert floors and min(floors) >= Version("10.1"), f"pillow floor {pillow.specifier} admits 10.0"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_installed_copy_does_not_report_a_foreign_git_commit(tmp_path):
    """manifest.py installed under another project's .venv/lib/python3.x/site-packages says 'unknown', not
    that project's HEAD."""
    project = tmp_path / "someone-elses-project"
    project.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main", "-c",
           "commit.gpgsign=false"]  # a developer's signing setup would prompt or fail here
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    (project / "a.txt").write_text("x")
    subprocess.run([*git, "add", "a.txt"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=project, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, check=True, capture_output=True,
                          text=True).stdout.strip()
    site = project / ".venv" / "lib" / "python3.11" / "site-packages" / "arscale" / "bench"
    site.mkdir(parents=True)
    shutil.copy(PACKAGE / "bench" / "manifest.py", site / "manifest.py")
    spec = importlib.util.spec_from_file_location("_installed_manifest_copy", site / "manifest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        commit, dirty = module.git_commit(), module.git_dirty()
    finally:
        del sys.modules[spec.name]
    assert commit != head
    assert commit == "unknown" and dirty is None


def test_python_dash_m_arscale_is_the_arscale_command():
    """`python -m arscale` (an environment whose scripts folder is not on PATH) runs the CLI and passes its exit
    status on."""
    run = subprocess.run([sys.executable, "-m", "arscale", "--version"], check=False, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0 and run.stdout.strip() == f"arscale {arscale.__version__}"
    bad = subprocess.run([sys.executable, "-m", "arscale", "no-such-command"], check=False, capture_output=True,
                         text=True, timeout=600)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
