"""ShapeWorld v1 prompt grammar: words, prompts <-> GenEval metadata, uniform sampling.

The six prompt forms (SHAPEWORLD.md, "Prompts"):

=============  =============================================  ============================================
tag            prompt                                         metadata ``include`` (and ``exclude``)
=============  =============================================  ============================================
single_object  ``a photo of a {C}``                           ``[{C,1}]``
two_object     ``a photo of a {C1} and a {C2}`` (C1 != C2)    ``[{C1,1},{C2,1}]``
counting       ``a photo of {two,three,four} {C}s``           ``[{C,k}]``, exclude ``[{C,k+1}]``
colors         ``a photo of a {K} {C}``                       ``[{C,1,color K}]``
position       ``a photo of a {C1} {R} a {C2}`` (C1 != C2)    ``[{C2,1},{C1,1,position [R,0]}]``
color_attr     ``a photo of a {K1} {C1} and a {K2} {C2}``     ``[{C1,1,color K1},{C2,1,color K2}]``
               (C1 != C2, K1 != K2)
=============  =============================================  ============================================

Metadata records use GenEval's ``evaluation_metadata.jsonl`` schema with the key order GenEval writes:
``tag``, ``include``, ``exclude`` (counting only), ``prompt``.
"""

from __future__ import annotations

import difflib

import numpy as np

from arscale.errors import ArscaleError

IMAGE_SIZE = 64
BACKGROUND = (240, 240, 240)

# Palette, in the contract's order.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 145, 30),
    "yellow": (235, 215, 40),
    "green": (40, 160, 70),
    "blue": (40, 90, 215),
    "purple": (145, 65, 180),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
PLURALS: dict[str, str] = {
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
    "cross": "crosses",
}
TAGS: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
NUMBERS: dict[str, int] = {"two": 2, "three": 3, "four": 4}
NUMBER_WORDS: dict[int, str] = {v: k for k, v in NUMBERS.items()}

_PREFIX = ("a", "photo", "of")
_PLURAL_TO_CLASS = {p: c for c, p in PLURALS.items()}
_RELATION_FIRST = {r.split()[0]: r for r in RELATIONS}  # "left" -> "left of", "above" -> "above"

VOCABULARY: tuple[str, ...] = tuple(
    sorted(
        set(_PREFIX)
        | {"an", "and"}
        | set(CLASSES)
        | set(PLURALS.values())
        | set(COLORS)
        | set(NUMBERS)
        | {w for r in RELATIONS for w in r.split()}
    )
)


class GrammarError(ArscaleError):
    """A prompt or metadata record that is not in the ShapeWorld v1 grammar."""


def article(word: str) -> str:
    """``an`` before a vowel sound, else ``a`` (all ShapeWorld words: a vowel sound iff a vowel letter)."""
    return "an" if word[0] in "aeiou" else "a"


def with_article(word: str) -> str:
    return f"{article(word)} {word}"


# --------------------------------------------------------------------------------------------------
# metadata -> prompt


def _group(cls: str, count: int = 1, color: str | None = None, position=None) -> dict:
    g: dict = {"class": cls, "count": count}
    if color is not None:
        g["color"] = color
    if position is not None:
        g["position"] = [position[0], position[1]]
    return g


def _record(tag: str, include: list[dict], prompt: str, exclude: list[dict] | None = None) -> dict:
    rec: dict = {"tag": tag, "include": include}
    if exclude is not None:
        rec["exclude"] = exclude
    rec["prompt"] = prompt
    return rec


def _fmt_prompt(tag: str, include: list[dict]) -> str:
    """The prompt for a (tag, include) pair, assuming the shape is right (KeyError/IndexError otherwise)."""
    g = include
    if tag == "single_object":
        return f"a photo of {with_article(g[0]['class'])}"
    if tag == "two_object":
        return f"a photo of {with_article(g[0]['class'])} and {with_article(g[1]['class'])}"
    if tag == "counting":
        return f"a photo of {NUMBER_WORDS[g[0]['count']]} {PLURALS[g[0]['class']]}"
    if tag == "colors":
        return f"a photo of {with_article(g[0]['color'])} {g[0]['class']}"
    if tag == "position":
        rel = g[1]["position"][0]
        return f"a photo of {with_article(g[1]['class'])} {rel} {with_article(g[0]['class'])}"
    if tag == "color_attr":
        return (
            f"a photo of {with_article(g[0]['color'])} {g[0]['class']} "
            f"and {with_article(g[1]['color'])} {g[1]['class']}"
        )
    raise KeyError(tag)


