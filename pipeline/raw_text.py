"""Bytes to text: the checks a file passes before any cleaning, and the fallbacks taken.

Policy for invalid UTF-8 (heuristic ``cp1252_fallback``): WordPress exports that went
through a spreadsheet are often Windows-1252, so a file that is not UTF-8 is decoded as
Windows-1252 and flagged ``invalid_utf8``; a byte Windows-1252 leaves undefined is kept as
the Latin-1 character of the same value. Nothing is dropped, and the original bytes stay in
the record.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Final

from pipeline.problems import Problem, problem

_BOM_BYTES: Final = b"\xef\xbb\xbf"
_LATIN1_FALLBACK: Final = "pipeline-latin1-fallback"


def _latin1_fallback(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    return err.object[err.start : err.end].decode("latin-1"), err.end


codecs.register_error(_LATIN1_FALLBACK, _latin1_fallback)


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_line_chars: int


def decode_bytes(raw: bytes, limits: Limits) -> tuple[str, tuple[Problem, ...]]:
    """Decode a file's bytes to LF text without a BOM; fatal problems explain a refusal.

    >>> decode_bytes(b"\\xef\\xbb\\xbfa\\r\\nb", Limits(100, 100))[0]
    'a\\nb'
    """
    problems: list[Problem] = []
    if raw.startswith(_BOM_BYTES):
        raw = raw[len(_BOM_BYTES) :]
        problems.append(problem("bom_removed"))
    if not raw or raw.isspace():  # strip() would copy the file's bytes
        return "", (problem("empty_file", "the file is empty or blank; delete it or restore its content"),)
    if len(raw) > limits.max_bytes:
        return "", (
            problem(
                "too_large",
                f"the file has {len(raw)} bytes, over resolve.max_bytes={limits.max_bytes}; raise the limit if it is a real post",
            ),
        )
    if b"\x00" in raw:
        return "", (
            problem("binary_file", "the file holds NUL bytes: it is not a text post; remove it from the raw folder", _line_of(raw, raw.index(b"\x00"))),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        text = raw.decode("cp1252", errors=_LATIN1_FALLBACK)
        problems.append(
            problem(
                "invalid_utf8",
                f"byte 0x{raw[err.start]:02x} is not UTF-8; the file was read as Windows-1252, check its accents",
                _line_of(raw, err.start),
            )
        )
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        problems.append(problem("crlf_normalised"))
    # No line is longer than the text: most files are read without splitting them.
    lines = text.split("\n") if len(text) > limits.max_line_chars else [text]
    if max(map(len, lines)) > limits.max_line_chars:
        number, longest = next((i, x) for i, x in enumerate(lines, 1) if len(x) > limits.max_line_chars)
        return "", (
            problem(
                "line_too_long",
                f"line of {len(longest)} characters, over resolve.max_line_chars={limits.max_line_chars}; raise the limit if it is real text",
                number,
            ),
        )
    return text, tuple(problems)


def _line_of(raw: bytes, offset: int) -> int:
    """The 1-based line of a byte offset, counting LF, CRLF and lone CR as line ends."""
    before = raw[:offset].replace(b"\r\n", b"\n")
    return before.count(b"\n") + before.count(b"\r") + 1
