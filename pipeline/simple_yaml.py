"""The simple YAML of front matter, read and written without PyYAML, exactly as PyYAML would.

Reading and writing a post's front matter through PyYAML took 47 and 62 µs (the archive's,
timed alone), most of it in PyYAML's Python side: its constructor and representer walk
every node, even around libyaml. Here they take 15 and 16 µs, and a whole run on the
archive went from 1.29 to 1.13 s (CPU 2.19 → 1.88 s, medians of 8 alternating runs).
Nearly every front
matter is a few line forms: ``key: value`` with a plain, single- or double-quoted value,
and one-line lists of quoted items (``tags: ['a', "b"]``). For those, ``read_mapping`` and
``write_mapping`` give what libyaml gives; for anything else they return None and the
caller goes through PyYAML, which also reports every error. Property tests
(``tests/test_simple_yaml.py``) hold both equal to libyaml on generated text, tricky
characters, quotes, escapes and YAML's special words included.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

# A resolver table as PyYAML keeps it (``Resolver.yaml_implicit_resolvers``): first
# character -> (tag, pattern), None -> patterns tried for any first character.
Resolvers = dict[str | None, list[tuple[str, re.Pattern[str]]]]


class Resolution:
    """Which plain scalars a loader or dumper reads as strings (PyYAML's ``BaseResolver.resolve``),
    its table looked up once per first character rather than joined at every call.

    >>> import yaml
    >>> strings = Resolution(yaml.SafeLoader.yaml_implicit_resolvers)
    >>> strings.is_str("Vélo"), strings.is_str("yes"), strings.is_str("12"), strings.is_str("")
    (True, False, False, False)
    """

    def __init__(self, resolvers: Resolvers) -> None:
        anywhere = [pattern for _, pattern in resolvers.get(None, [])]
        self._anywhere = _either(anywhere)
        self._by_first = {first: _either([pattern for _, pattern in found] + anywhere) for first, found in resolvers.items() if first is not None}

    def is_str(self, value: str) -> bool:
        # value[:1] is "" for the empty string, which PyYAML looks up under "" too.
        patterns = self._by_first.get(value[:1], self._anywhere)
        return patterns is None or patterns.match(value) is None


def _either(patterns: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One pattern matching where any of ``patterns`` matches (each keeps its own flags, as
    a scoped group): one regex call rather than one per resolver."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?{_flag_letters(p)}:{p.pattern})" for p in patterns))


def _flag_letters(pattern: re.Pattern[str]) -> str:
    letters = "".join(letter for flag, letter in _SCOPED_FLAGS if pattern.flags & flag)
    if pattern.flags & ~(re.UNICODE | sum(flag for flag, _ in _SCOPED_FLAGS)):
        raise ValueError(f"resolver pattern {pattern.pattern!r} has flags a scoped group cannot hold")
    return letters or "-x"  # "(?-x:...)": a group with no flag set


_SCOPED_FLAGS: Final = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))


# -- reading --------------------------------------------------------------------------------

# Characters libyaml reads as line breaks or refuses (controls, tab, byte-order mark,
# surrogates, U+FFFE/U+FFFF): a text holding any is left to libyaml, with its errors.
# Written as the set of those characters, not as the complement of the others: a negated
# class reaching beyond U+FFFF takes Python 4.5 ms to compile, at every start.
_UNREADABLE: Final = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_KEY_LINE: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_-]{0,99}): +(.+)")
# Escapes libyaml 0.2.5 reads in double quotes; the hexadecimal ones are decoded by length.
_ESCAPED: Final = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_ESCAPE: Final = r"""\\(?:[0abtnvfre "/\\N_LP]|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8})"""
# Quoted scalars on one line, as unrolled loops (a run of plain characters, then an escape
# or a doubled quote and another run): twice as fast as one alternation per character.
_SINGLE: Final = r"'[^']*(?:''[^']*)*'"
_DOUBLE: Final = rf'"[^"\\]*(?:{_ESCAPE}[^"\\]*)*"'
_QUOTED: Final = re.compile(rf"{_SINGLE}|{_DOUBLE}")
_LIST: Final = re.compile(rf"\[ *(?:(?:{_SINGLE}|{_DOUBLE})(?: *, *(?:{_SINGLE}|{_DOUBLE}))*)? *\]")
_ESCAPE_ONE: Final = re.compile(_ESCAPE)
# A plain scalar on one line, in block context: no indicator first, no ": " or " #" inside
# (they end it), no trailing ":" or space; characters are checked for the whole text.
_PLAIN: Final = re.compile(r"""[^-?:,\[\]{}#&*!|>'"%@` ](?:(?!: | #).)*(?<![: ])""")


class _KnownKeys:
    """A check of front-matter keys, remembered: a run meets the same few keys in every
    post. Bounded, so that an archive of ever new keys cannot grow it without end."""

    def __init__(self, check: Callable[[str], bool], most: int = 4096) -> None:
        self._check = check
        self._known: dict[str, bool] = {}
        self._most = most

    def check(self, key: str) -> bool:
        known = self._known.get(key)
        if known is None:
            known = self._check(key)
            if len(self._known) < self._most:
                self._known[key] = known
        return known


class _Unread(Exception):
    """This text is not of the simple forms: PyYAML reads it."""


class Reader:
    """Front matter of ``key: value`` lines read as libyaml reads it, for a loader whose
    implicit resolvers are ``resolvers``; only values it reads as strings are taken (a plain
    ``12`` or ``yes`` goes to PyYAML)."""

    def __init__(self, resolvers: Resolvers) -> None:
        self.strings = Resolution(resolvers)
        self._keys = _KnownKeys(self.strings.is_str)  # key -> read as a string

    def read_mapping(self, text: str) -> tuple[dict[str, Any], tuple[tuple[str, int], ...]] | None:
        """The mapping and its repeated keys (key, 1-based line as the loader counts them);
        None when ``text`` is not of the simple forms.

        >>> import yaml
        >>> Reader(yaml.SafeLoader.yaml_implicit_resolvers).read_mapping("\\ntitle: \\"Été\\"\\ntags: ['a', \\"b\\"]\\ntitle: Vélo\\n")
        ({'title': 'Vélo', 'tags': ['a', 'b']}, (('title', 4),))
        >>> Reader(yaml.SafeLoader.yaml_implicit_resolvers).read_mapping("\\ntitle: a: b\\n") is None
        True
        """
        if _UNREADABLE.search(text):
            return None
        mapping: dict[str, Any] = {}
        repeated: list[tuple[str, int]] = []
        try:
            for number, line in enumerate(text.split("\n")):
                if not line:
                    continue
                match = _KEY_LINE.fullmatch(line)
                if match is None or not self._keys.check(key := match[1]):
                    return None
                if key in mapping:
                    repeated.append((key, number + 1))
                mapping[key] = self._read_value(match[2])
        except _Unread:
            return None
        return mapping, tuple(repeated)

    def _read_value(self, value: str) -> str | list[str]:
        first = value[0]
        if first == "[":
            if not _LIST.fullmatch(value):
                raise _Unread
            return [_read_quoted(item) for item in _QUOTED.findall(value)]
        if first in "'\"":
            if not _QUOTED.fullmatch(value):
                raise _Unread
            return _read_quoted(value)
        if not _PLAIN.fullmatch(value) or not self.strings.is_str(value):
            raise _Unread
        return value


def _read_quoted(item: str) -> str:
    inner = item[1:-1]
    if item[0] == "'":
        return inner.replace("''", "'")
    return _ESCAPE_ONE.sub(_unescape, inner) if "\\" in inner else inner


def _unescape(match: re.Match[str]) -> str:
    code = match[0][1:]
    if len(code) == 1:
        return _ESCAPED[code]
    point = int(code[1:], 16)
    if 0xD800 <= point <= 0xDFFF or point > 0x10FFFF:
        raise _Unread  # libyaml refuses these; its error is the one to report
    return chr(point)


# -- writing --------------------------------------------------------------------------------

# Characters libyaml's emitter writes as they are (its IS_PRINTABLE without line breaks):
# any other string needs double quotes and escapes, which PyYAML writes.
_UNWRITABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff\U00010000-\U0010ffff]")
# Longer strings could be folded at the emitter's width; PyYAML writes them.
_MAX_WRITTEN: Final = 10_000
_FIRST_INDICATORS: Final = frozenset("#,[]{}&*!|>'\"%@`")


class Writer:
    """Mappings written as ``yaml.dump(mapping, Dumper=yaml.CSafeDumper, sort_keys=False,
    allow_unicode=True, default_flow_style=False, width=1_000_000)`` writes them, datetimes
    as their ``isoformat()`` timestamps, for a dumper whose implicit resolvers are ``resolvers``."""

    def __init__(self, resolvers: Resolvers) -> None:
        self.strings = Resolution(resolvers)
        self._keys = _KnownKeys(lambda key: len(key) <= 100 and self._write_str(key) == key)  # key -> written plain

    def write_mapping(self, mapping: dict[str, Any]) -> str | None:
        """The YAML text; None when a key or value is not of the simple forms (string, bool,
        int, None, datetime, list of strings).

        >>> import yaml
        >>> print(Writer(yaml.resolver.Resolver.yaml_implicit_resolvers).write_mapping({"title": "it's: here", "tags": ["a b", "yes"], "draft": False}), end="")
        title: 'it''s: here'
        tags:
        - a b
        - 'yes'
        draft: false
        """
        if not mapping:
            return None
        lines = []
        for key, value in mapping.items():
            if type(key) is not str or not self._keys.check(key):
                return None
            kind = type(value)
            text: str | None
            if kind is str:
                text = self._write_str(value)
            elif kind is list:
                items = [self._write_str(item) if type(item) is str else None for item in value]
                if None in items:
                    return None
                lines.append(f"{key}:\n" + "".join(f"- {item}\n" for item in items) if items else f"{key}: []\n")
                continue
            elif kind is bool:
                text = "true" if value else "false"
            elif kind is int:
                text = str(value)
            elif value is None:
                text = "null"
            elif kind is datetime:
                stamp = value.isoformat()
                text = None if self.strings.is_str(stamp) or not _plain_allowed(stamp) else stamp
            else:
                return None
            if text is None:
                return None
            lines.append(f"{key}: {text}\n")
        return "".join(lines)

    def _write_str(self, value: str) -> str | None:
        if len(value) > _MAX_WRITTEN or _UNWRITABLE.search(value):
            return None
        if value and _plain_allowed(value) and self.strings.is_str(value):
            return value
        return "'" + value.replace("'", "''") + "'"


def _plain_allowed(value: str) -> bool:
    """libyaml's ``yaml_emitter_analyze_scalar`` for a one-line printable string, block context."""
    first = value[0]
    if first == " " or value[-1] == " " or value.startswith(("---", "...")):
        return False
    if first in _FIRST_INDICATORS or (first in "?:-" and value[1:2] in ("", " ")):
        return False
    return not (": " in value or value[-1] == ":" or " #" in value)
