"""Escaped unicode, mojibake and Excel debris: each repaired, healthy text never touched."""

from __future__ import annotations

import os
import re

# The regex parser, to read ftfy's pattern (typeshed only has the deprecated sre_* names).
import re._compiler as re_compiler  # type: ignore[import-not-found]
import re._constants as re_constants  # type: ignore[import-not-found]
import re._parser as re_parser  # type: ignore[import-not-found]
import subprocess
import sys

import pytest
from ftfy.badness import BADNESS_RE
from ftfy.badness import is_bad as ftfy_is_bad
from hypothesis import given
from hypothesis import strategies as st

from pipeline.escapes import _CONTINUATION, _MOJIBAKE_HINT, BADNESS_REACH, decode_escapes, fix_mojibake, is_bad, join_surrogates, remove_excel_debris

# --- decode_escapes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mobilit\\u00e9", "mobilité"),
        ("\\u00C9t\\u00E9", "Été"),
        ("v\\\\u00e9lo", "vélo"),
        ("v\\\\\\\\u00e9lo", "vélo"),
        ('tags: ["qualit\\u00e9 de l\'air", "\\u00e9nergie"]', 'tags: ["qualité de l\'air", "énergie"]'),
        ("\\ud83d\\ude80", "🚀"),
        ("\\\\ud83d\\\\ude80 d\\u00e9collage", "🚀 décollage"),
        ("\\ud83d\\\\ude80", "🚀"),
        ("\\U0001F680", "🚀"),
        ("\\u2019", "’"),
    ],
)
def test_decode_escapes(text: str, expected: str) -> None:
    assert decode_escapes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\ud83d", "\\ud83d"),
        ("\\\\ud83d fin", "\\ud83d fin"),
        ("a \\ude80 b", "a \\ude80 b"),
        ("\\ude80\\ud83d", "\\ude80\\ud83d"),
        ("\\ud83d\\ud83d\\ude80", "\\ud83d🚀"),
    ],
)
def test_unpaired_surrogate_escape_is_written_back_escaped(text: str, expected: str) -> None:
    decoded = decode_escapes(text)
    assert decoded == expected
    decoded.encode("utf-8")  # valid UTF-8: no lone surrogate left in the text


@pytest.mark.parametrize(
    "text",
    ["ligne\\nsuite", "col\\tcol", "C:\\\\dossier", "\\x41", "\\u00", "\\u00zz", "\\U00110000", "\\", "fin\\", "L’été « doux »", ""],
)
def test_decode_escapes_leaves_other_backslashes_alone(text: str) -> None:
    assert decode_escapes(text) == text


def test_join_surrogates_on_literal_surrogates() -> None:
    assert join_surrogates("\ud83d\ude80 et \ud83d") == "🚀 et \\ud83d"
    assert join_surrogates("\ude80") == "\\ude80"
    assert join_surrogates("déjà") == "déjà"


_no_backslash = st.text(alphabet=st.characters(exclude_characters="\\", exclude_categories=["Cs"]), max_size=40)
# Escapes of any code point except the backslash itself (see the xfail test below).
_escape = st.builds(
    lambda point, slashes: "\\" * slashes + f"u{point:04x}",
    st.integers(0, 0xFFFF).filter(lambda point: point != 0x5C),
    st.integers(1, 3),
) | st.builds(lambda point: f"\\U{point:08X}", st.integers(0x10000, 0x10FFFF))
_escaped_text = st.lists(st.one_of(_no_backslash, _escape), max_size=8).map("".join)


@given(_no_backslash)
def test_decode_escapes_leaves_text_without_backslash_unchanged(text: str) -> None:
    assert decode_escapes(text) == text


@given(_escaped_text)
def test_decode_escapes_is_idempotent(text: str) -> None:
    once = decode_escapes(text)
    assert decode_escapes(once) == once


@given(st.text(alphabet=st.sampled_from(list("\\uU0123456789abcdefABCDEF dé\ud83d\ude80")), max_size=40))
def test_decode_escapes_output_is_always_valid_utf8(text: str) -> None:
    decode_escapes(text).encode("utf-8")


def test_decode_escapes_idempotent_on_escaped_backslash() -> None:
    once = decode_escapes("\\u005cu00e9")
    assert decode_escapes(once) == once


# --- fix_mojibake ------------------------------------------------------------------------


