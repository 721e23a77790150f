"""What a command printed, for the tests that hold its errors to one line."""


def one_error_line(capsys) -> str:
    """The command's only non-blank stderr line, an `arscale: error: ...` one (and no traceback)."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("arscale: error: "), err
    return lines[0]