def _comparable(metadata: dict) -> dict:
    """The parts of a record that define it (tag, include, exclude), with JSON-like normalisation."""
    out = {"tag": metadata.get("tag"), "include": metadata.get("include")}
    if "exclude" in metadata:
        out["exclude"] = metadata["exclude"]

    def norm(x):
        if isinstance(x, tuple | list):
            return [norm(v) for v in x]
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items()}
        return x

    return norm(out)


def prompt_from_metadata(metadata: dict) -> str:
    """The canonical prompt of a ShapeWorld metadata record; raises `GrammarError` if it is not one.

    The record's own ``prompt`` key (if any) is ignored: the prompt is rebuilt from ``tag``/``include``/
    ``exclude`` and the record must be exactly what `metadata_from_prompt` returns for that prompt.
    """
    if not isinstance(metadata, dict):
        raise GrammarError(f"metadata must be a JSON object, got {type(metadata).__name__}")
    tag = metadata.get("tag")
    if tag not in TAGS:
        raise GrammarError(f"unknown tag {tag!r}: expected one of {', '.join(TAGS)}")
    include = metadata.get("include")
    if not isinstance(include, list) or not all(isinstance(g, dict) for g in include):
        raise GrammarError(f"{tag} metadata: 'include' must be a list of objects, got {include!r}")
    for gi, g in enumerate(include):
        if "class" in g and g["class"] not in CLASSES:
            raise GrammarError(
                f"{tag} metadata, include[{gi}]: unknown class {g['class']!r}, "
                f"expected one of {', '.join(CLASSES)}"
            )
        if "color" in g and (not isinstance(g["color"], str) or g["color"] not in COLORS):
            raise GrammarError(
                f"{tag} metadata, include[{gi}]: unknown colour {g['color']!r}, "
                f"expected one of {', '.join(COLORS)}"
            )
    if tag == "counting" and include and (
        isinstance(include[0].get("count"), list | dict) or include[0].get("count") not in NUMBER_WORDS
    ):
        raise GrammarError(
            f"counting metadata: count {include[0].get('count')!r} is not 2, 3 or 4 "
            f"(the number words {', '.join(NUMBERS)})"
        )
    check_metadata(metadata)  # a count of True or 1.0 compares equal to 1 below, yet no sampler takes it
    try:
        prompt = _fmt_prompt(tag, include)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        what = f"missing key {exc.args[0]!r}" if isinstance(exc, KeyError) else f"bad shape ({exc})"
        raise GrammarError(
            f"{tag} metadata does not fit the ShapeWorld grammar (include={include!r}): {what}"
        ) from None
    try:
        expected = metadata_from_prompt(prompt)
    except GrammarError as exc:
        raise GrammarError(f"{tag} metadata does not fit the ShapeWorld grammar: {exc}") from None
    if _comparable(expected) != _comparable(metadata):
        exp = {k: v for k, v in expected.items() if k != "prompt"}
        got = {k: v for k, v in _comparable(metadata).items()}
        raise GrammarError(f"metadata {got} is not a valid ShapeWorld record; for {prompt!r} expected {exp}")
    return prompt


# --------------------------------------------------------------------------------------------------
# prompt -> metadata

_EXP_CLASS = "a class (" + ", ".join(CLASSES) + ")"
_EXP_PLURAL = "a plural class (" + ", ".join(PLURALS.values()) + ")"
_EXP_COLOR = "a colour (" + ", ".join(COLORS) + ")"
_EXP_ARTICLE = "an article ('a' or 'an')"
_EXP_RELATION = "'and', a relation (" + ", ".join(RELATIONS) + ")"


def _hint(word: str) -> str:
    """What an unknown word was probably meant to be: punctuation is not in the grammar, and a near spelling is
    named."""
    bare = word.strip(".,;:!?'\"")
    if bare in VOCABULARY:
        return f"; write {bare!r} (prompts are words without punctuation)"
    near = difflib.get_close_matches(bare, sorted(VOCABULARY), n=1, cutoff=0.75)
    return f"; did you mean {near[0]!r}?" if near else ""