def test_ftfy_is_imported_by_the_first_text_that_looks_like_mojibake_not_at_start_up() -> None:
    # Heuristic ``ftfy_on_demand``: in a fresh process, as the command starts.
    script = (
        "import sys; import pipeline.cli; from pipeline.escapes import fix_mojibake\n"
        "print('ftfy' in sys.modules, 'wcwidth' in sys.modules)\n"
        "print(fix_mojibake('L\u2019\u00e9t\u00e9 \u00ab doux \u00bb'), 'ftfy' in sys.modules)\n"
        "print(fix_mojibake('mobilit\u00c3\u00a9'), 'ftfy' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, encoding="utf-8", timeout=60, check=True, env=env)
    assert done.stdout.splitlines() == ["False False", "L’été « doux » False", "mobilité True"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mobilitÃ©", "mobilité"),
        ("Ã©tÃ© Ã  la plage", "été à la plage"),
        ("â€œdouceâ€\x9d", "“douce”"),
        ("Lâ€™Ã©tÃ©", "L’été"),
        ("Ã‰lectrique", "Électrique"),
        ("cÅ“ur", "cœur"),
        ("Â« vÃ©lo Â»", "« vélo »"),
    ],
)
def test_fix_mojibake_repairs_utf8_read_as_cp1252(text: str, expected: str) -> None:
    assert fix_mojibake(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "L’été « doux » “x”",
        "L’été « doux » “x”\u00a0: c’est ‘déjà’ l’œuvre d’Ève…",
        "« déjà\u00a0» et «\u00a0voilà\u00a0»",
        "Ça coûte 10\u00a0€ – pas 12 € — à Noël.",
        "aujourd’hui, l’île, où, dû, mûr, naïve, maïs, Œuvre, CŒUR, ÉTÉ",
        "São Paulo, Ångström, Zürich, Kraków",
        "Tab\tet espace insécable\u00a0fine",
        "Texte ASCII sans accent.",
        "",
    ],
)
def test_fix_mojibake_leaves_typographic_french_untouched(text: str) -> None:
    assert fix_mojibake(text) == text


_WORDS = [
    "été", "déjà", "où", "Œuvre", "cœur", "à", "À", "Ça", "ÇA", "l’été", "l’œuvre", "aujourd’hui", "naïve", "Noël", "maïs", "île",
    "dû", "mûr", "Ô", "ÉTÉ", "CŒUR", "DÉJÀ", "mobilité", "véhicule", "électrique", "forêt", "bâtiment", "hôpital", "garçon", "Ève",
    "être", "qu’à", "10 €", "1 000 €", "2020", "Très", "x",
]  # fmt: skip
_OPENING = ["", "“", "« ", "«\u00a0", "‘", "(", "—\u00a0", "– "]
_CLOSING = ["", "”", " »", "\u00a0»", "’", ")", "…", ",", ".", " !", "\u00a0?", " –", "\u00a0:", ";"]


def _french_text(words: list[str]) -> st.SearchStrategy[str]:
    """Typographic French: words with curly quotes, guillemets, dashes, non-breaking spaces."""
    token = st.builds(lambda opening, word, closing: opening + word + closing, st.sampled_from(_OPENING), st.sampled_from(words), st.sampled_from(_CLOSING))
    pairs = st.lists(st.tuples(st.sampled_from([" ", "\u00a0", "\n"]), token), min_size=1, max_size=14)
    return pairs.map(lambda items: "".join(sep + token for sep, token in items)[1:])


_french = _french_text(_WORDS)
# ftfy itself leaves the mojibake of a capital Œ (Å’) alone: it is also plausible Scandinavian text.
_french_without_capital_oe = _french_text([word for word in _WORDS if "Œ" not in word])


def _as_cp1252(text: str) -> str:
    """``text``'s UTF-8 bytes read as Windows-1252 (undefined bytes as Latin-1): mojibake."""
    chars = []
    for byte in text.encode("utf-8"):
        try:
            chars.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            chars.append(chr(byte))
    return "".join(chars)


@given(_french)
def test_fix_mojibake_leaves_generated_french_unchanged(text: str) -> None:
    assert fix_mojibake(text) == text


@given(_french_without_capital_oe)
def test_fix_mojibake_repairs_generated_mojibake_and_is_idempotent(text: str) -> None:
    broken = _as_cp1252(text)
    fixed = fix_mojibake(broken)
    assert fixed == text
    assert fix_mojibake(fixed) == fixed


# --- is_bad and the mojibake hint: faster forms of the same answers ------------------------


def test_every_badness_match_holds_a_non_ascii_character_within_reach() -> None:
    """What ``escapes.is_bad`` relies on, checked against the installed ftfy: each branch of
    BADNESS_RE needs a character no ASCII character matches, and none is longer than the
    reach allows; its only anchor is ``^``, which a search from a later start never matches."""
    tree = re_parser.parse(BADNESS_RE.pattern, re.VERBOSE)
    assert len(tree.data) == 1 and tree.data[0][0] is re_constants.BRANCH
    for branch in tree.data[0][1][1]:
        assert branch.getwidth()[1] <= BADNESS_REACH + 1, branch
        needs_non_ascii = False
        for op, value in branch.data:
            if op is re_constants.AT:
                assert value is re_constants.AT_BEGINNING, branch
            elif op not in (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT):  # an optional \s? may be ASCII or nothing
                single = re_compiler.compile(re_parser.SubPattern(branch.state, [(op, value)]), re.VERBOSE)
                needs_non_ascii |= not any(single.fullmatch(chr(code)) for code in range(128))
        assert needs_non_ascii, branch


