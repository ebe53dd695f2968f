"""Escaped unicode, mojibake and Excel debris: text that stands for other text.

Each function is ``str -> str``, leaves healthy text unchanged and is idempotent. None of
them touches typography: ftfy's default ``fix_text`` would straighten curly quotes and
apostrophes, so only ftfy's encoding fixers are used, and only on text ftfy flags as bad.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, partial
from typing import Final

# One or more backslashes then u + 4 hex digits (or U + 8): a JSON/Python escape, possibly
# escaped again (``\\u00e9``) by a second serialisation.
_ESCAPE: Final = re.compile(r"\\+(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))")
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
_SURROGATE_PAIR: Final = re.compile(r"[\ud800-\udbff][\udc00-\udfff]")
# Excel writes a carriage return inside a cell as _x000D_. Alone on a line it marks an
# empty line; at the end of a line it is the line's own CR.
_DEBRIS_LINE: Final = re.compile(r"^[ \t]*(?:_x000D_[ \t]*)+$", re.M)
_DEBRIS: Final = re.compile(r"_x000D_")
# Heuristic ``mojibake_prefilter``: UTF-8 read as Latin-1 or Windows-1252 leaves a lead
# byte followed by as many continuation bytes as its sequence needs (Â..ß one, à..ï two,
# ð..ô three), each U+0080..U+00BF or its Windows-1252 stand-in, or a bare C1 control.
# Text without such a run is not handed to ftfy's slower badness check: healthy French
# (é before a non-breaking space, à before ’) no longer pays for it. Nor does French's
# guillemet after an accented letter (``résumé\u00a0»``): a lead of à..ï, a no-break
# space and a guillemet can only be the mojibake of one character of rare blocks
# (Samaritan, Mongolian, Braille, Yi, some CJK ideographs and Hangul syllables), and a
# quoted word of those scripts leaves other runs too. In the archive this guillemet was the
# only run in each of the 44 bodies the filter let through, none of which ftfy found bad;
# their badness checks took 35 ms of a 1.6 s run.
_CONTINUATION: Final = (
    "[\\u0080-\\u00bf\\u0152\\u0153\\u0160\\u0161\\u0178\\u017d\\u017e\\u0192\\u02c6\\u02dc"
    "\\u2013\\u2014\\u2018-\\u201a\\u201c-\\u201e\\u2020-\\u2022\\u2026\\u2030\\u2039\\u203a\\u20ac\\u2122]"
)
# Written as one class for the lead character, then the continuations its range needs
# (looked up behind it): the regex engine then skips ahead to a candidate lead rather than
# trying four alternatives at every character, 2.6 times faster on French bodies. It
# matches where the plain alternation
# ``[Â-ß]C|[à-ï](?!\u00a0[«»])C{2}|[ð-ô]C{3}|[\\x80-\\x9f]`` matches (a test holds them equal).
_MOJIBAKE_HINT: Final = re.compile(
    f"[\\u0080-\\u009f\\u00c2-\\u00f4](?:(?<=[\\u00c2-\\u00df]){_CONTINUATION}|(?<=[\\u00e0-\\u00ef])(?!\\u00a0[\\u00ab\\u00bb]){_CONTINUATION}{{2}}"
    f"|(?<=[\\u00f0-\\u00f4]){_CONTINUATION}{{3}}|(?<=[\\u0080-\\u009f]))"
)
# Where ``is_bad`` searches (exact, not a heuristic): every match of ftfy's BADNESS_RE holds
# a non-ASCII character and is at most 7 characters long (a test checks both against the
# installed ftfy), so a match lies within 6 characters of a non-ASCII run; ftfy's search
# runs only there. French bodies are a third non-ASCII neighbourhood, two thirds plain text.
_NON_ASCII_RUN: Final = re.compile(r"[^\x00-\x7f]+")
BADNESS_REACH: Final = 6


# Heuristic ``ftfy_on_demand``: ftfy is imported by the first text that looks like mojibake
# (``_MOJIBAKE_HINT``), not by every run. With what it loads (its formatting module and
# wcwidth, which this package never uses) it cost 0.02 s of the one-core start-up, before
# the workers could begin; on the whole archive the hint lets one text through to ftfy's
# check, and none to its fixer.
@cache
def _badness() -> re.Pattern[str]:
    from ftfy.badness import BADNESS_RE

    return BADNESS_RE


@cache
def _fix_encoding() -> Callable[[str], str]:
    import ftfy

    only = ftfy.TextFixerConfig(
        unescape_html=False,
        remove_terminal_escapes=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        uncurl_quotes=False,
        fix_line_breaks=False,
        remove_control_chars=False,
        normalization=None,
        explain=False,
    )
    return partial(ftfy.fix_encoding, config=only)


def decode_escapes(text: str) -> str:
    """Turn ``\\uXXXX`` escapes (single or double, surrogate pairs too) into characters.

    Only unicode escapes are decoded: ``\\n`` or ``\\t`` in a title may be meant literally,
    and ``codecs.decode(s, "unicode_escape")`` would mangle non-ASCII text.

    >>> decode_escapes("mobilit\\\\u00e9 \\\\\\\\u00e8 \\\\ud83d\\\\ude80")
    'mobilité è 🚀'
    """
    if "\\" not in text:
        return join_surrogates(text)
    decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)) if _valid(m) else m.group(0), text)
    return join_surrogates(decoded)


def _valid(match: re.Match[str]) -> bool:
    # An escaped backslash stays escaped: decoded, it would start a new escape and make a
    # second pass change the text again.
    code = int(match.group(1) or match.group(2), 16)
    return code <= 0x10FFFF and code != 0x5C


def join_surrogates(text: str) -> str:
    """Join UTF-16 surrogate pairs into one character; re-escape unpaired ones.

    An unpaired surrogate cannot be written as UTF-8, so it is written back as its escape
    (nothing is lost, and the output stays valid).

    >>> join_surrogates("\\ud83d\\ude80 \\ud83d")
    '🚀 \\\\ud83d'
    """
    if not _SURROGATE.search(text):
        return text
    joined = _SURROGATE_PAIR.sub(lambda m: m.group(0).encode("utf-16-le", "surrogatepass").decode("utf-16-le"), text)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", joined)


def fix_mojibake(text: str) -> str:
    """Repair UTF-8 that was decoded as Latin-1 or Windows-1252, with ftfy's encoding fixers.

    Text that ftfy's badness heuristic does not flag is returned as it is, unread further.

    >>> fix_mojibake("mobilitÃ© â€œdouceâ€\x9d"), fix_mojibake("L’été « doux »")
    ('mobilité “douce”', 'L’été « doux »')
    """
    if not text.isascii() and _MOJIBAKE_HINT.search(text) and is_bad(text):
        return _fix_encoding()(text)
    return text


def is_bad(text: str) -> bool:
    """ftfy's ``is_bad`` (its BADNESS_RE found anywhere), searched only within
    ``BADNESS_REACH`` characters of non-ASCII text, where a match can be: the same answer,
    half the time on a French body.

    >>> is_bad("Le vélo\u00a0» revient"), is_bad("mobilitÃ© douce")
    (False, True)
    """
    badness = _badness()
    start = end = -1
    for run in _NON_ASCII_RUN.finditer(text):
        if end < 0 or run.start() - BADNESS_REACH > end:
            if end >= 0 and badness.search(text, start, end):
                return True
            start = max(run.start() - BADNESS_REACH, 0)
        end = run.end() + BADNESS_REACH
    # A search from ``start`` > 0 does not let ``^`` match there, as it must not.
    return end >= 0 and badness.search(text, start, end) is not None


def remove_excel_debris(text: str) -> str:
    """Remove Excel's ``_x000D_`` carriage-return escapes.

    A line holding only debris becomes an empty line (it stood for one); debris at the end
    of or inside a line is removed.

    >>> remove_excel_debris("il semb_x000D_\\nle bien\\n_x000D_\\nfin")
    'il semb\\nle bien\\n\\nfin'
    """
    # Repeated until stable: removing one token can join the halves of another.
    while "_x000D_" in text:
        text = _DEBRIS.sub("", _DEBRIS_LINE.sub("", text))
    return text
