"""LlamaGen's caption cleaning, re-implemented: what its T5 embedder does to a prompt before tokenising.

Upstream (LlamaGen `language/t5.py`, `T5Embedder.text_preprocessing`, inherited from PixArt / DeepFloyd IF)
runs one cleaning pass twice over every prompt. A pass does, in this order:

1. percent-decoding with `+` read as a space (`urllib.parse.unquote_plus`), then strip and lower-case;
2. the literal tag `<person>` becomes the word `person`;
3. URL pieces go: an `http:` / `https:` scheme with its first slashes (or first character), any run of
   `[a-z0-9.-]` that ends in `.com` `.co` `.ru` `.net` `.org` `.edu` `.gov` or `.it` together with the path
   after it (so `dog.it` and `shop.company` go as well); then the same again with a literal `www:` scheme;
4. HTML markup is reduced to its text (BeautifulSoup with Python's `html.parser`: tags, comments and the
   contents of `<script>` / `<style>` / `<template>` / `<rt>` / `<rp>` vanish, entities are decoded);
5. `@handle` words go; CJK (U+31C0 to U+9FFF: strokes, katakana extensions, enclosed and compatibility
   forms, ideographs and hexagrams) is deleted; every run of dash-like characters becomes one `-`; the
   quote marks `` ` ´ « » “ ” ¨`` become `"` and `‘ ’` become `'`;
6. leftover `&quot` / `&quot;` and `&amp` text goes; dotted quads (IP addresses) become a space; a trailing
   `d:dd` time goes; the two characters `\\n` become a space; `#` with 1-3 or 5+ digits goes, as do free
   standing numbers of 6+ digits and file names ending in an image / document extension;
7. runs of two or more quote characters become one `"`; runs of two or more dots become a space; runs of
   the "bad punctuation" `# ® • © ™ & @ · º ½ ¾ ¿ ¡ § ~ ( ) [ ] { } | \\ / *` become a space; a lone dot
   between spaces goes;
8. when the caption holds more than three `-` / `_` characters in all, every one of them becomes a space;
9. `ftfy.fix_text`, HTML unescaping twice, strip;
10. product-code-like words (`jc6640`, `jc6640vc`, `6640vc231`, `j2d1a2a`) go; "(worldwide) (free) shipping",
    "(free) download (free)", "click for/on <word>", file-extension words (with a following "image(s)"),
    and "page <n>" go; sizes like `2x2`, `3.5x4`, `1920×1080` go;
11. ` : ` becomes `: `; a space is put after `,` `.` `/` when a word follows; whitespace runs become one
    space;
12. one pair of quotes around the whole caption goes, then one leading `' _ , - : ;` and one trailing
    `' _ , - : +`; a caption that is a single dot-word (`.hidden`) becomes empty; strip.

Several of these rules are knowingly odd (no word boundary after "shipping" or the extension words, so
`epsilon` loses its `eps`); they are reproduced as upstream behaves, since the T5 features LlamaGen was
trained on come from exactly this text.

`ftfy` and `beautifulsoup4` are optional (the `real` extra installs them). Without BeautifulSoup, step 4
uses Python's own `html.parser` with the same handling of entities, comments, declarations and
script/style/template contents; without ftfy, step 9 skips `fix_text`, so mojibake, ligatures (`ﬁ`),
full-width letters, decomposed accents (NFC) and the other repairs ftfy makes stay as written.
docs/scorers.md lists what that changes.
"""

from __future__ import annotations

import functools
import html
import html.entities
import re
import warnings
from html.parser import HTMLParser
from urllib.parse import unquote_plus

from arscale.errors import ArscaleError

# --- building blocks ------------------------------------------------------------------------------

_DOMAIN_ENDINGS = ("com", "co", "ru", "net", "org", "edu", "gov", "it")
_FILE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "webp", "eps", "pdf", "apk", "mp4")


def _one_of(words: tuple[str, ...]) -> str:
    return "(?:" + "|".join(words) + ")"