_MOJIBAKE_CHARS = "ÃÂâ€™œ\x9d©«»\u00a0°ÅŠš¢£¥¤¦§¨¬®¯±²³´µ¶·¸¹º¼½¾×÷ØÙВГРСЂўβΒΓΞΟ‚Ä√≈│┌▀ÒÕøéèàçÉÀ–—‘’“”…"
_mixed_text = st.text(alphabet=st.sampled_from([*"ab zA.,?!\n\t-", *_MOJIBAKE_CHARS]), max_size=60)


@given(st.lists(st.one_of(_mixed_text, _french, _french.map(_as_cp1252)), min_size=1, max_size=4).map("".join))
def test_is_bad_gives_ftfys_answer(text: str) -> None:
    assert is_bad(text) == ftfy_is_bad(text)


@pytest.mark.parametrize("core", ["ГўВЂВ.x", "a\nÃ b", "Ã b", "q Â «", "é\u00a0»", "œ1", "Ã©"])
@pytest.mark.parametrize(("before", "after"), [("", ""), ("plain text ", ""), ("", " plain text"), ("x" * 40 + "é ", " é" + "y" * 40)])
def test_is_bad_gives_ftfys_answer_at_the_edges_of_its_windows(core: str, before: str, after: str) -> None:
    """Matches whose ends are ASCII, as far from their non-ASCII character as they go, at
    the start and end of a text and between other windows (``^`` only at the real start)."""
    text = before + core + after
    assert is_bad(text) == ftfy_is_bad(text)


_PLAIN_HINT = re.compile(
    f"[\\u00c2-\\u00df]{_CONTINUATION}|[\\u00e0-\\u00ef](?!\\u00a0[\\u00ab\\u00bb]){_CONTINUATION}{{2}}|[\\u00f0-\\u00f4]{_CONTINUATION}{{3}}|[\\u0080-\\u009f]"
)


def test_french_guillemets_after_an_accented_letter_are_not_taken_for_mojibake() -> None:
    """``mojibake_prefilter`` lets ``é\u00a0»`` by (the archive's 44 false alarms) and still
    flags the same three characters as the mojibake of a CJK ideograph among others."""
    assert _MOJIBAKE_HINT.search("un résumé\u00a0», dit-il, « à\u00a0» près") is None
    assert fix_mojibake("le résumé\u00a0» final") == "le résumé\u00a0» final"
    broken = _as_cp1252("阻止 le vélo")
    assert _MOJIBAKE_HINT.search(broken) is not None and fix_mojibake(broken) == "阻止 le vélo"


@given(st.lists(st.one_of(_mixed_text, _french, _french.map(_as_cp1252)), min_size=1, max_size=4).map("".join))
def test_mojibake_hint_matches_where_its_plain_alternation_does(text: str) -> None:
    assert [m.start() for m in _MOJIBAKE_HINT.finditer(text)] == [m.start() for m in _PLAIN_HINT.finditer(text)]


# --- remove_excel_debris -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Premier.\n_x000D_\nSecond.", "Premier.\n\nSecond."),
        ("Premier.\n  _x000D_\t\nSecond.", "Premier.\n\nSecond."),
        ("a\n_x000D__x000D_\n_x000D_ _x000D_\nb", "a\n\n\nb"),
        ("_x000D_\nDébut.", "\nDébut."),
        ("Fin de phrase._x000D_\nSuite.", "Fin de phrase.\nSuite."),
        ("Fin de phrase._x000D_\n\nParagraphe.", "Fin de phrase.\n\nParagraphe."),
        ("gro_x000D_\nupes", "gro\nupes"),
        ("il semb_x000D_\nle bien", "il semb\nle bien"),
        ("a_x000D_b", "ab"),
    ],
)
def test_remove_excel_debris(text: str, expected: str) -> None:
    assert remove_excel_debris(text) == expected


@pytest.mark.parametrize("text", ["_x000A_", "x000D", "_x000D", "x000D_", "_x00D_", "Rien à retirer.\n"])
def test_remove_excel_debris_leaves_other_text_alone(text: str) -> None:
    assert remove_excel_debris(text) == text


_debris_free = st.text(alphabet=st.characters(exclude_characters="_"), max_size=30)
_with_debris = st.lists(st.one_of(_debris_free, st.sampled_from(["_x000D_", "_x000D_\n", "\n_x000D_\n", " _x000D_ "])), max_size=10).map("".join)


@given(st.text(max_size=60).filter(lambda text: "_x000D_" not in text))
def test_remove_excel_debris_leaves_text_without_debris_unchanged(text: str) -> None:
    assert remove_excel_debris(text) == text


@given(_with_debris)
def test_remove_excel_debris_is_idempotent_and_keeps_every_line_break(text: str) -> None:
    cleaned = remove_excel_debris(text)
    assert "_x000D_" not in cleaned
    assert cleaned.count("\n") == text.count("\n")
    assert remove_excel_debris(cleaned) == cleaned


def test_remove_excel_debris_nested_token() -> None:
    once = remove_excel_debris("_x000_x000D_D_")
    assert "_x000D_" not in once
