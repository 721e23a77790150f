"""What a scorer that reads text sees for a class-conditional model (VAR, LlamaGen c2i): each class's name.

Prompts of these models are class indices; a reward such as ImageReward compares an image with a text, so
the index must become the class's name. arscale ships no class list: give one (`generator.class_names`, or
`--class-names FILE` with one name per line in index order, e.g. ImageNet's)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arscale.errors import ArscaleError


def read_class_names(path: str | Path) -> list[str]:
    """One name per line, in class-index order (blank lines are not classes)."""
    p = Path(path)
    if not p.is_file():
        raise ArscaleError(f"--class-names {path}: not a file (one class name per line, in index order)")
    try:
        names = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ArscaleError(f"--class-names {path}: cannot read it: {exc}") from None
    if not names:
        raise ArscaleError(f"--class-names {path} holds no names")
    return names


def class_index(prompt: Any) -> Any:
    """A class-conditional prompt as its class index: digit strings ("207", e.g. from the CLI) and integer scalars
    of numpy or torch become Python ints; anything else (True, 2.0, "cat") is left for the caller to refuse."""
    if isinstance(prompt, str):
        return int(prompt) if prompt.strip().isdecimal() else prompt  # isdigit takes '²', which int() refuses
    if isinstance(prompt, bool):
        return prompt
    try:
        return operator.index(prompt)
    except TypeError:
        return prompt


def is_class_index(label: Any, num_classes: int) -> bool:
    return isinstance(label, int) and not isinstance(label, bool) and 0 <= label < num_classes


def class_prompt_text(model: str, names: Sequence[str] | None, prompt: Any) -> str:
    """The text a scorer reads for `prompt`, a class index (or its digits)."""
    index = class_index(prompt)
    if isinstance(index, str):
        return index
    if not names:
        raise ArscaleError(f"{model} is class-conditional: a scorer that reads text needs each class's name "
                           "(--class-names FILE, one per line in index order; from Python generator.class_names)")
    if not 0 <= index < len(names):
        raise ArscaleError(f"class {index} has no name: the class names give {len(names)} (0 to {len(names) - 1})")
    return names[index]


def use_class_names(generator: Any, path: str | None) -> None:
    """`--class-names FILE`: give a class-conditional generator its class names."""
    if path is None:
        return
    if not getattr(generator, "class_conditional", False):
        raise ArscaleError(f"--class-names is for class-conditional models (var-d*, llamagen-c2i-*), not "
                           f"{getattr(generator, 'name', 'this model')}")
    generator.class_names = read_class_names(path)
