"""Git conflict blocks: find them in the raw text and keep one side.

Resolution works on the whole raw text, before the front matter is split, because a
block may swallow the closing ``---`` of the front matter (44 files in the archive).

A marker is a line made of exactly seven marker characters, alone or followed by a space
and a label (any label: ``HEAD``, a commit id, a branch name). ``=======`` is a marker only
inside a block: outside, it is the underline of a setext heading and stays text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

import yaml

from pipeline.escapes import decode_escapes, remove_excel_debris
from pipeline.problems import Problem, problem
from pipeline.simple_yaml import Reader
from pipeline.wordpress_row import has_glued_date

Side = Literal["ours", "theirs"]
Region = Literal["front_matter", "front_matter_body", "body", "export_row"]

_OPEN: Final = re.compile(r"<{7}(?: (.*))?")
_BASE: Final = re.compile(r"\|{7}(?: (.*))?")
_SEP: Final = "======="
_CLOSE: Final = re.compile(r">{7}(?: (.*))?")
# A marker after other text on its line (not at line start, so not a marker line).
_KEY_LINE: Final = re.compile(r"[A-Za-z_][\w-]*:\s")
_MARKER_STRINGS: Final = ("<" * 7, ">" * 7, "|" * 7)
_FM_DELIMITER: Final = re.compile(r"---\s*|\.\.\.\s*")
# The same, as a line of a longer text (``\s`` less the line break).
_FM_LINE: Final = re.compile(r"^(?:---|\.\.\.)[^\S\n]*$", re.MULTILINE)
# A line that may be a marker (group 1), after the line break before it: the scan walks
# these, not every line. Anchored on the line break, not on ``^`` with re.MULTILINE, which
# the engine tries at every character (6x slower on the archive).
_MARKER_LINE: Final = re.compile(r"\n((?:<{7}|\|{7}|>{7})(?: [^\n]*)?|={7})(?![^\n])")
_FIRST_MARKER_LINE: Final = re.compile(_MARKER_LINE.pattern[2:])
# Post-link forms that the two sides of such an archive write differently, read in one
# pass so that a rewrite's leftovers (``/2015/06/09/bang/-.html``) stay visible.
_POST_LINK: Final = re.compile(r"(?:https?://[^/\s()\"]+)?/(\d{4})/(\d\d)/(?:(?:\d\d)/([^\s()\"/]+)/|([^\s()\"/]+?)\.html)")
# What every match of it holds: a line without it is not searched with the pattern above,
# whose optional scheme and host make the engine try it at every character.
_POST_LINK_PART: Final = re.compile(r"/\d{4}/\d\d/")


@dataclass(frozen=True)
class Block:
    """One conflict block, as logged in conflicts.parquet. Lines are 1-based in the file."""

    start_line: int
    end_line: int
    region: Region
    side: Side
    ours_lines: int
    theirs_lines: int
    base_lines: int
    ours_label: str
    theirs_label: str
    has_export_row: bool
    equivalent: bool


@dataclass(frozen=True)
class Resolution:
    text: str
    blocks: tuple[Block, ...]
    problems: tuple[Problem, ...]


class _Malformed(Exception):
    def __init__(self, code: str, line: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.line = line


def resolve_conflicts(text: str, side: Side) -> Resolution:
    """Remove every conflict block from ``text``, keeping ``side`` (``ours`` is the first).

    Malformed markers (unterminated, nested, stray) give a fatal problem and the text back
    unchanged, so that the file is quarantined whole rather than half-resolved.

    >>> r = resolve_conflicts("a\\n<<<<<<< HEAD\\nb\\n=======\\nc\\n>>>>>>> x\\nd\\n", "theirs")
    >>> r.text, len(r.blocks)
    ('a\\nc\\nd\\n', 1)
    """
    try:
        kept, blocks = _scan(text, side)
    except _Malformed as err:
        return Resolution(text, (), (problem(err.code, str(err), err.line),))
    problems: list[Problem] = []
    if blocks:
        problems.append(problem("conflict_resolved", f"{len(blocks)} conflict block(s) resolved to {side}"))
    for block in blocks:
        if not block.equivalent:
            problems.append(
                problem(
                    "conflict_sides_differ",
                    f"the two sides of the block at line {block.start_line} differ beyond escaping, debris and link forms; check that the kept side is right",
                    block.start_line,
                )
            )
    for number in _midline_marker_lines(text):
        problems.append(
            problem(
                "conflict_marker_midline",
                "a conflict marker stands mid-line and was left as text; resolve it by hand in the raw file",
                number,
            )
        )
    return Resolution(kept, tuple(blocks), tuple(problems))


def _midline_marker_lines(text: str) -> list[int]:
    """Line numbers of markers that stand after other text on their line.

    A marker is seven ``<``, ``>`` or ``|`` followed by a space or the end of the line. Found
    with ``str.find`` rather than a regex with a lookbehind, which the engine tries at every
    position of every file (a tenth of the resolve stage's time).

    >>> _midline_marker_lines("ok\\n<<<<<<< HEAD\\ntext >>>>>>> x\\nfoo|||||||\\n")
    [3, 4]
    """
    positions = []
    for marker in _MARKER_STRINGS:
        start = text.find(marker, 1)
        while start != -1:
            after = start + len(marker)
            if text[start - 1] != "\n" and (after == len(text) or text[after] in " \n"):
                positions.append(start)
            start = text.find(marker, start + 1)
    return [text.count("\n", 0, position) + 1 for position in sorted(positions)]


def _scan(text: str, side: Side) -> tuple[str, list[Block]]:
    """``text`` without its blocks, and the blocks, found by walking the marker lines.

    One regex search finds every line that may be a marker; the text between them is kept
    in slices, never split into lines (most of a file's lines are outside any block).
    """
    kept: list[str] = []  # runs of whole lines, joined by line breaks at the end
    blocks: list[Block] = []
    line_of = _LineNumbers(text)
    first_end = text.find("\n")
    first_line = text if first_end < 0 else text[:first_end]
    fm_open = first_line.strip() == "---"
    pos = 0  # where the next line not yet kept starts; past the end: no line is left
    if fm_open:
        kept.append(first_line)
        pos = len(text) + 1 if first_end < 0 else first_end + 1
    markers = _marker_lines(text, pos)
    for marker in markers:
        line = marker.group(1)
        opened = _OPEN.fullmatch(line)
        if opened is None:
            if line == _SEP:
                continue  # outside a block: a setext underline, text like any other
            raise _Malformed(
                "conflict_stray_marker",
                line_of(marker.start(1)),
                f"stray marker {line[:7]!r} outside a conflict block; delete it or restore the block",
            )
        if fm_open and _FM_LINE.search(text, pos, marker.start(1)):
            fm_open = False
        _keep_lines(kept, text, pos, marker.start(1))
        block, chosen, pos = _read_block(text, marker, markers, line_of, side, fm_open, opened.group(1) or "")
        blocks.append(block)
        _keep_lines(kept, text, *chosen)
        if fm_open and _FM_LINE.search(text, *chosen):
            fm_open = False
    if pos <= len(text):
        kept.append(text[pos:])
    return "\n".join(kept), blocks


def _marker_lines(text: str, start: int) -> Iterator[re.Match[str]]:
    """The lines from ``start`` on (a line's start) that may be markers, line in group 1."""
    if start == 0 and (first := _FIRST_MARKER_LINE.match(text)):
        yield first
    yield from _MARKER_LINE.finditer(text, max(start - 1, 0))


class _LineNumbers:
    """1-based line numbers of positions in ``text``, asked in increasing order."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.line = 1

    def __call__(self, position: int) -> int:
        self.line += self.text.count("\n", self.position, position)
        self.position = position
        return self.line


def _keep_lines(kept: list[str], text: str, start: int, end: int) -> None:
    """Keep the lines from ``start`` up to the line break before ``end`` (none if equal)."""
    if end > start:
        kept.append(text[start : end - 1])


def _section_lines(text: str, start: int, end: int) -> list[str]:
    return text[start : end - 1].split("\n") if end > start else []


def _read_block(
    text: str,
    opening: re.Match[str],
    markers: Iterator[re.Match[str]],
    line_of: _LineNumbers,
    side: Side,
    fm_open: bool,
    ours_label: str,
) -> tuple[Block, tuple[int, int], int]:
    """Read the block that the marker line ``opening`` opens; return the block, the span of
    the kept side and where the text goes on after the block."""
    start_line = line_of(opening.start(1))
    spans: dict[str, tuple[int, int]] = {"base": (0, 0)}
    current = "ours"
    section_start = opening.end(1) + 1
    for marker in markers:
        line = marker.group(1)
        if _OPEN.fullmatch(line):
            raise _Malformed(
                "conflict_nested",
                line_of(marker.start(1)),
                f"conflict block opens inside the block of line {start_line}; resolve the inner one by hand",
            )
        if current == "ours" and _BASE.fullmatch(line):
            spans[current], section_start, current = (section_start, marker.start(1)), marker.end(1) + 1, "base"
        elif current in ("ours", "base") and line == _SEP:
            spans[current], section_start, current = (section_start, marker.start(1)), marker.end(1) + 1, "theirs"
        elif current == "theirs" and (closed := _CLOSE.fullmatch(line)):
            spans["theirs"] = (section_start, marker.start(1))
            ours, theirs = _section_lines(text, *spans["ours"]), _section_lines(text, *spans["theirs"])
            # A WordPress export row starts with its post date glued to the post URL.
            has_row = has_glued_date(text, *spans["ours"]) or has_glued_date(text, *spans["theirs"])
            block = Block(
                start_line=start_line,
                end_line=line_of(marker.start(1)),
                region=_region(fm_open, ours, theirs, has_row),
                side=side,
                ours_lines=len(ours),
                theirs_lines=len(theirs),
                base_lines=len(_section_lines(text, *spans["base"])),
                ours_label=ours_label,
                theirs_label=closed.group(1) or "",
                has_export_row=has_row,
                equivalent=sides_equivalent(ours, theirs),
            )
            return block, spans[side], marker.end(1) + 1
        elif _CLOSE.fullmatch(line):
            raise _Malformed(
                "conflict_unterminated",
                start_line,
                f"conflict block has no ======= separator before line {line_of(marker.start(1))}; fix the markers by hand",
            )
        elif _BASE.fullmatch(line):
            raise _Malformed(
                "conflict_stray_marker",
                line_of(marker.start(1)),
                f"||||||| marker out of place in the block of line {start_line}; fix the markers by hand",
            )
    raise _Malformed(
        "conflict_unterminated",
        start_line,
        "conflict block never closes with >>>>>>>; add the closing marker or remove the block",
    )


def _region(fm_open: bool, ours: list[str], theirs: list[str], has_row: bool) -> Region:
    if fm_open:
        closes = any(_FM_DELIMITER.fullmatch(x) for x in ours + theirs)
        return "front_matter_body" if closes else "front_matter"
    if has_row:
        return "export_row"
    return "body"


def sides_equivalent(ours: list[str], theirs: list[str]) -> bool:
    """Whether two sides say the same once escaping, debris and link forms are set aside.

    Heuristic ``sides_equivalent``: both sides are normalised by decoding \\u escapes,
    removing ``_x000D_``, reading ``key: value`` lines as YAML, writing post links as
    ``/YYYY/MM/slug`` and dropping blank lines; equal results mean no content is lost
    whichever side is kept.

    >>> sides_equivalent(["tags: ['été']"], ['tags: ["\\\\u00e9t\\\\u00e9"]'])
    True
    """
    left, right = _decoded_lines(ours), _decoded_lines(theirs)
    # Each line normalises on its own, so lines already equal once decoded need no YAML
    # reading (the costly part); only the pairs that still differ are normalised.
    return len(left) == len(right) and all(a == b or _normalise_line(a) == _normalise_line(b) for a, b in zip(left, right, strict=True))


# The lines of a side read as ``yaml.load(line, Loader=yaml.CSafeLoader)`` reads them;
# ``key: ['a', "b"]``, what 825 of the archive's 1,165 differing line pairs are, without
# PyYAML: the archive's sides' comparison takes 66 ms, 197 ms with PyYAML on every line.
_SIMPLE_LINE: Final = Reader(yaml.CSafeLoader.yaml_implicit_resolvers)


def _decoded_lines(lines: list[str]) -> list[str]:
    text = remove_excel_debris("\n".join(lines))
    return [decode_escapes(line) for line in text.split("\n") if line.strip()]


def _normalise_line(line: str) -> str:
    if _KEY_LINE.match(line):
        simple = _SIMPLE_LINE.read_mapping(line)
        value: object = None if simple is None else simple[0]
        if value is None:
            try:
                value = yaml.load(line, Loader=yaml.CSafeLoader)
            except yaml.YAMLError:
                value = None
        if isinstance(value, dict):
            line = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if _POST_LINK_PART.search(line):
        line = _POST_LINK.sub(lambda m: f"/{m[1]}/{m[2]}/{m[3] or m[4]}", line)
    return line.strip()
