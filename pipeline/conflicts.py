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
from dataclasses import dataclass
from typing import Final, Literal

import yaml

from pipeline.escapes import decode_escapes, remove_excel_debris
from pipeline.problems import Problem, problem
from pipeline.simple_yaml import Reader

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
# A WordPress export row starts with its post date glued to the post URL.
_ROW_HINT: Final = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:https?://|/\d{4}/)")
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
    lines = text.split("\n")
    try:
        kept, blocks = _scan(lines, side)
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
    return Resolution("\n".join(kept), tuple(blocks), tuple(problems))


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


def _scan(lines: list[str], side: Side) -> tuple[list[str], list[Block]]:
    kept: list[str] = []
    blocks: list[Block] = []
    fm_open = bool(lines) and lines[0].strip() == "---"
    i = 1 if fm_open else 0
    if fm_open:
        kept.append(lines[0])
    while i < len(lines):
        line = lines[i]
        opened = _OPEN.fullmatch(line)
        if opened:
            block, chosen, i = _read_block(lines, i, side, fm_open, opened.group(1) or "")
            blocks.append(block)
            kept.extend(chosen)
            if fm_open and any(_FM_DELIMITER.fullmatch(x) for x in chosen):
                fm_open = False
            continue
        if _BASE.fullmatch(line) or _CLOSE.fullmatch(line):
            raise _Malformed(
                "conflict_stray_marker",
                i + 1,
                f"stray marker {line[:7]!r} outside a conflict block; delete it or restore the block",
            )
        if fm_open and _FM_DELIMITER.fullmatch(line):
            fm_open = False
        kept.append(line)
        i += 1
    return kept, blocks


def _read_block(lines: list[str], start: int, side: Side, fm_open: bool, ours_label: str) -> tuple[Block, list[str], int]:
    """Read the block opening at ``start``; return it, the kept lines and the next index."""
    sections: dict[str, list[str]] = {"ours": [], "base": [], "theirs": []}
    current = "ours"
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if _OPEN.fullmatch(line):
            raise _Malformed(
                "conflict_nested",
                i + 1,
                f"conflict block opens inside the block of line {start + 1}; resolve the inner one by hand",
            )
        if current == "ours" and _BASE.fullmatch(line):
            current = "base"
        elif current in ("ours", "base") and line == _SEP:
            current = "theirs"
        elif current == "theirs" and (closed := _CLOSE.fullmatch(line)):
            ours, theirs = sections["ours"], sections["theirs"]
            # One search over the sides joined: the pattern cannot cross a line break.
            has_row = _ROW_HINT.search("\n".join(ours + theirs)) is not None
            region = _region(fm_open, ours, theirs, has_row)
            block = Block(
                start_line=start + 1,
                end_line=i + 1,
                region=region,
                side=side,
                ours_lines=len(ours),
                theirs_lines=len(theirs),
                base_lines=len(sections["base"]),
                ours_label=ours_label,
                theirs_label=closed.group(1) or "",
                has_export_row=has_row,
                equivalent=sides_equivalent(ours, theirs),
            )
            return block, (ours if side == "ours" else theirs), i + 1
        elif _CLOSE.fullmatch(line):
            raise _Malformed(
                "conflict_unterminated",
                start + 1,
                f"conflict block has no ======= separator before line {i + 1}; fix the markers by hand",
            )
        elif _BASE.fullmatch(line):
            raise _Malformed(
                "conflict_stray_marker",
                i + 1,
                f"||||||| marker out of place in the block of line {start + 1}; fix the markers by hand",
            )
        else:
            sections[current].append(line)
        i += 1
    raise _Malformed(
        "conflict_unterminated",
        start + 1,
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