class _Tokens:
    def __init__(self, prompt: str):
        self.prompt = prompt
        self.words = prompt.split()
        self.i = 0

    def peek(self) -> str | None:
        return self.words[self.i] if self.i < len(self.words) else None

    def fail(self, expected: str):
        word = self.peek()
        if word is None:
            last = self.words[self.i - 1] if self.i else ""
            raise GrammarError(f"prompt {self.prompt!r} ends after {last!r}: expected {expected}")
        if word not in VOCABULARY:
            raise GrammarError(
                f"unknown word {word!r} (word {self.i + 1} of {self.prompt!r}): expected {expected}{_hint(word)}"
            )
        raise GrammarError(
            f"unexpected word {word!r} (word {self.i + 1} of {self.prompt!r}): expected {expected}"
        )

    def take(self, allowed, expected: str) -> str:
        word = self.peek()
        if word is None or word not in allowed:
            self.fail(expected)
        self.i += 1
        return word

    def take_article(self) -> None:
        """An article; whether it fits the next word is checked by `check_article`."""
        self.take(("a", "an"), _EXP_ARTICLE)

    def check_article(self) -> None:
        """The word just taken must carry the right article (the word before it)."""
        art, word = self.words[self.i - 2], self.words[self.i - 1]
        if art != article(word):
            raise GrammarError(
                f"wrong article {art!r} before {word!r} (word {self.i - 1} of {self.prompt!r}): "
                f"expected {article(word)!r}"
            )

    def end(self, expected: str = "the end of the prompt") -> None:
        if self.peek() is not None:
            self.fail(expected)

    def check_differs(self, kind: str, word: str, first: str, tag: str) -> None:
        """The word just taken must differ from the first object's (the two objects of `tag` differ)."""
        if word == first:
            raise GrammarError(
                f"repeated {kind} {word!r} (word {self.i} of {self.prompt!r}): expected a {kind} other than "
                f"{first!r} (the two objects of a {tag} prompt differ in {kind})"
            )


def metadata_from_prompt(prompt: str) -> dict:
    """Parse a ShapeWorld prompt into its GenEval metadata record (with ``tag`` and ``prompt``).

    Words are separated by whitespace; case is ignored. The returned ``prompt`` is the canonical one
    (lower case, single spaces). Raises `GrammarError` naming the offending word and what was expected.
    """
    if not isinstance(prompt, str):
        raise GrammarError(f"prompt must be a string, got {type(prompt).__name__}")
    t = _Tokens(" ".join(prompt.lower().split()))
    if not t.words:
        raise GrammarError("empty prompt: expected 'a photo of ...'")
    for w in _PREFIX:
        t.take((w,), repr(w) + " (prompts start with 'a photo of')")

    # counting: "{two,three,four} {C}s"
    if t.peek() in NUMBERS:
        k = NUMBERS[t.take(NUMBERS, "")]
        cls = _PLURAL_TO_CLASS[t.take(_PLURAL_TO_CLASS, _EXP_PLURAL)]
        t.end()
        return _record("counting", [_group(cls, k)], t.prompt, exclude=[_group(cls, k + 1)])

    t.take(("a", "an"), "a number word (" + ", ".join(NUMBERS) + ") or " + _EXP_ARTICLE)
    word = t.take(tuple(COLORS) + CLASSES, _EXP_COLOR + " or " + _EXP_CLASS)
    t.check_article()
    if word in COLORS:
        k1 = word
        c1 = t.take(CLASSES, _EXP_CLASS)
        if t.peek() is None:
            return _record("colors", [_group(c1, 1, k1)], t.prompt)
        t.take(("and",), "'and' or the end of the prompt")
        t.take_article()
        k2 = t.take(COLORS, _EXP_COLOR)
        t.check_article()
        t.check_differs("colour", k2, k1, "color_attr")
        c2 = t.take(CLASSES, _EXP_CLASS)
        t.check_differs("class", c2, c1, "color_attr")
        t.end()
        return _record("color_attr", [_group(c1, 1, k1), _group(c2, 1, k2)], t.prompt)

    c1 = word
    nxt = t.peek()
    if nxt is None:
        return _record("single_object", [_group(c1)], t.prompt)
    if nxt == "and":
        t.i += 1
        tag, rel = "two_object", None
    elif nxt in _RELATION_FIRST:
        rel = _RELATION_FIRST[t.take(_RELATION_FIRST, "")]
        if rel.endswith(" of"):
            t.take(("of",), f"'of' (the relation is {rel!r})")
        tag = "position"
    else:
        t.fail(_EXP_RELATION + " or the end of the prompt")
    t.take_article()
    c2 = t.take(CLASSES, _EXP_CLASS)
    t.check_article()
    t.check_differs("class", c2, c1, tag)
    t.end()
    if tag == "two_object":
        return _record(tag, [_group(c1), _group(c2)], t.prompt)
    return _record(tag, [_group(c2), _group(c1, position=[rel, 0])], t.prompt)


