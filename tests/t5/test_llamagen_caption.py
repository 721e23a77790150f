"""LlamaGen's caption cleaning against upstream's own outputs.

Every expected string below is what upstream LlamaGen's `T5Embedder.text_preprocessing` (`clean_caption`
applied twice, language/t5.py) returned for the prompt, run with ftfy 6.3.1 and beautifulsoup4 4.15.0 on
Python 3.11; MARKUP's are what `BeautifulSoup(text, features="html.parser").text` returned. They are facts
recorded here, not derived from arscale's code.
"""

from __future__ import annotations

import pytest

from arscale.generators.llamagen_caption import (
    _stdlib_markup_text,
    backends,
    clean_caption_once,
    clean_llamagen_caption,
)

# (prompt, upstream's cleaned caption): GenEval-style prompts, whitespace, URLs and e-mail, HTML tags and
# entities, CJK, dashes and underscores, quotes, sizes and codes, shopping words, punctuation, emoji,
# DPG-Bench-style long prompts.
CASES = [
    ('a photo of a bench',
     'a photo of a bench'),
    ('a photo of a red circle and a blue square',
     'a photo of a red circle and a blue square'),
    ('a photo of three crosses',
     'a photo of three crosses'),
    ('a photo of a cat right of a dog',
     'a photo of a cat right of a dog'),
    ('a photo of a purple car and an orange giraffe',
     'a photo of a purple car and an orange giraffe'),
    ('A Photo Of Two Bicycles',
     'a photo of two bicycles'),
    ('  A  Red\tCircle \n',
     'a red circle'),
    ('a photo\n\nof a\r\ncat',
     'a photo of a cat'),
    ('a\xa0photo\u2003of\u3000a dog',
     'a photo of a dog'),
    ('a cat on https://example.com/cats/photo?id=3 at night',
     'a cat on ?id=3 at night'),
    ('visit www.shop.net for more dogs',
     'visit for more dogs'),
    ('a poster of http://foo.org and a lamp',
     'a poster of and a lamp'),
    ('contact john.doe@gmail.com for prints',
     'contact john. doe for prints'),
    ('drawing by @artist_99 of a fox',
     'drawing by of a fox'),
    ('a photo of a dog.it is happy',
     'a photo of a is happy'),
    ("<b>A bold</b> <i>cat</i> on a <span class='x'>mat</span>",
     'a bold cat on a mat'),
    ('tom &amp; jerry &lt;3 cheese',
     'tom jerry <3 cheese'),
    ('a &quot;quoted&quot; word and &#65;&#x42;c',
     'a "quoted" word and abc'),
    ('<p>a red apple</p><br/>on a table<!-- hidden -->',
     'a red appleon a table'),
    ('<person> riding a horse',
     'person riding a horse'),
    ('rock &amp roll band &nbsp; on stage',
     'rock roll band on stage'),
    ('a < b and c > d in a sign',
     'a < b and c > d in a sign'),
    ('a cat 猫 sitting 在桌子上',
     'a cat sitting'),
    ('a sign that says 東京 and ソウル',
     'a sign that says and ソウル'),
    ('한국어 sign on a café wall',
     '한국어 sign on a café wall'),
    ('a ㈱ logo and ㎡ units',
     'a logo and units'),
    ('this-is-my-cute-cat',
     'this is my cute cat'),
    ('a well-known black-and-white cat',
     'a well-known black-and-white cat'),
    ('a_photo_of_a_cat',
     'a photo of a cat'),
    ('a snake_case name and a dash-ed word',
     'a snake_case name and a dash-ed word'),
    ('a red—blue gradient – and a minus − sign',
     'a red-blue gradient - and a minus − sign'),
    ('a long --- dash --- line',
     'a long - dash - line'),
    ('"a photo of a dog"',
     'a photo of a dog'),
    ("'a cat on a mat'",
     'a cat on a mat'),
    ('“a smiling sun”',
     'a smiling sun'),
    ('‘a lonely tree’',
     'a lonely tree'),
    ('a sign saying "open" on a door',
     'a sign saying "open" on a door'),
    ("''double single'' and ``ticks``",
     'double single" and "ticks'),
    ('a 2x2 grid of cats',
     'a grid of cats'),
    ('a 1920×1080 wallpaper of a sunset',
     'a wallpaper of a sunset'),
    ('a 3.5x4 photo print',
     'a 3. photo print'),
    ('product jc6640 and jc6640vc and 6640vc231',
     'product and and'),
    ('a5b6c7 code on a box',
     'code on a box'),
    ('server at 192.168.0.1 on a desk',
     'server at on a desk'),
    ('item #12 and #123456 and 1234567 units',
     'item and and units'),
    ('page 12 of the book about birds',
     'of the book about birds'),
    ('a clock showing 3:45 ',
     'a clock showing 3:45'),
    ('free shipping on a red dress',
     'on a red dress'),
    ('worldwide free shipping hats',
     'hats'),
    ('free download wallpaper of a lake',
     'wallpaper of a lake'),
    ('click for more photos of a beach',
     'photos of a beach'),
    ('a picture cat.jpg and photo.png image',
     'a picture and image'),
    ('jpeg images of an epsilon symbol',
     'of an ilon symbol'),
    ('a cat... sitting...on a mat',
     'a cat sitting on a mat'),
    ('***AUSVERKAUFT*** sign',
     'ausverkauft sign'),
    ('a cat (black) with [red] {eyes} | and / slashes \\ too',
     'a cat black with red eyes and slashes too'),
    ('a © logo ™ with ® and • bullets',
     'a logo with and bullets'),
    ('hello , world . again : yes',
     'hello , world again: yes'),
    ('a,b,c and 1,2,3 and x.y',
     'a, b, c and 1,2,3 and x. y'),
    ('a cat\\nsitting',
     'a cat sitting'),
    ('a+photo+of+a+cat%20with%2Fslash',
     'a photo of a cat with slash'),
    ('100% cotton t-shirt',
     '100% cotton t-shirt'),
    ('- a dog running',
     'a dog running'),
    ('a dog running:',
     'a dog running'),
    ('.hidden',
     ''),
    ('a happy dog 🐶 with a ball ⚽',
     'a happy dog 🐶 with a ball ⚽'),
    ('a cafe\u0301 menu with ﬁsh',
     'a café menu with fish'),
    ('ｆｕｌｌｗｉｄｔｈ letters on a sign',
     'fullwidth letters on a sign'),
    ('mojibake cafÃ© sign',
     'mojibake cafã sign'),
    ('A whimsical scene unfolds: a small, fluffy white rabbit—wearing a tiny red bow-tie—sits atop a stack of old, leather-bound books; beside it, a steaming cup of tea (with a slice of lemon) rests on a saucer, while sunlight streams through a lace-curtained window.',
     'a whimsical scene unfolds: a small, fluffy white rabbit wearing a tiny red bow tie sits atop a stack of old, leather bound books; beside it, a steaming cup of tea with a slice of lemon rests on a saucer, while sunlight streams through a lace curtained window.'),
    ('The image depicts a bustling city street at dusk. Neon signs glow in shades of pink, blue, and green; pedestrians—some holding umbrellas—cross at the zebra crossing. In the foreground, a yellow taxi waits at a red light, its headlights reflecting off the wet asphalt.',
     'the image depicts a bustling city street at dusk. neon signs glow in shades of pink, blue, and green; pedestrians-some holding umbrellas-cross at the zebra crossing. in the foreground, a yellow taxi waits at a red light, its headlights reflecting off the wet asphalt.'),
    ("An intricately detailed, hyper-realistic oil painting of a 19th-century sailing ship navigating through a storm: towering waves, dark clouds, flashes of lightning, and a crew member clinging to the mast. The ship's name, 'Aurora', is painted on its hull.",
     "an intricately detailed, hyper-realistic oil painting of a 19th-century sailing ship navigating through a storm: towering waves, dark clouds, flashes of lightning, and a crew member clinging to the mast. the ship's name, 'aurora', is painted on its hull."),
    ("A close-up photograph of a vintage pocket watch with roman numerals, lying on a weathered wooden table next to a quill pen and an inkwell; the watch's chain curls in an S-shape.",
     "a close-up photograph of a vintage pocket watch with roman numerals, lying on a weathered wooden table next to a quill pen and an inkwell; the watch's chain curls in an s-shape."),
    ('A cozy living-room with a fire-place, a rocking-chair, and a cat-shaped cushion on a low-slung sofa.',
     'a cozy living room with a fire place, a rocking chair, and a cat shaped cushion on a low slung sofa.'),
    ('<script>alert(1)</script>a red car<style>p{}</style>',
     'a red car'),
    ('a &foo; sign and &copy; 2024 text',
     'a foo sign and 2024 text'),
    ('<pre>  </pre>a cat<textarea>\n</textarea> on a sofa',
     'a cat on a sofa'),
    ('a<![CDATA[]]>b cats',
     'a b cats'),
    ('a „quoted“ german sign',
     'a "quoted" german sign'),
    ('an 8k 4K photo, 35mm lens, f/1.8, iso 100',
     'an 8k 4k photo, 35mm lens, f 1.8, iso 100'),
    ('a photo of a DOG!!! wow?? yes;',
     'a photo of a dog!!! wow?? yes;'),
    ('a tab\tand form\x0cfeed and\u200bzero width',
     'a tab and form feed and\u200bzero width'),
]