def _char_class(chars: str) -> str:
    return "[" + "".join(re.escape(c) for c in chars) + "]"


# Code points upstream folds into "-": the ASCII hyphen-minus, the Armenian / Hebrew / Canadian / Mongolian
# hyphens, U+2010..U+2015 (hyphen to horizontal bar), the supplemental-punctuation dashes, the wave and
# katakana double hyphens, and the small / full-width forms. (The mathematical minus U+2212 is not among them.)
_DASH_CODEPOINTS = (0x2D, 0x58A, 0x5BE, 0x1400, 0x1806, *range(0x2010, 0x2016), 0x2E17, 0x2E1A, 0x2E3A,
                    0x2E3B, 0x2E40, 0x301C, 0x3030, 0x30A0, 0xFE31, 0xFE32, 0xFE58, 0xFE63, 0xFF0D)
_DASHES = _char_class("".join(map(chr, _DASH_CODEPOINTS)))

_QUOTE_FOLD = str.maketrans({**dict.fromkeys("`´«»“”¨", '"'), **dict.fromkeys("‘’", "'")})
_BAD_PUNCTUATION = _char_class("#&@*~§|/\\()[]{}®©™•·º½¾¿¡")


def _url_rule(scheme: str) -> re.Pattern[str]:
    """A URL scheme (`scheme` then 1-3 slashes or a single character) or a dotted name with one of the
    listed endings and the path after it, not counting a final slash that an `@` follows."""
    scheme_part = scheme + r"(?:/{1,3}|[a-zA-Z0-9%])"
    domain_part = r"[a-zA-Z0-9.\-]+\." + _one_of(_DOMAIN_ENDINGS) + r"[\w/-]*\b/?(?!@)"
    return re.compile(r"\b(?:" + scheme_part + "|" + domain_part + ")")


def _rules(*pairs: tuple[str | re.Pattern[str], str]) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(p) if isinstance(p, str) else p, r) for p, r in pairs)


# Step 3: URLs (both schemes, in this order).
_URLS = _rules((_url_rule(r"https?:"), ""), (_url_rule(r"www:"), ""))

# Steps 5-7, after the markup is gone; the quote marks are folded (a translation) between these two groups.
_AFTER_MARKUP = _rules(
    (r"@\w+", ""),  # @handles
    (r"[\u31c0-\u9fff]+", ""),  # the CJK blocks, one contiguous range
    (_DASHES + "+", "-"),
)
_AFTER_QUOTES = _rules(
    (r"&quot;?", ""),
    (r"&amp", ""),
    (r"\d{1,3}(?:\.\d{1,3}){3}", " "),  # dotted quads
    (r"\d:\d\d\s+$", ""),  # a trailing time-like id
    (r"\\n", " "),  # an escaped newline written out
    (r"#(?:\d{1,3}|\d{5,})\b", ""),  # "#12", "#12345" (four digits stay)
    (r"\b\d{6,}\b", ""),
    (r"\S+\." + _one_of(_FILE_EXTENSIONS), ""),  # file names
    (r"[\"']{2,}", '"'),
    (r"\.{2,}", " "),
    (_BAD_PUNCTUATION + "+", " "),
    (r"\s+\.\s+", " "),
)
_JOINERS = re.compile(r"[-_]")

