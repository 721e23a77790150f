"""Mutation audit of the `arscale` entry point (arscale.cli): exit codes, usage errors named by the subcommand,
spelt-out options, --version, and which command-module import failures are skipped."""

import pytest

from arscale import __version__, cli
from arscale.cli import main


def _usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_an_unknown_option_is_named_by_its_subcommand(tmp_path, capsys):
    """An option no parser takes is a usage error (exit 2) from the subcommand that would have taken it,
    and the command does not run."""
    out = tmp_path / "suite.jsonl"
    line = _usage_error(capsys, ["shapeworld", "suite", "--per-tag", "1", "--bogus", "--out", str(out)])
    assert line.startswith("arscale shapeworld suite: error: unrecognized arguments: --bogus")
    assert not out.exists()


def test_options_must_be_spelt_out(tmp_path, capsys):
    """A prefix of an option (--se for --seed) is not accepted, in subcommands too."""
    out = tmp_path / "suite.jsonl"
    line = _usage_error(capsys, ["shapeworld", "suite", "--per-tag", "1", "--se", "3", "--out", str(out)])
    assert "unrecognized arguments: --se" in line
    assert not out.exists()


def test_no_command_prints_the_help_and_exits_2(capsys):
    """`arscale` alone prints the usage to stdout and returns 2."""
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: arscale")


@pytest.mark.parametrize("group", ["eval", "shapeworld", "train"])
def test_a_group_without_its_subcommand_exits_2(group, capsys):
    """The handler's own exit code is returned: a command group without a subcommand prints its help, exit 2."""
    assert main([group]) == 2
    assert "usage: arscale " + group in capsys.readouterr().out


def test_version_names_the_package_version(capsys):
    """`arscale --version` prints 'arscale <version>' and exits 0."""
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"arscale {__version__}"


def test_only_a_missing_command_module_is_skipped(tmp_path, monkeypatch):
    """A command module that does not exist (not built yet) is left out of the parser, but one that fails on a
    missing dependency of its own raises: a broken install is not a silently missing command."""
    missing, broken = "arscale_audit_no_such_command", "arscale_audit_broken_command"
    (tmp_path / f"{broken}.py").write_text("import arscale_audit_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, missing])
    assert cli.build_parser().parse_args(["eval"]).command == "eval"
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, broken])
    with pytest.raises(ModuleNotFoundError) as exc:
        cli.build_parser()
    assert exc.value.name == "arscale_audit_no_such_dependency"