# --------------------------------------------------------------------------------------------------
# sampling


def random_metadata(rng: np.random.Generator, tag: str | None = None) -> dict:
    """A metadata record drawn uniformly over the valid prompts of ``tag`` (``None``: a uniform tag first)."""
    if tag is None:
        tag = TAGS[int(rng.integers(len(TAGS)))]
    if tag not in TAGS:
        raise GrammarError(f"unknown tag {tag!r}: expected one of {', '.join(TAGS)}")

    def two_distinct(n: int) -> tuple[int, int]:
        a = int(rng.integers(n))
        b = int(rng.integers(n - 1))
        return a, b + (b >= a)

    nc, nk = len(CLASSES), len(COLOR_NAMES)
    if tag == "single_object":
        include = [_group(CLASSES[int(rng.integers(nc))])]
    elif tag == "two_object":
        a, b = two_distinct(nc)
        include = [_group(CLASSES[a]), _group(CLASSES[b])]
    elif tag == "counting":
        cls = CLASSES[int(rng.integers(nc))]
        k = int(rng.integers(2, 5))
        include = [_group(cls, k)]
        return _record(tag, include, _fmt_prompt(tag, include), exclude=[_group(cls, k + 1)])
    elif tag == "colors":
        include = [_group(CLASSES[int(rng.integers(nc))], 1, COLOR_NAMES[int(rng.integers(nk))])]
    elif tag == "position":
        a, b = two_distinct(nc)  # a: the object placed, b: the reference
        rel = RELATIONS[int(rng.integers(len(RELATIONS)))]
        include = [_group(CLASSES[b]), _group(CLASSES[a], position=[rel, 0])]
    else:  # color_attr
        a, b = two_distinct(nc)
        ka, kb = two_distinct(nk)
        include = [_group(CLASSES[a], 1, COLOR_NAMES[ka]), _group(CLASSES[b], 1, COLOR_NAMES[kb])]
    return _record(tag, include, _fmt_prompt(tag, include))


def check_metadata(metadata) -> None:
    """Structural check of a GenEval metadata record (classes, counts, colours, positions)."""
    if not isinstance(metadata, dict):
        raise GrammarError(f"metadata must be a JSON object, got {type(metadata).__name__}")
    include = metadata.get("include", [])
    exclude = metadata.get("exclude", [])
    if not isinstance(include, list) or not isinstance(exclude, list):
        raise GrammarError("metadata 'include' and 'exclude' must be lists")
    for key, groups in (("include", include), ("exclude", exclude)):
        for i, g in enumerate(groups):
            if not isinstance(g, dict):
                raise GrammarError(f"metadata {key}[{i}] must be an object, got {g!r}")
            if g.get("class") not in CLASSES:
                raise GrammarError(
                    f"metadata {key}[{i}]: unknown class {g.get('class')!r}; class must be one of {', '.join(CLASSES)}"
                )
            count = g.get("count")
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise GrammarError(f"metadata {key}[{i}]: count must be a positive integer, got {count!r}")
            if key == "include" and "color" in g and (not isinstance(g["color"], str) or g["color"] not in COLORS):
                raise GrammarError(
                    f"metadata include[{i}]: unknown colour {g['color']!r}, expected one of {', '.join(COLORS)}"
                )
            if key == "include" and "position" in g:
                pos = g["position"]
                if (
                    not isinstance(pos, list | tuple)
                    or len(pos) != 2
                    or pos[0] not in RELATIONS
                    or not isinstance(pos[1], int)
                    or isinstance(pos[1], bool)  # like a count: True is not group 1
                    or not 0 <= pos[1] < i
                ):
                    raise GrammarError(
                        f"metadata include[{i}]: position must be [relation, earlier group index] with a "
                        f"relation in {', '.join(RELATIONS)}, got {pos!r}"
                    )