# Step 10, after ftfy and unescaping.
_AFTER_FIX = _rules(
    (r"\b[a-zA-Z]{1,3}\d{3,15}\b", ""),  # jc6640
    (r"\b[a-zA-Z]+\d+[a-zA-Z]+\b", ""),  # jc6640vc
    (r"\b\d+[a-zA-Z]+\d+\b", ""),  # 6640vc231
    (r"(?:worldwide\s+)?(?:free\s+)?shipping", ""),
    (r"(?:free\s)?download(?:\sfree)?", ""),
    (r"\bclick\b\s(?:for|on)\s\w+", ""),
    (r"\b" + _one_of(_FILE_EXTENSIONS) + r"(?:\simages?)?", ""),
    (r"\bpage\s+\d+\b", ""),
    (r"\b\d*[a-zA-Z]+\d+[a-zA-Z]+\d+[a-zA-Z\d]*\b", " "),  # j2d1a2a
    (r"\b\d+\.?\d*[xх×]\d+\.?\d*\b", ""),  # sizes: latin x, cyrillic х, multiplication sign
    # step 11
    (r"\b\s+:\s+", ": "),
    (r"(\D[,./])\b", r"\1 "),
    (r"\s+", " "),
    # step 12 (the caption is not stripped before these, so a leading space shields the first three)
    (r"^[\"']([\s\S]+)[\"']$", r"\1"),
    (r"^['_,\-:;]", ""),
    (r"['_,\-:+]$", ""),
    (r"^\.\S+$", ""),
)


def _apply(rules: tuple[tuple[re.Pattern[str], str], ...], text: str) -> str:
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


# --- markup to text --------------------------------------------------------------------------------

# Elements whose text BeautifulSoup files under its own string types, which `.text` leaves out.
_HIDDEN_ELEMENTS = frozenset({"script", "style", "template", "rt", "rp"})
# Elements whose whitespace-only text is kept as it is.
_VERBATIM_ELEMENTS = frozenset({"pre", "textarea"})
# Elements BeautifulSoup's HTML builder closes as soon as they open.
_VOID_ELEMENTS = frozenset({"area", "base", "basefont", "bgsound", "br", "col", "command", "embed", "frame", "hr",
                            "image", "img", "input", "isindex", "keygen", "link", "menuitem", "meta", "nextid",
                            "param", "source", "spacer", "track", "wbr"})
_ASCII_SPACE = frozenset(" \n\t\f\r")
_LEADING_DIGITS = {10: re.compile(r"([0-9]+)(.*)", re.DOTALL), 16: re.compile(r"([0-9a-fA-F]+)(.*)", re.DOTALL)}


class _TextCollector(HTMLParser):
    """The text that BeautifulSoup's `html.parser` tree gives for `.text`, from the standard library alone.

    It follows the tree BeautifulSoup builds, as far as text is concerned: character data between two
    markup events forms one string; a string of ASCII whitespace only (or an empty one) becomes a single
    newline if it held one, else a single space (not inside `pre` / `textarea`); strings inside script,
    style, template, rt or rp are left out, as are comments, declarations and processing instructions;
    CDATA sections are kept. An end tag closes the most recent open element of its name and everything
    opened inside it (none open: nothing happens); void elements (`br`, `img`, ...) never stay open, and a
    redundant end tag for one is not a markup event. Named entities are decoded with or without their `;`
    when HTML5 knows them, unknown ones stay as `&name` (their `;` dropped); numeric ones are decoded the
    HTML5 way (0, surrogates and out-of-range numbers as U+FFFD, 0x80-0x9F as windows-1252)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []
        self.pending: list[str] = []
        self.open: list[str] = []
        self.closed_voids: list[str] = []

    def flush(self, *, cdata: bool = False, keep: bool = True) -> None:
        if not self.pending:
            return
        text = "".join(self.pending)
        self.pending = []
        if not _VERBATIM_ELEMENTS.intersection(self.open) and set(text) <= _ASCII_SPACE:
            text = "\n" if "\n" in text else " "
        if keep and (cdata or not _HIDDEN_ELEMENTS.intersection(self.open)):
            self.parts.append(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.flush()
        if tag in _VOID_ELEMENTS:
            self.closed_voids.append(tag)
        else:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.flush()  # opened and closed at once: only the boundary remains

    def handle_endtag(self, tag: str) -> None:
        if tag in self.closed_voids:
            self.closed_voids.remove(tag)
            return
        self.flush()
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag):]

    def handle_data(self, data: str) -> None:
        self.pending.append(data)

    def _dropped(self, data: str) -> None:
        self.flush()
        self.pending.append(data)
        self.flush(keep=False)

    handle_comment = handle_decl = handle_pi = _dropped

    def unknown_decl(self, data: str) -> None:
        if not data.upper().startswith("CDATA["):
            self._dropped(data)
            return
        self.flush()
        self.pending.append(data[len("CDATA["):])
        self.flush(cdata=True)

    def handle_entityref(self, name: str) -> None:
        self.handle_data(html.entities.html5.get(name + ";", "&" + name))

    def handle_charref(self, name: str) -> None:
        base, digits = (16, name[1:]) if name[:1] in "xX" else (10, name)
        match = _LEADING_DIGITS[base].fullmatch(digits)
        if match is None:
            self.handle_data(name)
            return
        number, rest = match.groups()
        code = int(number, base)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            char = "\ufffd"
        elif 0x80 <= code <= 0x9F:  # read as windows-1252, as HTML5 says (html.unescape knows the table)
            char = html.unescape(f"&#{code};")
        else:  # other controls and noncharacters as they are
            char = chr(code)
        self.handle_data(char + rest)


class _RejectedMarkup(Exception):
    """Markup Python's HTML parser stops at (`<![ x`: an AssertionError in `_markupbase`, under bs4 too)."""