# What only ftfy's fix_text repairs (ligatures, full-width letters, decomposed accents, low-9 quotes): without
# ftfy arscale leaves these as written (upstream's output is in CASES).
FTFY_ONLY = {
    'a cafe\u0301 menu with ﬁsh': 'a cafe\u0301 menu with ﬁsh',
    'ｆｕｌｌｗｉｄｔｈ letters on a sign': 'ｆｕｌｌｗｉｄｔｈ letters on a sign',
    'a „quoted“ german sign': 'a „quoted" german sign',
}

# (markup, BeautifulSoup's `.text`): the standard-library stand-in must give the same text.
MARKUP = [
    ('<b>a</b> <i>cat</i>', 'a cat'),
    ('a <!-- c --> b', 'a  b'),
    ('<!doctype html>x', 'x'),
    ('<?php x ?>y', 'y'),
    ('<script>var a</script>z', 'z'),
    ('<style>p{}</style>w', 'w'),
    ('<template><b>x</b>y</template>w', 'w'),
    ('<ruby>a<rt>kan</rt><rp>(</rp></ruby>z', 'az'),
    ('a &foo; b &amp c &#65; &#x42; &#150; &lt', 'a &foo b & c A B – &lt'),
    ('&#1;&#0;&#65x&#xdd00;', '\x01\ufffdAx\ufffd'),
    ('a < b > c', 'a < b > c'),
    ('x <b', 'x <b'),
    ('tom&jerry', 'tom&jerry'),
    ('a&nbsp;b &notin &noti;', 'a\xa0b ∉ &noti'),
    ('<![CDATA[x]]>y', 'xy'),
    ('a<![CDATA[]]>b', 'a b'),
    ('<b><template>x</b>y', 'y'),
    ('a<br></br> b', 'a b'),
    ('<pre>  </pre>|<b>  </b>|<b>\n \n</b>', '  | |\n'),
    ('<br/>a<p>b</p>c', 'abc'),
    ('&amp;amp;', '&amp;'),
    ('<textarea>t<b>x</b></textarea>', 'tx'),
]


