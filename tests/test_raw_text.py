"""Bytes to text: BOM, line endings, empty and binary files, invalid UTF-8, size limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.problems import Problem
from pipeline.raw_text import Limits, decode_bytes

LIMITS = Limits(max_bytes=10_000, max_line_chars=1_000)


def _codes(problems: tuple[Problem, ...]) -> list[tuple[str, int | None]]:
    return [(p.code, p.line) for p in problems]


def test_plain_utf8_unchanged() -> None:
    raw = "---\ntitle: L’été\n---\n\nCorps.\n".encode()
    assert decode_bytes(raw, LIMITS) == (raw.decode(), ())


def test_bom_removed() -> None:
    text, problems = decode_bytes(b"\xef\xbb\xbf---\ntitle: T\n---\n", LIMITS)
    assert text == "---\ntitle: T\n---\n"
    assert _codes(problems) == [("bom_removed", None)]
    assert problems[0].severity == "info"


def test_only_the_leading_bom_is_removed() -> None:
    text, _ = decode_bytes("a\ufeffb".encode(), LIMITS)
    assert text == "a\ufeffb"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a\r\nb\r\n", "a\nb\n"),
        (b"a\rb\r", "a\nb\n"),
        (b"a\r\nb\rc\nd", "a\nb\nc\nd"),
        (b"a\r\r\nb", "a\n\nb"),
    ],
)
def test_line_endings_normalised(raw: bytes, expected: str) -> None:
    text, problems = decode_bytes(raw, LIMITS)
    assert text == expected
    assert _codes(problems) == [("crlf_normalised", None)]


def test_bom_and_crlf_together() -> None:
    text, problems = decode_bytes(b"\xef\xbb\xbfa\r\nb", LIMITS)
    assert text == "a\nb"
    assert [code for code, _ in _codes(problems)] == ["bom_removed", "crlf_normalised"]


@pytest.mark.parametrize("raw", [b"", b" ", b"\n\n", b" \t\r\n \n"])
def test_empty_or_blank_file_is_fatal(raw: bytes) -> None:
    text, problems = decode_bytes(raw, LIMITS)
    assert text == ""
    assert [code for code, _ in _codes(problems)] == ["empty_file"]
    assert problems[0].severity == "fatal"


@pytest.mark.parametrize("raw", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\n", b"\xef\xbb\xbf \r\n"])
def test_bom_only_file_is_empty(raw: bytes) -> None:
    _, problems = decode_bytes(raw, LIMITS)
    assert "empty_file" in [code for code, _ in _codes(problems)]


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (b"\x00", 1),
        (b"---\ntitle: T\n---\nbody\x00more", 4),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3),
    ],
)
def test_nul_byte_is_binary(raw: bytes, line: int) -> None:
    text, problems = decode_bytes(raw, LIMITS)
    assert text == ""
    assert _codes(problems) == [("binary_file", line)]
    assert problems[0].severity == "fatal"


@pytest.mark.parametrize(
    ("raw", "text", "line"),
    [
        (b"---\ntitle: caf\xe9\n---\n", "---\ntitle: café\n---\n", 2),
        (b"a\nb\nd\xe9j\xe0 \x80 \x92", "a\nb\ndéjà € ’", 3),
        (b"\x93guillemets\x94", "“guillemets”", 1),
        (b"ok \xc3\xa9\nthen \xe9", "ok Ã©\nthen é", 2),
        (b"undefined \x81\x8d\x8f\x90\x9d", "undefined \x81\x8d\x8f\x90\x9d", 1),
    ],
)
def test_invalid_utf8_read_as_cp1252(raw: bytes, text: str, line: int) -> None:
    decoded, problems = decode_bytes(raw, LIMITS)
    assert decoded == text
    assert _codes(problems) == [("invalid_utf8", line)]
    assert problems[0].severity == "warning"


def test_invalid_utf8_message_names_the_byte() -> None:
    _, problems = decode_bytes(b"caf\xe9", LIMITS)
    assert "0xe9" in problems[0].message


@pytest.mark.parametrize(("raw", "code"), [(b"a\rb\rcaf\xe9", "invalid_utf8"), (b"a\rb\rc\x00", "binary_file")])
def test_problem_line_in_cr_only_file(raw: bytes, code: str) -> None:
    _, problems = decode_bytes(raw, LIMITS)
    assert (code, 3) in _codes(problems)


def test_bom_removed_from_file_read_as_cp1252() -> None:
    text, problems = decode_bytes(b"\xef\xbb\xbf---\ntitle: caf\xe9\n---\n", LIMITS)
    assert text == "---\ntitle: café\n---\n"
    assert "bom_removed" in [code for code, _ in _codes(problems)]


def test_size_limit_is_inclusive() -> None:
    limits = Limits(max_bytes=10, max_line_chars=100)
    assert decode_bytes(b"0123456789", limits) == ("0123456789", ())
    text, problems = decode_bytes(b"0123456789A", limits)
    assert text == ""
    assert [code for code, _ in _codes(problems)] == ["too_large"]
    assert problems[0].severity == "fatal"
    assert "11 bytes" in problems[0].message


def test_too_large_is_checked_before_content() -> None:
    _, problems = decode_bytes(b"\x00" * 20, Limits(max_bytes=10, max_line_chars=100))
    assert [code for code, _ in _codes(problems)] == ["too_large"]


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (b"x" * 11, 1),
        (b"short\n" + b"x" * 11 + b"\nshort", 2),
        (b"a\r\nb\r\n" + b"y" * 20, 3),
    ],
)
def test_line_too_long(raw: bytes, line: int) -> None:
    text, problems = decode_bytes(raw, Limits(max_bytes=1_000, max_line_chars=10))
    assert text == ""
    assert _codes(problems) == [("line_too_long", line)]
    assert problems[0].severity == "fatal"


def test_line_limit_counts_characters_not_bytes() -> None:
    raw = ("é" * 10 + "\n" + "ab").encode()
    assert decode_bytes(raw, Limits(max_bytes=1_000, max_line_chars=10)) == ("é" * 10 + "\nab", ())


_healthy = st.text(alphabet=st.characters(exclude_characters="\r\x00\ufeff", exclude_categories=["Cs"]), min_size=1, max_size=200).filter(
    lambda text: text.encode().strip() != b""
)


@given(_healthy)
def test_healthy_utf8_comes_back_unchanged(text: str) -> None:
    assert decode_bytes(text.encode(), LIMITS) == (text, ())


@given(st.binary(max_size=300))
def test_any_bytes_give_lf_text_or_one_fatal_problem(raw: bytes) -> None:
    text, problems = decode_bytes(raw, Limits(max_bytes=250, max_line_chars=80))
    fatal = [p for p in problems if p.severity == "fatal"]
    if fatal:
        assert (text, len(problems)) == ("", 1)
    else:
        assert "\r" not in text and "\x00" not in text
        assert not text.startswith("\ufeff") or raw.startswith(b"\xef\xbb\xbf\xef\xbb\xbf")
        assert all(len(line) <= 80 for line in text.split("\n"))