def _stdlib_markup_text(text: str) -> str:
    collector = _TextCollector()
    try:
        collector.feed(text)
        collector.close()
    except AssertionError as exc:
        raise _RejectedMarkup(str(exc)) from None
    collector.flush()
    return "".join(collector.parts)


def _bs4_markup_text(text: str) -> str:
    import bs4

    with warnings.catch_warnings():  # a caption that looks like a file name or URL is still just text
        warnings.simplefilter("ignore", getattr(bs4, "MarkupResemblesLocatorWarning", UserWarning))
        try:
            return bs4.BeautifulSoup(text, features="html.parser").text
        except (AssertionError, getattr(bs4, "ParserRejectedMarkup", AssertionError)) as exc:
            raise _RejectedMarkup(str(exc).strip().splitlines()[-1].strip().removeprefix("AssertionError: ")) from None


@functools.cache
def _optional(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def backends(use_optional: bool = True) -> dict[str, str]:
    """Which implementation each optional step would use: {"markup": "bs4" | "html.parser",
    "fix_text": "ftfy" | "skipped"}."""
    return {"markup": "bs4" if use_optional and _optional("bs4") else "html.parser",
            "fix_text": "ftfy" if use_optional and _optional("ftfy") else "skipped"}


# --- the cleaning ----------------------------------------------------------------------------------

def clean_caption_once(caption: str, *, use_optional: bool = True) -> str:
    """One pass of LlamaGen's `clean_caption` (see the module docstring for the steps).
    `use_optional=False` ignores an installed ftfy / BeautifulSoup (the fallback path)."""
    chosen = backends(use_optional)
    text = unquote_plus(str(caption)).strip().lower()
    text = text.replace("<person>", "person")
    text = _apply(_URLS, text)
    try:
        text = _bs4_markup_text(text) if chosen["markup"] == "bs4" else _stdlib_markup_text(text)
    except _RejectedMarkup as exc:  # upstream's cleaning stops there too, in a traceback
        raise ArscaleError(f"the caption {caption!r} holds markup that the HTML parser of LlamaGen's caption "
                           f"cleaning rejects ({exc}): reword the '<!' part") from None
    text = _apply(_AFTER_MARKUP, text).translate(_QUOTE_FOLD)
    text = _apply(_AFTER_QUOTES, text)
    if len(_JOINERS.findall(text)) > 3:
        text = _JOINERS.sub(" ", text)
    if chosen["fix_text"] == "ftfy":
        import ftfy

        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return _apply(_AFTER_FIX, text).strip()


def clean_llamagen_caption(caption: str, *, use_optional: bool = True) -> str:
    """The text LlamaGen's T5 embedder tokenises for `caption`: the cleaning pass applied twice."""
    return clean_caption_once(clean_caption_once(caption, use_optional=use_optional), use_optional=use_optional)