def _need_optional():
    pytest.importorskip("ftfy")
    pytest.importorskip("bs4")


def test_the_table_is_large_and_covers_the_tricky_kinds():
    assert len(CASES) >= 40
    assert len({p for p, _ in CASES}) == len(CASES)
    assert set(FTFY_ONLY) <= {p for p, _ in CASES}


@pytest.mark.parametrize(("prompt", "expected"), CASES)
def test_matches_upstream_with_ftfy_and_bs4(prompt, expected):
    _need_optional()
    assert backends() == {"markup": "bs4", "fix_text": "ftfy"}
    assert clean_llamagen_caption(prompt) == expected


@pytest.mark.parametrize(("prompt", "expected"), [c for c in CASES if c[0] not in FTFY_ONLY])
def test_matches_upstream_without_ftfy_and_bs4(prompt, expected):
    """The fallback (stdlib html.parser, no fix_text) agrees with upstream wherever ftfy has nothing to fix."""
    assert clean_llamagen_caption(prompt, use_optional=False) == expected


@pytest.mark.parametrize(("prompt", "unfixed"), FTFY_ONLY.items())
def test_without_ftfy_its_repairs_are_missing(prompt, unfixed):
    assert clean_llamagen_caption(prompt, use_optional=False) == unfixed
    if backends()["fix_text"] == "skipped":  # the default path is the fallback here
        assert clean_llamagen_caption(prompt) == unfixed


@pytest.mark.parametrize(("markup", "text"), MARKUP)
def test_stdlib_markup_text_matches_beautifulsoup(markup, text):
    assert _stdlib_markup_text(markup) == text


def test_backends_name_what_runs():
    assert backends(use_optional=False) == {"markup": "html.parser", "fix_text": "skipped"}
    assert set(backends().values()) <= {"bs4", "html.parser", "ftfy", "skipped"}


# (prompt, upstream's clean_caption once, twice): the second pass still changes these.
TWO_PASSES = [
    ("- - a cat", "- a cat", "a cat"),
    ("a cat:-", "a cat:", "a cat"),
    ("&lt;b&gt;a cat&lt;/b&gt;", "<b>a cat< b>", "a cat< b>"),
]


@pytest.mark.parametrize(("prompt", "once", "twice"), TWO_PASSES)
@pytest.mark.parametrize("use_optional", [False, True])
def test_both_passes_like_upstream(prompt, once, twice, use_optional):
    if use_optional:
        _need_optional()
    assert clean_caption_once(prompt, use_optional=use_optional) == once
    assert clean_llamagen_caption(prompt, use_optional=use_optional) == twice


def test_non_strings_are_read_as_text():
    assert clean_llamagen_caption(12345, use_optional=False) == "12345"  # type: ignore[arg-type]
