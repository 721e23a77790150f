"""Every text file arscale opens is read and written as UTF-8, whatever the platform's locale.

Python's default text encoding is the locale's (cp1252 on most Windows machines): a prompt, a hub config or a
hand-written trainer config with non-ASCII text would then fail to load or be read as other characters.
"""

from __future__ import annotations

import ast
from pathlib import Path

import arscale

SOURCES = Path(arscale.__file__).parent
TEXT_METHODS = {"read_text", "write_text"}


def _text_mode(call: ast.Call) -> bool:
    """Whether an `open(...)` call opens in text mode (no "b" in a literal mode)."""
    mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    return not (isinstance(mode, ast.Constant) and isinstance(mode.value, str) and "b" in mode.value)


def _unspecified_encodings(source: str) -> list[int]:
    """Line numbers of text reads / writes / opens that leave the encoding to the locale."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if any(k.arg == "encoding" for k in node.keywords):
            continue
        # the encoding's position: read_text(encoding), write_text(data, encoding), open(file, mode, buffering, enc)
        positional = {"read_text": 0, "write_text": 1, "open": 3}.get(name)
        if positional is None or len(node.args) > positional:
            continue
        if name != "open" or (isinstance(func, ast.Name) and _text_mode(node)):
            lines.append(node.lineno)
    return lines


def test_the_check_finds_a_locale_dependent_read_write_and_open():
    """The scan flags each form it is meant to (so an empty result below means something)."""
    source = 'p.read_text()\np.write_text("x")\nopen(p)\nopen(p, "w")\nopen(p, "rb")\np.read_text("utf-8")\n'
    assert _unspecified_encodings(source) == [1, 2, 3, 4]


def test_no_text_io_in_the_package_depends_on_the_locale():
    """No `read_text()`, `write_text(s)` or text-mode `open()` in src/arscale without an encoding."""
    found = {str(path.relative_to(SOURCES)): hits for path in sorted(SOURCES.rglob("*.py"))
             if (hits := _unspecified_encodings(path.read_text(encoding="utf-8")))}
    assert found == {}
